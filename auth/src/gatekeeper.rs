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

use std::sync::Arc;

use portcullis_config::AuthenticationSettings;

use crate::api_key::{KeyLookup, UnjudgedKey};
use crate::oidc::{is_jwt_shaped, CacheLookup, Unverified};
use crate::{
    Action, AuthMethod, Authenticated, Authorizer, Denied, KeyRegistryHandle, OidcHandle,
    Principal, Reason,
};

/// The authentication and authorization decision, shared by every listener. Cloning shares
/// everything it holds.
#[derive(Clone)]
pub struct Gatekeeper {
    keys: KeyRegistryHandle,
    oidc: Option<OidcHandle>,
    api_keys_enabled: bool,
    anonymous_access: bool,
    anonymous: Principal,
    authorizer: Arc<Authorizer>,
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
    /// message to the JwksRefresher only for an unknown `kid`.
    Oidc(Unverified<'a>),
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
            oidc,
            api_keys_enabled: settings.api_key.is_some() || settings.db_users_enabled,
            anonymous_access: settings.anonymous_access,
            anonymous: Principal::anonymous(),
            authorizer,
        }
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
        if let Some(oidc) = &self.oidc {
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
                // fallback to API keys whatever its verification finds.
                if !self.api_keys_enabled || is_jwt_shaped(token) {
                    return Judgement::Pending(Pending(PendingPath::Oidc(unverified)));
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

    /// Finishes a credential [`Gatekeeper::judge_now`] left pending.
    pub async fn judge_pending(&self, pending: Pending<'_>) -> Result<Authenticated, Denied> {
        match pending.0 {
            PendingPath::ApiKey(key) => self.keys.judge(key).await,
            PendingPath::Oidc(unverified) => match &self.oidc {
                Some(oidc) => oidc.verify(unverified).await,
                // Only a gatekeeper with OIDC makes an OIDC pending credential.
                None => Err(Denied {
                    method: AuthMethod::Oidc,
                    reason: Reason::Internal,
                }),
            },
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
    /// access and API keys always can; OIDC once its issuer's keys have loaded.
    pub fn can_serve(&self) -> bool {
        self.anonymous_access
            || self.api_keys_enabled
            || self.oidc.as_ref().is_some_and(|oidc| oidc.is_ready())
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
            .map_or(300, |oidc| oidc.retry_after_seconds())
    }
}

/// The number of dots in a token (a JWT has exactly two). Counted in `u8` over chunks of at
/// most 255 bytes, which the compiler vectorizes (a `usize` count does not: 10x slower).
fn count_dots(token: &[u8]) -> usize {
    token
        .chunks(255)
        .map(|chunk| usize::from(chunk.iter().fold(0u8, |n, &b| n + u8::from(b == b'.'))))
        .sum()
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
}
