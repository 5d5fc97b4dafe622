//! Portcullis authentication and authorization: who a caller is, and what they may do.
//!
//! This crate knows actix actors but not actix-web, and it never names an HTTP status code:
//! it answers with a [`Principal`] or a [`Reason`], and the server maps those to responses.

pub mod api_key;
pub mod authz;
pub mod digest;
pub mod gatekeeper;
pub mod oidc;
pub mod outcome;
pub mod principal;

pub use api_key::{
    valid_user_name, KeyRegistry, KeyRegistryHandle, UserError, UserInfo, UserStore, UserStoreError,
};
pub use authz::{Authorizer, Verb};
pub use digest::{digest, KeyDigest};
pub use gatekeeper::Gatekeeper;
pub use oidc::OidcHandle;
pub use outcome::{AuthMethod, Authenticated, Denied, Reason};
pub use principal::{Principal, PrincipalKind};
