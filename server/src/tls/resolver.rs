//! The certificate every handshake gets: one pair behind an `ArcSwap`, replaced whole by a
//! reload while handshakes read it without a lock.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Hands the current pair to every handshake; [`CertResolver::replace`] swaps it. Connections
/// already established keep the keys they negotiated.
pub(crate) struct CertResolver {
    current: ArcSwap<CertifiedKey>,
}

impl CertResolver {
    pub(crate) fn new(key: Arc<CertifiedKey>) -> Self {
        Self {
            current: ArcSwap::new(key),
        }
    }

    pub(crate) fn replace(&self, key: Arc<CertifiedKey>) {
        self.current.store(key);
    }

    /// The pair new handshakes get.
    pub(crate) fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl std::fmt::Debug for CertResolver {
    // The key is not printed, not even its type.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertResolver").finish_non_exhaustive()
    }
}
