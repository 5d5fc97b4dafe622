//! The start-up read ([`UserStore::load_each`], through `rusqlite`) against what the writes
//! (through `sqlx`, as the server makes them) left in the file, and the errors for rows it
//! cannot use.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use sqlx::Row;

use super::*;
use crate::api_key::{format, KeyRegistry, UserInfo};
use crate::{Denied, Reason};

/// The read the server made before this one: `sqlx`, a row at a time, in name order. Kept as
/// the reference the start-up read must agree with.
async fn load_through_sqlx(store: &UserStore) -> Vec<UserRecord> {
    let select = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id");
    let mut rows = sqlx::query(&select).fetch(&store.pool);
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await.expect("row") {
        let digest: Vec<u8> = row.get(2);
        out.push(UserRecord {
            id: row.get(0),
            key_id: row.get(1),
            key_digest: digest.as_slice().try_into().expect("32 bytes"),
            active: row.get::<i64, _>(3) != 0,
            revoked: row.get::<i64, _>(4) != 0,
            created_at_ms: row.get(5),
            last_used_ms: row.get(6),
        });
    }
    out
}

async fn execute(store: &UserStore, sql: &str) {
    sqlx::query(sql).execute(&store.pool).await.expect(sql);
}

/// What a registry loaded from `store` lists.
async fn listed(store: &UserStore) -> Vec<UserInfo> {
    let h = KeyRegistry::load(None, Some(store.clone()))
        .await
        .expect("load")
        .start_with_handle();
    h.list().await.expect("list")
}

#[actix::test]
async fn the_start_up_read_sees_what_the_writes_left_checkpointed_or_in_the_wal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = UserStore::open(dir.path()).await.expect("open");
    // 3,000 users stored out of name order, so the table's order is not the names'.
    let mut keys = BTreeMap::new();
    let mut batch = Vec::new();
    for i in 0..3_000u32 {
        let name = format!("user{:05}", (i * 7_919) % 3_000);
        let key = format::generate().expect("key");
        batch.push(UserRecord::new(
            &name,
            &key,
            1_700_000_000_000 + i64::from(i),
        ));
        keys.insert(name, key);
    }
    store.insert_many(&batch).await.expect("insert");
    execute(&store, "PRAGMA wal_checkpoint(TRUNCATE)").await;

    // Changes after the checkpoint stay in the WAL (the pool is open, so nothing moves them).
    let rotated = format::generate().expect("key");
    store
        .set_key(
            "user00001",
            rotated.id(),
            &digest(rotated.expose().as_bytes()),
        )
        .await
        .expect("rotate");
    store
        .set_state("user00002", false, false)
        .await
        .expect("deactivate");
    store
        .set_state("user00003", true, true)
        .await
        .expect("revoke");
    store
        .set_state("user00004", false, true)
        .await
        .expect("both");
    store
        .record_last_used(&[("user00005".into(), 42), ("user02999".into(), 1 << 40)])
        .await
        .expect("last used");
    store.delete("user00006").await.expect("delete");
    let zed = format::generate().expect("key");
    store
        .insert(&UserRecord::new("Zed", &zed, 7))
        .await
        .expect("insert");
    let wal = dir.path().join(format!("{FILE_NAME}-wal"));
    assert!(
        std::fs::metadata(&wal).expect("wal").len() > 0,
        "the later changes are only in the WAL"
    );

    let old = load_through_sqlx(&store).await;
    let new = store.load().await.expect("load");
    assert_eq!(new.len(), 3_000, "3,000 - 1 deleted + 1 inserted");
    assert_eq!(
        new, old,
        "the same users, in the same order, field for field"
    );
    let user = |name: &str| new.iter().find(|u| u.id == name).expect(name).clone();
    assert_eq!(new[0].id, "Zed", "name order is byte order");
    assert_eq!(user("user00001").key_id, rotated.id());
    assert_eq!(
        user("user00001").key_digest,
        digest(rotated.expose().as_bytes())
    );
    assert_eq!(
        [2, 3, 4].map(|i| {
            let u = user(&format!("user0000{i}"));
            (u.active, u.revoked)
        }),
        [(false, false), (true, true), (false, true)]
    );
    assert_eq!(user("user00005").last_used_ms, Some(42));
    assert_eq!(user("user02999").last_used_ms, Some(1 << 40));
    assert_eq!(user("user00007").last_used_ms, None);
    assert!(new.iter().all(|u| u.id != "user00006"));

    // The registry built from the read lists what the old read held, and judges the keys.
    let expected: Vec<UserInfo> = old
        .iter()
        .map(|u| UserInfo {
            id: u.id.clone(),
            is_static: false,
            active: u.active,
            created_at_ms: Some(u.created_at_ms),
            last_used_ms: u.last_used_ms,
            first_letters: Some(u.key_id[..3].to_owned()),
        })
        .collect();
    assert_eq!(listed(&store).await, expected);
    let h = KeyRegistry::load(None, Some(store.clone()))
        .await
        .expect("load")
        .start_with_handle();
    let user_of = |r: Result<crate::Authenticated, Denied>| {
        r.map(|a| a.principal.username().to_owned())
            .map_err(|d| d.reason)
    };
    assert_eq!(
        user_of(h.authenticate(zed.expose()).await),
        Ok("Zed".into())
    );
    assert_eq!(
        user_of(h.authenticate(keys["user02999"].expose()).await),
        Ok("user02999".into())
    );
    assert_eq!(
        user_of(h.authenticate(rotated.expose()).await),
        Ok("user00001".into())
    );
    assert_eq!(
        user_of(h.authenticate(keys["user00001"].expose()).await),
        Err(Reason::InvalidKey)
    );
    assert_eq!(
        user_of(h.authenticate(keys["user00002"].expose()).await),
        Err(Reason::UserInactive)
    );
    assert_eq!(
        user_of(h.authenticate(keys["user00003"].expose()).await),
        Err(Reason::Revoked)
    );
    assert_eq!(
        user_of(h.authenticate(keys["user00006"].expose()).await),
        Err(Reason::InvalidKey)
    );
}

#[actix::test]
async fn an_empty_store_loads_no_users() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = UserStore::open(dir.path()).await.expect("open");
    assert!(store.load().await.expect("load").is_empty());
    assert!(listed(&store).await.is_empty());
}

/// A row the start-up read cannot use fails the load with the error the `sqlx` read gave
/// (the first two), or one naming the row (a name that is not UTF-8, which `sqlx` reported
/// as a decoding error of column 0).
#[actix::test]
async fn a_row_that_cannot_be_used_fails_the_load_naming_the_user() {
    let cases = [
        (
            "'bob', 'bbbbbbbbbbbb', zeroblob(31)",
            r#"user store row for "bob" is invalid: key digest is not 32 bytes"#,
        ),
        (
            "'carl', 'ccccccccccc', zeroblob(32)",
            r#"user store row for "carl" is invalid: key id is not 12 characters"#,
        ),
        (
            "CAST(x'64ff' AS TEXT), 'dddddddddddd', zeroblob(32)",
            "user store row for \"d\u{fffd}\" is invalid: name is not UTF-8",
        ),
    ];
    for (values, expected) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = UserStore::open(dir.path()).await.expect("open");
        let good = format::generate().expect("key");
        store
            .insert(&UserRecord::new("alice", &good, 1))
            .await
            .expect("insert");
        execute(
            &store,
            &format!(
                "INSERT INTO users (id, key_id, key_digest, active, revoked, created_at_ms) \
                 VALUES ({values}, 1, 0, 1)"
            ),
        )
        .await;
        let err = KeyRegistry::load(None, Some(store.clone()))
            .await
            .err()
            .expect(expected);
        assert_eq!(err.to_string(), expected);
        assert!(matches!(err, UserStoreError::BadRow { .. }), "{err:?}");
        assert_eq!(store.load().await.err().map(|e| e.to_string()), {
            // The store's own read refuses only what it cannot decode; a key id of the
            // wrong length is the registry's to refuse.
            (!expected.contains("key id")).then(|| expected.to_owned())
        });
    }
}

#[actix::test]
async fn a_store_replaced_after_opening_fails_the_load_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = UserStore::open(dir.path()).await.expect("open");
    // Everything into the file itself: with pages still in the WAL, SQLite would read them
    // from there and never look at the replaced file's pages.
    execute(&store, "PRAGMA wal_checkpoint(TRUNCATE)").await;
    let path = dir.path().join(FILE_NAME);
    let garbage = b"this is not a sqlite database, but it is somebody's file".repeat(100);
    let other = dir.path().join("other");
    std::fs::write(&other, &garbage).expect("write");
    std::fs::rename(&other, &path).expect("replace");
    let err = KeyRegistry::load(None, Some(store))
        .await
        .err()
        .expect("an unreadable file is refused");
    assert!(matches!(err, UserStoreError::Read { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot read the users from the user store {}: file is not a database (the file \
             is left untouched; restore it from a backup)",
            path.display()
        )
    );
    assert_eq!(std::fs::read(&path).expect("read"), garbage);
}
