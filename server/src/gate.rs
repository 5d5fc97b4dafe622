//! The gate: one middleware in front of every route. It reads the credential, authenticates it
//! (the KeyRegistry's published answers, or a message to the actor), authorizes the request
//! against the route table, counts the outcome, and logs one line per request.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use portcullis_auth::oidc::CacheLookup;
use portcullis_auth::{AuthMethod, Authorizer, KeyRegistryHandle, Principal, Reason};
use portcullis_config::Settings;

use crate::credential::{self, CredentialError};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::request_id::{RequestIds, X_REQUEST_ID};
use crate::route_table::{classify, Access};

/// Everything the gate needs, shared by all workers.
pub struct Gate {
    keys: KeyRegistryHandle,
    api_keys_enabled: bool,
    anonymous: bool,
    authorizer: Arc<Authorizer>,
    metrics: Arc<Metrics>,
    missing_message: String,
    anonymous_principal: Principal,
    request_ids: RequestIds,
    /// Set by [`Gate::with_oidc`] when OpenID Connect is on.
    oidc: Option<portcullis_auth::OidcHandle>,
}

/// The 503 message while no issuer key set has loaded (the token could not be judged).
const OIDC_UNAVAILABLE: &str =
    "the OpenID Connect issuer's signing keys are not available yet; retry later";

/// A refused authentication: what to count and what to answer.
struct Denial {
    method: AuthMethod,
    reason: Reason,
    error: ApiError,
}

impl Gate {
    /// Builds the gate from settings and the running KeyRegistry.
    pub fn new(
        settings: &Settings,
        keys: KeyRegistryHandle,
        authorizer: Arc<Authorizer>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let auth = &settings.authentication;
        let api_keys_enabled = auth.api_key.is_some() || auth.db_users_enabled;
        let mut methods = Vec::new();
        if api_keys_enabled {
            methods.push("API-keys");
        }
        if auth.oidc.is_some() {
            methods.push("OIDC");
        }
        let missing_message = format!(
            "unauthorized: anonymous access not enabled. Please authenticate through one of the available methods: [{}]",
            methods.join(", ")
        );
        Gate {
            keys,
            api_keys_enabled,
            anonymous: auth.anonymous_access,
            authorizer,
            metrics,
            missing_message,
            anonymous_principal: Principal::anonymous(),
            request_ids: RequestIds::new(),
            oidc: None,
        }
    }

    /// Routes JWT-shaped bearer tokens to OpenID Connect (`None`: OIDC is off).
    pub fn with_oidc(mut self, oidc: Option<portcullis_auth::OidcHandle>) -> Self {
        self.oidc = oidc;
        self
    }

    /// Whether at least one authentication method can serve now (`/v1/.well-known/ready`):
    /// anonymous access and API keys always can; OIDC once its issuer's keys have loaded.
    pub fn can_serve(&self) -> bool {
        self.anonymous
            || self.api_keys_enabled
            || self.oidc.as_ref().is_some_and(|oidc| oidc.is_ready())
    }

    /// Judges a bearer token the token cache did not answer on the OIDC path; no fallback to
    /// API keys.
    async fn authenticate_oidc(
        &self,
        oidc: &portcullis_auth::OidcHandle,
        unverified: portcullis_auth::oidc::Unverified<'_>,
    ) -> Result<(Principal, AuthMethod), Denial> {
        oidc.verify(unverified)
            .await
            .map(|principal| (principal, AuthMethod::Oidc))
            .map_err(|reason| Denial {
                method: AuthMethod::Oidc,
                reason,
                error: match reason {
                    Reason::IssuerUnavailable => ApiError::ServiceUnavailable {
                        message: OIDC_UNAVAILABLE,
                        retry_after: oidc.retry_after_seconds(),
                    },
                    Reason::Internal => ApiError::Internal,
                    _ => ApiError::InvalidCredential,
                },
            })
    }

    /// Judges what [`credential::extract`] read from the request.
    async fn authenticate(
        &self,
        credential: Result<Option<&str>, CredentialError>,
    ) -> Result<(Principal, AuthMethod), Denial> {
        let token = match credential {
            Ok(Some(token)) => token,
            Ok(None) if self.anonymous => {
                return Ok((self.anonymous_principal.clone(), AuthMethod::Anonymous))
            }
            Ok(None) => {
                return Err(Denial {
                    method: AuthMethod::None,
                    reason: Reason::Missing,
                    error: ApiError::MissingCredential(self.missing_message.clone()),
                })
            }
            Err(err) => {
                return Err(Denial {
                    method: AuthMethod::None,
                    reason: Reason::Malformed,
                    error: ApiError::InvalidRequest(err.describe()),
                })
            }
        };
        if let Some(oidc) = &self.oidc {
            // With OIDC the only method, every token is judged as a JWT. Otherwise only a
            // token with exactly two dots can be one: API keys skip the token cache (and the
            // SHA-256 it would cost them on top of the key registry's own).
            if !self.api_keys_enabled || count_dots(token.as_bytes()) == 2 {
                // A token verified before needs no routing: it is a JWT.
                let unverified = match oidc.lookup(token) {
                    CacheLookup::Hit(principal) => return Ok((principal, AuthMethod::Oidc)),
                    CacheLookup::Miss(unverified) => unverified,
                };
                // Three base64url segments with a JSON-object header: a JWT.
                if !self.api_keys_enabled || portcullis_auth::oidc::is_jwt_shaped(token) {
                    return self.authenticate_oidc(oidc, unverified).await;
                }
            }
        }
        if !self.api_keys_enabled {
            return Err(Denial {
                method: AuthMethod::None,
                reason: Reason::Unconfigured,
                error: ApiError::NoSchemeConfigured,
            });
        }
        self.keys
            .authenticate(token)
            .await
            .map(|a| (a.principal, a.method))
            .map_err(|denied| Denial {
                method: denied.method,
                reason: denied.reason,
                error: match denied.reason {
                    Reason::Internal => ApiError::Internal,
                    _ => ApiError::InvalidCredential,
                },
            })
    }

    fn authorize(&self, principal: &Principal, access: Access, path: &str) -> Result<(), ApiError> {
        match access {
            Access::Public | Access::CredentialOptional | Access::Authenticated => Ok(()),
            Access::Unrouted => Err(ApiError::NotFound),
            Access::Verb(verb) => {
                let allowed = self.authorizer.allows(principal, verb);
                self.metrics.observe_authorization(allowed);
                if allowed {
                    Ok(())
                } else {
                    Err(ApiError::Forbidden {
                        user: principal.username().to_owned(),
                        verb: verb.as_str(),
                        path: path.to_owned(),
                    })
                }
            }
        }
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

/// The middleware function (`actix_web::middleware::from_fn(gate)`).
pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let started = Instant::now();
    let Some(gate) = req.app_data::<web::Data<Gate>>().cloned() else {
        tracing::error!("gate state missing from the application");
        return Ok(req.error_response(ApiError::Internal).map_into_right_body());
    };
    let request_id = gate.request_ids.for_request(req.headers());
    let route = classify(req.method(), req.path());

    let mut outcome: Option<(AuthMethod, Reason, Option<Principal>)> = None;
    // A route that needs no credential still refuses a bad one that is sent.
    let credential = match route.access {
        Access::Public => None,
        Access::CredentialOptional => match credential::extract(req.headers()) {
            Ok(None) => None,
            sent => Some(sent),
        },
        Access::Authenticated | Access::Verb(_) | Access::Unrouted => {
            Some(credential::extract(req.headers()))
        }
    };
    let decision = if let Some(credential) = credential {
        let auth_started = Instant::now();
        let verdict = gate.authenticate(credential).await;
        let seconds = auth_started.elapsed().as_secs_f64();
        match verdict {
            Ok((principal, method)) => {
                gate.metrics.observe_auth(method, Reason::Ok, seconds);
                let decision = gate.authorize(&principal, route.access, req.path());
                req.extensions_mut().insert(principal.clone());
                outcome = Some((method, Reason::Ok, Some(principal)));
                decision
            }
            Err(denial) => {
                gate.metrics
                    .observe_auth(denial.method, denial.reason, seconds);
                outcome = Some((denial.method, denial.reason, None));
                Err(denial.error)
            }
        }
    } else {
        Ok(())
    };

    let method = req.method().clone();
    let mut res = match decision {
        // Handler errors arrive here as responses; an Err is a service-level failure that
        // actix turns into a response itself (holding a clone of the request across the call
        // is not allowed: routing needs the request uniquely).
        Ok(()) => next.call(req).await?.map_into_left_body(),
        Err(err) => req.error_response(err).map_into_right_body(),
    };
    res.headers_mut().insert(X_REQUEST_ID, request_id.clone());

    let status = res.status();
    let seconds = started.elapsed().as_secs_f64();
    gate.metrics
        .observe_http(&method, route.id, status, seconds);
    let path = res.request().path();
    match &outcome {
        None => tracing::debug!(
            target: "portcullis::access",
            request_id = ?request_id,
            method = %method,
            route = route.template(),
            path = ?path,
            status = status.as_u16(),
            micros = (seconds * 1e6) as u64,
        ),
        Some((auth_method, reason, principal)) => tracing::info!(
            target: "portcullis::access",
            request_id = ?request_id,
            method = %method,
            route = route.template(),
            path = ?path,
            status = status.as_u16(),
            auth = auth_method.as_str(),
            outcome = reason.result(),
            reason = reason.as_str(),
            principal = principal.as_ref().map(|p| p.kind().as_str()).unwrap_or("none"),
            user = ?principal.as_ref().map(|p| p.username()).unwrap_or(""),
            micros = (seconds * 1e6) as u64,
        ),
    }
    Ok(res)
}

/// The authenticated caller, for handlers behind the gate.
pub struct Caller(pub Principal);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let principal = req.extensions().get::<Principal>().cloned();
        std::future::ready(principal.map(Caller).ok_or_else(|| {
            tracing::error!(path = ?req.path(), "handler reached without a principal");
            ApiError::Internal
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::count_dots;

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
}
