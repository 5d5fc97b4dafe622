//! The verifier request handlers call: it runs on the caller's thread, reads the published
//! keys and the verified-token cache without a message, and messages the JwksRefresher only
//! when a token names a `kid` the published keys do not hold.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Addr};
use portcullis_config::OidcSettings;

use super::cache::{self, TokenCache};
use super::fetch::{self, Source};
use super::keys::{self, KeySet, Lookup, PublishedKeys};
use super::memo;
use super::refresher::{JwksRefresher, KidOutcome, RefreshForKid, StopRefresher, Timing};
use super::stats::OidcStats;
use super::token::{self, ClaimRules, Header};
use super::{unix_now, OidcError};
use crate::{AuthMethod, Authenticated, Denied, Principal, PrincipalKind, Reason};

/// What request handlers hold to verify OIDC bearer tokens. Cloning shares everything.
#[derive(Clone)]
pub struct OidcHandle {
    rules: Arc<ClaimRules>,
    max_staleness: Duration,
    published: PublishedKeys,
    cache: TokenCache,
    stats: Arc<OidcStats>,
    addr: Addr<JwksRefresher>,
}

/// Starts the JwksRefresher on the current arbiter and returns the handle. Needs no network:
/// the first fetch runs in the background, and tokens get [`Reason::IssuerUnavailable`] until
/// a key set has loaded. Fails only when the HTTP client cannot be built (a bad certificate).
pub fn start(settings: &OidcSettings) -> Result<OidcHandle, OidcError> {
    start_with_capacity(settings, cache::DEFAULT_CAPACITY)
}

/// [`start`] with a bound on the verified-token cache (0 disables it).
pub fn start_with_capacity(
    settings: &OidcSettings,
    cache_capacity: usize,
) -> Result<OidcHandle, OidcError> {
    let stats = Arc::new(OidcStats::new(
        settings
            .refresh_interval
            .saturating_add(settings.fetch_timeout),
    ));
    start_sharing(settings, cache_capacity, stats)
}

/// Starts a JwksRefresher that counts into `stats` (shared with an earlier one, so the
/// exported counters continue across a configuration reload).
fn start_sharing(
    settings: &OidcSettings,
    cache_capacity: usize,
    stats: Arc<OidcStats>,
) -> Result<OidcHandle, OidcError> {
    let client = fetch::client(
        settings.fetch_timeout,
        settings.certificate.as_deref(),
        settings.insecure_skip_tls_verify,
    )?;
    let source = Source {
        issuer: settings.issuer.clone(),
        discovery_url: settings.discovery_url(),
        jwks_url: settings.jwks_url.clone(),
    };
    let timing = Timing {
        refresh_interval: settings.refresh_interval,
        kid_miss_cooldown: settings.kid_miss_cooldown,
    };
    let published = PublishedKeys::new();
    let cache = TokenCache::new(cache_capacity);
    let addr = JwksRefresher::new(
        client,
        source,
        timing,
        published.clone(),
        cache.clone(),
        stats.clone(),
    )
    .start();
    Ok(OidcHandle {
        rules: Arc::new(rules_of(settings)),
        max_staleness: settings.max_staleness,
        published,
        cache,
        stats,
        addr,
    })
}

fn rules_of(settings: &OidcSettings) -> ClaimRules {
    ClaimRules {
        issuer: settings.issuer.clone(),
        audience: if settings.skip_client_id_check {
            None
        } else {
            settings.client_id.clone()
        },
        username_claim: settings.username_claim.clone(),
        groups_claim: settings.groups_claim.clone(),
        leeway: settings.leeway.as_secs_f64(),
    }
}

/// What the verified-token cache said of a token.
pub enum CacheLookup<'a> {
    /// Verified before and still valid: the token's principal (the hit is counted).
    Hit(Principal),
    /// Not in the cache (or not usable now): pass it to [`OidcHandle::verify`].
    Miss(Unverified<'a>),
}

/// A token the cache did not answer, with what the lookup already computed (its SHA-256, the
/// key set it saw, the time), so verifying it does not repeat them. It holds the token, so
/// the digest a verified token is cached under is always that token's own.
pub struct Unverified<'a> {
    token: &'a str,
    /// `None` for a token over [`token::MAX_TOKEN_BYTES`]: refused unhashed.
    digest: Option<cache::TokenDigest>,
    keys: Arc<KeySet>,
    usable: bool,
    now: f64,
    /// The header as the router read it ([`token::routed_header`]), when it did.
    header: Option<Result<Header, Reason>>,
}

/// A verdict on a bearer token: its principal, or the reason it was refused.
fn oidc_verdict(checked: Result<Principal, Reason>) -> Result<Authenticated, Denied> {
    let method = AuthMethod::Oidc;
    match checked {
        Ok(principal) => Ok(Authenticated { principal, method }),
        Err(reason) => Err(Denied { method, reason }),
    }
}

/// A token [`OidcHandle::verify_now`] could not finish: its shape, header and claims
/// passed, and it names a `kid` (the `String`) the published keys do not hold (boxed: a rare
/// path, and the common one's result stays small).
pub struct UnknownKid<'a>(Box<(Prepared<'a>, String)>);

/// A token whose checks before any key work passed ([`OidcHandle::prepare`]).
struct Prepared<'a> {
    signing_input: &'a str,
    signature: &'a str,
    header: Header,
    claims: token::Claims,
    digest: cache::TokenDigest,
    keys: Arc<KeySet>,
    now: f64,
}

impl Unverified<'_> {
    /// The token with its header already read (by [`token::routed_header`], from this token),
    /// so the verification does not read it again.
    pub(crate) fn with_header(self, header: Result<Header, Reason>) -> Self {
        Unverified {
            header: Some(header),
            ..self
        }
    }
}

impl OidcHandle {
    /// Verifies a bearer token: [`OidcHandle::lookup`], then the checks of
    /// [`OidcHandle::verify`] on a miss, answering with the reason alone (the method is
    /// always OIDC).
    pub async fn authenticate(&self, token: &str) -> Result<Principal, Reason> {
        match self.lookup(token) {
            CacheLookup::Hit(principal) => Ok(principal),
            CacheLookup::Miss(unverified) => match self.verify(unverified).await {
                Ok(accepted) => Ok(accepted.principal),
                Err(denied) => Err(denied.reason),
            },
        }
    }

    /// Asks the verified-token cache, without judging the token: one SHA-256 (remembered per
    /// thread for a token the cache answered before, [`memo`]) and one map read. A hit is a JWT that [`OidcHandle::verify`] would accept, so a caller may ask
    /// before deciding whether the token is a JWT at all.
    pub fn lookup<'a>(&self, token: &'a str) -> CacheLookup<'a> {
        let now = unix_now();
        let keys = self.published.load();
        let usable = keys.is_usable(Instant::now(), self.max_staleness);
        if token.len() > token::MAX_TOKEN_BYTES {
            return CacheLookup::Miss(Unverified {
                token,
                digest: None,
                keys,
                usable,
                now,
                header: None,
            });
        }
        let digest = memo::digest(token);
        if usable {
            if let Some(principal) = self.cache.get(&digest, now, &keys) {
                memo::remember(token, digest);
                self.stats.count_hit();
                return CacheLookup::Hit(principal);
            }
        }
        CacheLookup::Miss(Unverified {
            token,
            digest: Some(digest),
            keys,
            usable,
            now,
            header: None,
        })
    }

    /// Verifies a token the cache did not answer, and caches it when it is accepted.
    pub async fn verify(&self, unverified: Unverified<'_>) -> Result<Authenticated, Denied> {
        match self.verify_now(unverified) {
            Ok(verdict) => verdict,
            Err(unknown) => self.verify_after_refresh(unknown).await,
        }
    }

    /// [`OidcHandle::verify`] without waiting: the verdict, unless the token names a `kid` the
    /// published keys do not hold. That token comes back checked as far as it went, for
    /// [`OidcHandle::verify_after_refresh`] to ask the JwksRefresher about its `kid`.
    pub fn verify_now<'a>(
        &self,
        unverified: Unverified<'a>,
    ) -> Result<Result<Authenticated, Denied>, UnknownKid<'a>> {
        let prepared = match self.prepare(unverified) {
            Ok(prepared) => prepared,
            Err(reason) => return Ok(oidc_verdict(Err(reason))),
        };
        let lookup = prepared
            .keys
            .find(prepared.header.kid.as_deref(), prepared.header.alg);
        if let (Lookup::UnknownKid, Some(kid)) = (&lookup, &prepared.header.kid) {
            let kid = kid.clone();
            return Err(UnknownKid(Box::new((prepared, kid))));
        }
        Ok(oidc_verdict(self.finish(prepared, lookup)))
    }

    /// Finishes a token [`OidcHandle::verify_now`] gave back: one message to the
    /// JwksRefresher, which fetches the JWKS again for an unknown `kid` (at most once per
    /// cool-down), then the signature check under the keys it published.
    pub async fn verify_after_refresh(
        &self,
        unknown: UnknownKid<'_>,
    ) -> Result<Authenticated, Denied> {
        let (mut prepared, kid) = *unknown.0;
        let checked = match self.addr.send(RefreshForKid { kid }).await {
            Ok(KidOutcome::Known) => {
                prepared.keys = self.published.load();
                let lookup = prepared
                    .keys
                    .find(prepared.header.kid.as_deref(), prepared.header.alg);
                self.finish(prepared, lookup)
            }
            Ok(KidOutcome::Unknown | KidOutcome::FetchFailed) => Err(Reason::UnknownKid),
            Err(err) => {
                tracing::error!(error = %err, "JWKS refresher did not answer");
                Err(Reason::Internal)
            }
        };
        oidc_verdict(checked)
    }

    /// The checks before any key work, in this order, the cheap ones first: size, shape,
    /// header, claims, a usable key set that accepts the token's algorithm.
    fn prepare<'a>(&self, unverified: Unverified<'a>) -> Result<Prepared<'a>, Reason> {
        let Unverified {
            token,
            digest,
            keys,
            usable,
            now,
            header,
        } = unverified;
        let Some(digest) = digest else {
            return Err(Reason::MalformedToken);
        };
        self.stats.count_miss();

        let segments = token::split(token)?;
        let header = match header {
            Some(header) => header?,
            None => token::header(segments.header)?,
        };
        let claims = token::claims(segments.payload, &self.rules, now)?;
        if !usable {
            return Err(Reason::IssuerUnavailable);
        }
        if !keys.accepts(header.alg) {
            return Err(Reason::DisallowedAlg);
        }
        Ok(Prepared {
            signing_input: segments.signing_input,
            signature: segments.signature,
            header,
            claims,
            digest,
            keys,
            now,
        })
    }

    /// The signature check under the keys `lookup` found, and the cache entry of a token it
    /// accepts.
    fn finish(&self, prepared: Prepared<'_>, lookup: Lookup) -> Result<Principal, Reason> {
        let candidates = match lookup {
            Lookup::Found(candidates) => candidates,
            Lookup::WrongAlg => return Err(Reason::DisallowedAlg),
            Lookup::Ambiguous => return Err(Reason::BadSignature),
            Lookup::UnknownKid | Lookup::NoKey => return Err(Reason::UnknownKid),
        };
        // Decoded once for every candidate key; one that is not canonical base64url (a bad
        // length or stray trailing bits) verifies under no key.
        let Some(signature) = keys::decode_b64url(prepared.signature) else {
            return Err(Reason::BadSignature);
        };
        let signing_input = prepared.signing_input.as_bytes();
        let Some(key) = candidates
            .iter()
            .find(|key| key.verify(signing_input, &signature))
        else {
            return Err(Reason::BadSignature);
        };
        debug_assert_eq!(key.alg(), prepared.header.alg);

        let token::Claims {
            username,
            groups,
            exp,
        } = prepared.claims;
        let principal = Principal::new(username, groups, PrincipalKind::Oidc);
        self.cache.insert(
            prepared.digest,
            principal.clone(),
            exp + self.rules.leeway,
            key.uid(),
            prepared.now,
        );
        Ok(principal)
    }

    /// Whether tokens can be judged now: a key set has loaded and is within the staleness
    /// bound. `/v1/.well-known/ready` uses it when OIDC is the only method.
    pub fn is_ready(&self) -> bool {
        self.published
            .load()
            .is_usable(Instant::now(), self.max_staleness)
    }

    /// A handle for new settings (a configuration reload): a new JwksRefresher with its own
    /// keys and an empty verified-token cache of the same size (tokens verified under the
    /// old rules are judged again), counting into the same statistics. The old refresher
    /// runs on until [`OidcHandle::stop`].
    pub fn restart(&self, settings: &OidcSettings) -> Result<OidcHandle, OidcError> {
        start_sharing(settings, self.cache.capacity(), self.stats.clone())
    }

    /// Stops this handle's JwksRefresher (it was replaced): no more fetches; a token that
    /// still reaches it for an unknown `kid` is refused.
    pub fn stop(&self) {
        self.addr.do_send(StopRefresher);
    }

    /// The counters and gauges to export.
    pub fn stats(&self) -> Arc<OidcStats> {
        self.stats.clone()
    }

    /// Suggested `Retry-After` seconds while the issuer is unavailable: until the next
    /// scheduled fetch, at least 1 and at most 300.
    pub fn retry_after_seconds(&self) -> u32 {
        u32::try_from(self.stats.seconds_to_next_fetch().min(300)).unwrap_or(300)
    }

    #[cfg(test)]
    pub(crate) fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    #[cfg(test)]
    pub(crate) fn keys(&self) -> Arc<super::keys::KeySet> {
        self.published.load()
    }
}
