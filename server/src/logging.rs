//! The log's output, off the request path: every line (the access log and the rest) is
//! formatted on the thread that logs it, appended to a bounded in-memory queue, and written to
//! its destination (standard error) in batches by one dedicated thread. A worker never makes a
//! system call for a line and never waits on a slow or full pipe; when the queue is full the
//! line is dropped, counted (`portcullis_log_lines_dropped_total`) and reported in a warning
//! line once output resumes. [`LogOutput::stop`] (at a graceful stop) writes every queued line.
//! The level filter can be replaced at runtime ([`set_level`], a configuration reload).
//!
//! The access log skips tracing's formatter: [`write_line`] formats its line with [`line`],
//! byte for byte as tracing would, into a buffer of the worker's and queues it.

pub mod line;

use std::cell::{Cell, RefCell};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Bytes that may wait in the queue (a few thousand access-log lines, tens of milliseconds at
/// full load) before lines are dropped.
pub const DEFAULT_CAPACITY: usize = 2 * 1024 * 1024;

/// How long the writer lets lines gather after writing a batch, so a busy server pays one
/// wake-up and one `write` per batch rather than per line. It bounds how late a line appears.
/// At 2 ms, a worker at full load on the writer's core was preempted about 500 times a
/// second and the writer spent 0.15 us a line (to a file on ext4); at 10 ms, about 170
/// times and 0.07 us (`bench/README.md`, issue 10). A batch is then about 400 KB at 160,000
/// lines a second, well inside [`DEFAULT_CAPACITY`].
const GATHER: Duration = Duration::from_millis(10);

/// The shortest time between two warnings about dropped lines.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Called by the writer thread with (lines dropped since the last report, total dropped).
pub type DropReport = Box<dyn Fn(u64, u64) + Send>;

/// The queue shared by the threads that log and the writer thread.
struct Queue {
    state: Mutex<State>,
    /// Signalled when a line arrives while the writer waits for one, when the queue passes a
    /// quarter of its capacity while the writer lets lines gather, or when stopping.
    wake: Condvar,
    capacity: usize,
    /// How long the writer lets lines gather after a batch ([`GATHER`]).
    gather: Duration,
    dropped: AtomicU64,
}

struct State {
    pending: Vec<u8>,
    /// The writer waits for a first line.
    writer_waiting: bool,
    /// The writer lets lines gather ([`GATHER`]) after a batch.
    gathering: bool,
    stopping: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only bytes in a buffer; keep logging.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `state` holds enough lines to write without waiting out a gathering: a
    /// quarter of the queue, so that many workers cannot fill it within one gathering.
    fn worth_writing_now(&self, state: &State) -> bool {
        state.pending.len() >= self.capacity / 4
    }

    /// Queues one formatted line, or counts it as dropped when the queue is full.
    fn push(&self, line: &[u8]) {
        let mut state = self.lock();
        if state.pending.len() + line.len() > self.capacity {
            drop(state);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        state.pending.extend_from_slice(line);
        // Only a writer that sleeps needs a wake-up (a system call); a busy one finds the
        // line on its next turn. One that lets lines gather is woken early when there are
        // enough of them.
        let gathered = state.gathering && self.worth_writing_now(&state);
        if state.writer_waiting || gathered {
            state.writer_waiting = false;
            state.gathering = false;
            drop(state);
            self.wake.notify_one();
        }
    }
}

/// The process's log output; [`LogOutput::stop`] (or dropping it) writes what is queued and
/// ends the writer thread.
pub struct LogOutput {
    queue: Arc<Queue>,
    thread: Option<JoinHandle<()>>,
}

/// The queue installed by [`LogOutput::install_global`], read by [`lines_dropped`].
static GLOBAL: OnceLock<Arc<Queue>> = OnceLock::new();

/// The queue and line format [`write_line`] uses, installed by [`LogOutput::install_direct`].
static DIRECT: OnceLock<(Arc<Queue>, LineFormat)> = OnceLock::new();

pub use line::{Line, LineFormat, Pieces, Stamp};

thread_local! {
    /// The buffer a worker formats its lines in before queueing them.
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(1024));
}

/// Formats one line of `level` for `target` (its fields written by `fields`), stamped with
/// the wall-clock time of `at`, and queues it on the process's log output, without tracing's
/// formatter; `false`, with nothing written, when no direct output is installed (in-process
/// tests, colour on a terminal), and the caller logs through tracing instead. The caller
/// checks the level filter first (`tracing::event_enabled!`).
pub fn write_line(
    level: Level,
    target: &'static str,
    at: Instant,
    fields: impl FnOnce(&mut Line<'_>),
) -> bool {
    let Some((queue, format)) = DIRECT.get() else {
        return false;
    };
    let now = stamp_of(at);
    let write = |buf: &mut Vec<u8>| {
        buf.clear();
        let mut line = Line::begin(buf, *format, level, target, now);
        fields(&mut line);
        line.finish();
        queue.push(buf);
    };
    LINE.with(|buf| match buf.try_borrow_mut() {
        Ok(mut buf) => write(&mut buf),
        Err(_) => write(&mut Vec::new()),
    });
    true
}

/// How long a thread stamps lines from one reading of the wall clock (below).
const ANCHOR_FOR: Duration = Duration::from_secs(1);

thread_local! {
    /// A monotonic instant and the wall-clock time read with it, on this thread.
    static ANCHOR: Cell<Option<(Instant, Stamp)>> = const { Cell::new(None) };
}

/// The wall-clock time of `at`: the request path reads one clock (the monotonic one, which
/// also times the request) and the wall clock is read once a second per thread, so a change
/// of the system time shows in the log within a second. Kept as a distance from the epoch,
/// which the timestamp is formatted from.
fn stamp_of(at: Instant) -> Stamp {
    if let Some((instant, stamp)) = ANCHOR.get() {
        if let Some(since) = at.checked_duration_since(instant) {
            if since < ANCHOR_FOR {
                return match stamp {
                    Stamp::SinceEpoch(anchor) => Stamp::SinceEpoch(anchor + since),
                    Stamp::Before(system) => Stamp::from(system + since),
                };
            }
        }
    }
    let stamp = Stamp::from(SystemTime::now());
    ANCHOR.set(Some((at, stamp)));
    stamp
}

/// [`stamp_of`] as a system time.
#[cfg(test)]
fn wall_clock(at: Instant) -> SystemTime {
    match stamp_of(at) {
        Stamp::SinceEpoch(since) => std::time::UNIX_EPOCH + since,
        Stamp::Before(system) => system,
    }
}

/// Lines dropped so far by the process's log output (0 when none is installed).
pub fn lines_dropped() -> u64 {
    GLOBAL
        .get()
        .map_or(0, |queue| queue.dropped.load(Ordering::Relaxed))
}

impl LogOutput {
    /// Starts the writer thread over `sink`, with a queue of `capacity` bytes. `report` is
    /// called from the writer thread when lines were dropped (at most once per second, and at
    /// stop), after the batch that follows them is written.
    pub fn start(
        sink: impl Write + Send + 'static,
        capacity: usize,
        report: DropReport,
    ) -> io::Result<LogOutput> {
        Self::start_gathering(sink, capacity, GATHER, report)
    }

    /// [`LogOutput::start`] letting lines gather for `gather` after a batch.
    fn start_gathering(
        sink: impl Write + Send + 'static,
        capacity: usize,
        gather: Duration,
        report: DropReport,
    ) -> io::Result<LogOutput> {
        let queue = Arc::new(Queue {
            state: Mutex::new(State {
                pending: Vec::with_capacity(64 * 1024),
                writer_waiting: false,
                gathering: false,
                stopping: false,
            }),
            wake: Condvar::new(),
            capacity,
            gather,
            dropped: AtomicU64::new(0),
        });
        let writer_queue = queue.clone();
        let thread = std::thread::Builder::new()
            .name("log-writer".to_owned())
            .spawn(move || write_batches(&writer_queue, sink, report))?;
        Ok(LogOutput {
            queue,
            thread: Some(thread),
        })
    }

    /// Makes this the output [`lines_dropped`] reads (the process's own log output). Only the
    /// first call takes effect.
    pub fn install_global(&self) {
        let _ = GLOBAL.set(self.queue.clone());
    }

    /// Lets [`write_line`] queue lines on this output formatted as `format`, which must be the
    /// format of the subscriber writing to it, without colour. Only the first call takes
    /// effect.
    pub fn install_direct(&self, format: LineFormat) {
        let _ = DIRECT.set((self.queue.clone(), format));
    }

    /// The writer handed to `tracing_subscriber::fmt().with_writer(..)`.
    pub fn make_writer(&self) -> QueueWriter {
        QueueWriter {
            queue: self.queue.clone(),
        }
    }

    /// Lines this output has dropped so far.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed)
    }

    /// Writes every queued line (and the warning about dropped ones, if any is due), then
    /// ends the writer thread. Blocks as long as the destination does.
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.queue.lock().stopping = true;
        self.queue.wake.notify_one();
        let _ = thread.join();
    }
}

impl Drop for LogOutput {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The writer thread: swaps the queue for an empty buffer, writes the batch, reports drops.
fn write_batches(queue: &Queue, mut sink: impl Write, report: DropReport) {
    let mut batch: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut reported = 0u64;
    let mut last_report: Option<Instant> = None;
    loop {
        let stopping = {
            let mut state = queue.lock();
            while state.pending.is_empty() && !state.stopping {
                state.writer_waiting = true;
                state = queue
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            state.writer_waiting = false;
            std::mem::swap(&mut state.pending, &mut batch);
            state.stopping
        };
        if !batch.is_empty() {
            let written = sink.write_all(&batch).and_then(|()| sink.flush());
            if written.is_err() {
                // The destination refused the batch: its lines are lost, so they count.
                let lines = batch.iter().filter(|&&b| b == b'\n').count().max(1);
                queue.dropped.fetch_add(lines as u64, Ordering::Relaxed);
            }
            batch.clear();
            // A batch that filled the queue once is kept at that size, not beyond it.
            batch.shrink_to(queue.capacity);
        }
        let dropped = queue.dropped.load(Ordering::Relaxed);
        let due = last_report.is_none_or(|at| at.elapsed() >= REPORT_EVERY);
        if dropped > reported && (due || stopping) {
            report(dropped - reported, dropped);
            reported = dropped;
            last_report = Some(Instant::now());
        }
        if stopping {
            // What the report (and any late line) queued is written before the thread ends.
            let mut state = queue.lock();
            std::mem::swap(&mut state.pending, &mut batch);
            drop(state);
            if !batch.is_empty() {
                let _ = sink.write_all(&batch).and_then(|()| sink.flush());
            }
            return;
        }
        gather(queue);
    }
}

/// Lets lines gather for the queue's time ([`GATHER`]), or until [`Queue::push`] finds a
/// quarter of the queue full, or the output stops.
fn gather(queue: &Queue) {
    let until = Instant::now() + queue.gather;
    let mut state = queue.lock();
    state.gathering = true;
    // Lines that filled a quarter while the batch was written do not wait either.
    while state.gathering && !state.stopping && !queue.worth_writing_now(&state) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        state = queue
            .wake
            .wait_timeout(state, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    state.gathering = false;
}

/// The writer tracing's formatter writes each formatted event to: one `write` per event,
/// which queues it whole or drops it whole.
#[derive(Clone)]
pub struct QueueWriter {
    queue: Arc<Queue>,
}

impl Write for &QueueWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.queue.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for QueueWriter {
    type Writer = &'a QueueWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A sink that appends to a shared buffer, optionally blocking until released.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A sink whose first write blocks until the test says so.
    struct Gate {
        inner: Shared,
        release: mpsc::Receiver<()>,
        entered: mpsc::Sender<()>,
        released: bool,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if !self.released {
                let _ = self.entered.send(());
                let _ = self.release.recv();
                self.released = true;
            }
            self.inner.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn text(shared: &Shared) -> String {
        String::from_utf8(shared.0.lock().unwrap().clone()).unwrap()
    }

    fn line(writer: &QueueWriter, text: &str) {
        let mut w = writer;
        w.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn the_wall_clock_of_an_instant_follows_the_instant_and_the_system_clock() {
        let start = Instant::now();
        let system = SystemTime::now();
        let stamped = wall_clock(start);
        let apart = |a: SystemTime, b: SystemTime| {
            a.duration_since(b)
                .unwrap_or_else(|e| e.duration())
                .as_millis()
        };
        assert!(
            apart(stamped, system) < 50,
            "{stamped:?} against {system:?}"
        );
        // Within a second of the anchor, instants keep their distance exactly.
        let later = start + Duration::from_millis(300);
        assert_eq!(
            wall_clock(later).duration_since(stamped).unwrap(),
            Duration::from_millis(300)
        );
        // An instant past the anchor's second reads the wall clock again.
        let much_later = start + Duration::from_secs(5);
        let restamped = wall_clock(much_later);
        assert!(apart(restamped, SystemTime::now()) < 50, "{restamped:?}");
        // An instant before the anchor too.
        let before = wall_clock(start);
        assert!(apart(before, SystemTime::now()) < 50, "{before:?}");
    }

    #[test]
    fn every_queued_line_is_written_by_stop_in_order() {
        let sink = Shared::default();
        let output = LogOutput::start(sink.clone(), DEFAULT_CAPACITY, Box::new(|_, _| {})).unwrap();
        let writer = output.make_writer();
        for i in 0..10_000 {
            line(&writer, &format!("line {i}\n"));
        }
        output.stop();
        let written = text(&sink);
        let lines: Vec<&str> = written.lines().collect();
        assert_eq!(lines.len(), 10_000);
        assert!(lines
            .iter()
            .enumerate()
            .all(|(i, l)| *l == format!("line {i}")));
    }

    #[test]
    fn a_full_queue_drops_counts_and_reports_instead_of_blocking() {
        let sink = Shared::default();
        let (release_tx, release) = mpsc::channel();
        let (entered, entered_rx) = mpsc::channel();
        let blocked = Gate {
            inner: sink.clone(),
            release,
            entered,
            released: false,
        };
        let reports = Arc::new(Mutex::new(Vec::new()));
        let seen = reports.clone();
        let output = LogOutput::start(
            blocked,
            100,
            Box::new(move |new, total| seen.lock().unwrap().push((new, total))),
        )
        .unwrap();
        let writer = output.make_writer();
        // The first line reaches the sink, which then blocks like a full pipe.
        line(&writer, "first\n");
        entered_rx.recv().unwrap();
        // 10 lines of 20 bytes fill the 100-byte queue after 5; none of these calls blocks.
        for i in 0..10 {
            line(&writer, &format!("queued line {i:07}\n"));
        }
        assert_eq!(output.dropped(), 5);
        release_tx.send(()).unwrap();
        output.stop();
        let written = text(&sink);
        assert_eq!(written.lines().count(), 6, "{written}");
        assert!(written.contains("queued line 0000004\n"));
        assert!(!written.contains("queued line 0000005"));
        assert_eq!(*reports.lock().unwrap(), vec![(5, 5)]);
    }

    /// A sink that tells the test about every write.
    struct Told {
        inner: Shared,
        told: mpsc::Sender<usize>,
    }

    impl Write for Told {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.inner.write(buf)?;
            let _ = self.told.send(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_quarter_of_the_queue_is_written_without_waiting_for_the_gathering_to_end() {
        // Many times over: the lines may arrive before the writer starts to gather (while it
        // writes the first batch) or while it gathers, and neither may wait for the hour.
        for _ in 0..200 {
            let sink = Shared::default();
            let (told, writes) = mpsc::channel();
            let hour = Duration::from_secs(3600);
            let output = LogOutput::start_gathering(
                Told {
                    inner: sink.clone(),
                    told,
                },
                400,
                hour,
                Box::new(|_, _| {}),
            )
            .unwrap();
            let writer = output.make_writer();
            line(&writer, "first\n");
            writes.recv_timeout(Duration::from_secs(10)).unwrap();
            // The writer lets lines gather for an hour; a quarter of the queue cuts it short.
            for i in 0..4 {
                line(&writer, &format!("line {i} of twenty-eight bytes\n"));
            }
            writes
                .recv_timeout(Duration::from_secs(10))
                .expect("a batch written before the hour is up");
            // Fewer lines than a quarter wait; stopping writes them at once, not in an hour.
            line(&writer, "last\n");
            assert_eq!(output.dropped(), 0);
            let stopped = Instant::now();
            output.stop();
            assert!(stopped.elapsed() < Duration::from_secs(10));
            let written = text(&sink);
            assert_eq!(written.lines().count(), 6, "{written}");
            assert!(written.ends_with("bytes\nlast\n"), "{written}");
        }
    }

    #[test]
    fn the_report_goes_through_the_queue_and_is_written_at_stop() {
        let sink = Shared::default();
        let (tx, rx) = mpsc::channel::<QueueWriter>();
        let output = LogOutput::start(
            sink.clone(),
            30,
            Box::new(move |new, total| {
                if let Ok(writer) = rx.try_recv() {
                    line(&writer, &format!("WARN dropped {new} of {total}\n"));
                }
            }),
        )
        .unwrap();
        let writer = output.make_writer();
        tx.send(writer.clone()).unwrap();
        line(&writer, "a line that is longer than the whole queue\n");
        assert_eq!(output.dropped(), 1);
        output.stop();
        assert_eq!(text(&sink), "WARN dropped 1 of 1\n");
    }
}

/// Whether lines of a level pass the filter, remembered until the filter is replaced: the
/// generation of the filter (above [`MEMO_BITS`]), then for each remembered level whether it
/// is known and whether it passes. Used only while [`MEMO_ON`].
static LEVEL_MEMO: AtomicU64 = AtomicU64::new(0);

/// The low bits of [`LEVEL_MEMO`] that hold levels (two per level).
const MEMO_BITS: u32 = 8;

/// Whether [`enabled`] may remember answers: the subscriber is `main`'s, with a filter only a
/// reload ([`set_level`]) replaces and that names levels only (no `RUST_LOG`, whose span
/// directives could make an answer depend on the current span).
static MEMO_ON: AtomicBool = AtomicBool::new(false);

/// Whether an event of `level` passes the filter, as `check` (`tracing::event_enabled!` for
/// one call site) answers: remembered between filter reloads when the process's subscriber
/// allows it (`main`), asked every time otherwise (tests, `RUST_LOG`). One call site per
/// level may use this: the answer is remembered by level, not by target.
#[inline]
pub fn enabled(level: Level, check: impl FnOnce() -> bool) -> bool {
    if !MEMO_ON.load(Ordering::Relaxed) {
        return check();
    }
    let shift = match level {
        Level::INFO => 0,
        Level::DEBUG => 2,
        _ => return check(),
    };
    let (known, on) = (1u64 << shift, 2u64 << shift);
    let memo = LEVEL_MEMO.load(Ordering::Acquire);
    if memo & known != 0 {
        return memo & on != 0;
    }
    let answer = check();
    // Remembered only if no reload happened since `memo` was read (the generation moved).
    let bits = if answer { known | on } else { known };
    let _ = LEVEL_MEMO.compare_exchange(memo, memo | bits, Ordering::AcqRel, Ordering::Relaxed);
    answer
}

/// Forgets [`enabled`]'s answers (the filter was replaced): a new generation, no level known.
fn forget_levels() {
    let _ = LEVEL_MEMO.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |memo| {
        Some(((memo >> MEMO_BITS) + 1) << MEMO_BITS)
    });
}

/// Replaces the log filter of the installed subscriber (built in `main`, where its type is
/// known): the level a configuration reload sets.
pub type FilterReload = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

/// The filter reload of the process's subscriber, installed once by `main`.
static FILTER_RELOAD: OnceLock<FilterReload> = OnceLock::new();

/// Installs the process's filter reload (the first call wins; tests install none).
pub fn install_filter_reload(reload: FilterReload) {
    if FILTER_RELOAD.set(reload).is_ok() && std::env::var_os("RUST_LOG").is_none() {
        MEMO_ON.store(true, Ordering::Relaxed);
    }
}

/// Why the log level could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum LevelError {
    /// `RUST_LOG` is set and decides the filter; `LOG_LEVEL` is its default only at start.
    #[error("RUST_LOG is set and decides the log filter")]
    RustLogSet,
    /// No subscriber with a reloadable filter is installed (in-process tests).
    #[error("no reloadable log filter is installed")]
    NotInstalled,
    /// The subscriber refused the new filter.
    #[error("the log filter could not be replaced: {0}")]
    Refused(String),
}

/// Sets the least severe level logged from now on, as `LOG_LEVEL` does at start.
pub fn set_level(level: &str) -> Result<(), LevelError> {
    if std::env::var_os("RUST_LOG").is_some() {
        return Err(LevelError::RustLogSet);
    }
    let reload = FILTER_RELOAD.get().ok_or(LevelError::NotInstalled)?;
    let result = reload(EnvFilter::new(level)).map_err(LevelError::Refused);
    forget_levels();
    result
}
