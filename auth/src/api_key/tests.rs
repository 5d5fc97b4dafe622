//! The KeyRegistry through its handle: keys judged, users changed, and every change visible
//! to the very next request.

use std::path::Path;

use portcullis_config::{Settings, StaticApiKeys};

use super::*;
use crate::{AuthMethod, Authenticated, Denied, PrincipalKind, Reason};

fn static_keys(keys: &str, users: &str) -> StaticApiKeys {
    let settings = Settings::from_vars([
        ("AUTHENTICATION_APIKEY_ENABLED", "true"),
        ("AUTHENTICATION_APIKEY_ALLOWED_KEYS", keys),
        ("AUTHENTICATION_APIKEY_USERS", users),
    ])
    .expect("valid settings");
    settings.authentication.api_key.expect("keys enabled")
}

async fn with_db(dir: &Path, keys: Option<&StaticApiKeys>) -> KeyRegistryHandle {
    let store = UserStore::open(dir).await.expect("store");
    KeyRegistry::load(keys, Some(store))
        .await
        .expect("load")
        .start_with_handle()
}

/// The user a key authenticates as, or `""`.
fn user_of(r: Result<Authenticated, Denied>) -> String {
    r.map(|a| a.principal.username().to_owned())
        .unwrap_or_default()
}

fn denied(method: AuthMethod, reason: Reason) -> Option<Denied> {
    Some(Denied { method, reason })
}

#[actix::test]
async fn accepts_each_static_key_as_its_user() {
    let handle =
        KeyRegistry::new(Some(&static_keys("k-one,k-two", "alice,bob"))).start_with_handle();
    let one = handle.authenticate("k-one").await.expect("k-one accepted");
    assert_eq!(
        (one.principal.username(), one.method),
        ("alice", AuthMethod::ApiKeyStatic)
    );
    let two = handle.authenticate("k-two").await.expect("k-two accepted");
    assert_eq!(two.principal.username(), "bob");
    assert_eq!(two.principal.kind(), PrincipalKind::StaticKey);
}

#[actix::test]
async fn maps_every_key_to_a_single_user() {
    let handle = KeyRegistry::new(Some(&static_keys("a1,a2,a3", "ops"))).start_with_handle();
    for key in ["a1", "a2", "a3"] {
        assert_eq!(user_of(handle.authenticate(key).await), "ops");
    }
}

#[actix::test]
async fn rejects_unknown_and_near_miss_keys() {
    let handle =
        KeyRegistry::new(Some(&static_keys("secret-key-0001", "alice"))).start_with_handle();
    for key in [
        "",
        "secret-key-0002",
        "secret-key-000",
        "secret-key-00011",
        "SECRET-KEY-0001",
    ] {
        assert_eq!(
            handle.authenticate(key).await.err(),
            denied(AuthMethod::ApiKeyStatic, Reason::InvalidKey),
            "key of length {}",
            key.len()
        );
    }
}

#[actix::test]
async fn database_keys_are_judged_by_the_actor_then_published() -> Result<(), UserError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let h = with_db(dir.path(), None).await;
    let key = h.create_user("hank").await?;
    assert!(
        !h.is_published(key.expose()),
        "not published before first use"
    );
    assert!(
        matches!(h.lookup(key.expose()), KeyLookup::Unjudged(_)),
        "a miss needs the actor"
    );
    assert_eq!(user_of(h.authenticate(key.expose()).await), "hank");
    assert!(
        h.is_published(key.expose()),
        "published after the actor accepted it"
    );
    let KeyLookup::Decided(Ok(hit)) = h.lookup(key.expose()) else {
        panic!("a published key is answered without the actor");
    };
    assert_eq!(hit.principal.username(), "hank");
    Ok(())
}

#[actix::test]
async fn database_keys_work_until_rotated_deactivated_or_deleted() -> Result<(), UserError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let h = with_db(dir.path(), None).await;
    let key = h.create_user("carol").await?;
    let key = key.expose();
    assert_eq!(user_of(h.authenticate(key).await), "carol");
    assert_eq!(
        h.authenticate(key).await.map(|a| a.method).ok(),
        Some(AuthMethod::ApiKeyDb)
    );

    let rotated = h.rotate_key("carol").await?;
    assert_eq!(
        h.authenticate(key).await.err(),
        denied(AuthMethod::ApiKeyDb, Reason::InvalidKey)
    );
    assert_ne!(
        &rotated.id()[..3],
        &key[4..7],
        "first letters change (almost surely)"
    );
    assert_eq!(user_of(h.authenticate(rotated.expose()).await), "carol");

    h.deactivate("carol", "root", false).await?;
    assert_eq!(
        h.authenticate(rotated.expose()).await.err(),
        denied(AuthMethod::ApiKeyDb, Reason::UserInactive)
    );
    h.activate("carol").await?;
    assert_eq!(user_of(h.authenticate(rotated.expose()).await), "carol");

    h.delete("carol", "root").await?;
    assert_eq!(
        h.authenticate(rotated.expose()).await.err(),
        denied(AuthMethod::ApiKeyDb, Reason::InvalidKey)
    );
    Ok(())
}

#[actix::test]
async fn a_revoked_key_stays_revoked_after_activation_until_rotation() -> Result<(), UserError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let h = with_db(dir.path(), None).await;
    let key = h.create_user("dave").await?;
    h.deactivate("dave", "root", true).await?;
    h.activate("dave").await?;
    assert_eq!(
        h.authenticate(key.expose()).await.err(),
        denied(AuthMethod::ApiKeyDb, Reason::Revoked)
    );
    let rotated = h.rotate_key("dave").await?;
    assert_eq!(user_of(h.authenticate(rotated.expose()).await), "dave");
    Ok(())
}

#[actix::test]
async fn management_errors_name_the_rule() -> Result<(), UserError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let h = with_db(dir.path(), Some(&static_keys("static-key", "envuser"))).await;
    h.create_user("erin").await?;
    assert_eq!(
        h.create_user("erin").await.err(),
        Some(UserError::Exists("erin".into()))
    );
    assert_eq!(
        h.create_user("envuser").await.err(),
        Some(UserError::StaticUser("envuser".into()))
    );
    assert_eq!(
        h.create_user("anonymous").await.err(),
        Some(UserError::Reserved("anonymous".into()))
    );
    for bad in ["", "1abc", "a b", "a:b", "аdmin", &"a".repeat(129)] {
        assert_eq!(
            h.create_user(bad).await.err(),
            Some(UserError::BadName),
            "{bad:?}"
        );
    }
    assert_eq!(
        h.rotate_key("nobody").await.err(),
        Some(UserError::NotFound("nobody".into()))
    );
    assert_eq!(
        h.rotate_key("envuser").await.err(),
        Some(UserError::StaticUser("envuser".into()))
    );
    assert_eq!(
        h.deactivate("erin", "erin", false).await.err(),
        Some(UserError::SelfAction("deactivate"))
    );
    assert_eq!(
        h.activate("erin").await.err(),
        Some(UserError::AlreadyActive("erin".into()))
    );
    Ok(())
}

#[actix::test]
async fn malformed_database_keys_are_refused_without_a_lookup() -> Result<(), UserError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let h = with_db(dir.path(), None).await;
    let key = h.create_user("frank").await?;
    let mut bad = key.expose().as_bytes().to_vec();
    bad[30] = if bad[30] == b'x' { b'y' } else { b'x' };
    let bad = String::from_utf8(bad).expect("ascii");
    assert_eq!(
        h.authenticate(&bad).await.err(),
        denied(AuthMethod::ApiKeyDb, Reason::InvalidKey)
    );
    Ok(())
}

#[actix::test]
async fn a_static_key_with_the_database_prefix_counts_only_in_a_database_keys_shape() {
    // With database users on, a key with their prefix is judged as one: a static key spelled
    // that way is accepted only if it also has a database key's shape and checksum, whether
    // its answer is published already or not.
    let dir = tempfile::tempdir().expect("temp dir");
    let shaped = format::generate().expect("random");
    let misshapen = "pcu_not-a-database-key";
    let keys = static_keys(&format!("{},{misshapen}", shaped.expose()), "ops");
    let h = with_db(dir.path(), Some(&keys)).await;
    for round in 0..2 {
        let accepted = h.authenticate(shaped.expose()).await.expect("accepted");
        assert_eq!(
            (accepted.principal.username(), accepted.method),
            ("ops", AuthMethod::ApiKeyStatic),
            "round {round}"
        );
        assert_eq!(
            h.authenticate(misshapen).await.err(),
            denied(AuthMethod::ApiKeyDb, Reason::InvalidKey),
            "round {round}"
        );
        assert!(
            h.is_published(misshapen),
            "the static key is published all the same"
        );
    }
}

#[actix::test]
async fn changes_survive_a_reload_from_the_store() -> Result<(), UserError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let (old, new) = {
        let h = with_db(dir.path(), None).await;
        let old = h.create_user("gina").await?;
        let new = h.rotate_key("gina").await?;
        (old, new)
    };
    let h = with_db(dir.path(), None).await;
    assert_eq!(user_of(h.authenticate(new.expose()).await), "gina");
    assert!(h.authenticate(old.expose()).await.is_err());
    Ok(())
}

#[actix::test]
async fn bootstrap_creates_admin_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = UserStore::open(dir.path()).await.expect("store");
    let mut registry = KeyRegistry::load(None, Some(store.clone()))
        .await
        .expect("load");
    let key = registry
        .bootstrap_admin(None)
        .await
        .expect("bootstrap")
        .expect("a key");
    let h = registry.start_with_handle();
    assert_eq!(user_of(h.authenticate(key.expose()).await), BOOTSTRAP_ADMIN);
    let mut again = KeyRegistry::load(None, Some(store)).await.expect("load");
    assert!(again
        .bootstrap_admin(None)
        .await
        .expect("bootstrap")
        .is_none());
}

#[actix::test]
async fn bootstrap_uses_a_supplied_key_and_refuses_one_another_user_holds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = UserStore::open(dir.path()).await.expect("store");
    let supplied = format::generate().expect("key");
    let text = supplied.expose().to_owned();
    let mut registry = KeyRegistry::load(None, Some(store)).await.expect("load");
    let key = registry
        .bootstrap_admin(Some(supplied))
        .await
        .expect("bootstrap")
        .expect("a key");
    assert_eq!(key.expose(), text, "the supplied key is the admin's");
    let h = registry.start_with_handle();
    assert_eq!(user_of(h.authenticate(&text).await), BOOTSTRAP_ADMIN);

    // A second store whose user `carol` already holds the key the operator supplies.
    let other = tempfile::tempdir().expect("temp dir");
    let store = UserStore::open(other.path()).await.expect("store");
    let carol = {
        let h = KeyRegistry::load(None, Some(store.clone()))
            .await
            .expect("load")
            .start_with_handle();
        h.create_user("carol").await.expect("created")
    };
    let mut registry = KeyRegistry::load(None, Some(store)).await.expect("load");
    let reused = NewKey::supplied(carol.expose()).expect("well-formed");
    assert_eq!(
        registry.bootstrap_admin(Some(reused)).await.err(),
        Some(UserError::KeyInUse)
    );
    let h = registry.start_with_handle();
    assert_eq!(user_of(h.authenticate(carol.expose()).await), "carol");
    assert!(h.get(BOOTSTRAP_ADMIN).await.expect("read").is_none());
}

#[test]
fn a_supplied_key_must_be_a_well_formed_database_key() {
    let good = format::generate().expect("key");
    assert!(NewKey::supplied(good.expose()).is_ok());
    let mut wrong_check = good.expose().to_owned();
    let last = wrong_check.pop().expect("non-empty");
    wrong_check.push(if last == 'a' { 'b' } else { 'a' });
    for bad in ["", "admin-key", "pcu_short", wrong_check.as_str()] {
        assert!(NewKey::supplied(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn a_registry_that_stopped_is_unavailable_not_a_panic() {
    let system = actix::System::new();
    let arbiter = actix::Arbiter::new();
    let h = system.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = UserStore::open(dir.path()).await.expect("store");
        let registry = KeyRegistry::load(None, Some(store)).await.expect("load");
        let (tx, rx) = tokio::sync::oneshot::channel();
        arbiter.spawn_fn(move || {
            let _ = tx.send(registry.start_with_handle());
        });
        rx.await.expect("started on the arbiter")
    });
    arbiter.stop();
    let _ = arbiter.join();
    system.block_on(async {
        assert_eq!(h.list().await.err(), Some(UserError::Unavailable));
        let unknown = super::format::generate().expect("key");
        assert_eq!(
            h.authenticate(unknown.expose()).await.err(),
            denied(AuthMethod::ApiKeyDb, Reason::Internal)
        );
    });
}
