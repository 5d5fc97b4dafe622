//! The gate's RBAC step for an HTTP request ([`RbacGate::judge`]): the route table's plan, the
//! body read where the resources are in it (bounded by the body limit, then handed on
//! unchanged to the handler or the upstream), the decision and its counting. Lists that
//! Portcullis serves itself get a [`ListFilter`] in the request's extensions and are filtered
//! per item by their handler.

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::dev::{Payload, ServiceRequest};
use actix_web::http::header::CONTENT_ENCODING;
use actix_web::web::{Bytes, BytesMut};
use actix_web::HttpMessage;
use futures_util::StreamExt;
use portcullis_auth::rbac::{Action, Request};
use portcullis_auth::Principal;

use super::body;
use super::enforce::{Enforcer, Refused};
use super::grpc::{self, GrpcNeeds};
use super::need::Need;
use super::resolve;
use super::routes::{plan, Plan};
use crate::error::ApiError;
use crate::grpc::methods::GrpcMethod;
use crate::metrics::Metrics;
use crate::proxy::{SchemaError, Snapshot, UpstreamSchema};

/// What a handler of a filtered list reads from the request's extensions: whether the caller
/// may see an item.
#[derive(Clone)]
pub struct ListFilter {
    enforcer: Arc<Enforcer>,
    principal: Principal,
    action: Action,
    /// The collection whose items are listed (a tenant list's), else `*`.
    collection: Box<str>,
}

impl ListFilter {
    /// The per-item action (which list this is).
    pub fn action(&self) -> Action {
        self.action
    }

    /// Whether the caller may see the item named `name` (a collection, a user; a tenant of
    /// the listed collection).
    #[inline]
    pub fn allows(&self, name: &str) -> bool {
        let values = if self.action == Action::ReadTenants {
            [&*self.collection, name, ""]
        } else {
            [name, "", ""]
        };
        self.allows_values(values)
    }

    /// Whether the caller may see alias `alias` of `collection`.
    pub fn allows_alias(&self, collection: &str, alias: &str) -> bool {
        self.allows_values([collection, alias, ""])
    }

    fn allows_values(&self, values: [&str; 3]) -> bool {
        self.enforcer.allows(
            &self.principal,
            &Request {
                action: self.action,
                values,
            },
        )
    }
}

/// The RBAC step of the gate.
pub struct RbacGate {
    enforcer: Arc<Enforcer>,
    max_body: usize,
    /// In proxy mode: the upstream's aliases and collections ([`resolve`]).
    schema: Option<Arc<UpstreamSchema>>,
}

/// The answer when the upstream's schema cannot be learned: the call is refused, never judged
/// by a guess at what its names are.
fn schema_unknown(err: SchemaError) -> ApiError {
    match err {
        SchemaError::Timeout => ApiError::GatewayTimeout,
        SchemaError::Unreadable => ApiError::BadGateway(
            "the upstream's collections and aliases could not be read to check the call",
        ),
    }
}

impl RbacGate {
    /// The step deciding with `enforcer`, reading bodies up to `max_body` bytes.
    pub fn new(enforcer: Arc<Enforcer>, max_body: usize) -> Self {
        RbacGate {
            enforcer,
            max_body,
            schema: None,
        }
    }

    /// The step resolving aliases and checking auto-schema by the upstream's `schema` (proxy
    /// mode).
    pub fn with_schema(mut self, schema: Arc<UpstreamSchema>) -> Self {
        self.schema = Some(schema);
        self
    }

    /// A snapshot of the upstream's schema that knows every name `needs` asks to look up, or
    /// `None` when there is no upstream or nothing to look up.
    async fn learn(&self, needs: &[Need<'_>]) -> Result<Option<Arc<Snapshot>>, ApiError> {
        let Some(schema) = &self.schema else {
            return Ok(None);
        };
        let names = resolve::names(needs);
        if names.clone().next().is_none() {
            return Ok(None);
        }
        schema
            .knowing(names)
            .await
            .map(Some)
            .map_err(schema_unknown)
    }

    /// Before [`RbacGate::judge_grpc`] (which cannot wait): makes sure the upstream's schema
    /// is known for the names of a unary call's `body`. A body that does not decode is left
    /// to `judge_grpc` to refuse.
    pub async fn learn_grpc(&self, method: GrpcMethod, body: &[u8]) -> Result<(), ApiError> {
        if self.schema.is_none() {
            return Ok(());
        }
        let Ok(Ok(GrpcNeeds::Check(needs))) =
            grpc::message(body).map(|message| grpc::needs(method, message))
        else {
            return Ok(());
        };
        self.learn(&needs).await.map(|_| ())
    }

    /// The enforcer (the gRPC gate decides with it too).
    pub fn enforcer(&self) -> &Arc<Enforcer> {
        &self.enforcer
    }

    /// Decides whether `principal` may make the call `req`, counting the decision.
    pub async fn judge(
        &self,
        metrics: &Metrics,
        principal: &Principal,
        req: &mut ServiceRequest,
        client: IpAddr,
    ) -> Result<(), ApiError> {
        let (kind, mut needs, name, query) = {
            match plan(req.method(), req.path(), req.query_string()) {
                Plan::Open => return Ok(()),
                // The roles API, user management, own-info and the filtered lists decide on
                // the stored roles: none while they were not read (a start with the store down).
                Plan::Handler | Plan::Filtered { .. } if !self.enforcer.policies().loaded() => {
                    return Err(roles_not_read());
                }
                Plan::Handler => return Ok(()),
                Plan::Refuse(message) => return Err(ApiError::BadRequest(message.to_owned())),
                Plan::Unmapped => {
                    return self.count(metrics, self.enforcer.decide_unmapped(principal, client))
                }
                Plan::Check(needs) if needs.overflowed() => {
                    return self.count(metrics, Err(Refused("forbidden".to_owned())))
                }
                Plan::Check(mut needs) => {
                    if let Some(snapshot) = self.learn(needs.as_slice()).await? {
                        resolve::resolve(&snapshot, needs.as_mut_slice());
                    }
                    return self.count(
                        metrics,
                        self.enforcer.decide(principal, needs.as_slice(), client),
                    );
                }
                Plan::Filtered { action, collection } => {
                    let mut collection: Box<str> = collection.as_deref().unwrap_or("*").into();
                    // A tenant list of an alias lists its collection's tenants.
                    if self.schema.is_some() && &*collection != "*" {
                        let mut probe = [Need::tenant(
                            Action::ReadTenants,
                            collection.to_string().into(),
                            "*".into(),
                        )];
                        if let Some(snapshot) = self.learn(&probe).await? {
                            resolve::resolve(&snapshot, &mut probe);
                            collection = probe[0].values[0].as_ref().into();
                        }
                    }
                    // The handler (or, for an upstream's list, the proxy) filters per item.
                    self.enforcer.audit_list(principal, action, client);
                    metrics.observe_authorization(true);
                    req.extensions_mut().insert(ListFilter {
                        enforcer: self.enforcer.clone(),
                        principal: principal.clone(),
                        action,
                        collection,
                    });
                    return Ok(());
                }
                Plan::Body { kind, needs, name } => (
                    kind,
                    needs
                        .as_slice()
                        .iter()
                        .cloned()
                        .map(Need::into_owned)
                        .collect::<Vec<_>>(),
                    name.into_owned(),
                    req.query_string().to_owned(),
                ),
            }
        };
        // A compressed body would be read here as something else than the handler reads.
        if req
            .headers()
            .get(CONTENT_ENCODING)
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
        {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = read_body(req, self.max_body).await?;
        let from_body = body::needs(kind, &name, &query, &bytes);
        // The handler (or the upstream) reads the same bytes.
        req.set_payload(Payload::from(bytes));
        needs.extend(from_body.map_err(|err| ApiError::Unprocessable(err.to_string()))?);
        if let Some(snapshot) = self.learn(&needs).await? {
            resolve::resolve(&snapshot, &mut needs);
            let created = resolve::auto_schema(&snapshot, &needs);
            needs.extend(created);
        }
        self.count(metrics, self.enforcer.decide(principal, &needs, client))
    }

    /// Decides a gRPC call of `method` whose whole request body is `body` (unary calls; a
    /// stream's body is not read and needs everything), counting the decision.
    pub fn judge_grpc(
        &self,
        metrics: &Metrics,
        principal: &Principal,
        method: GrpcMethod,
        body: Option<&[u8]>,
        client: IpAddr,
    ) -> Result<(), ApiError> {
        let needs = match body {
            None => GrpcNeeds::Unmapped,
            Some(body) => grpc::message(body)
                .and_then(|message| grpc::needs(method, message))
                .map_err(|err| ApiError::BadRequest(err.to_string()))?,
        };
        let decision = match needs {
            GrpcNeeds::Unmapped => self.enforcer.decide_unmapped(principal, client),
            GrpcNeeds::Check(mut needs) => {
                if let Some(schema) = &self.schema {
                    if resolve::names(&needs).next().is_some() {
                        // [`RbacGate::learn_grpc`] has just made sure of it.
                        let snapshot = schema
                            .last()
                            .ok_or_else(|| schema_unknown(SchemaError::Unreadable))?;
                        resolve::resolve(&snapshot, &mut needs);
                        let created = resolve::auto_schema(&snapshot, &needs);
                        needs.extend(created);
                    }
                }
                self.enforcer.decide(principal, &needs, client)
            }
        };
        self.count(metrics, decision)
    }

    /// The largest body the RBAC step reads (`PORTCULLIS_MAX_BODY`).
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    fn count(&self, metrics: &Metrics, decision: Result<(), Refused>) -> Result<(), ApiError> {
        metrics.observe_authorization(decision.is_ok());
        decision.map_err(|Refused(message)| {
            // A denial before the stored roles were read is no answer: the caller may hold a
            // role not read yet.
            if self.enforcer.policies().loaded() {
                ApiError::RbacForbidden(message)
            } else {
                roles_not_read()
            }
        })
    }
}

/// 503 while the stored roles were not read (`Policies::loaded`).
fn roles_not_read() -> ApiError {
    ApiError::ServiceUnavailable {
        message: crate::error::ROLES_NOT_READ,
        retry_after: 1,
    }
}

/// The request's body, refused past `limit` bytes (the same limit the handlers apply).
async fn read_body(req: &mut ServiceRequest, limit: usize) -> Result<Bytes, ApiError> {
    let mut payload = req.take_payload();
    let mut buf = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::BadRequest("the request body could not be read".into()))?;
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
