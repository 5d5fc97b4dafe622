//! The user store shared by replicas: PostgreSQL through `sqlx` (`docs/replicas.md`).
//!
//! Every change is one transaction that bumps the one-row counter `portcullis_sync.change_seq`
//! (its row lock serialises writers, so sequence order is commit order), writes the user row,
//! appends the user's new state to the change log `portcullis_changes` and NOTIFYs the
//! sequence number (delivered at commit, to every replica's listener). Replicas read the log
//! from their own position in one snapshot ([`SharedUserStore::read`]); a gap, a counter that
//! went back, another change tag at their position or another store id makes the read a full
//! reload instead. NOTIFY only makes it fast: the guarantee is the [`Lease`], renewed by every
//! successful read from the moment the read started.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};

use super::store::UserRecord;
use crate::digest::KeyDigest;

/// The channel every change is notified on; the payload is the change's sequence number.
pub(crate) const CHANNEL: &str = "portcullis_users";

/// Failures of the shared store. Messages never contain the URL's credentials or key material.
#[derive(Debug, thiserror::Error)]
pub enum SharedStoreError {
    /// The URL could not be read as PostgreSQL connection options.
    #[error("{url} is not a usable PostgreSQL URL: {source}")]
    Url {
        /// The URL, credentials hidden.
        url: String,
        /// The cause.
        source: sqlx::Error,
    },
    /// The first connection failed.
    #[error("cannot connect to the user store {url}: {source}")]
    Connect {
        /// The URL, credentials hidden.
        url: String,
        /// The cause.
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate the user store {url}: {source}")]
    Migrate {
        /// The URL, credentials hidden.
        url: String,
        /// The cause.
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("user store query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// The store did not answer in time.
    #[error("the user store did not answer within {0:?}")]
    Timeout(Duration),
    /// The store is a standby (read replica): replicas read and write the primary only.
    #[error("the user store is a standby (pg_is_in_recovery); point PORTCULLIS_USER_STORE_URL at the primary")]
    Standby,
    /// A stored row is not valid.
    #[error("user store row for {user:?} is invalid: {what}")]
    BadRow {
        /// The user id.
        user: String,
        /// What is wrong.
        what: &'static str,
    },
}

/// Where a replica stands in the change log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) store_id: String,
    pub(crate) seq: i64,
    pub(crate) tag: String,
}

/// A user's state after a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UserState {
    pub(crate) key_id: String,
    pub(crate) key_digest: KeyDigest,
    pub(crate) active: bool,
    pub(crate) revoked: bool,
    pub(crate) created_at_ms: i64,
}

/// One entry of the change log.
#[derive(Debug)]
pub(crate) struct Change {
    pub(crate) seq: i64,
    /// `None`: roles changed. `Some((user, None))`: the user was deleted.
    pub(crate) user: Option<(String, Option<UserState>)>,
    /// Seconds from the change's commit to this read (the database's clock).
    pub(crate) lag_seconds: f64,
}

/// Why a read reloaded everything (the metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullReason {
    /// The first read.
    Startup,
    /// Changes after the replica's position are missing from the log.
    Gap,
    /// Another database (a restore, or the URL now names another one).
    StoreChanged,
    /// The counter went back (a failover that lost commits, a restore).
    SeqRegressed,
    /// The change at the replica's position is another one (a rewritten history).
    HistoryMismatch,
    /// The log no longer holds the replica's position: pruned while the replica held no
    /// live lease (partitioned, paused).
    Pruned,
}

impl FullReason {
    /// Every reason, in label order.
    pub const ALL: [FullReason; 6] = [
        FullReason::Startup,
        FullReason::Gap,
        FullReason::StoreChanged,
        FullReason::SeqRegressed,
        FullReason::HistoryMismatch,
        FullReason::Pruned,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FullReason::Startup => "startup",
            FullReason::Gap => "gap",
            FullReason::StoreChanged => "store_changed",
            FullReason::SeqRegressed => "seq_regressed",
            FullReason::HistoryMismatch => "history_mismatch",
            FullReason::Pruned => "pruned",
        }
    }
}

/// What one read found.
pub(crate) enum Snapshot {
    /// The changes after the replica's position, in order (none: nothing changed).
    Delta(Vec<Change>),
    /// Everything: every user (roles are reloaded by whoever holds them).
    Full {
        reason: FullReason,
        users: Vec<UserRecord>,
    },
}

/// One successful read of the store.
pub(crate) struct Read {
    /// When the read was sent: the snapshot holds every change committed before it.
    pub(crate) started: Instant,
    /// The position it read from (`None`: from nothing, a full read).
    pub(crate) base: Option<Position>,
    /// The position it reached.
    pub(crate) position: Position,
    pub(crate) snapshot: Snapshot,
}

/// What a change found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// Committed as change `seq`.
    Done(i64),
    /// No such user; nothing was changed.
    Missing,
    /// A user of that name (or key id) exists; nothing was changed.
    Exists,
}

impl SharedStoreError {
    /// Whether the store could not be reached or did not answer (it is down, paused, starting
    /// up, out of connections, or a standby), as opposed to refusing what was asked: a replica
    /// starts and keeps running through these, with database keys fenced.
    pub fn is_unavailable(&self) -> bool {
        match self {
            SharedStoreError::Timeout(_) | SharedStoreError::Standby => true,
            SharedStoreError::Query(err) | SharedStoreError::Connect { source: err, .. } => {
                unreachable_error(err)
            }
            SharedStoreError::Migrate {
                source: sqlx::migrate::MigrateError::Execute(err),
                ..
            } => unreachable_error(err),
            _ => false,
        }
    }
}

/// Errors of a store that is down or not answering: the connection (I/O, TLS, protocol),
/// the pool's wait, and the SQLSTATE classes 08 (connection exception) and 57 (operator
/// intervention: shutting down, starting up), and 53300 (too many connections).
pub(crate) fn unreachable_error(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("57") || code == "53300"
        }),
        _ => false,
    }
}

/// The shared store: a pool for reads and writes, and one for the listener.
#[derive(Clone, Debug)]
pub struct SharedUserStore {
    pool: PgPool,
    listen: PgPool,
    bound: Duration,
    ready_grace: Option<Duration>,
    log_retention: Duration,
    replica: String,
    /// The URL, credentials hidden, for messages.
    shown: std::sync::Arc<str>,
    /// Set once the schema is up to date (at start, or at the first read or write that
    /// reaches the store when it was down at start).
    schema: std::sync::Arc<tokio::sync::OnceCell<()>>,
}

/// The start of the process's monotonic clock for leases.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

/// How long database keys may still be answered: until the start of the last successful read
/// of the store plus the bound. Written by the KeyRegistry, read by every database-key request
/// (one clock read, one atomic load). Never a timer that flips a flag: a late timer would
/// break the bound.
#[derive(Debug)]
pub struct Lease {
    /// Nanoseconds after [`epoch`]; 0: fenced since the start. Fencing lowers it to now,
    /// so that it also says since when database keys are refused (for readiness).
    deadline: AtomicU64,
    bound: Duration,
    /// `PORTCULLIS_USER_STORE_READY_GRACE` (`None`: readiness ignores the store).
    ready_grace: Option<Duration>,
}

impl Lease {
    /// A lease of `bound`, fenced until the first read.
    pub(crate) fn new(bound: Duration, ready_grace: Option<Duration>) -> Self {
        let _ = epoch();
        Lease {
            deadline: AtomicU64::new(0),
            bound,
            ready_grace,
        }
    }

    /// Whether the replica is ready as far as the store goes: the lease holds, or has not
    /// held for less than the grace (counted from the start when it never held); always
    /// without a grace.
    pub fn ready(&self) -> bool {
        let Some(grace) = self.ready_grace else {
            return true;
        };
        let grace = u64::try_from(grace.as_nanos()).unwrap_or(u64::MAX);
        nanos(Instant::now()) < self.deadline.load(Ordering::Acquire).saturating_add(grace)
    }

    /// Whether database keys may be answered now.
    #[inline]
    pub fn valid(&self) -> bool {
        nanos(Instant::now()) < self.deadline.load(Ordering::Acquire)
    }

    /// Whether no read has renewed the lease yet (the store was not reached since the start).
    pub fn never_held(&self) -> bool {
        self.deadline.load(Ordering::Acquire) == 0
    }

    /// Extends the lease to `started` + the bound (never shortens it).
    pub(crate) fn renew(&self, started: Instant) {
        self.deadline
            .fetch_max(nanos(started + self.bound), Ordering::AcqRel);
    }

    /// Ends the lease now (a change was committed but could not be read back).
    pub(crate) fn fence(&self) {
        self.deadline
            .fetch_min(nanos(Instant::now()).max(1), Ordering::AcqRel);
    }

    /// The bound.
    pub fn bound(&self) -> Duration {
        self.bound
    }

    /// How old the view is: the bound minus what is left of the lease (at least the bound
    /// when fenced).
    pub fn staleness(&self) -> Duration {
        let deadline = self.deadline.load(Ordering::Acquire);
        let now = nanos(Instant::now());
        let left = Duration::from_nanos(deadline.saturating_sub(now));
        if deadline == 0 {
            return self.bound;
        }
        self.bound.saturating_sub(left)
    }
}

/// The columns of a user, in the order [`user_record`] reads them.
const USER_COLUMNS: &str = "id, key_id, key_digest, active, revoked, created_at_ms, last_used_ms";

fn digest_of(user: &str, bytes: &[u8]) -> Result<KeyDigest, SharedStoreError> {
    KeyDigest::try_from(bytes).map_err(|_| SharedStoreError::BadRow {
        user: user.to_owned(),
        what: "key digest is not 32 bytes",
    })
}

fn user_record(row: &sqlx::postgres::PgRow) -> Result<UserRecord, SharedStoreError> {
    let id: String = row.try_get(0)?;
    let bytes: Vec<u8> = row.try_get(2)?;
    Ok(UserRecord {
        key_digest: digest_of(&id, &bytes)?,
        key_id: row.try_get(1)?,
        active: row.try_get(3)?,
        revoked: row.try_get(4)?,
        created_at_ms: row.try_get(5)?,
        last_used_ms: row.try_get(6)?,
        id,
    })
}

type Tx = Transaction<'static, Postgres>;

impl SharedUserStore {
    /// Opens the store at `url` (shown in messages as `shown_url`, credentials hidden) and
    /// brings the schema up to date. `bound` is the revocation bound: reads time out after a
    /// quarter of it; writes after the bound or 5 s, whichever is longer. A store that cannot
    /// be reached ([`SharedStoreError::is_unavailable`]) is not an error: the replica starts
    /// with database keys fenced, and the first read that reaches it migrates it
    /// ([`SharedUserStore::schema_ready`] says whether that happened). Any other failure (a
    /// bad URL, a refused login, a failed migration) is.
    pub async fn connect(
        url: &str,
        shown_url: &str,
        bound: Duration,
    ) -> Result<Self, SharedStoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|source| SharedStoreError::Url {
            url: shown_url.to_owned(),
            source,
        })?;
        let replica = format!("{:08x}", rand::random::<u32>());
        let write_timeout = bound.max(Duration::from_secs(5));
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(write_timeout)
            .connect_lazy_with(options.clone().application_name("portcullis"));
        let listen = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(write_timeout)
            .connect_lazy_with(options.application_name(&format!("portcullis-listen-{replica}")));
        let store = SharedUserStore {
            pool,
            listen,
            bound,
            ready_grace: None,
            log_retention: Duration::from_secs(600),
            replica,
            shown: std::sync::Arc::from(shown_url),
            schema: std::sync::Arc::default(),
        };
        // At most the bound: a store that does not answer by then is waited for in the
        // background, with database keys fenced meanwhile.
        let first = tokio::time::timeout(bound, store.ensure_schema())
            .await
            .unwrap_or(Err(SharedStoreError::Timeout(bound)));
        match first {
            Ok(()) => Ok(store),
            Err(err) if err.is_unavailable() => {
                tracing::warn!(
                    error = %err,
                    store = shown_url,
                    "the user store cannot be reached; starting with database keys and user \
                     management refused (503) until it answers"
                );
                Ok(store)
            }
            Err(err) => Err(err),
        }
    }

    /// Brings the schema up to date once (within the write timeout); later calls return at
    /// once. Removes the rows of replicas that stopped an hour ago or more.
    async fn ensure_schema(&self) -> Result<(), SharedStoreError> {
        let limit = self.write_timeout();
        let migrate = async {
            let connect = |source| SharedStoreError::Connect {
                url: self.shown.to_string(),
                source,
            };
            // A first connection, so that an unreachable store is a connection error.
            drop(self.pool.acquire().await.map_err(connect)?);
            sqlx::migrate!("./migrations/shared")
                .run(&self.pool)
                .await
                .map_err(|source| SharedStoreError::Migrate {
                    url: self.shown.to_string(),
                    source,
                })?;
            // Each process has its own id.
            sqlx::query(
                "DELETE FROM portcullis_replicas \
                 WHERE lease_until < clock_timestamp() - interval '1 hour'",
            )
            .execute(&self.pool)
            .await
            .map_err(connect)?;
            Ok::<_, SharedStoreError>(())
        };
        let run = self.schema.get_or_try_init(|| migrate);
        tokio::time::timeout(limit, run)
            .await
            .map_err(|_| SharedStoreError::Timeout(limit))??;
        Ok(())
    }

    /// Whether the schema was brought up to date (false while the store has not been reached
    /// since the start).
    pub fn schema_ready(&self) -> bool {
        self.schema.initialized()
    }

    /// Sets how long the store may be unreadable before the replica reports itself unready
    /// (`PORTCULLIS_USER_STORE_READY_GRACE`; `None`: never).
    pub fn with_ready_grace(mut self, grace: Option<Duration>) -> Self {
        self.ready_grace = grace;
        self
    }

    /// Sets how long change-log entries every live replica has applied are kept
    /// (`PORTCULLIS_CHANGE_LOG_RETENTION`).
    pub fn with_log_retention(mut self, retention: Duration) -> Self {
        self.log_retention = retention;
        self
    }

    /// How often this replica prunes the change log: four times the bound, at least 1 s.
    pub(crate) fn prune_every(&self) -> Duration {
        (self.bound * 4).max(Duration::from_secs(1))
    }

    /// Removes the change-log entries below the lowest position of the replicas holding a
    /// live lease (the current change when none does) and older than the retention; the
    /// entry at that position stays, since a replica checks it before reading on. A replica
    /// whose position was removed (it had no live lease) reloads in full
    /// ([`FullReason::Pruned`]). How many entries went.
    pub(crate) async fn prune(&self) -> Result<u64, SharedStoreError> {
        let limit = self.write_timeout();
        let query = sqlx::query(
            "DELETE FROM portcullis_changes WHERE seq < ( \
               SELECT COALESCE(min(applied_seq), (SELECT change_seq FROM portcullis_sync)) \
               FROM portcullis_replicas WHERE lease_until > clock_timestamp()) \
             AND committed_at < clock_timestamp() - make_interval(secs => $1)",
        )
        .bind(self.log_retention.as_secs_f64())
        .execute(&self.pool);
        let done = tokio::time::timeout(limit, query)
            .await
            .map_err(|_| SharedStoreError::Timeout(limit))??;
        Ok(done.rows_affected())
    }

    /// See [`SharedUserStore::with_ready_grace`].
    pub fn ready_grace(&self) -> Option<Duration> {
        self.ready_grace
    }

    /// The revocation bound.
    pub fn bound(&self) -> Duration {
        self.bound
    }

    /// This process's replica id (in the listener's `application_name`).
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// How long a read may take: a quarter of the bound (at least 50 ms).
    pub(crate) fn read_timeout(&self) -> Duration {
        (self.bound / 4).max(Duration::from_millis(50))
    }

    fn write_timeout(&self) -> Duration {
        self.bound.max(Duration::from_secs(5))
    }

    /// The listener's pool (one connection, `application_name=portcullis-listen-<replica>`).
    pub(crate) fn listen_pool(&self) -> &PgPool {
        &self.listen
    }

    /// The first read: every user, with up to 30 s for a large store (the lease still runs
    /// from the read's start).
    pub(crate) async fn read_at_start(&self) -> Result<Read, SharedStoreError> {
        self.ensure_schema().await?;
        let started = Instant::now();
        let limit = self.read_timeout().max(Duration::from_secs(30));
        match tokio::time::timeout(limit, self.read_snapshot(None, limit)).await {
            Ok(Ok((position, snapshot))) => Ok(Read {
                started,
                base: None,
                position,
                snapshot,
            }),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(SharedStoreError::Timeout(limit)),
        }
    }

    /// Reads the changes after `base` (everything when `base` is `None` or the log cannot
    /// bring it up to date) in one snapshot, within the read timeout.
    pub(crate) async fn read(&self, base: Option<Position>) -> Result<Read, SharedStoreError> {
        self.ensure_schema().await?;
        let started = Instant::now();
        let limit = self.read_timeout();
        let read = tokio::time::timeout(limit, self.read_snapshot(base.as_ref(), limit)).await;
        match read {
            Ok(Ok((position, snapshot))) => Ok(Read {
                started,
                base,
                position,
                snapshot,
            }),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(SharedStoreError::Timeout(limit)),
        }
    }

    async fn read_snapshot(
        &self,
        base: Option<&Position>,
        limit: Duration,
    ) -> Result<(Position, Snapshot), SharedStoreError> {
        let mut tx = self.pool.begin().await?;
        // The snapshot is taken by the first query after these, so after `started`.
        sqlx::raw_sql(&format!(
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
             SET LOCAL statement_timeout = {}",
            limit.as_millis().max(1)
        ))
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "SELECT store_id, change_seq, change_tag, pg_is_in_recovery() FROM portcullis_sync",
        )
        .fetch_one(&mut *tx)
        .await?;
        if row.try_get::<bool, _>(3)? {
            return Err(SharedStoreError::Standby);
        }
        let position = Position {
            store_id: row.try_get(0)?,
            seq: row.try_get(1)?,
            tag: row.try_get(2)?,
        };
        let reason = match base {
            None => FullReason::Startup,
            Some(b) if b.store_id != position.store_id => FullReason::StoreChanged,
            Some(b) if position.seq < b.seq => FullReason::SeqRegressed,
            Some(b) if position.seq == b.seq && b.tag == position.tag => {
                tx.commit().await?;
                return Ok((position, Snapshot::Delta(Vec::new())));
            }
            Some(b) if position.seq == b.seq => FullReason::HistoryMismatch,
            Some(b) => match self.changes_after(&mut tx, b, &position).await? {
                Ok(changes) => {
                    tx.commit().await?;
                    return Ok((position, Snapshot::Delta(changes)));
                }
                Err(reason) => reason,
            },
        };
        let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM portcullis_users"))
            .fetch_all(&mut *tx)
            .await?;
        let users = rows
            .iter()
            .map(user_record)
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await?;
        Ok((position, Snapshot::Full { reason, users }))
    }

    /// The log from `base` to `to`, checked: it starts at `base` with `base`'s tag (a log
    /// never written to starts at 1), runs without a gap, and ends at `to` with `to`'s tag.
    /// `Err` with why not.
    async fn changes_after(
        &self,
        tx: &mut Tx,
        base: &Position,
        to: &Position,
    ) -> Result<Result<Vec<Change>, FullReason>, SharedStoreError> {
        let rows = sqlx::query(
            "SELECT seq, tag, kind, user_id, key_id, key_digest, active, revoked, created_at_ms, \
             EXTRACT(EPOCH FROM clock_timestamp() - committed_at)::float8 \
             FROM portcullis_changes WHERE seq >= $1 AND seq <= $2 ORDER BY seq",
        )
        .bind(base.seq.max(1))
        .bind(to.seq)
        .fetch_all(&mut **tx)
        .await?;
        let mut rows = rows.iter();
        if base.seq > 0 {
            // The entry at the position comes first, unless it was pruned.
            let Some(first) = rows.next() else {
                return Ok(Err(FullReason::Pruned));
            };
            let seq: i64 = first.try_get(0)?;
            let tag: String = first.try_get(1)?;
            if seq != base.seq {
                return Ok(Err(FullReason::Pruned));
            }
            if tag != base.tag {
                return Ok(Err(FullReason::HistoryMismatch));
            }
        }
        let mut changes = Vec::new();
        let mut expected = base.seq + 1;
        let mut last_tag = String::new();
        for row in rows {
            let seq: i64 = row.try_get(0)?;
            if seq != expected {
                return Ok(Err(FullReason::Gap));
            }
            expected += 1;
            last_tag = row.try_get(1)?;
            let kind: String = row.try_get(2)?;
            let user = if kind == "roles" {
                None
            } else {
                let id: String = row.try_get(3)?;
                let key_id: Option<String> = row.try_get(4)?;
                let state = match key_id {
                    None => None,
                    Some(key_id) => {
                        let bytes: Vec<u8> = row.try_get(5)?;
                        Some(UserState {
                            key_digest: digest_of(&id, &bytes)?,
                            key_id,
                            active: row.try_get(6)?,
                            revoked: row.try_get(7)?,
                            created_at_ms: row.try_get(8)?,
                        })
                    }
                };
                Some((id, state))
            };
            changes.push(Change {
                seq,
                user,
                lag_seconds: row.try_get::<Option<f64>, _>(9)?.unwrap_or(0.0),
            });
        }
        if expected != to.seq + 1 || last_tag != to.tag {
            return Ok(Err(FullReason::Gap));
        }
        Ok(Ok(changes))
    }

    /// Runs `change` in one transaction within the write timeout.
    async fn write<T>(
        &self,
        change: impl for<'t> FnOnce(
            &'t mut Tx,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Option<T>, SharedStoreError>> + Send + 't>,
        >,
    ) -> Result<Option<T>, SharedStoreError> {
        self.ensure_schema().await?;
        let limit = self.write_timeout();
        let run = async {
            let mut tx = self.pool.begin().await?;
            let out = change(&mut tx).await?;
            // `None`: nothing to keep.
            match out {
                Some(out) => {
                    tx.commit().await?;
                    Ok(Some(out))
                }
                None => {
                    tx.rollback().await?;
                    Ok(None)
                }
            }
        };
        tokio::time::timeout(limit, run)
            .await
            .map_err(|_| SharedStoreError::Timeout(limit))?
    }

    /// Stores a new user.
    pub(crate) async fn insert(&self, user: &UserRecord) -> Result<Written, SharedStoreError> {
        let user = user.clone();
        let done = self
            .write(move |tx| {
                Box::pin(async move {
                    let (seq, tag) = bump(tx).await?;
                    // A taken name: roll back (the counter too, or the log would have a gap).
                    match insert_user(tx, &user, seq).await {
                        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                            return Ok(None)
                        }
                        other => other?,
                    }
                    log_user(tx, seq, &tag, "create", &user.id, Some(&state_of(&user))).await?;
                    Ok(Some(Written::Done(seq)))
                })
            })
            .await?;
        Ok(done.unwrap_or(Written::Exists))
    }

    /// Replaces a user's key and clears its revocation (a rotation).
    pub(crate) async fn set_key(
        &self,
        id: &str,
        key_id: &str,
        digest: &KeyDigest,
    ) -> Result<Written, SharedStoreError> {
        let (id, key_id, digest) = (id.to_owned(), key_id.to_owned(), *digest);
        let done = self
            .write(move |tx| {
                Box::pin(async move {
                    let (seq, tag) = bump(tx).await?;
                    let row = sqlx::query(
                        "UPDATE portcullis_users SET key_id = $2, key_digest = $3, revoked = false, \
                         seq = $4 WHERE id = $1 RETURNING active, created_at_ms",
                    )
                    .bind(&id)
                    .bind(&key_id)
                    .bind(&digest[..])
                    .bind(seq)
                    .fetch_optional(&mut **tx)
                    .await;
                    // A key id taken by another user (71 random bits: never in practice).
                    let row = match row {
                        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                            return Ok(None)
                        }
                        other => other?,
                    };
                    let Some(row) = row else { return Ok(None) };
                    let state = UserState {
                        key_id,
                        key_digest: digest,
                        active: row.try_get(0)?,
                        revoked: false,
                        created_at_ms: row.try_get(1)?,
                    };
                    log_user(tx, seq, &tag, "rotate", &id, Some(&state)).await?;
                    Ok(Some(Written::Done(seq)))
                })
            })
            .await?;
        Ok(done.unwrap_or(Written::Missing))
    }

    /// Sets a user's active and revoked flags.
    pub(crate) async fn set_state(
        &self,
        id: &str,
        active: bool,
        revoked: bool,
    ) -> Result<Written, SharedStoreError> {
        let id = id.to_owned();
        let done = self
            .write(move |tx| {
                Box::pin(async move {
                    let (seq, tag) = bump(tx).await?;
                    let row = sqlx::query(
                        "UPDATE portcullis_users SET active = $2, revoked = $3, seq = $4 \
                         WHERE id = $1 RETURNING key_id, key_digest, created_at_ms",
                    )
                    .bind(&id)
                    .bind(active)
                    .bind(revoked)
                    .bind(seq)
                    .fetch_optional(&mut **tx)
                    .await?;
                    let Some(row) = row else { return Ok(None) };
                    let bytes: Vec<u8> = row.try_get(1)?;
                    let state = UserState {
                        key_id: row.try_get(0)?,
                        key_digest: digest_of(&id, &bytes)?,
                        active,
                        revoked,
                        created_at_ms: row.try_get(2)?,
                    };
                    let op = if active { "activate" } else { "deactivate" };
                    log_user(tx, seq, &tag, op, &id, Some(&state)).await?;
                    Ok(Some(Written::Done(seq)))
                })
            })
            .await?;
        Ok(done.unwrap_or(Written::Missing))
    }

    /// Deletes a user and, in the same transaction, its `db:` role assignments.
    pub(crate) async fn delete(&self, id: &str) -> Result<Written, SharedStoreError> {
        let id = id.to_owned();
        let done = self
            .write(move |tx| {
                Box::pin(async move {
                    let (seq, tag) = bump(tx).await?;
                    let gone = sqlx::query("DELETE FROM portcullis_users WHERE id = $1")
                        .bind(&id)
                        .execute(&mut **tx)
                        .await?;
                    if gone.rows_affected() == 0 {
                        return Ok(None);
                    }
                    sqlx::query(
                        "DELETE FROM portcullis_rbac_assignments \
                         WHERE namespace = 'db' AND subject = $1",
                    )
                    .bind(&id)
                    .execute(&mut **tx)
                    .await?;
                    log_user(tx, seq, &tag, "delete", &id, None).await?;
                    Ok(Some(Written::Done(seq)))
                })
            })
            .await?;
        Ok(done.unwrap_or(Written::Missing))
    }

    /// Creates the bootstrap admin `user` unless the store records that one was created
    /// before (race-free between replicas starting at once: the fact is inserted first, and
    /// a second replica's insert waits for the first's commit, then finds it). `None` when
    /// it was created before, or an `admin` exists already.
    pub(crate) async fn bootstrap(
        &self,
        user: &UserRecord,
        fact: &'static str,
    ) -> Result<Option<i64>, SharedStoreError> {
        let user = user.clone();
        let done = self
            .write(move |tx| {
                Box::pin(async move {
                    let claimed = sqlx::query(
                        "INSERT INTO portcullis_meta (name, value) VALUES ($1, 'created') \
                         ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(fact)
                    .execute(&mut **tx)
                    .await?;
                    if claimed.rows_affected() == 0 {
                        return Ok(None);
                    }
                    let existing = sqlx::query("SELECT 1 FROM portcullis_users WHERE id = $1")
                        .bind(&user.id)
                        .fetch_optional(&mut **tx)
                        .await?;
                    if existing.is_some() {
                        sqlx::query(
                            "UPDATE portcullis_meta SET value = 'existing' WHERE name = $1",
                        )
                        .bind(fact)
                        .execute(&mut **tx)
                        .await?;
                        return Ok(Some(None));
                    }
                    let (seq, tag) = bump(tx).await?;
                    insert_user(tx, &user, seq).await?;
                    log_user(tx, seq, &tag, "create", &user.id, Some(&state_of(&user))).await?;
                    Ok(Some(Some(seq)))
                })
            })
            .await?;
        Ok(done.flatten())
    }

    /// Records last-used times (never later ones over earlier); not a change: no notification.
    pub(crate) async fn record_last_used(
        &self,
        updates: &[(String, i64)],
    ) -> Result<(), SharedStoreError> {
        let (ids, times): (Vec<String>, Vec<i64>) = updates.iter().cloned().unzip();
        let limit = self.write_timeout();
        let query = sqlx::query(
            "UPDATE portcullis_users u SET last_used_ms = GREATEST(COALESCE(u.last_used_ms, 0), v.at) \
             FROM UNNEST($1::text[], $2::int8[]) AS v(id, at) WHERE u.id = v.id",
        )
        .bind(ids)
        .bind(times)
        .execute(&self.pool);
        tokio::time::timeout(limit, query)
            .await
            .map_err(|_| SharedStoreError::Timeout(limit))??;
        Ok(())
    }

    /// Records that this replica has applied the log up to `applied` and holds a lease until
    /// the bound from now (the database's clock, so never earlier than the replica's own
    /// lease, which runs from the start of the read before). Returns the store's change
    /// number, read under a share lock on the counter row: a writer holding it (between its
    /// change and its commit) makes this wait and the number then includes its change; one
    /// that comes after sees this row. The caller renews its lease only when nothing newer
    /// committed (`sync.rs`).
    /// Also returns how many replicas hold a live lease once this one's is renewed.
    pub(crate) async fn report(&self, applied: i64) -> Result<(i64, i64), SharedStoreError> {
        let limit = self.read_timeout();
        let run = async {
            let mut tx = self.pool.begin().await?;
            sqlx::raw_sql("SET LOCAL synchronous_commit = off")
                .execute(&mut *tx)
                .await?;
            let current: i64 =
                sqlx::query_scalar("SELECT change_seq FROM portcullis_sync FOR SHARE")
                    .fetch_one(&mut *tx)
                    .await?;
            sqlx::query(
                "INSERT INTO portcullis_replicas (replica_id, applied_seq, lease_until) \
                 VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3)) \
                 ON CONFLICT (replica_id) DO UPDATE SET \
                 applied_seq = GREATEST(portcullis_replicas.applied_seq, excluded.applied_seq), \
                 lease_until = GREATEST(portcullis_replicas.lease_until, excluded.lease_until)",
            )
            .bind(&self.replica)
            .bind(applied)
            .bind(self.bound.as_secs_f64())
            .execute(&mut *tx)
            .await?;
            let live: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM portcullis_replicas WHERE lease_until > clock_timestamp()",
            )
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, SharedStoreError>((current, live))
        };
        tokio::time::timeout(limit, run)
            .await
            .map_err(|_| SharedStoreError::Timeout(limit))?
    }

    /// Waits until every replica holding a live lease has applied change `seq` (polled every
    /// 10 ms), at most the bound: after that, a replica that has not is fenced anyway.
    /// Returns (replicas that applied it, replicas still behind).
    pub(crate) async fn await_acks(&self, seq: i64) -> Result<(i64, i64), SharedStoreError> {
        let deadline = Instant::now() + self.bound;
        loop {
            let row = sqlx::query(
                "SELECT count(*) FILTER (WHERE applied_seq >= $1), \
                 count(*) FILTER (WHERE applied_seq < $1) \
                 FROM portcullis_replicas WHERE lease_until > clock_timestamp()",
            )
            .bind(seq)
            .fetch_one(&self.pool);
            let left = deadline.saturating_duration_since(Instant::now());
            let row = tokio::time::timeout(left, row)
                .await
                .map_err(|_| SharedStoreError::Timeout(self.bound))??;
            let (acked, behind): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
            if behind == 0 || Instant::now() >= deadline {
                return Ok((acked, behind));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The store's change number now (every change committed so far is at or below it).
    pub(crate) async fn current_seq(&self) -> Result<i64, SharedStoreError> {
        let limit = self.read_timeout();
        let query =
            sqlx::query_scalar("SELECT change_seq FROM portcullis_sync").fetch_one(&self.pool);
        Ok(tokio::time::timeout(limit, query)
            .await
            .map_err(|_| SharedStoreError::Timeout(limit))??)
    }

    /// The pool, for the role tables (`rbac/store.rs`).
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Takes the next change number (and the lock that orders writers).
pub(crate) async fn bump(tx: &mut Tx) -> Result<(i64, String), sqlx::Error> {
    let row = sqlx::query(
        "UPDATE portcullis_sync SET change_seq = change_seq + 1, \
         change_tag = gen_random_uuid()::text RETURNING change_seq, change_tag",
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// Appends a roles change to the log and notifies it.
pub(crate) async fn log_roles(tx: &mut Tx, op: &str) -> Result<(), sqlx::Error> {
    let (seq, tag) = bump(tx).await?;
    sqlx::query("INSERT INTO portcullis_changes (seq, tag, kind, op) VALUES ($1, $2, 'roles', $3)")
        .bind(seq)
        .bind(&tag)
        .bind(op)
        .execute(&mut **tx)
        .await?;
    notify(tx, seq).await
}

async fn notify(tx: &mut Tx, seq: i64) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(seq.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn state_of(user: &UserRecord) -> UserState {
    UserState {
        key_id: user.key_id.clone(),
        key_digest: user.key_digest,
        active: user.active,
        revoked: user.revoked,
        created_at_ms: user.created_at_ms,
    }
}

async fn insert_user(tx: &mut Tx, user: &UserRecord, seq: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO portcullis_users \
         (id, key_id, key_digest, active, revoked, created_at_ms, last_used_ms, seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&user.id)
    .bind(&user.key_id)
    .bind(&user.key_digest[..])
    .bind(user.active)
    .bind(user.revoked)
    .bind(user.created_at_ms)
    .bind(user.last_used_ms)
    .bind(seq)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn log_user(
    tx: &mut Tx,
    seq: i64,
    tag: &str,
    op: &str,
    id: &str,
    state: Option<&UserState>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO portcullis_changes \
         (seq, tag, kind, op, user_id, key_id, key_digest, active, revoked, created_at_ms) \
         VALUES ($1, $2, 'user', $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(seq)
    .bind(tag)
    .bind(op)
    .bind(id)
    .bind(state.map(|s| s.key_id.clone()))
    .bind(state.map(|s| s.key_digest.to_vec()))
    .bind(state.map(|s| s.active))
    .bind(state.map(|s| s.revoked))
    .bind(state.map(|s| s.created_at_ms))
    .execute(&mut **tx)
    .await?;
    notify(tx, seq).await
}
