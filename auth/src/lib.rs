//! Portcullis authentication and authorization: who a caller is, and what they may do.
//!
//! This crate knows actix actors but not actix-web, and it never names an HTTP status code:
//! the [`Gatekeeper`] answers every listener with a [`Principal`] ([`Authenticated`]) or a
//! [`Denied`] with its [`Reason`], and the server maps those to responses.
//!
//! - `gatekeeper.rs`: the decision, for every protocol;
//! - `api_key/`: the KeyRegistry actor, its handle, the user store and the key format;
//! - `oidc/`: the JwksRefresher actor and the token verifier;
//! - `authz.rs`: the admin list; `rbac/`: roles (Weaviate's RBAC), compiled for the request path;
//! - `principal.rs`, `outcome.rs`: what a decision says;
//! - `client.rs`: the client address (trusted proxies); `throttle.rs`: the budget of failed
//!   credential checks per client;
//! - `digest.rs`: SHA-256 of credentials and the maps keyed by it;
//! - `data_dir.rs`: the modes of the data directory and the SQLite files.

pub mod api_key;
pub mod authz;
pub mod client;
pub mod data_dir;
pub mod digest;
pub mod gatekeeper;
pub mod oidc;
pub mod outcome;
pub mod principal;
pub mod rbac;
pub mod throttle;

pub use api_key::{
    valid_user_name, KeyRegistry, KeyRegistryHandle, SharedUserStore, UserError, UserInfo,
    UserStore, UserStoreError,
};
pub use authz::{Action, Authorizer, Verb};
pub use digest::{digest, KeyDigest};
pub use gatekeeper::Gatekeeper;
pub use oidc::OidcHandle;
pub use outcome::{AuthMethod, Authenticated, Denied, Reason};
pub use principal::{Principal, PrincipalKind};
