//! TLS on the listeners (docs/tls.md): the certificate pair read at start-up and served to every
//! handshake through a swappable resolver, the rustls configurations of the HTTP, gRPC and
//! metrics listeners (TLS 1.2 and 1.3 only, ALPN, client certificates), and the reloads that
//! replace the pair when its files change or on SIGHUP, refusing a bad one.

mod expiry;
mod pair;
pub mod preface;
mod probe;
mod reload;
mod resolver;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

use portcullis_config::{ClientAuthMode, TlsSettings};
use prometheus::{Gauge, IntCounterVec, Opts, Registry};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{NoClientAuth, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};

pub use probe::probe_config;
pub use reload::ReloadTrigger;
use resolver::CertResolver;

/// ALPN of the HTTP listener, in order of preference.
const HTTP_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];
/// ALPN of the gRPC listener: gRPC is HTTP/2 only.
const GRPC_ALPN: [&[u8]; 1] = [b"h2"];

/// Why TLS could not be set up or a reload was refused. Messages name files, never contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file could not be read or holds no certificate.
    #[error("cannot use the certificates in {}: {reason}", file.display())]
    Certificates {
        /// The file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key file could not be read or its key cannot be used.
    #[error("cannot use the private key in {}: {reason}", file.display())]
    Key {
        /// The file.
        file: PathBuf,
        /// What is wrong with it (never its content).
        reason: String,
    },
    /// The key does not belong to the certificate.
    #[error(
        "the private key in {} does not match the certificate in {}",
        key_file.display(),
        cert_file.display()
    )]
    Mismatch {
        /// The certificate file.
        cert_file: PathBuf,
        /// The key file.
        key_file: PathBuf,
    },
    /// The client CA file could not be used to verify client certificates.
    #[error("cannot verify client certificates with {}: {reason}", file.display())]
    ClientCa {
        /// The file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration refused: {0}")]
    Config(#[from] rustls::Error),
    /// The reload metrics could not be created.
    #[error("the TLS metrics could not be created: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The listeners' TLS: settings, the current pair, the client verifier and the reload metrics.
pub struct Tls {
    settings: TlsSettings,
    provider: Arc<CryptoProvider>,
    resolver: Arc<CertResolver>,
    client_verifier: Arc<dyn ClientCertVerifier>,
    ticketer: Arc<dyn rustls::server::ProducesTickets>,
    reloads: IntCounterVec,
    expiry: Gauge,
}

impl Tls {
    /// Reads the certificate, key and client CA files named by `settings`. A pair whose key
    /// does not match its certificate is refused, naming both files.
    pub fn load(settings: &TlsSettings) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let loaded = pair::load(&settings.cert_file, &settings.key_file, &provider)?;
        let client_verifier = match &settings.client_auth {
            None => Arc::new(NoClientAuth) as Arc<dyn ClientCertVerifier>,
            Some(client) => {
                let ca_error = |reason: String| TlsError::ClientCa {
                    file: client.ca_file.clone(),
                    reason,
                };
                let mut roots = RootCertStore::empty();
                for cert in
                    pair::read_chain(&client.ca_file).map_err(|err| ca_error(err.to_string()))?
                {
                    roots
                        .add(cert)
                        .map_err(|err| ca_error(format!("a certificate is unusable ({err})")))?;
                }
                let builder =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                let builder = match client.mode {
                    ClientAuthMode::Optional => builder.allow_unauthenticated(),
                    ClientAuthMode::Require => builder,
                };
                builder.build().map_err(|err| ca_error(err.to_string()))?
            }
        };
        let reloads = IntCounterVec::new(
            Opts::new(
                "portcullis_tls_reloads_total",
                "Attempts to replace the TLS certificate and key, by result.",
            ),
            &["result"],
        )?;
        for result in reload::ReloadResult::ALL {
            reloads.with_label_values(&[result.as_str()]);
        }
        let expiry = Gauge::new(
            "portcullis_tls_certificate_expiry_timestamp_seconds",
            "The notAfter of the served leaf certificate, in Unix seconds.",
        )?;
        if let Some(not_after) = loaded.not_after {
            expiry.set(not_after as f64);
        }
        Ok(Self {
            settings: settings.clone(),
            provider,
            resolver: Arc::new(CertResolver::new(loaded.key)),
            client_verifier,
            // Stateless tickets (keys rotated by rustls every 6 hours) let a client resume on
            // any worker and more than once; the stateful cache's TLS 1.3 tickets are
            // single-use. No early data is accepted, so a replayed ticket gains nothing.
            ticketer: rustls::crypto::ring::Ticketer::new()?,
            reloads,
            expiry,
        })
    }

    /// The HTTP listener's configuration: ALPN `h2` and `http/1.1`, client certificates as set.
    pub fn http_config(&self) -> Result<ServerConfig, TlsError> {
        self.config(&HTTP_ALPN, self.client_verifier.clone())
    }

    /// The gRPC listener's configuration: ALPN `h2`, client certificates as set.
    pub fn grpc_config(&self) -> Result<ServerConfig, TlsError> {
        self.config(&GRPC_ALPN, self.client_verifier.clone())
    }

    /// The metrics listener's configuration: the same certificate, no client certificates
    /// (scrapers are told apart by the listener's private address, not by certificates).
    pub fn metrics_config(&self) -> Result<ServerConfig, TlsError> {
        self.config(&[b"http/1.1"], Arc::new(NoClientAuth))
    }

    /// Whether the metrics listener speaks TLS (`PORTCULLIS_METRICS_TLS=on`).
    pub fn metrics_listener(&self) -> bool {
        self.settings.metrics
    }

    /// Registers `portcullis_tls_reloads_total` and the expiry gauge on `registry`.
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.reloads.clone()))?;
        registry.register(Box::new(self.expiry.clone()))
    }

    /// Re-reads the pair and serves it from the next handshake on, or refuses it (logged,
    /// counted) and keeps serving the current one. Established connections are not touched.
    pub fn reload(&self, trigger: ReloadTrigger) -> Result<(), TlsError> {
        reload::reload(self, trigger)
    }

    /// Starts the reloads on the current tokio runtime: the files are polled every
    /// `PORTCULLIS_TLS_RELOAD_INTERVAL`, and SIGHUP reloads at once.
    pub fn spawn_reloads(self: &Arc<Self>) {
        tokio::spawn(reload::watch(self.clone()));
    }

    fn config(
        &self,
        alpn: &[&[u8]],
        verifier: Arc<dyn ClientCertVerifier>,
    ) -> Result<ServerConfig, TlsError> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(self.resolver.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config.ticketer = self.ticketer.clone();
        Ok(config)
    }
}
