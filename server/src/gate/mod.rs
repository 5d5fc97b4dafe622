//! The gate: the actix-web adapter around the gatekeeper, one middleware in front of every
//! route. It reads the credential from the `Authorization` header (refusing what is not
//! valid HTTP syntax), asks [`Gatekeeper`] who the caller is and whether the route's verb is
//! allowed, maps a denial to an [`ApiError`], counts the outcome, and logs one line per
//! request. The decision itself, and every rule it follows, is the gatekeeper's. The client
//! address, which the gatekeeper's failure throttle and the access log use, is decided once
//! per request by [`TrustedProxies::client_address`].

pub mod caller;
pub mod credential;
pub mod middleware;
pub mod request_id;
pub mod route_table;

pub use caller::Caller;
pub use middleware::{layer, GateLayer, Inner};

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderName;
use actix_web::http::Method;
use actix_web::web;
use portcullis_auth::client::{TrustedProxies, UNKNOWN_PEER};
use portcullis_auth::gatekeeper::{Gatekeeper, Judgement, Pending};
use portcullis_auth::rbac::Policies;
use portcullis_auth::{
    Action, AuthMethod, Authenticated, Denied, Principal, PrincipalKind, Reason,
};
use tracing::Level;

use crate::authz::RbacGate;
use crate::error::ApiError;
use crate::gate::caller::Admission;
use crate::gate::credential::CredentialError;
use crate::gate::request_id::{RequestId, RequestIds, X_REQUEST_ID};
use crate::gate::route_table::{classify, Access};
use crate::logging::{self, Pieces};
use crate::metrics::Metrics;

/// Everything the gate needs, shared by all workers.
pub struct Gate {
    gatekeeper: Gatekeeper,
    metrics: Arc<Metrics>,
    missing_message: String,
    request_ids: RequestIds,
    trusted_proxies: TrustedProxies,
    /// RBAC, when it is on: it decides instead of the admin list.
    rbac: Option<RbacGate>,
    /// The published roles when RBAC is on (`AUTHORIZATION_RBAC_ENABLED`).
    policies: Option<Arc<Policies>>,
    /// The body read deadline (`PORTCULLIS_BODY_TIMEOUT`, [`crate::deadline`]); none unless
    /// [`Gate::with_body_timeout`] sets it.
    body_timeout: Option<Duration>,
}

/// The header a trusted proxy names the client in.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The 503 message while no issuer key set has loaded (the token could not be judged).
const OIDC_UNAVAILABLE: &str =
    "the OpenID Connect issuer's signing keys are not available yet; retry later";

/// The 503 message while the user store shared by replicas has not been read within the
/// revocation bound (database keys only).
const STORE_UNAVAILABLE: &str = "store_unavailable: the user store has not been read within \
     PORTCULLIS_KEY_REVOCATION_BOUND, so database keys are refused; retry later";

/// A refused authentication: what to count and what to answer.
struct Denial {
    denied: Denied,
    error: ApiError,
}

/// How a request's authentication ended, for the access log.
struct AuthOutcome {
    method: AuthMethod,
    reason: Reason,
    principal: Option<Principal>,
}

impl Gate {
    /// Builds the gate around the gatekeeper.
    pub fn new(gatekeeper: Gatekeeper, metrics: Arc<Metrics>) -> Self {
        let missing_message = format!(
            "unauthorized: anonymous access not enabled. Please authenticate through one of the available methods: [{}]",
            gatekeeper.method_names().join(", ")
        );
        Gate {
            gatekeeper,
            metrics,
            missing_message,
            request_ids: RequestIds::new(),
            trusted_proxies: TrustedProxies::default(),
            rbac: None,
            policies: None,
            body_timeout: None,
        }
    }

    /// The gate holding request bodies to this deadline ([`crate::deadline`]).
    pub fn with_body_timeout(mut self, body_timeout: Duration) -> Self {
        self.body_timeout = Some(body_timeout);
        self
    }

    /// The gate deciding with RBAC ([`RbacGate`]) instead of the admin list.
    pub fn with_rbac(mut self, rbac: RbacGate) -> Self {
        self.rbac = Some(rbac);
        self
    }

    /// The RBAC step, when RBAC is on.
    pub(crate) fn rbac(&self) -> Option<&RbacGate> {
        self.rbac.as_ref()
    }

    /// The RBAC decision of a gRPC call [`Gate::admit`] admitted (RBAC on only; with it off
    /// `admit` decided already): `body` is a unary call's whole body, `None` for a stream.
    pub(crate) fn judge_grpc(
        &self,
        principal: &Principal,
        method: crate::grpc::methods::GrpcMethod,
        body: Option<&[u8]>,
        client: IpAddr,
    ) -> Result<(), ApiError> {
        match &self.rbac {
            Some(rbac) => rbac.judge_grpc(&self.metrics, principal, method, body, client),
            None => Ok(()),
        }
    }

    /// The gate judging by these published roles (RBAC on).
    pub fn with_policies(mut self, policies: Arc<Policies>) -> Self {
        self.policies = Some(policies);
        self
    }

    /// The published roles, when RBAC is on.
    pub fn policies(&self) -> Option<&Arc<Policies>> {
        self.policies.as_ref()
    }

    /// The gate reading `X-Forwarded-For` from these proxies (none by default).
    pub fn with_trusted_proxies(mut self, trusted_proxies: TrustedProxies) -> Self {
        self.trusted_proxies = trusted_proxies;
        self
    }

    /// The request's client address: the one rule for the throttle and the access log.
    fn client_address(&self, req: &ServiceRequest) -> IpAddr {
        let peer = req.peer_addr().map_or(UNKNOWN_PEER, |addr| addr.ip());
        self.client_of(peer, || {
            req.headers()
                .get_all(X_FORWARDED_FOR)
                .map(|value| value.as_bytes())
        })
    }

    /// The client address of a request from `peer`, whose `X-Forwarded-For` values
    /// `forwarded_for` yields (asked only when the peer is trusted), by the one rule
    /// ([`TrustedProxies::client_address`]); the gRPC listener asks it too.
    pub(crate) fn client_of<'a, I>(&self, peer: IpAddr, forwarded_for: impl FnOnce() -> I) -> IpAddr
    where
        I: DoubleEndedIterator<Item = &'a [u8]>,
    {
        self.trusted_proxies.client_address(peer, forwarded_for)
    }

    /// The gatekeeper's OpenID Connect slot, when OIDC is on (a configuration reload
    /// replaces its handle).
    pub fn oidc_slot(&self) -> Option<&portcullis_auth::oidc::OidcSlot> {
        self.gatekeeper.oidc_slot()
    }

    /// Whether at least one authentication method can serve now (`/v1/.well-known/ready`).
    pub fn can_serve(&self) -> bool {
        self.gatekeeper.can_serve()
    }

    /// Judges what [`credential::extract`] read from the request: a header that is not valid
    /// syntax here (a 400), the credential by the gatekeeper, for the client at `client`
    /// (its budget of failed credentials) at `now`.
    async fn authenticate(
        &self,
        credential: Result<Option<&str>, CredentialError>,
        client: IpAddr,
        now: Instant,
    ) -> Result<Authenticated, Denial> {
        match self.judge_now(credential, client, now) {
            Ok(verdict) => verdict,
            // Boxed, as RBAC's step below: what waits (an actor's answer; a signature check
            // only after the JwksRefresher was asked about an unknown `kid`) has a future of
            // about a kilobyte, which every caller's future would otherwise carry and move,
            // decided at once or not.
            Err(pending) => Box::pin(self.judge_pending(pending, client, now)).await,
        }
    }

    /// [`Gate::authenticate`] as far as it goes without waiting: the verdict, or the
    /// credential the gatekeeper must wait for ([`Gate::judge_pending`]).
    fn judge_now<'a>(
        &self,
        credential: Result<Option<&'a str>, CredentialError>,
        client: IpAddr,
        now: Instant,
    ) -> Result<Result<Authenticated, Denial>, Pending<'a>> {
        let credential = match credential {
            Ok(credential) => credential,
            Err(err) => {
                return Ok(Err(Denial {
                    denied: Denied {
                        method: AuthMethod::None,
                        reason: Reason::Malformed,
                    },
                    error: ApiError::MalformedAuthorization(err.describe()),
                }))
            }
        };
        match self.gatekeeper.judge_now_from(client, credential, now) {
            Judgement::Decided(verdict) => Ok(self.with_refusal(verdict, client, now)),
            Judgement::Pending(pending) => Err(pending),
        }
    }

    /// Finishes what [`Gate::judge_now`] could not decide at once.
    async fn judge_pending(
        &self,
        pending: Pending<'_>,
        client: IpAddr,
        now: Instant,
    ) -> Result<Authenticated, Denial> {
        let verdict = self
            .gatekeeper
            .judge_pending_from(client, pending, now)
            .await;
        self.with_refusal(verdict, client, now)
    }

    /// A verdict with the answer to its refusal, if it is one ([`Gate::refusal`]).
    fn with_refusal(
        &self,
        verdict: Result<Authenticated, Denied>,
        client: IpAddr,
        now: Instant,
    ) -> Result<Authenticated, Denial> {
        verdict.map_err(|denied| Denial {
            denied,
            error: self.refusal(denied, client, now),
        })
    }

    /// The answer to a denial. The client sees one generic 401 for every invalid
    /// credential; the precise reason goes to the metric and the log.
    fn refusal(&self, denied: Denied, client: IpAddr, now: Instant) -> ApiError {
        match denied.reason {
            Reason::Missing => ApiError::MissingCredential(self.missing_message.clone()),
            Reason::Unconfigured => ApiError::NoSchemeConfigured,
            Reason::IssuerUnavailable => ApiError::ServiceUnavailable {
                message: OIDC_UNAVAILABLE,
                retry_after: self.gatekeeper.retry_after_seconds(),
            },
            Reason::StoreUnavailable => ApiError::ServiceUnavailable {
                message: STORE_UNAVAILABLE,
                retry_after: 1,
            },
            Reason::Throttled => ApiError::TooManyFailures {
                retry_after: self.gatekeeper.throttled_retry_after(client, now),
            },
            Reason::InvalidKey
            | Reason::Revoked
            | Reason::UserInactive
            | Reason::Expired
            | Reason::NotYetValid
            | Reason::BadSignature
            | Reason::UnknownKid
            | Reason::BadIssuer
            | Reason::BadAudience
            | Reason::DisallowedAlg
            | Reason::MissingClaim
            | Reason::MalformedToken => ApiError::InvalidCredential,
            // The gatekeeper never denies with these: `Malformed` is the gate's own (the
            // header's syntax) and `Ok` is an accept.
            Reason::Internal | Reason::Malformed | Reason::Ok => ApiError::Internal,
        }
    }

    /// The whole decision for a call another listener read (gRPC): the credential as
    /// [`credential::from_values`] found it, authenticated and counted as REST counts it, then
    /// `verb` on the database checked for `path`. The principal, or the error REST would
    /// answer, with the method and reason for the access log.
    pub(crate) async fn admit(
        &self,
        credential: Result<Option<&str>, CredentialError>,
        verb: portcullis_auth::Verb,
        path: &str,
        client: IpAddr,
        started: Instant,
    ) -> (Result<Principal, ApiError>, AuthMethod, Reason) {
        let verdict = self.authenticate(credential, client, started).await;
        let seconds = started.elapsed().as_secs_f64();
        match verdict {
            Ok(Authenticated { principal, method }) => {
                self.metrics.observe_auth(method, Reason::Ok, seconds);
                // With RBAC on, the decision needs the call's message: the gRPC gate asks
                // [`Gate::judge_grpc`] once it has read it.
                let decision = match self.rbac {
                    Some(_) => Ok(principal),
                    None => self
                        .check(&principal, Action::Data(verb), path)
                        .map(|()| principal),
                };
                (decision, method, Reason::Ok)
            }
            Err(Denial { denied, error }) => {
                self.metrics
                    .observe_auth(denied.method, denied.reason, seconds);
                (Err(error), denied.method, denied.reason)
            }
        }
    }

    fn authorize(&self, principal: &Principal, access: Access, path: &str) -> Result<(), ApiError> {
        match access {
            Access::Public | Access::CredentialOptional | Access::Authenticated => Ok(()),
            Access::Unrouted => Err(ApiError::NotFound),
            Access::Verb(verb) => self.check(principal, Action::Data(verb), path),
            Access::Users(verb) => self.check(principal, Action::Users(verb), path),
        }
    }

    /// Asks the gatekeeper whether `principal` may perform `action`, and counts the answer.
    fn check(&self, principal: &Principal, action: Action, path: &str) -> Result<(), ApiError> {
        let allowed = self.gatekeeper.allows(principal, action);
        self.metrics.observe_authorization(allowed);
        if allowed {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                user: principal.username().to_owned(),
                verb: action.verb().as_str(),
                path: path.to_owned(),
            })
        }
    }
}

/// The gate's work on one request, around the inner service `next` (the routes), as
/// [`layer`]`(gate)` wraps the application.
pub async fn gate<S, B>(
    mut req: ServiceRequest,
    next: Inner<S>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let started = Instant::now();
    let Some(gate) = req.app_data::<web::Data<Gate>>().cloned() else {
        tracing::error!("gate state missing from the application");
        return Ok(req.error_response(ApiError::Internal).map_into_right_body());
    };
    // First, so the body deadline counts from the headers' arrival (a middleware of its own
    // would cost every request a boxed future).
    let deadline = gate
        .body_timeout
        .and_then(|timeout| Some((timeout, crate::deadline::arm(timeout, &mut req)?)));
    let request_id = gate.request_ids.for_request(req.headers());
    let route = classify(req.method(), req.path());
    let client = gate.client_address(&req);

    let mut outcome: Option<AuthOutcome> = None;
    // Until the response: handlers read the principal through `Caller`.
    let mut admission: Option<Admission> = None;
    // A route that needs no credential still refuses a bad one that is sent.
    let credential = match route.access {
        Access::Public => None,
        Access::CredentialOptional => match credential::extract(req.headers()) {
            Ok(None) => None,
            sent => Some(sent),
        },
        Access::Authenticated | Access::Verb(_) | Access::Users(_) | Access::Unrouted => {
            Some(credential::extract(req.headers()))
        }
    };
    let decision = if let Some(credential) = credential {
        // What is decided at once is not awaited: only a credential that waits makes a future
        // (boxed, as in `Gate::authenticate`), so a request that waits for nothing moves none.
        let verdict = match gate.judge_now(credential, client, started) {
            Ok(verdict) => verdict,
            Err(pending) => Box::pin(gate.judge_pending(pending, client, started)).await,
        };
        // Timed from the request's start: the id and route before it cost tens of nanoseconds,
        // less than the clock read a separate start would take.
        let seconds = started.elapsed().as_secs_f64();
        match verdict {
            Ok(Authenticated { principal, method }) => {
                gate.metrics.observe_auth(method, Reason::Ok, seconds);
                let decision = match (&gate.rbac, route.access) {
                    // Boxed: its future (about two kilobytes: body reading, the upstream's
                    // schema) would otherwise be part of every request's, RBAC on or off.
                    (Some(rbac), Access::Authenticated | Access::Verb(_) | Access::Users(_)) => {
                        Box::pin(rbac.judge(&gate.metrics, &principal, &mut req, client)).await
                    }
                    _ => gate.authorize(&principal, route.access, req.path()),
                };
                admission = Some(Admission::new(req.head(), principal.clone()));
                outcome = Some(AuthOutcome {
                    method,
                    reason: Reason::Ok,
                    principal: Some(principal),
                });
                decision
            }
            Err(Denial { denied, error }) => {
                gate.metrics
                    .observe_auth(denied.method, denied.reason, seconds);
                outcome = Some(AuthOutcome {
                    method: denied.method,
                    reason: denied.reason,
                    principal: None,
                });
                Err(error)
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
    if let Some((timeout, expired)) = &deadline {
        if expired.get() {
            res = crate::deadline::expired(*timeout, res);
        }
    }

    let status = res.status();
    // One clock read for the duration and the access line's timestamp.
    let finished = Instant::now();
    let seconds = finished.duration_since(started).as_secs_f64();
    gate.metrics
        .observe_http(&method, route.id, status, seconds);
    log_access(&AccessLine {
        request_id: &request_id,
        client,
        method: &method,
        route_id: route.id,
        route: route.template(),
        path: res.request().path(),
        status: status.as_u16(),
        outcome: outcome.as_ref(),
        micros: (seconds * 1e6) as u64,
        at: finished,
    });
    res.headers_mut()
        .insert(X_REQUEST_ID, request_id.into_header());
    drop(admission);
    Ok(res)
}

/// The target of the access log's lines.
const ACCESS_TARGET: &str = "portcullis::access";

/// What one request's access line says.
struct AccessLine<'a> {
    request_id: &'a RequestId,
    client: IpAddr,
    method: &'a Method,
    /// The route's row ([`route_table::RouteMatch::id`]) and template.
    route_id: usize,
    route: &'static str,
    path: &'a str,
    status: u16,
    outcome: Option<&'a AuthOutcome>,
    micros: u64,
    /// When the request finished (the line's timestamp).
    at: Instant,
}

/// Writes a request's access line: at info when its credential was judged, at debug for a
/// route that needed none. Formatted here and queued ([`logging::write_line`]), the same
/// bytes tracing's formatter would write; through tracing when that output is not installed.
fn log_access(access: &AccessLine<'_>) {
    let AccessLine {
        request_id,
        client,
        method,
        route,
        path,
        status,
        outcome,
        micros,
        at,
        ..
    } = *access;
    match outcome {
        None => {
            if !logging::enabled(
                Level::DEBUG,
                || tracing::event_enabled!(target: ACCESS_TARGET, Level::DEBUG),
            ) {
                return;
            }
            let direct = logging::write_line(Level::DEBUG, ACCESS_TARGET, at, |line| {
                PIECES.with(|pieces| {
                    let mut pieces = pieces.try_borrow_mut().ok();
                    let pieces = pieces.as_deref_mut();
                    line.verbatim_debug("request_id", request_id.as_bytes());
                    line.ip("client", client);
                    request_fields(line, pieces.map(|p| &mut p.0), access);
                    line.u64("micros", micros);
                })
            });
            if !direct {
                tracing::debug!(
                    target: ACCESS_TARGET,
                    request_id = ?request_id.header(),
                    client = %client,
                    method = %method,
                    route,
                    path = ?path,
                    status,
                    micros,
                );
            }
        }
        Some(AuthOutcome {
            method: auth_method,
            reason,
            principal,
        }) => {
            if !logging::enabled(
                Level::INFO,
                || tracing::event_enabled!(target: ACCESS_TARGET, Level::INFO),
            ) {
                return;
            }
            let kind = principal.as_ref().map(|p| p.kind());
            let user = principal.as_ref().map_or("", |p| p.username());
            let direct = logging::write_line(Level::INFO, ACCESS_TARGET, at, |line| {
                PIECES.with(|pieces| {
                    let mut pieces = pieces.try_borrow_mut().ok();
                    let (route_pieces, outcome_pieces) = match pieces.as_deref_mut() {
                        Some((route, outcome)) => (Some(route), Some(outcome)),
                        None => (None, None),
                    };
                    line.verbatim_debug("request_id", request_id.as_bytes());
                    line.ip("client", client);
                    request_fields(line, route_pieces, access);
                    outcome_fields(line, outcome_pieces, *auth_method, *reason, kind);
                    line.debug_str("user", user);
                    line.u64("micros", micros);
                })
            });
            if !direct {
                tracing::info!(
                    target: ACCESS_TARGET,
                    request_id = ?request_id.header(),
                    client = %client,
                    method = %method,
                    route,
                    path = ?path,
                    status,
                    auth = auth_method.as_str(),
                    outcome = reason.result(),
                    reason = reason.as_str(),
                    principal = kind.map_or("none", PrincipalKind::as_str),
                    user = ?user,
                    micros,
                );
            }
        }
    }
}

thread_local! {
    /// The access line's pieces formatted on this worker ([`logging::Line::cached`]): the
    /// request's fields by route and method, the outcome's by method, reason and principal.
    static PIECES: RefCell<(Pieces, Pieces)> = RefCell::new(Default::default());
}

/// The methods whose access-line fields are formatted once; any other is written each time.
const PIECE_METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
    Method::CONNECT,
    Method::TRACE,
];

/// `method`, `route`, `path` and `status`: the first two (and the path when it is the route's
/// template, as for every literal route) from a piece kept per route and method.
#[inline(always)]
fn request_fields(
    line: &mut logging::Line<'_>,
    pieces: Option<&mut Pieces>,
    access: &AccessLine<'_>,
) {
    let AccessLine {
        method,
        route,
        path,
        ..
    } = *access;
    let same_path = path == route;
    let method_slot = PIECE_METHODS.iter().position(|m| m == method);
    match (pieces, method_slot) {
        (Some(pieces), Some(method_slot)) => {
            let slot =
                (access.route_id * PIECE_METHODS.len() + method_slot) * 2 + usize::from(same_path);
            line.cached(pieces, slot, |line| {
                line.display("method", method.as_str());
                line.str("route", route);
                if same_path {
                    line.debug_str("path", path);
                }
            });
            if !same_path {
                line.debug_str("path", path);
            }
        }
        _ => {
            line.display("method", method.as_str());
            line.str("route", route);
            line.debug_str("path", path);
        }
    }
    line.u64("status", u64::from(access.status));
}

/// `auth`, `outcome`, `reason` and `principal`, from a piece kept per combination.
#[inline(always)]
fn outcome_fields(
    line: &mut logging::Line<'_>,
    pieces: Option<&mut Pieces>,
    method: AuthMethod,
    reason: Reason,
    kind: Option<PrincipalKind>,
) {
    let write = |line: &mut logging::Line<'_>| {
        line.str("auth", method.as_str());
        line.str("outcome", reason.result());
        line.str("reason", reason.as_str());
        line.str("principal", kind.map_or("none", PrincipalKind::as_str));
    };
    match pieces {
        Some(pieces) => {
            let kind_slot = match kind {
                None => 0,
                Some(PrincipalKind::StaticKey) => 1,
                Some(PrincipalKind::DbUser) => 2,
                Some(PrincipalKind::Oidc) => 3,
                Some(PrincipalKind::Anonymous) => 4,
            };
            let slot = (method.index() * Reason::ALL.len() + reason.index()) * 5 + kind_slot;
            line.cached(pieces, slot, write);
        }
        None => write(line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::route_table::{template_of, ROUTE_SLOTS};
    use crate::logging::{Line, LineFormat};
    use std::time::SystemTime;

    /// The fields of a line as [`log_access`] writes them, with `pieces` or without.
    fn fields(
        format: LineFormat,
        pieces: Option<&mut (Pieces, Pieces)>,
        access: &AccessLine<'_>,
    ) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut line = Line::begin(
            &mut buf,
            format,
            Level::INFO,
            ACCESS_TARGET,
            SystemTime::UNIX_EPOCH,
        );
        line.u64("first", 1);
        let (route_pieces, outcome_pieces) = match pieces {
            Some((route, outcome)) => (Some(route), Some(outcome)),
            None => (None, None),
        };
        request_fields(&mut line, route_pieces, access);
        if let Some(outcome) = access.outcome {
            let kind = outcome.principal.as_ref().map(|p| p.kind());
            outcome_fields(
                &mut line,
                outcome_pieces,
                outcome.method,
                outcome.reason,
                kind,
            );
        }
        line.finish();
        buf
    }

    #[test]
    fn a_request_moves_a_small_future_whatever_the_slow_paths_hold() {
        // Every request's future is moved into the connection's state; the futures of what
        // waits (an actor's answer, a signature check, RBAC's body reading: kilobytes) are
        // boxed when they are needed instead of making every request's future that large.
        let routes = actix_web::dev::fn_service(|req: ServiceRequest| async move {
            Ok::<_, actix_web::Error>(req.into_response(actix_web::HttpResponse::Ok().finish()))
        });
        let req = actix_web::test::TestRequest::default().to_srv_request();
        let future = gate(req, Inner::new(routes));
        let size = std::mem::size_of_val(&future);
        assert!(size <= 1024, "the gate's future is {size} bytes");
    }

    #[test]
    fn every_piece_is_the_bytes_of_its_fields() {
        let request_id = RequestIds::new().for_request(&Default::default());
        let mut methods = PIECE_METHODS.to_vec();
        methods.push(Method::from_bytes(b"PROPFIND").unwrap());
        let principals = [
            None,
            Some(Principal::anonymous()),
            Some(Principal::new("ann", vec![], PrincipalKind::StaticKey)),
            Some(Principal::new("bob", vec![], PrincipalKind::DbUser)),
            Some(Principal::new("cy", vec![], PrincipalKind::Oidc)),
        ];
        let mut outcomes = vec![None];
        for method in AuthMethod::ALL {
            for reason in Reason::ALL {
                for principal in &principals {
                    outcomes.push(Some(AuthOutcome {
                        method,
                        reason,
                        principal: principal.clone(),
                    }));
                }
            }
        }
        for format in [LineFormat::Text, LineFormat::Json] {
            let mut pieces = <(Pieces, Pieces)>::default();
            // Twice: the second round copies every piece the first one formatted.
            for _ in 0..2 {
                for route_id in 0..ROUTE_SLOTS {
                    let route = template_of(route_id);
                    for method in &methods {
                        for path in [route, "/v1/other", "/v1/\"odd\""] {
                            for outcome in
                                [&outcomes[0], &outcomes[(route_id * 7) % outcomes.len()]]
                            {
                                let access = AccessLine {
                                    request_id: &request_id,
                                    client: IpAddr::from([127, 0, 0, 1]),
                                    method,
                                    route_id,
                                    route,
                                    path,
                                    status: 200,
                                    outcome: outcome.as_ref(),
                                    micros: 5,
                                    at: Instant::now(),
                                };
                                assert_eq!(
                                    fields(format, Some(&mut pieces), &access),
                                    fields(format, None, &access),
                                    "{format:?} {method} {route} {path}"
                                );
                            }
                        }
                    }
                }
                for outcome in &outcomes {
                    let access = AccessLine {
                        request_id: &request_id,
                        client: IpAddr::from([127, 0, 0, 1]),
                        method: &Method::GET,
                        route_id: 4,
                        route: template_of(4),
                        path: template_of(4),
                        status: 401,
                        outcome: outcome.as_ref(),
                        micros: 5,
                        at: Instant::now(),
                    };
                    assert_eq!(
                        fields(format, Some(&mut pieces), &access),
                        fields(format, None, &access),
                        "{format:?}"
                    );
                }
            }
        }
    }
}
