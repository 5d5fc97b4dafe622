//! The gatekeeper: the one place that decides who a caller is and what it may do, for every
//! protocol the server speaks. It knows no HTTP framework: a listener reads the credential in
//! its own syntax (an HTTP `Authorization` header, gRPC metadata), refuses what it cannot
//! parse, and hands the gatekeeper the bearer value or nothing. The gatekeeper answers with
//! [`Authenticated`] or [`Denied`], and then, for a principal and an [`Action`], allow or deny.
//! The listener maps a denial to its own response, counts and logs.
//!
//! Every rule of the decision lives here:
//! - no credential: the anonymous principal when anonymous access is on, else
//!   [`Reason::Missing`];
//! - a credential: OIDC when it is shaped as a JWT (three base64url segments with a JSON
//!   header) and OIDC is on, or always when OIDC is the only method; otherwise an API key.
//!   There is no fallback from one to the other, as in Weaviate;
//! - a credential with no method configured: [`Reason::Unconfigured`];
//! - authorization ([`Authorizer`]): the admin list for the database; database users are
//!   managed by an administrator only (an admin-list admin, or the bootstrap admin when the
//!   list is off).
//!
//! Speed is the other half of the design (`docs/architecture.md`, "The actors"): a key or
//! token already judged is answered from what the actors published, with one SHA-256 and
//! one map read, no message, lock or allocation. [`Gatekeeper::judge_now`] gives that answer
//! synchronously and returns a [`Pending`] credential only when the answer needs work an
//! actor or a signature check must do; [`Gatekeeper::judge_pending`] finishes it.
//! [`Gatekeeper::authenticate`] does both, for callers that are async anyway.
//! [`Gatekeeper::judge_now_from`], once the client's budget allows the work, also checks the
//! signature of a JWT whose key is published, on the caller's thread, so only a message (to
//! the KeyRegistry, or to the JwksRefresher for an unknown `kid`) is left to wait for.
//!
//! With a [`FailureThrottle`] ([`Gatekeeper::with_throttle`]), listeners call
//! [`Gatekeeper::authenticate_from`] with the client address ([`crate::client`]). A client
//! over its budget of failed credentials is refused with [`Reason::Throttled`] before any
//! work: no signature check, no message to an actor. What is cheap to judge and cannot be
//! guessed still passes: a database key already published (256 random bits) and an OIDC
//! token in the verified-token cache (its signature was checked). A static key, even a
//! valid one, is throttled like a wrong one: operators choose static keys, so they may be
//! guessable, and answering a right guess from an address that is spending its budget on
//! guesses would tell it which one was right.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use portcullis_config::AuthenticationSettings;

use crate::api_key::{KeyLookup, UnjudgedKey};
use crate::oidc::{
    count_dots, routed_header_of_two_dots, CacheLookup, OidcSlot, UnknownKid, Unverified,
};
use crate::throttle::{FailureThrottle, Verdict};
use crate::{
    Action, AuthMethod, Authenticated, Authorizer, Denied, KeyRegistryHandle, OidcHandle,
    Principal, Reason,
};

/// The authentication and authorization decision, shared by every listener. Cloning shares
/// everything it holds.
#[derive(Clone)]
pub struct Gatekeeper {
    keys: KeyRegistryHandle,
    /// Replaced by a configuration reload with new OpenID Connect settings.
    oidc: Option<OidcSlot>,
    api_keys_enabled: bool,
    anonymous_access: bool,
    anonymous: Principal,
    authorizer: Arc<Authorizer>,
    throttle: Option<Arc<FailureThrottle>>,
}

/// What [`Gatekeeper::judge_now`] could decide without waiting.
pub enum Judgement<'a> {
    /// Decided: a published answer, the anonymous principal, or a refusal.
    Decided(Result<Authenticated, Denied>),
    /// Not covered by a published answer: [`Gatekeeper::judge_pending`] finishes it.
    Pending(Pending<'a>),
}

/// A credential the published answers did not cover, with what judging it so far computed
/// (its digest and the path it takes), so finishing it repeats nothing.
pub struct Pending<'a>(PendingPath<'a>);

enum PendingPath<'a> {
    /// A well-formed database key: the KeyRegistry judges it.
    ApiKey(UnjudgedKey<'a>),
    /// A JWT not in the verified-token cache: verified on the caller's thread, with a
    /// message to the JwksRefresher only for an unknown `kid`, by the handle that looked it
    /// up (a reload may replace the current one meanwhile).
    Oidc(Arc<OidcHandle>, Unverified<'a>),
    /// A JWT whose checks passed up to its key: it names a `kid` the published keys do not
    /// hold, and the JwksRefresher is asked about it.
    OidcKid(Arc<OidcHandle>, UnknownKid<'a>),
}

impl Gatekeeper {
    /// The gatekeeper for `settings`, with the running KeyRegistry and, when OpenID Connect is
    /// on, its handle.
    pub fn new(
        settings: &AuthenticationSettings,
        keys: KeyRegistryHandle,
        oidc: Option<OidcHandle>,
        authorizer: Arc<Authorizer>,
    ) -> Self {
        Gatekeeper {
            keys,
            oidc: oidc.map(OidcSlot::new),
            api_keys_enabled: settings.api_key.is_some() || settings.db_users_enabled,
            anonymous_access: settings.anonymous_access,
            anonymous: Principal::anonymous(),
            authorizer,
            throttle: None,
        }
    }

    /// The gatekeeper with a budget of failed credential checks per client, which
    /// [`Gatekeeper::authenticate_from`] keeps.
    pub fn with_throttle(mut self, throttle: Arc<FailureThrottle>) -> Self {
        self.throttle = Some(throttle);
        self
    }

    /// The OpenID Connect handle's slot, when OIDC is on: a configuration reload replaces
    /// the handle in it.
    pub fn oidc_slot(&self) -> Option<&OidcSlot> {
        self.oidc.as_ref()
    }

    /// The failure throttle, when there is one (its metrics).
    pub fn throttle(&self) -> Option<&Arc<FailureThrottle>> {
        self.throttle.as_ref()
    }

    /// [`Gatekeeper::authenticate`] for a caller at `client` (the address
    /// [`TrustedProxies::client_address`](crate::client::TrustedProxies::client_address)
    /// found), at `now`, under the failure throttle when there is one. A client over budget
    /// gets [`Reason::Throttled`] for any credential that would cost work to judge or could
    /// be a guess (see the module's documentation); its failures are counted against it.
    /// No credential, and credentials that fail for no fault of the client's
    /// ([`Reason::is_credential_failure`]), neither spend nor check the budget.
    pub async fn authenticate_from(
        &self,
        client: IpAddr,
        credential: Option<&str>,
        now: Instant,
    ) -> Result<Authenticated, Denied> {
        match self.judge_now_from(client, credential, now) {
            Judgement::Decided(verdict) => verdict,
            Judgement::Pending(pending) => self.judge_pending_from(client, pending, now).await,
        }
    }

    /// [`Gatekeeper::authenticate_from`] as far as it goes without waiting: the throttle's
    /// check, then a JWT's signature when its key is published, and the failure it records
    /// for a credential decided here. A listener awaits [`Gatekeeper::judge_pending_from`]
    /// only for a [`Judgement::Pending`] credential, so its own future need not hold the
    /// larger one of the work that waits.
    pub fn judge_now_from<'a>(
        &self,
        client: IpAddr,
        credential: Option<&'a str>,
        now: Instant,
    ) -> Judgement<'a> {
        let Some(throttle) = &self.throttle else {
            return self.settle(self.judge_now(credential));
        };
        let judgement = match self.judge_now(credential) {
            Judgement::Decided(Ok(accepted)) if accepted.method != AuthMethod::ApiKeyStatic => {
                return Judgement::Decided(Ok(accepted));
            }
            Judgement::Decided(Err(denied)) if !denied.reason.is_credential_failure() => {
                return Judgement::Decided(Err(denied));
            }
            other => other,
        };
        let method = match &judgement {
            Judgement::Decided(Ok(Authenticated { method, .. }))
            | Judgement::Decided(Err(Denied { method, .. })) => *method,
            Judgement::Pending(pending) => pending.method(),
        };
        if let Verdict::Throttled { .. } = throttle.check(client, now) {
            return Judgement::Decided(Err(Denied {
                method,
                reason: Reason::Throttled,
            }));
        }
        // Only a client within its budget gets the work of a signature check.
        let judgement = self.settle(judgement);
        if let Judgement::Decided(Err(denied)) = &judgement {
            if denied.reason.is_credential_failure() {
                throttle.record_failure(client, now);
            }
        }
        judgement
    }

    /// Finishes a credential [`Gatekeeper::judge_now_from`] left pending for `client`,
    /// recording a failed one against its budget.
    pub async fn judge_pending_from(
        &self,
        client: IpAddr,
        pending: Pending<'_>,
        now: Instant,
    ) -> Result<Authenticated, Denied> {
        let verdict = self.judge_pending(pending).await;
        if let (Some(throttle), Err(denied)) = (&self.throttle, &verdict) {
            if denied.reason.is_credential_failure() {
                throttle.record_failure(client, now);
            }
        }
        verdict
    }

    /// Whole seconds until `client` may fail once more (`Retry-After` of a
    /// [`Reason::Throttled`] refusal): at least 1.
    pub fn throttled_retry_after(&self, client: IpAddr, now: Instant) -> u32 {
        self.throttle.as_ref().map_or(1, |throttle| {
            throttle.check(client, now).retry_after_seconds()
        })
    }

    /// Judges a credential: `None` when the request carried none, else the bearer value.
    pub async fn authenticate(&self, credential: Option<&str>) -> Result<Authenticated, Denied> {
        match self.judge_now(credential) {
            Judgement::Decided(verdict) => verdict,
            Judgement::Pending(pending) => self.judge_pending(pending).await,
        }
    }

    /// Judges a credential as far as it can without waiting: no message, no signature check.
    /// A listener that cannot await (a synchronous interceptor) answers from this alone when
    /// it is [`Judgement::Decided`].
    pub fn judge_now<'a>(&self, credential: Option<&'a str>) -> Judgement<'a> {
        let Some(token) = credential else {
            return Judgement::Decided(if self.anonymous_access {
                Ok(Authenticated {
                    principal: self.anonymous.clone(),
                    method: AuthMethod::Anonymous,
                })
            } else {
                Err(Denied {
                    method: AuthMethod::None,
                    reason: Reason::Missing,
                })
            });
        };
        if let Some(slot) = &self.oidc {
            let oidc = slot.load();
            // With OIDC the only method, every token is judged as a JWT. Otherwise only a
            // token with exactly two dots can be one: API keys skip the token cache (and the
            // SHA-256 it would cost them on top of the key registry's own).
            if !self.api_keys_enabled || count_dots(token.as_bytes()) == 2 {
                // A token verified before needs no routing: it is a JWT.
                let unverified = match oidc.lookup(token) {
                    CacheLookup::Hit(principal) => {
                        return Judgement::Decided(Ok(Authenticated {
                            principal,
                            method: AuthMethod::Oidc,
                        }))
                    }
                    CacheLookup::Miss(unverified) => unverified,
                };
                // Three base64url segments with a JSON-object header: a JWT, and no
                // fallback to API keys whatever its verification finds. The header read to
                // decide it is passed on, not read again; the dots were counted above.
                let unverified = if self.api_keys_enabled {
                    routed_header_of_two_dots(token).map(|header| unverified.with_header(header))
                } else {
                    Some(unverified)
                };
                if let Some(unverified) = unverified {
                    let handle = arc_swap::Guard::into_inner(oidc);
                    return Judgement::Pending(Pending(PendingPath::Oidc(handle, unverified)));
                }
            }
        }
        if !self.api_keys_enabled {
            return Judgement::Decided(Err(Denied {
                method: AuthMethod::None,
                reason: Reason::Unconfigured,
            }));
        }
        match self.keys.lookup(token) {
            KeyLookup::Decided(verdict) => Judgement::Decided(verdict),
            KeyLookup::Unjudged(key) => Judgement::Pending(Pending(PendingPath::ApiKey(key))),
        }
    }

    /// Finishes, without waiting, what [`Gatekeeper::judge_now`] left pending that needs no
    /// message: a JWT whose key is published is verified here, on the caller's thread, so
    /// the caller need not hold a future for it. Anything else stays pending.
    fn settle<'a>(&self, judgement: Judgement<'a>) -> Judgement<'a> {
        match judgement {
            Judgement::Pending(Pending(PendingPath::Oidc(oidc, unverified))) => {
                match oidc.verify_now(unverified) {
                    Ok(verdict) => Judgement::Decided(verdict),
                    Err(unknown) => {
                        Judgement::Pending(Pending(PendingPath::OidcKid(oidc, unknown)))
                    }
                }
            }
            other => other,
        }
    }

    /// Finishes a credential [`Gatekeeper::judge_now`] left pending.
    pub async fn judge_pending(&self, pending: Pending<'_>) -> Result<Authenticated, Denied> {
        match pending.0 {
            PendingPath::ApiKey(key) => self.keys.judge(key).await,
            PendingPath::Oidc(oidc, unverified) => oidc.verify(unverified).await,
            PendingPath::OidcKid(oidc, unknown) => oidc.verify_after_refresh(unknown).await,
        }
    }

    /// Whether `principal` may perform `action` ([`Authorizer::allows`]: the admin list for
    /// the database, administrators only for database users). A bare [`Verb`](crate::Verb) is on the
    /// database.
    #[inline]
    pub fn allows(&self, principal: &Principal, action: impl Into<Action>) -> bool {
        self.authorizer.allows(principal, action)
    }

    /// Whether at least one authentication method can serve now (readiness): anonymous
    /// access and API keys always can; OIDC once its issuer's keys have loaded. With the user
    /// store shared by replicas, never once it has been unreadable for longer than
    /// `PORTCULLIS_USER_STORE_READY_GRACE`.
    pub fn can_serve(&self) -> bool {
        // The user store shared by replicas, unreadable for longer than its grace, makes the
        // replica unready whatever else could serve (`docs/replicas.md`).
        if !self.keys.store_ready() {
            return false;
        }
        self.anonymous_access
            || self.api_keys_enabled
            || self
                .oidc
                .as_ref()
                .is_some_and(|oidc| oidc.load().is_ready())
    }

    /// The methods a credential can use, by the names the 401 message lists.
    pub fn method_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.api_keys_enabled {
            names.push("API-keys");
        }
        if self.oidc.is_some() {
            names.push("OIDC");
        }
        names
    }

    /// Suggested `Retry-After` seconds after [`Reason::IssuerUnavailable`]: until the issuer's
    /// next scheduled key fetch, at least 1 and at most 300 (300 without OIDC).
    pub fn retry_after_seconds(&self) -> u32 {
        self.oidc
            .as_ref()
            .map_or(300, |oidc| oidc.load().retry_after_seconds())
    }
}

impl Pending<'_> {
    /// The method that will judge the credential.
    pub fn method(&self) -> AuthMethod {
        match self.0 {
            PendingPath::ApiKey(_) => AuthMethod::ApiKeyDb,
            PendingPath::Oidc(..) | PendingPath::OidcKid(..) => AuthMethod::Oidc,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Verb;
    use portcullis_config::{vars, Settings};

    #[test]
    fn counts_dots_across_chunks() {
        // Past 255 bytes the count spans chunks; past 255 dots a u8 would wrap.
        for (len, dots) in [
            (0, 0),
            (1, 1),
            (254, 2),
            (255, 255),
            (256, 2),
            (700, 2),
            (1000, 1000),
        ] {
            let mut token = vec![b'a'; len];
            let step = len.checked_div(dots).unwrap_or(1);
            for i in 0..dots {
                token[i * step] = b'.';
            }
            assert_eq!(count_dots(&token), dots, "{len} bytes, {dots} dots");
        }
    }

    fn gatekeeper(vars: &[(&str, &str)]) -> Gatekeeper {
        let settings = Settings::from_vars(vars.iter().copied()).expect("valid settings");
        let keys =
            crate::KeyRegistry::new(settings.authentication.api_key.as_ref()).start_with_handle();
        let authorizer = Arc::new(Authorizer::from_settings(&settings.authorization));
        Gatekeeper::new(&settings.authentication, keys, None, authorizer)
    }

    fn decided(judgement: Judgement<'_>) -> Result<Authenticated, Denied> {
        match judgement {
            Judgement::Decided(verdict) => verdict,
            Judgement::Pending(_) => panic!("expected a decision without waiting"),
        }
    }

    fn denied(method: AuthMethod, reason: Reason) -> Option<Denied> {
        Some(Denied { method, reason })
    }

    #[actix::test]
    async fn no_credential_is_anonymous_only_where_allowed() {
        let open = gatekeeper(&[(vars::ANONYMOUS_ACCESS_ENABLED, "true")]);
        let anonymous = decided(open.judge_now(None)).expect("anonymous admitted");
        assert!(anonymous.principal.is_anonymous());
        assert_eq!(anonymous.method, AuthMethod::Anonymous);

        let closed = gatekeeper(&[
            (vars::ANONYMOUS_ACCESS_ENABLED, "false"),
            (vars::APIKEY_ENABLED, "true"),
            (vars::APIKEY_ALLOWED_KEYS, "k-one"),
            (vars::APIKEY_USERS, "alice"),
        ]);
        assert_eq!(
            decided(closed.judge_now(None)).err(),
            denied(AuthMethod::None, Reason::Missing)
        );
        assert_eq!(closed.method_names(), ["API-keys"]);
    }

    #[actix::test]
    async fn a_published_key_is_decided_without_waiting() {
        let gk = gatekeeper(&[
            (vars::APIKEY_ENABLED, "true"),
            (vars::APIKEY_ALLOWED_KEYS, "k-one"),
            (vars::APIKEY_USERS, "alice"),
        ]);
        let alice = decided(gk.judge_now(Some("k-one"))).expect("static key accepted");
        assert_eq!(
            (alice.principal.username(), alice.method),
            ("alice", AuthMethod::ApiKeyStatic)
        );
        assert_eq!(
            decided(gk.judge_now(Some("k-two"))).err(),
            denied(AuthMethod::ApiKeyStatic, Reason::InvalidKey)
        );
        // Without OIDC a JWT-shaped token is an API key like any other.
        assert_eq!(
            gk.authenticate(Some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"))
                .await
                .err(),
            denied(AuthMethod::ApiKeyStatic, Reason::InvalidKey)
        );
    }

    #[actix::test]
    async fn a_credential_without_any_method_is_unconfigured() {
        let gk = gatekeeper(&[(vars::ANONYMOUS_ACCESS_ENABLED, "true")]);
        assert_eq!(
            gk.authenticate(Some("anything")).await.err(),
            denied(AuthMethod::None, Reason::Unconfigured)
        );
        assert!(gk.method_names().is_empty());
        assert!(gk.can_serve(), "anonymous access can serve");
    }

    #[actix::test]
    async fn authorization_follows_the_admin_list() {
        let gk = gatekeeper(&[
            (vars::ANONYMOUS_ACCESS_ENABLED, "true"),
            (vars::ADMINLIST_ENABLED, "true"),
            (vars::ADMINLIST_USERS, "root"),
            (vars::ADMINLIST_READONLY_USERS, "anonymous"),
        ]);
        let anonymous = decided(gk.judge_now(None)).expect("anonymous admitted");
        assert!(gk.allows(&anonymous.principal, Verb::Read));
        assert!(!gk.allows(&anonymous.principal, Verb::Write));
        let root = Principal::new("root", Vec::new(), crate::PrincipalKind::StaticKey);
        assert!(gk.allows(&root, Verb::Write));
        assert!(gk.allows(&root, Action::Users(Verb::Write)));
        assert!(!gk.allows(&anonymous.principal, Action::Users(Verb::Read)));
    }

    #[actix::test]
    async fn with_nothing_configured_only_the_bootstrap_admin_manages_users() {
        // No variable at all: the bootstrap configuration (database users, no admin list).
        let gk = gatekeeper(&[]);
        let admin = Principal::new(
            crate::api_key::BOOTSTRAP_ADMIN,
            Vec::new(),
            crate::PrincipalKind::DbUser,
        );
        let other = Principal::new("mallory", Vec::new(), crate::PrincipalKind::DbUser);
        for verb in [Verb::Read, Verb::Write] {
            assert!(gk.allows(&admin, Action::Users(verb)), "admin {verb:?}");
            assert!(!gk.allows(&other, Action::Users(verb)), "mallory {verb:?}");
            assert!(gk.allows(&other, verb), "mallory on the database {verb:?}");
        }
    }

    fn throttled(vars: &[(&str, &str)], limit: u32) -> Gatekeeper {
        let throttle = crate::throttle::FailureThrottle::new(
            std::num::NonZeroU32::new(limit).expect("non-zero"),
            std::time::Duration::from_secs(60),
            16,
        );
        gatekeeper(vars).with_throttle(Arc::new(throttle))
    }

    const STATIC: [(&str, &str); 3] = [
        (vars::APIKEY_ENABLED, "true"),
        (vars::APIKEY_ALLOWED_KEYS, "k-one"),
        (vars::APIKEY_USERS, "alice"),
    ];

    #[actix::test]
    async fn a_client_over_budget_is_throttled_before_judging_and_others_are_not() {
        let gk = throttled(&STATIC, 2);
        let (mallory, alice) = (
            "198.51.100.6".parse().expect("ip"),
            "198.51.100.7".parse().expect("ip"),
        );
        let now = Instant::now();
        let key = AuthMethod::ApiKeyStatic;
        for _ in 0..2 {
            assert_eq!(
                gk.authenticate_from(mallory, Some("k-wrong"), now)
                    .await
                    .err(),
                denied(key, Reason::InvalidKey)
            );
        }
        assert_eq!(
            gk.authenticate_from(mallory, Some("k-wrong"), now)
                .await
                .err(),
            denied(key, Reason::Throttled)
        );
        // A static key is operator-chosen and could be a guess: throttled even when right.
        assert_eq!(
            gk.authenticate_from(mallory, Some("k-one"), now)
                .await
                .err(),
            denied(key, Reason::Throttled)
        );
        assert_eq!(gk.throttled_retry_after(mallory, now), 30);
        // Another client is judged as usual, and its budget is its own.
        let ok = gk
            .authenticate_from(alice, Some("k-one"), now)
            .await
            .expect("alice accepted");
        assert_eq!(ok.principal.username(), "alice");
        assert_eq!(
            gk.authenticate_from(alice, Some("k-wrong"), now)
                .await
                .err(),
            denied(key, Reason::InvalidKey)
        );
        // No credential is not a credential failure, throttled or not.
        assert_eq!(
            gk.authenticate_from(mallory, None, now).await.err(),
            denied(AuthMethod::None, Reason::Missing)
        );
        // The budget comes back: one failure per window / limit.
        let later = now + std::time::Duration::from_secs(30);
        assert_eq!(
            gk.authenticate_from(mallory, Some("k-one"), later)
                .await
                .map(|a| a.method)
                .ok(),
            Some(key)
        );
    }

    #[actix::test]
    async fn failures_that_are_not_the_clients_spend_no_budget() {
        let gk = throttled(&[(vars::ANONYMOUS_ACCESS_ENABLED, "true")], 1);
        let client = "198.51.100.8".parse().expect("ip");
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(
                gk.authenticate_from(client, Some("anything"), now)
                    .await
                    .err(),
                denied(AuthMethod::None, Reason::Unconfigured)
            );
            let anonymous = gk
                .authenticate_from(client, None, now)
                .await
                .expect("anonymous admitted");
            assert!(anonymous.principal.is_anonymous());
        }
        assert_eq!(gk.throttle().map(|t| t.entries(now)), Some(0));
    }

    #[actix::test]
    async fn without_a_throttle_nothing_is_throttled() {
        let gk = gatekeeper(&STATIC);
        let client = "198.51.100.9".parse().expect("ip");
        let now = Instant::now();
        for _ in 0..200 {
            assert_eq!(
                gk.authenticate_from(client, Some("k-wrong"), now)
                    .await
                    .err(),
                denied(AuthMethod::ApiKeyStatic, Reason::InvalidKey)
            );
        }
        assert!(gk.throttle().is_none());
    }

    #[test]
    fn only_judged_credentials_are_failures() {
        let failures: Vec<&str> = Reason::ALL
            .into_iter()
            .filter(|r| r.is_credential_failure())
            .map(Reason::as_str)
            .collect();
        assert_eq!(
            failures,
            [
                "invalid_key",
                "revoked",
                "user_inactive",
                "expired",
                "not_yet_valid",
                "bad_signature",
                "unknown_kid",
                "bad_issuer",
                "bad_audience",
                "disallowed_alg",
                "missing_claim",
                "malformed_token"
            ]
        );
    }
}
