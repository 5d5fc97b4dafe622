//! The KeyRegistry actor: the single owner of every API key the server accepts.
//!
//! The actor is the only writer and the authority. What it has decided it publishes in a
//! shared map (SHA-256 digest of the key -> principal) that request handlers read without a
//! message; a key the map has no answer for is sent to the actor, which judges it. Any change
//! that withdraws a key removes the published answer before the change is acknowledged, so no
//! request that starts after the acknowledgement can see the old answer.
//!
//! Why a digest lookup is not a timing oracle: the map is keyed by SHA-256 of the presented
//! key, so how long a lookup takes depends on digest bytes of the guess, which tell an attacker
//! nothing about a stored key's preimage. The actor's authoritative check compares digests in
//! constant time (`subtle`) and scans every static key without an early exit.

use std::sync::Arc;

use actix::{Actor, Addr, Context, Handler, Message};
use dashmap::DashMap;
use portcullis_config::StaticApiKeys;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::{AuthMethod, Principal, PrincipalKind, Reason};

/// SHA-256 of an API key's bytes; the only form in which keys are held.
pub type KeyDigest = [u8; 32];

/// SHA-256 of a presented or configured key.
pub fn digest(secret: &[u8]) -> KeyDigest {
    Sha256::digest(secret).into()
}

/// The answers the registry has published. Readers never write to it.
#[derive(Clone, Default)]
struct Published(Arc<DashMap<KeyDigest, (Principal, AuthMethod)>>);

/// The actor. Start it with [`KeyRegistry::start_with_handle`].
pub struct KeyRegistry {
    statics: Vec<(KeyDigest, Principal)>,
    published: Published,
}

impl KeyRegistry {
    /// A registry holding the static keys (digests only; the plaintext is not kept).
    pub fn new(static_keys: Option<&StaticApiKeys>) -> Self {
        let statics: Vec<(KeyDigest, Principal)> = static_keys
            .map(|keys| {
                keys.pairs()
                    .map(|(key, user)| {
                        (
                            digest(key.expose().as_bytes()),
                            Principal::new(user, Vec::new(), PrincipalKind::StaticKey),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let published = Published::default();
        for (d, p) in &statics {
            published.0.insert(*d, (p.clone(), AuthMethod::ApiKeyStatic));
        }
        KeyRegistry { statics, published }
    }

    /// Starts the actor on the current arbiter and returns the handle request handlers use.
    pub fn start_with_handle(self) -> KeyRegistryHandle {
        let published = self.published.clone();
        let addr = self.start();
        KeyRegistryHandle { addr, published }
    }

    /// Constant-time search of the static keys: every entry is compared, no early exit.
    fn find_static(&self, presented: &KeyDigest) -> Option<&Principal> {
        let mut found = u32::MAX;
        for (i, (stored, _)) in self.statics.iter().enumerate() {
            // The index is bounded by the number of configured keys, far below u32::MAX.
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            found.conditional_assign(&index, stored.ct_eq(presented));
        }
        self.statics.get(found as usize).map(|(_, p)| p)
    }
}

impl Actor for KeyRegistry {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        tracing::info!(static_keys = self.statics.len(), "key registry started");
    }
}

/// Judge a key the published answers did not cover.
#[derive(Message)]
#[rtype(result = "Result<(Principal, AuthMethod), Reason>")]
pub struct Authenticate {
    /// SHA-256 of the presented key.
    pub digest: KeyDigest,
}

impl Handler<Authenticate> for KeyRegistry {
    type Result = Result<(Principal, AuthMethod), Reason>;

    fn handle(&mut self, msg: Authenticate, _ctx: &mut Self::Context) -> Self::Result {
        match self.find_static(&msg.digest) {
            Some(principal) => {
                let answer = (principal.clone(), AuthMethod::ApiKeyStatic);
                self.published.0.insert(msg.digest, answer.clone());
                Ok(answer)
            }
            None => Err(Reason::InvalidKey),
        }
    }
}

/// What request handlers hold: the actor's address and its published answers.
#[derive(Clone)]
pub struct KeyRegistryHandle {
    addr: Addr<KeyRegistry>,
    published: Published,
}

impl KeyRegistryHandle {
    /// Authenticates a presented API key. A published answer costs one SHA-256 and one map
    /// read; anything else is a message to the actor.
    pub async fn authenticate(&self, key: &str) -> Result<(Principal, AuthMethod), Reason> {
        let presented = digest(key.as_bytes());
        if let Some(answer) = self.published.0.get(&presented) {
            return Ok(answer.value().clone());
        }
        match self.addr.send(Authenticate { digest: presented }).await {
            Ok(verdict) => verdict,
            Err(err) => {
                tracing::error!(error = %err, "key registry did not answer");
                Err(Reason::Internal)
            }
        }
    }

    /// The actor's address, for messages other than authentication.
    pub fn addr(&self) -> &Addr<KeyRegistry> {
        &self.addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_config::Settings;

    fn static_keys(keys: &str, users: &str) -> StaticApiKeys {
        let settings = Settings::from_vars([
            ("AUTHENTICATION_APIKEY_ENABLED", "true"),
            ("AUTHENTICATION_APIKEY_ALLOWED_KEYS", keys),
            ("AUTHENTICATION_APIKEY_USERS", users),
        ])
        .expect("valid settings");
        settings.authentication.api_key.expect("keys enabled")
    }

    #[actix::test]
    async fn accepts_each_static_key_as_its_user() {
        let handle =
            KeyRegistry::new(Some(&static_keys("k-one,k-two", "alice,bob"))).start_with_handle();
        let (p, m) = handle.authenticate("k-one").await.expect("k-one accepted");
        assert_eq!((p.username(), m), ("alice", AuthMethod::ApiKeyStatic));
        let (p, _) = handle.authenticate("k-two").await.expect("k-two accepted");
        assert_eq!(p.username(), "bob");
        assert_eq!(p.kind(), PrincipalKind::StaticKey);
    }

    #[actix::test]
    async fn maps_every_key_to_a_single_user() {
        let handle = KeyRegistry::new(Some(&static_keys("a1,a2,a3", "ops"))).start_with_handle();
        for key in ["a1", "a2", "a3"] {
            let (p, _) = handle.authenticate(key).await.expect("accepted");
            assert_eq!(p.username(), "ops");
        }
    }

    #[actix::test]
    async fn rejects_unknown_and_near_miss_keys() {
        let handle = KeyRegistry::new(Some(&static_keys("secret-key-0001", "alice")))
            .start_with_handle();
        for key in ["", "secret-key-0002", "secret-key-000", "secret-key-00011", "SECRET-KEY-0001"] {
            assert_eq!(
                handle.authenticate(key).await.err(),
                Some(Reason::InvalidKey),
                "key of length {}",
                key.len()
            );
        }
    }

    #[actix::test]
    async fn actor_finds_a_key_that_was_not_published() {
        let registry = KeyRegistry::new(Some(&static_keys("k-one,k-two", "alice,bob")));
        registry.published.0.clear();
        let handle = registry.start_with_handle();
        let (p, _) = handle.authenticate("k-two").await.expect("actor judges it");
        assert_eq!(p.username(), "bob");
        assert!(handle.published.0.contains_key(&digest(b"k-two")));
    }

    #[actix::test]
    async fn registry_without_keys_rejects_everything() {
        let handle = KeyRegistry::new(None).start_with_handle();
        assert_eq!(handle.authenticate("x").await.err(), Some(Reason::InvalidKey));
    }
}
