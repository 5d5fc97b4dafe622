//! Portcullis authentication and authorization: who a caller is, and what they may do.
//!
//! This crate knows actix actors but not actix-web, and it never names an HTTP status code:
//! it answers with a [`Principal`] or a [`Reason`], and the server maps those to responses.

pub mod authz;
pub mod key_registry;
pub mod outcome;
pub mod principal;

pub use authz::{Authorizer, Verb};
pub use key_registry::{digest, KeyDigest, KeyRegistry, KeyRegistryHandle};
pub use outcome::{AuthMethod, Reason};
pub use principal::{Principal, PrincipalKind};
