//! Portcullis configuration: Weaviate-compatible environment variables (and an optional file)
//! parsed into typed, validated [`Settings`], with every problem reported at once.
//!
//! Parsing is a pure function of the variables ([`Settings::from_vars`]); [`Settings::from_env`]
//! applies it to the process environment. Secrets are [`Secret`]s, whose `Debug` and `Display`
//! are redacted, and every secret variable also accepts `NAME_FILE`.

mod cidr;
mod error;
mod parse;
mod secret;
mod settings;
mod source;
mod tls;
pub mod vars;

pub use cidr::{Cidr, CidrError};
pub use error::{ConfigError, Problem};
pub use secret::{Secret, REDACTED};
pub use settings::AuditLog;
pub use settings::GrpcSettings;
pub use settings::RbacSettings;
pub use settings::UserStoreSettings;
pub use settings::{
    AdminList, AuthenticationSettings, AuthorizationSettings, BackendSettings, LogFormat, LogLevel,
    LogSettings, MetricsSettings, OidcSettings, Settings, StaticApiKeys, ThrottleSettings,
    UpstreamSettings, DEFAULT_HTTP_ADDR,
};
pub use tls::{ClientAuth, ClientAuthMode, TlsSettings, DEFAULT_TLS_RELOAD_INTERVAL};
