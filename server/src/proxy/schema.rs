//! What RBAC must know of the upstream's schema in proxy mode ([`UpstreamSchema`]): which
//! names are aliases and of which collection (Weaviate checks a call through an alias on its
//! target), and which collections exist (a write to a class that does not exist makes
//! Weaviate's auto-schema create it, which needs `create_collections`).
//!
//! Learned from the upstream's `GET /v1/schema` and `GET /v1/aliases`, read together, each
//! bounded in size ([`LIST_CAP`]) and time ([`FETCH_TIMEOUT`] or the upstream timeout if
//! shorter). A [`Snapshot`] serves for [`TTL`]; a name it does not know makes it refetched
//! (at most once per [`MISS_INTERVAL`]); a schema or alias change that passes through the
//! proxy invalidates it. Concurrent refetches are one: callers wait for the fetch in
//! flight. What cannot be fetched is an error: the caller refuses the call rather than
//! guess what a name is.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use http::header::{ACCEPT_ENCODING, AUTHORIZATION, HOST};
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, StatusCode, Uri};
use portcullis_config::UpstreamSettings;
use serde::Deserialize;

use super::body::RequestBody;
use super::client::{ClientError, ClientSetup, UpstreamClient};
use super::collect;

/// How long a snapshot answers without asking the upstream again.
pub(super) const TTL: Duration = Duration::from_secs(5);

/// A name the snapshot does not know makes it refetched, unless it is younger than this.
pub(super) const MISS_INTERVAL: Duration = Duration::from_millis(500);

/// The longest one fetch (both lists) may take, when the upstream timeout is longer.
pub(super) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of each list read; a longer one fails the fetch.
pub(super) const LIST_CAP: usize = 64 * 1024 * 1024;

/// Why the upstream's schema could not be learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The upstream did not answer in time.
    #[error("the upstream did not answer in time")]
    Timeout,
    /// No answer, an answer other than 2xx, or a list that is not of Weaviate's shape.
    #[error("the upstream's schema or aliases could not be read")]
    Unreadable,
}

/// What a name is, by a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'s> {
    /// An alias of this collection.
    Alias(&'s str),
    /// A collection.
    Collection,
    /// Neither (a collection that does not exist, as far as the snapshot knows).
    Unknown,
}

/// The upstream's aliases and collections at one moment.
#[derive(Debug)]
pub struct Snapshot {
    aliases: HashMap<String, String>,
    classes: HashSet<String>,
    fetched: Instant,
    epoch: u64,
}

impl Snapshot {
    /// A snapshot of these collections and (alias, collection) pairs, taken now.
    pub fn new<'n>(
        classes: impl IntoIterator<Item = &'n str>,
        aliases: impl IntoIterator<Item = (&'n str, &'n str)>,
    ) -> Self {
        Snapshot {
            classes: classes.into_iter().map(str::to_owned).collect(),
            aliases: aliases
                .into_iter()
                .map(|(a, c)| (a.to_owned(), c.to_owned()))
                .collect(),
            fetched: Instant::now(),
            epoch: 0,
        }
    }

    /// What `name` is. A collection and an alias never share a name in Weaviate; if an
    /// upstream answered both, the alias wins (its target is what a call reaches).
    pub fn lookup(&self, name: &str) -> Lookup<'_> {
        if let Some(target) = self.aliases.get(name) {
            Lookup::Alias(target)
        } else if self.classes.contains(name) {
            Lookup::Collection
        } else {
            Lookup::Unknown
        }
    }

    fn knows_all<'n>(&self, mut names: impl Iterator<Item = &'n str>) -> bool {
        names.all(|name| self.lookup(name) != Lookup::Unknown)
    }
}

/// The upstream's schema as RBAC needs it, shared by every worker and listener.
pub struct UpstreamSchema {
    client: UpstreamClient,
    host: HeaderValue,
    /// `Bearer <PORTCULLIS_UPSTREAM_API_KEY>`, marked sensitive (never logged by the client).
    authorization: Option<HeaderValue>,
    schema_uri: Uri,
    aliases_uri: Uri,
    timeout: Duration,
    current: ArcSwapOption<Snapshot>,
    /// Bumped by [`UpstreamSchema::invalidate`]: a snapshot of an older epoch is not served.
    epoch: AtomicU64,
    /// Held while fetching: one fetch at a time, the others wait for its result.
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for UpstreamSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamSchema")
            .field("schema_uri", &self.schema_uri)
            .field("epoch", &self.epoch)
            .finish()
    }
}

impl UpstreamSchema {
    /// The schema of the upstream `config` names, not yet fetched. `opened` counts the
    /// connections its client opens.
    pub fn new(
        config: &UpstreamSettings,
        opened: prometheus::IntCounter,
    ) -> Result<Self, ClientError> {
        let timeout = config.timeout.min(FETCH_TIMEOUT);
        let setup = ClientSetup::new(&config.url, timeout, opened)?;
        let uri = |path: &'static str| {
            Uri::from_parts(setup.uri_parts(PathAndQuery::from_static(path)))
                .map_err(|_| ClientError::Incomplete)
        };
        let authorization = match &config.api_key {
            None => None,
            Some(key) => {
                // The settings allow only visible ASCII in the key, so this cannot fail.
                let mut value = HeaderValue::try_from(format!("Bearer {}", key.expose()))
                    .map_err(|_| ClientError::Incomplete)?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(UpstreamSchema {
            // Its own client: used from every worker and the gRPC listener, rarely.
            client: setup.client(),
            host: setup.host.clone(),
            authorization,
            schema_uri: uri("/v1/schema")?,
            aliases_uri: uri("/v1/aliases")?,
            timeout,
            current: ArcSwapOption::empty(),
            epoch: AtomicU64::new(0),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// Forgets what is known: the next lookup asks the upstream. Called after a call that may
    /// change the schema or the aliases has passed through the proxy.
    pub fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// The latest snapshot, valid or not (for a caller that has just made sure of it with
    /// [`UpstreamSchema::knowing`]).
    pub fn last(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// A snapshot that is valid (not expired, not invalidated) and knows every one of `names`,
    /// if one can be had: the current one, or a new one fetched from the upstream when the
    /// current one is invalid, or does not know a name and is older than [`MISS_INTERVAL`].
    /// A name still unknown after a fetch is a collection that does not exist.
    pub async fn knowing<'n, I>(&self, names: I) -> Result<Arc<Snapshot>, SchemaError>
    where
        I: Iterator<Item = &'n str> + Clone,
    {
        if let Some(snapshot) = self.usable(names.clone()) {
            return Ok(snapshot);
        }
        let _fetching = self.fetching.lock().await;
        // A fetch that ended while this one waited may have answered already.
        if let Some(snapshot) = self.usable(names) {
            return Ok(snapshot);
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let mut snapshot = match tokio::time::timeout(self.timeout, self.fetch()).await {
            Ok(Ok(snapshot)) => snapshot,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "could not learn the upstream's schema and aliases");
                return Err(err);
            }
            Err(_) => {
                tracing::warn!(
                    timeout_ms = self.timeout.as_millis() as u64,
                    "the upstream's schema and aliases did not come in time"
                );
                return Err(SchemaError::Timeout);
            }
        };
        snapshot.epoch = epoch;
        let snapshot = Arc::new(snapshot);
        self.current.store(Some(snapshot.clone()));
        Ok(snapshot)
    }

    fn usable<'n>(&self, names: impl Iterator<Item = &'n str>) -> Option<Arc<Snapshot>> {
        let snapshot = self.current.load_full()?;
        let age = snapshot.fetched.elapsed();
        let valid = snapshot.epoch == self.epoch.load(Ordering::Acquire) && age < TTL;
        (valid && (age < MISS_INTERVAL || snapshot.knows_all(names))).then_some(snapshot)
    }

    async fn fetch(&self) -> Result<Snapshot, SchemaError> {
        let (schema, aliases) = futures_util::future::join(
            self.get(self.schema_uri.clone(), false),
            self.get(self.aliases_uri.clone(), true),
        )
        .await;
        // Never absent: a 404 for the schema is an error.
        let schema = schema?.ok_or(SchemaError::Unreadable)?;
        let schema: SchemaList =
            serde_json::from_slice(&schema).map_err(|_| SchemaError::Unreadable)?;
        let aliases: AliasList = match aliases? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|_| SchemaError::Unreadable)?,
            None => AliasList { aliases: None },
        };
        let classes = schema.classes.unwrap_or_default();
        let aliases = aliases.aliases.unwrap_or_default();
        Ok(Snapshot {
            classes: classes.into_iter().map(|c| c.class).collect(),
            aliases: aliases.into_iter().map(|a| (a.alias, a.class)).collect(),
            fetched: Instant::now(),
            epoch: 0,
        })
    }

    /// One list's body. With `absent_ok`, a 404 is `None`: an upstream older than Weaviate
    /// 1.32 has no `/v1/aliases`, and then no name is an alias.
    async fn get(&self, uri: Uri, absent_ok: bool) -> Result<Option<Vec<u8>>, SchemaError> {
        let mut request = Request::new(RequestBody::Empty);
        *request.uri_mut() = uri;
        request.headers_mut().insert(HOST, self.host.clone());
        request
            .headers_mut()
            .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        if let Some(authorization) = &self.authorization {
            request
                .headers_mut()
                .insert(AUTHORIZATION, authorization.clone());
        }
        let response = self
            .client
            .request(request)
            .await
            .map_err(|_| SchemaError::Unreadable)?;
        let (parts, body) = response.into_parts();
        if absent_ok && parts.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let encoded = parts
            .headers
            .get(http::header::CONTENT_ENCODING)
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
        if !parts.status.is_success() || encoded {
            return Err(SchemaError::Unreadable);
        }
        collect(body, LIST_CAP)
            .await
            .map(Some)
            .ok_or(SchemaError::Unreadable)
    }
}

#[derive(Deserialize)]
struct SchemaList {
    classes: Option<Vec<ClassName>>,
}

#[derive(Deserialize)]
struct ClassName {
    class: String,
}

#[derive(Deserialize)]
struct AliasList {
    aliases: Option<Vec<AliasItem>>,
}

#[derive(Deserialize)]
struct AliasItem {
    alias: String,
    class: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_an_alias_a_collection_or_unknown() {
        let snapshot = Snapshot::new(["Movie", "Book"], [("Film", "Movie")]);
        assert_eq!(snapshot.lookup("Film"), Lookup::Alias("Movie"));
        assert_eq!(snapshot.lookup("Movie"), Lookup::Collection);
        assert_eq!(snapshot.lookup("Poem"), Lookup::Unknown);
        assert!(snapshot.knows_all(["Film", "Book"].into_iter()));
        assert!(!snapshot.knows_all(["Film", "Poem"].into_iter()));
    }

    #[test]
    fn lists_of_weaviates_shape_parse_and_others_do_not() {
        let schema: SchemaList =
            serde_json::from_str(r#"{"classes":[{"class":"Movie","properties":[]}]}"#).unwrap();
        assert_eq!(schema.classes.unwrap()[0].class, "Movie");
        let empty: SchemaList = serde_json::from_str(r#"{"classes":null}"#).unwrap();
        assert!(empty.classes.is_none());
        assert!(serde_json::from_str::<SchemaList>(r#"{"classes":[{"name":"x"}]}"#).is_err());
        assert!(serde_json::from_str::<AliasList>(r#"{"aliases":[{"alias":"A"}]}"#).is_err());
    }
}
