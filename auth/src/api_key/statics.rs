//! Static keys replaced at runtime (a configuration reload): the [`ReplaceStaticKeys`]
//! message and what the KeyRegistry does with it.
//!
//! The new set is published before the old one is withdrawn, so a key in both never misses,
//! and every withdrawn answer is gone before the reply: as with a rotation, no request that
//! starts after the acknowledgement is accepted with a removed key.

use std::collections::HashSet;

use actix::prelude::*;
use portcullis_config::StaticApiKeys;

use super::published::Answer;
use super::registry::KeyRegistry;
use crate::digest::{digest, KeyDigest};
use crate::{AuthMethod, Principal, PrincipalKind};

/// What replacing the static keys changed: counts only, never a key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StaticKeyChange {
    /// Keys published that were not before.
    pub added: usize,
    /// Keys that were published and no longer are.
    pub removed: usize,
    /// Keys kept whose user changed.
    pub reassigned: usize,
}

impl StaticKeyChange {
    /// Whether anything changed.
    pub fn is_empty(&self) -> bool {
        *self == StaticKeyChange::default()
    }
}

/// The static keys as (digest, principal) pairs, in the configured order.
pub(super) fn static_entries(keys: Option<&StaticApiKeys>) -> Vec<(KeyDigest, Principal)> {
    keys.map(|keys| {
        keys.pairs()
            .map(|(key, user)| {
                (
                    digest(key.expose().as_bytes()),
                    Principal::new(user, Vec::new(), PrincipalKind::StaticKey),
                )
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Replace the static keys with these (`None`: no static keys).
#[derive(Message)]
#[rtype(result = "StaticKeyChange")]
pub(crate) struct ReplaceStaticKeys {
    pub(crate) entries: Vec<(KeyDigest, Principal)>,
}

impl Handler<ReplaceStaticKeys> for KeyRegistry {
    type Result = MessageResult<ReplaceStaticKeys>;

    fn handle(&mut self, msg: ReplaceStaticKeys, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.replace_static_keys(msg.entries))
    }
}

impl KeyRegistry {
    fn replace_static_keys(&mut self, entries: Vec<(KeyDigest, Principal)>) -> StaticKeyChange {
        let mut change = StaticKeyChange::default();
        let new: HashSet<KeyDigest> = entries.iter().map(|(d, _)| *d).collect();
        // Publish first: a key in both sets answers throughout.
        for (key, principal) in &entries {
            let previous = self.published.0.insert(
                *key,
                Answer {
                    principal: principal.clone(),
                    method: AuthMethod::ApiKeyStatic,
                    db: None,
                },
            );
            match previous {
                Some(old) if old.method == AuthMethod::ApiKeyStatic => {
                    if old.principal.username() != principal.username() {
                        change.reassigned += 1;
                    }
                }
                _ => change.added += 1,
            }
        }
        // Then withdraw every static answer the new set does not hold, before the reply.
        let removed: Vec<KeyDigest> = self
            .published
            .0
            .iter()
            .filter(|answer| {
                answer.method == AuthMethod::ApiKeyStatic && !new.contains(answer.key())
            })
            .map(|answer| *answer.key())
            .collect();
        for key in &removed {
            self.published
                .0
                .remove_if(key, |_, answer| answer.method == AuthMethod::ApiKeyStatic);
        }
        change.removed = removed.len();
        self.static_keys = new.len();
        let mut users: Vec<String> = Vec::new();
        for (_, principal) in &entries {
            if !users.iter().any(|u| u == principal.username()) {
                users.push(principal.username().to_owned());
            }
        }
        self.static_users = users;
        change
    }
}

#[cfg(test)]
mod tests {
    use portcullis_config::Settings;

    use super::*;
    use crate::api_key::{KeyRegistryHandle, UserError, UserStore};
    use crate::{Denied, Reason};

    fn keys(keys: &str, users: &str) -> StaticApiKeys {
        Settings::from_vars([
            ("AUTHENTICATION_APIKEY_ENABLED", "true"),
            ("AUTHENTICATION_APIKEY_ALLOWED_KEYS", keys),
            ("AUTHENTICATION_APIKEY_USERS", users),
        ])
        .expect("valid settings")
        .authentication
        .api_key
        .expect("keys enabled")
    }

    async fn user_of(handle: &KeyRegistryHandle, key: &str) -> Result<String, Denied> {
        handle
            .authenticate(key)
            .await
            .map(|a| a.principal.username().to_owned())
    }

    fn invalid() -> Result<String, Denied> {
        Err(Denied {
            method: AuthMethod::ApiKeyStatic,
            reason: Reason::InvalidKey,
        })
    }

    #[actix::test]
    async fn removed_keys_are_refused_once_the_replacement_is_acknowledged() {
        let handle =
            KeyRegistry::new(Some(&keys("k-old,k-kept,k-moved", "ann,bob,cy"))).start_with_handle();
        assert_eq!(user_of(&handle, "k-old").await, Ok("ann".to_owned()));
        let change = handle
            .replace_static_keys(Some(&keys("k-kept,k-moved,k-new", "bob,dee,eve")))
            .await
            .expect("registry answers");
        assert_eq!(
            change,
            StaticKeyChange {
                added: 1,
                removed: 1,
                reassigned: 1
            }
        );
        // Read from the published answers alone: no message could hide a stale answer.
        assert!(!handle.is_published("k-old"));
        assert_eq!(user_of(&handle, "k-old").await, invalid());
        assert_eq!(user_of(&handle, "k-kept").await, Ok("bob".to_owned()));
        assert_eq!(user_of(&handle, "k-moved").await, Ok("dee".to_owned()));
        assert_eq!(user_of(&handle, "k-new").await, Ok("eve".to_owned()));
        let same = handle
            .replace_static_keys(Some(&keys("k-kept,k-moved,k-new", "bob,dee,eve")))
            .await
            .expect("registry answers");
        assert!(same.is_empty(), "{same:?}");
    }

    #[actix::test]
    async fn no_static_keys_refuses_every_one_and_leaves_database_keys_alone(
    ) -> Result<(), UserError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = UserStore::open(dir.path()).await.expect("store");
        let handle = KeyRegistry::load(Some(&keys("k-1,k-2", "ann")), Some(store))
            .await
            .expect("load")
            .start_with_handle();
        let db_key = handle.create_user("dora").await?;
        assert_eq!(
            user_of(&handle, db_key.expose()).await,
            Ok("dora".to_owned())
        );
        let change = handle.replace_static_keys(None).await?;
        assert_eq!((change.added, change.removed), (0, 2));
        assert_eq!(user_of(&handle, "k-1").await, invalid());
        assert_eq!(user_of(&handle, "k-2").await, invalid());
        assert!(
            handle.is_published(db_key.expose()),
            "database answers stay"
        );
        assert_eq!(
            user_of(&handle, db_key.expose()).await,
            Ok("dora".to_owned())
        );
        // The listing no longer shows the removed static user.
        let listed: Vec<String> = handle.list().await?.into_iter().map(|u| u.id).collect();
        assert_eq!(listed, vec!["dora".to_owned()]);
        Ok(())
    }
}
