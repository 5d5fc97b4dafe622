//! The TLS settings of the listeners: certificate and key files, client certificates, the
//! metrics listener's choice, and how often the files are checked for changes.

use std::path::PathBuf;
use std::time::Duration;

use crate::vars;

/// How often the certificate and key files are checked for changes by default.
pub const DEFAULT_TLS_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// TLS on the HTTP and gRPC listeners (and the metrics listener when `metrics` is true).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `PORTCULLIS_TLS_CERT_FILE`: the certificate chain in PEM, leaf first.
    pub cert_file: PathBuf,
    /// `PORTCULLIS_TLS_KEY_FILE`: the certificate's private key in PEM.
    pub key_file: PathBuf,
    /// `PORTCULLIS_TLS_CLIENT_CA_FILE` and `PORTCULLIS_TLS_CLIENT_AUTH`: client certificates,
    /// or `None` when none are asked for.
    pub client_auth: Option<ClientAuth>,
    /// `PORTCULLIS_METRICS_TLS`, default off: whether the metrics listener speaks TLS too.
    pub metrics: bool,
    /// `PORTCULLIS_TLS_RELOAD_INTERVAL`, default 5 s: how often the files are checked for
    /// changes (SIGHUP reloads them at once).
    pub reload_interval: Duration,
}

/// Client certificates: the CA they are verified against and whether one is required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuth {
    /// `PORTCULLIS_TLS_CLIENT_CA_FILE`: PEM CA certificates.
    pub ca_file: PathBuf,
    /// `PORTCULLIS_TLS_CLIENT_AUTH`, default [`ClientAuthMode::Optional`].
    pub mode: ClientAuthMode,
}

/// Whether a client must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMode {
    /// A certificate is verified when the client sends one; clients without one are served.
    Optional,
    /// A client without a valid certificate fails the handshake.
    Require,
}

impl ClientAuthMode {
    /// The variable's spelling: `optional` or `require`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Optional => "optional",
            Self::Require => "require",
        }
    }
}

/// The start-up log's lines for TLS (file names only; the files are not secrets' values).
pub(crate) fn describe(tls: Option<&TlsSettings>) -> Vec<(&'static str, String)> {
    let Some(tls) = tls else {
        return vec![(vars::TLS_CERT_FILE, "off".to_owned())];
    };
    let mut lines = vec![
        (vars::TLS_CERT_FILE, tls.cert_file.display().to_string()),
        (vars::TLS_KEY_FILE, tls.key_file.display().to_string()),
    ];
    if let Some(client) = &tls.client_auth {
        lines.push((
            vars::TLS_CLIENT_CA_FILE,
            client.ca_file.display().to_string(),
        ));
        lines.push((vars::TLS_CLIENT_AUTH, client.mode.as_str().to_owned()));
    }
    lines.push((
        vars::METRICS_TLS,
        if tls.metrics { "on" } else { "off" }.to_owned(),
    ));
    lines.push((
        vars::TLS_RELOAD_INTERVAL,
        format!("{:?}", tls.reload_interval),
    ));
    lines
}
