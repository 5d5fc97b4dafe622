//! A certificate chain and its private key read from their PEM files and checked to belong
//! together, the way start-up and every reload read them.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::{expiry, TlsError};

/// A usable certificate chain and key, and the leaf's expiry.
pub(crate) struct LoadedPair {
    /// What the resolver hands to handshakes.
    pub(crate) key: Arc<CertifiedKey>,
    /// The leaf's `notAfter` (Unix seconds), when it could be read.
    pub(crate) not_after: Option<i64>,
}

/// Reads and checks the pair. Errors name the file at fault (both for a mismatch) and never
/// quote the key file's content.
pub(crate) fn load(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<LoadedPair, TlsError> {
    let chain = read_chain(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|err| TlsError::Key {
        file: key_file.to_path_buf(),
        reason: key_reason(&err),
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|err| TlsError::Key {
            file: key_file.to_path_buf(),
            reason: format!("the key cannot be used for TLS ({err})"),
        })?;
    let not_after = chain.first().and_then(|leaf| expiry::not_after(leaf));
    let certified = CertifiedKey::new(chain, signing_key);
    // Unknown consistency is refused too: a pair that cannot be checked is not served.
    if certified.keys_match().is_err() {
        return Err(TlsError::Mismatch {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
        });
    }
    warn_if_readable_by_others(key_file);
    Ok(LoadedPair {
        key: Arc::new(certified),
        not_after,
    })
}

/// Every certificate in a PEM file (a chain, leaf first; or a client CA bundle).
pub(crate) fn read_chain(file: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(file)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|err| TlsError::Certificates {
            file: file.to_path_buf(),
            reason: match err {
                pem::Error::Io(err) => err.to_string(),
                other => format!("it is not valid PEM ({other})"),
            },
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificates {
            file: file.to_path_buf(),
            reason: "it holds no CERTIFICATE block".to_owned(),
        });
    }
    Ok(certs)
}

/// Why a key file could not be read, in words that quote none of its content.
fn key_reason(err: &pem::Error) -> String {
    match err {
        pem::Error::Io(err) => err.to_string(),
        pem::Error::NoItemsFound => "it holds no PRIVATE KEY block".to_owned(),
        _ => "it is not a valid PEM private key".to_owned(),
    }
}

/// A key file others may read is worth a warning, not a refusal (containers often mount
/// secrets 0644 inside a private volume).
fn warn_if_readable_by_others(key_file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(key_file) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                key_file = %key_file.display(),
                mode = format!("{mode:04o}"),
                "the TLS key file can be read by other users than its owner; chmod 0600 it"
            );
        }
    }
}
