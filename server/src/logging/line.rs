//! Log lines formatted without tracing's formatter, for the lines written on every request
//! (the access log): the same bytes tracing-subscriber's `fmt` layer writes, text (`Full`,
//! no colour) or JSON (`flatten_event`), for about a tenth of the instructions. Each field
//! method records a value the way tracing's field visitors record it (`record_str`,
//! `record_debug`, `record_u64`); the unit tests hold every method to the output of tracing's
//! own formatter for the same event.

use std::cell::Cell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::header::HeaderValue;
use tracing::Level;

/// The formatter the process's subscriber uses, which a direct line must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineFormat {
    /// tracing-subscriber's default (`Full`) text format without ANSI colours.
    Text,
    /// tracing-subscriber's JSON format with `flatten_event(true)`.
    Json,
}

/// When a line was written: its distance from the Unix epoch (always, in practice), or the
/// system time itself when it is before the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stamp {
    /// At or after 1970-01-01T00:00:00Z.
    SinceEpoch(Duration),
    /// Before the epoch.
    Before(SystemTime),
}

impl From<SystemTime> for Stamp {
    fn from(now: SystemTime) -> Self {
        match now.duration_since(UNIX_EPOCH) {
            Ok(since) => Stamp::SinceEpoch(since),
            Err(_) => Stamp::Before(now),
        }
    }
}

/// One line being written into a buffer: [`Line::begin`], the fields in order, then
/// [`Line::finish`].
pub struct Line<'a> {
    buf: &'a mut Vec<u8>,
    format: LineFormat,
    target: &'static str,
    first: bool,
}

impl<'a> Line<'a> {
    /// Starts a line of `level` for `target`, stamped `now`.
    pub fn begin(
        buf: &'a mut Vec<u8>,
        format: LineFormat,
        level: Level,
        target: &'static str,
        now: impl Into<Stamp>,
    ) -> Self {
        let now = now.into();
        match format {
            LineFormat::Text => {
                timestamp(buf, now);
                buf.push(b' ');
                // Right-aligned to five characters, as tracing pads them.
                buf.extend_from_slice(match level {
                    Level::TRACE => b"TRACE",
                    Level::DEBUG => b"DEBUG",
                    Level::INFO => b" INFO",
                    Level::WARN => b" WARN",
                    Level::ERROR => b"ERROR",
                });
                buf.push(b' ');
                buf.extend_from_slice(target.as_bytes());
                buf.extend_from_slice(b": ");
            }
            LineFormat::Json => {
                buf.extend_from_slice(b"{\"timestamp\":\"");
                timestamp(buf, now);
                buf.extend_from_slice(b"\",\"level\":\"");
                buf.extend_from_slice(level.as_str().as_bytes());
                buf.push(b'"');
            }
        }
        Line {
            buf,
            format,
            target,
            first: true,
        }
    }

    /// The field's name and separator: `name=` in text (a space before every field but the
    /// first), `,"name":` in JSON (the timestamp and level come first).
    #[inline(always)]
    fn name(&mut self, name: &str) {
        match self.format {
            LineFormat::Text => {
                if !self.first {
                    self.buf.push(b' ');
                }
                self.buf.extend_from_slice(name.as_bytes());
                self.buf.push(b'=');
            }
            LineFormat::Json => {
                self.buf.extend_from_slice(b",\"");
                self.buf.extend_from_slice(name.as_bytes());
                self.buf.extend_from_slice(b"\":");
            }
        }
        self.first = false;
    }

    /// A `&str` field (`name = value`): quoted as `Debug` quotes it in text, a JSON string in
    /// JSON.
    #[inline(always)]
    pub fn str(&mut self, name: &str, value: &str) {
        self.name(name);
        match self.format {
            LineFormat::Text => debug_str(self.buf, value),
            LineFormat::Json => json_str(self.buf, value),
        }
    }

    /// A `&str` field recorded with `Debug` (`name = ?value`): in JSON, the string of its
    /// `Debug` form (quotes included).
    #[inline(always)]
    pub fn debug_str(&mut self, name: &str, value: &str) {
        self.name(name);
        match self.format {
            LineFormat::Text => debug_str(self.buf, value),
            LineFormat::Json => {
                if is_plain(value.as_bytes()) {
                    self.buf.extend_from_slice(b"\"\\\"");
                    self.buf.extend_from_slice(value.as_bytes());
                    self.buf.extend_from_slice(b"\\\"\"");
                } else {
                    json_str(self.buf, &format!("{value:?}"));
                }
            }
        }
    }

    /// A field recorded with `Display` (`name = %value`) whose text is `value`: bare in text,
    /// a JSON string in JSON.
    #[inline(always)]
    pub fn display(&mut self, name: &str, value: &str) {
        self.name(name);
        match self.format {
            LineFormat::Text => self.buf.extend_from_slice(value.as_bytes()),
            LineFormat::Json => json_str(self.buf, value),
        }
    }

    /// An address recorded with `Display` (`name = %ip`).
    #[inline(always)]
    pub fn ip(&mut self, name: &str, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => {
                // Digits and dots need no escaping: written straight into the line.
                self.name(name);
                let quoted = self.format == LineFormat::Json;
                if quoted {
                    self.buf.push(b'"');
                }
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.buf.push(b'.');
                    }
                    decimal(self.buf, u64::from(octet));
                }
                if quoted {
                    self.buf.push(b'"');
                }
            }
            IpAddr::V6(_) => {
                let mut text = IpText::default();
                let _ = write!(text, "{ip}");
                self.display(name, text.as_str());
            }
        }
    }

    /// An integer field (`name = value`).
    #[inline(always)]
    pub fn u64(&mut self, name: &str, value: u64) {
        self.name(name);
        decimal(self.buf, value);
    }

    /// A header value recorded with `Debug` (`name = ?value`), as `http` writes it: quoted,
    /// `"` escaped, other bytes outside visible ASCII as `\x..`.
    #[inline(always)]
    pub fn header_debug(&mut self, name: &str, value: &HeaderValue) {
        self.name(name);
        let bytes = value.as_bytes();
        let plain = !value.is_sensitive() && is_plain(bytes);
        match (self.format, plain) {
            (LineFormat::Text, true) => {
                self.buf.push(b'"');
                self.buf.extend_from_slice(bytes);
                self.buf.push(b'"');
            }
            (LineFormat::Json, true) => {
                self.buf.extend_from_slice(b"\"\\\"");
                self.buf.extend_from_slice(bytes);
                self.buf.extend_from_slice(b"\\\"\"");
            }
            (LineFormat::Text, false) => {
                let _ = write!(self.buf, "{value:?}");
            }
            (LineFormat::Json, false) => json_str(self.buf, &format!("{value:?}")),
        }
    }

    /// Fields that many lines share (a route's method and template, an outcome's labels),
    /// formatted once per thread: `pieces` keeps, in `slot`, the bytes `fields` writes after a
    /// line's first field, and later lines copy them. The caller gives every distinct set of
    /// field values its own slot. A line with no field yet writes the fields themselves.
    #[inline]
    pub fn cached(&mut self, pieces: &mut Pieces, slot: usize, fields: impl FnOnce(&mut Line<'_>)) {
        if self.first {
            fields(self);
            return;
        }
        if pieces.format != Some(self.format) {
            pieces.format = Some(self.format);
            pieces.slots.clear();
        }
        if pieces.slots.len() <= slot {
            pieces.slots.resize(slot + 1, None);
        }
        let piece = pieces.slots[slot].get_or_insert_with(|| {
            let mut buf = Vec::new();
            let mut piece = Line {
                buf: &mut buf,
                format: self.format,
                target: self.target,
                first: false,
            };
            fields(&mut piece);
            buf.into_boxed_slice()
        });
        self.buf.extend_from_slice(piece);
    }

    /// A value recorded with `Debug` (`name = ?value`) whose bytes the caller knows need no
    /// escaping (printable ASCII, no `"` or `\\`; checked in debug builds) and whose `Debug`
    /// form is the bytes quoted, as for a non-sensitive header value or a `str`: written
    /// without scanning them.
    #[inline(always)]
    pub fn verbatim_debug(&mut self, name: &str, value: &[u8]) {
        debug_assert!(is_plain(value), "{value:?}");
        self.name(name);
        match self.format {
            LineFormat::Text => {
                self.buf.push(b'"');
                self.buf.extend_from_slice(value);
                self.buf.push(b'"');
            }
            LineFormat::Json => {
                self.buf.extend_from_slice(b"\"\\\"");
                self.buf.extend_from_slice(value);
                self.buf.extend_from_slice(b"\\\"\"");
            }
        }
    }

    /// Ends the line: the target (JSON) and the newline.
    pub fn finish(self) {
        if self.format == LineFormat::Json {
            self.buf.extend_from_slice(b",\"target\":");
            // Lines come from a few targets, each a literal: one found plain is remembered.
            let target = self.target;
            if std::ptr::eq(PLAIN_TARGET.get(), target) || is_plain(target.as_bytes()) {
                PLAIN_TARGET.set(target);
                self.buf.push(b'"');
                self.buf.extend_from_slice(target.as_bytes());
                self.buf.extend_from_slice(b"\"}");
            } else {
                json_str(self.buf, target);
                self.buf.push(b'}');
            }
        }
        self.buf.push(b'\n');
    }
}

/// Formatted pieces of lines, by slot ([`Line::cached`]), for the format they were written in.
#[derive(Default)]
pub struct Pieces {
    format: Option<LineFormat>,
    slots: Vec<Option<Box<[u8]>>>,
}

/// Printable ASCII other than `"` and `\`: the bytes that `Debug` of a `str` or a header
/// value and JSON string escaping all leave as they are.
#[inline]
fn is_plain(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// `value` as `Debug` writes a `str`.
#[inline(always)]
fn debug_str(buf: &mut Vec<u8>, value: &str) {
    if is_plain(value.as_bytes()) {
        buf.push(b'"');
        buf.extend_from_slice(value.as_bytes());
        buf.push(b'"');
    } else {
        let _ = write!(buf, "{value:?}");
    }
}

/// `value` as a JSON string, escaped as serde_json escapes it (tracing's JSON formatter writes
/// with serde_json).
#[inline(always)]
fn json_str(buf: &mut Vec<u8>, value: &str) {
    if is_plain(value.as_bytes()) {
        buf.push(b'"');
        buf.extend_from_slice(value.as_bytes());
        buf.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *buf, value);
    }
}

/// `value` in decimal.
#[inline(always)]
fn decimal(buf: &mut Vec<u8>, value: u64) {
    // Octets, statuses and most durations have at most three digits: copies of a known
    // length, which compile to stores instead of a call.
    let digit = |v: u64| b'0' + (v % 10) as u8;
    match value {
        0..=9 => buf.push(digit(value)),
        10..=99 => buf.extend_from_slice(&[digit(value / 10), digit(value)]),
        100..=999 => buf.extend_from_slice(&[digit(value / 100), digit(value / 10), digit(value)]),
        _ => {
            let (digits, at) = digits(value);
            buf.extend_from_slice(&digits[at..]);
        }
    }
}

/// The decimal digits of `value`: they start at the returned index.
#[inline]
fn digits(mut value: u64) -> ([u8; 20], usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return (digits, at);
        }
    }
}

/// A stack buffer an address is written into (the longest IPv6 text is 45 bytes).
struct IpText {
    bytes: [u8; 48],
    len: usize,
}

impl Default for IpText {
    fn default() -> Self {
        IpText {
            bytes: [0; 48],
            len: 0,
        }
    }
}

impl IpText {
    fn push(&mut self, b: u8) {
        if self.len < self.bytes.len() {
            self.bytes[self.len] = b;
            self.len += 1;
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever pushed.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for IpText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        for b in s.bytes() {
            self.push(b);
        }
        Ok(())
    }
}

thread_local! {
    /// The last target [`Line::finish`] found needs no JSON escaping.
    static PLAIN_TARGET: Cell<&'static str> = const { Cell::new("") };

    /// The second last stamped on this thread and its `YYYY-MM-DDTHH:MM:SS.` text: lines come
    /// many to a second, so only the microseconds are formatted per line.
    static SECOND: Cell<(u64, [u8; 20])> = const { Cell::new((u64::MAX, [0; 20])) };
}

/// `now` as tracing-subscriber's default timer writes it: RFC 3339 in UTC with microseconds,
/// `2026-12-02T09:20:48.123456Z`.
pub fn timestamp(buf: &mut Vec<u8>, now: impl Into<Stamp>) {
    let since_epoch = match now.into() {
        Stamp::SinceEpoch(since) => since,
        Stamp::Before(now) => {
            // Before 1970: not worth a fast path.
            let _ = write!(buf, "{}", civil_text(now));
            return;
        }
    };
    let seconds = since_epoch.as_secs();
    let (cached, mut prefix) = SECOND.get();
    if cached != seconds {
        let text = civil_text(UNIX_EPOCH + since_epoch);
        if text.len() != 27 {
            // A year outside 0..=9999.
            buf.extend_from_slice(text.as_bytes());
            return;
        }
        prefix.copy_from_slice(&text.as_bytes()[..20]);
        SECOND.set((seconds, prefix));
    }
    buf.extend_from_slice(&prefix);
    let mut micros = since_epoch.subsec_micros();
    let mut digits = [b'0'; 7];
    digits[6] = b'Z';
    for digit in digits[..6].iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    buf.extend_from_slice(&digits);
}

/// The whole timestamp of `now` (the slow path, once a second per thread).
fn civil_text(now: SystemTime) -> String {
    let (seconds, micros) = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_micros()),
        Err(before) => {
            let d = before.duration();
            match d.subsec_nanos() {
                0 => (-(d.as_secs() as i64), 0),
                n => (-(d.as_secs() as i64) - 1, (1_000_000_000 - n) / 1_000),
            }
        }
    };
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut text = String::with_capacity(32);
    if year > 9999 {
        let _ = write!(text, "+{year}");
    } else if year < 0 {
        let _ = write!(text, "{year:05}");
    } else {
        let _ = write!(text, "{year:04}");
    }
    let _ = write!(
        text,
        "-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
    text
}

/// The proleptic Gregorian date of a day counted from 1970-01-01: eras of 400 years
/// (146,097 days), years counted from March so the leap day ends the year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468; // from 0000-03-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// What tracing's own formatter (configured as `main` configures it, without colour)
    /// writes for the events `emit` sends.
    fn tracing_output(format: LineFormat, emit: impl FnOnce()) -> String {
        let captured = Captured::default();
        let builder = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .with_writer(captured.clone());
        match format {
            LineFormat::Text => tracing::subscriber::with_default(builder.finish(), emit),
            LineFormat::Json => {
                tracing::subscriber::with_default(builder.json().flatten_event(true).finish(), emit)
            }
        }
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// The line with its timestamp replaced (the two formatters read the clock apart).
    fn without_time(line: &str) -> String {
        match line.find("\"timestamp\":\"") {
            Some(at) => {
                let start = at + "\"timestamp\":\"".len();
                let end = start + line[start..].find('"').unwrap();
                format!("{}T{}", &line[..start], &line[end..])
            }
            None => format!("T{}", &line[line.find(' ').unwrap()..]),
        }
    }

    fn direct(format: LineFormat, level: Level, fields: impl FnOnce(&mut Line<'_>)) -> String {
        let mut buf = Vec::new();
        let mut line = Line::begin(
            &mut buf,
            format,
            level,
            "portcullis::access",
            SystemTime::now(),
        );
        fields(&mut line);
        line.finish();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn every_field_kind_is_written_as_tracing_writes_it() {
        let odd_path = "/v1/\"quoted\"\\back\tslash/é/\u{7f}/\u{200b}";
        let cases: Vec<(&str, HeaderValue, &str, IpAddr, &str)> = vec![
            (
                "GET",
                HeaderValue::from_static("0a1b2c3d-000000000abc"),
                "/v1/meta",
                IpAddr::from([127, 0, 0, 1]),
                "anonymous",
            ),
            (
                "PROPFIND",
                HeaderValue::from_bytes(b"id with \"quote\" and \\ and \t tab").unwrap(),
                odd_path,
                "2001:db8::1".parse().unwrap(),
                "ünïcode \"user\"\n",
            ),
            (
                "DELETE",
                HeaderValue::from_bytes(b"high\xff byte").unwrap(),
                "",
                IpAddr::from([255, 0, 10, 9]),
                "",
            ),
        ];
        for format in [LineFormat::Text, LineFormat::Json] {
            for (method, id, path, client, user) in &cases {
                for level in [Level::INFO, Level::DEBUG] {
                    let expected = tracing_output(format, || {
                        if level == Level::INFO {
                            tracing::info!(
                                target: "portcullis::access",
                                request_id = ?id,
                                client = %client,
                                method = %method,
                                route = *path,
                                path = ?path,
                                status = 404u16,
                                auth = "none",
                                principal = *user,
                                user = ?user,
                                micros = 12_345_678_901u64,
                            );
                        } else {
                            tracing::debug!(
                                target: "portcullis::access",
                                request_id = ?id,
                                client = %client,
                                micros = 0u64,
                            );
                        }
                    });
                    let written = direct(format, level, |line| {
                        line.header_debug("request_id", id);
                        line.ip("client", *client);
                        if level == Level::INFO {
                            line.display("method", method);
                            line.str("route", path);
                            line.debug_str("path", path);
                            line.u64("status", 404);
                            line.str("auth", "none");
                            line.str("principal", user);
                            line.debug_str("user", user);
                            line.u64("micros", 12_345_678_901);
                        } else {
                            line.u64("micros", 0);
                        }
                    });
                    assert_eq!(
                        without_time(&written),
                        without_time(&expected),
                        "{format:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn cached_pieces_are_the_bytes_the_fields_write() {
        let fields = |line: &mut Line<'_>, path: &str| {
            line.display("method", "GET");
            line.str("route", "/v1/meta");
            line.debug_str("path", path);
        };
        for format in [LineFormat::Text, LineFormat::Json] {
            let mut pieces = Pieces::default();
            for path in ["/v1/meta", "/v1/\"quoted\"", "/v1/meta"] {
                let slot = usize::from(path == "/v1/meta");
                for _ in 0..2 {
                    let plain = direct(format, Level::INFO, |line| {
                        line.u64("status", 200);
                        fields(line, path);
                        line.u64("micros", 7);
                    });
                    let cached = direct(format, Level::INFO, |line| {
                        line.u64("status", 200);
                        line.cached(&mut pieces, slot, |line| fields(line, path));
                        line.u64("micros", 7);
                    });
                    assert_eq!(without_time(&cached), without_time(&plain), "{format:?}");
                    // As the line's first field: written, not cached.
                    let first = direct(format, Level::INFO, |line| {
                        line.cached(&mut Pieces::default(), 0, |line| fields(line, path));
                    });
                    let first_plain = direct(format, Level::INFO, |line| fields(line, path));
                    assert_eq!(without_time(&first), without_time(&first_plain));
                }
            }
            // The other format's pieces are not reused.
            let json = direct(LineFormat::Json, Level::INFO, |line| {
                line.u64("status", 200);
                line.cached(&mut pieces, 1, |line| fields(line, "/v1/meta"));
            });
            let text = direct(LineFormat::Text, Level::INFO, |line| {
                line.u64("status", 200);
                line.cached(&mut pieces, 1, |line| fields(line, "/v1/meta"));
            });
            assert!(
                json.contains(r#","method":"GET","route":"/v1/meta","#),
                "{json}"
            );
            assert!(text.contains(" method=GET route=\"/v1/meta\" "), "{text}");
        }
    }

    #[test]
    fn a_json_line_escapes_a_target_that_needs_it_and_remembers_none_wrongly() {
        let end = |target: &'static str| {
            let mut buf = Vec::new();
            let line = Line::begin(&mut buf, LineFormat::Json, Level::INFO, target, UNIX_EPOCH);
            line.finish();
            String::from_utf8(buf).unwrap()
        };
        for _ in 0..2 {
            assert!(end("portcullis::access").ends_with(
                r#","target":"portcullis::access"}
"#
            ));
            assert!(end("odd\"target").ends_with(
                r#","target":"odd\"target"}
"#
            ));
        }
    }

    #[test]
    fn a_verbatim_value_is_written_as_its_header_value_is() {
        for format in [LineFormat::Text, LineFormat::Json] {
            for id in ["0a1b2c3d-000000000abc", "abc-123_x.y", "a"] {
                let header = HeaderValue::from_static(id);
                let expected = direct(format, Level::INFO, |line| {
                    line.u64("first", 1);
                    line.header_debug("request_id", &header);
                });
                let written = direct(format, Level::INFO, |line| {
                    line.u64("first", 1);
                    line.verbatim_debug("request_id", id.as_bytes());
                });
                assert_eq!(without_time(&written), without_time(&expected));
            }
        }
    }

    #[test]
    fn decimals_are_written_as_display_writes_them() {
        let values = (0..=1_100u64).chain([9_999, 10_000, 123_456_789, u64::MAX - 1, u64::MAX]);
        for value in values {
            let mut buf = b"x".to_vec();
            decimal(&mut buf, value);
            assert_eq!(buf, format!("x{value}").into_bytes(), "{value}");
        }
    }

    #[test]
    fn a_sensitive_header_value_is_written_as_tracing_writes_it() {
        let mut id = HeaderValue::from_static("secret");
        id.set_sensitive(true);
        for format in [LineFormat::Text, LineFormat::Json] {
            let expected = tracing_output(format, || {
                tracing::info!(target: "portcullis::access", request_id = ?id);
            });
            let written = direct(format, Level::INFO, |line| {
                line.header_debug("request_id", &id);
            });
            assert_eq!(without_time(&written), without_time(&expected));
        }
    }

    #[test]
    fn the_timestamp_is_the_one_tracing_writes_for_the_same_instant() {
        // Bracketed: tracing reads the clock between the two reads here, and timestamps of
        // one width sort as the instants do.
        for _ in 0..50 {
            let mut before = Vec::new();
            timestamp(&mut before, SystemTime::now());
            let line = tracing_output(LineFormat::Text, || tracing::info!("x"));
            let mut after = Vec::new();
            timestamp(&mut after, SystemTime::now());
            let theirs = line.split(' ').next().unwrap().as_bytes().to_vec();
            assert_eq!(theirs.len(), 27, "{line}");
            assert!(before <= theirs && theirs <= after, "{line}");
        }
    }

    #[test]
    fn timestamps_of_known_instants() {
        let at = |seconds: u64, micros: u64| {
            let mut buf = Vec::new();
            timestamp(
                &mut buf,
                UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_micros(micros),
            );
            String::from_utf8(buf).unwrap()
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 1), "2000-02-29T00:00:00.000001Z");
        assert_eq!(at(951_868_799, 999_999), "2000-02-29T23:59:59.999999Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000000Z");
        assert_eq!(at(1_795_944_048, 123_456), "2026-11-29T09:20:48.123456Z");
        assert_eq!(at(253_402_300_799, 0), "9999-12-31T23:59:59.000000Z");
        assert_eq!(at(253_402_300_800, 0), "+10000-01-01T00:00:00.000000Z");
        // The cache is per second: the same second twice, then the next one.
        assert_eq!(at(86_399, 5), "1970-01-01T23:59:59.000005Z");
        assert_eq!(at(86_399, 6), "1970-01-01T23:59:59.000006Z");
        assert_eq!(at(86_400, 0), "1970-01-02T00:00:00.000000Z");
        let mut buf = Vec::new();
        timestamp(&mut buf, UNIX_EPOCH - Duration::from_micros(1));
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "1969-12-31T23:59:59.999999Z"
        );
    }
}
