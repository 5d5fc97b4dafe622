//! [`OidcSlot`]: the OpenID Connect handle the gatekeeper judges tokens with, replaceable
//! while the server runs (a configuration reload with a new issuer, client id or claim rules).

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use super::OidcHandle;

/// The current [`OidcHandle`]. Cloning shares it: every clone sees a replacement.
#[derive(Clone)]
pub struct OidcSlot(Arc<ArcSwap<OidcHandle>>);

impl OidcSlot {
    /// A slot holding `handle`.
    pub fn new(handle: OidcHandle) -> Self {
        OidcSlot(Arc::new(ArcSwap::from_pointee(handle)))
    }

    /// The current handle, for one decision: one atomic load, no lock.
    #[inline]
    pub fn load(&self) -> Guard<Arc<OidcHandle>> {
        self.0.load()
    }

    /// The current handle, to keep.
    pub fn current(&self) -> Arc<OidcHandle> {
        self.0.load_full()
    }

    /// Puts `handle` in place of the current one, which is returned (its refresher still
    /// runs: stop it once the requests judging with it are done).
    pub fn replace(&self, handle: OidcHandle) -> Arc<OidcHandle> {
        self.0.swap(Arc::new(handle))
    }
}
