//! RBAC enforcement: what each call needs ([`routes`], [`body`]), as [`need::Need`]s checked
//! against the published [`Policies`](portcullis_auth::rbac::Policies), and the audit log of
//! every decision. In proxy mode, aliases are checked as their collections and auto-schema
//! writes also need `create_collections` ([`resolve`]). Used by the gate when RBAC is on; the admin-list path does not come here.

pub mod body;
pub mod enforce;
pub mod grpc;
pub mod http;
pub mod need;
pub mod resolve;
pub mod routes;

#[cfg(test)]
mod tests;

pub use enforce::{Enforcer, Refused};
pub use http::{ListFilter, RbacGate};
pub use need::{Need, Needs};
pub use routes::{plan, BodyKind, Plan};
