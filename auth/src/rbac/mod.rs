//! Roles (Weaviate's RBAC): the closed set of actions ([`action`]), permission filters
//! ([`filter`]), permissions on the wire and compiled ([`permission`]), roles and the built-in
//! ones ([`role`]), a subject's merged and indexed permissions ([`effective`]), the published
//! policies the request path checks ([`policy`]), and their durable storage ([`store`]) and
//! single writer ([`registry`]).
//!
//! Everything is compiled when a role or an assignment changes; a check on the request path
//! looks up the principal's effective permissions and the asked action's few candidate grants,
//! allocating nothing.

pub mod action;
pub mod effective;
pub mod filter;
pub mod permission;
pub mod policy;
pub mod registry;
pub mod role;
pub mod store;

pub use action::{Action, Domain, ACTION_COUNT};
pub use filter::{Filter, FilterError, FilterKind};
pub use permission::{Grant, Permission, PermissionError, RoleScope};
pub use policy::{Namespace, Policies};
pub use registry::{RoleError, RoleRegistry, SubjectRefusal, UserKinds};
pub use role::{BuiltInRole, CompiledRole, Request};
pub use store::{RoleStore, RoleStoreError};
