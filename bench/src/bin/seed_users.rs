//! The benchmark's user seeder: stores N database users in the user store of a data directory
//! and prints one working key, so the benchmark can measure a database-user key among many.
//!
//! Usage: `seed_users <data-dir> <count>` (the server's `PERSISTENCE_DATA_PATH`, stopped).
//! Keys come from `portcullis_auth`'s own generator and rows go through its own `UserStore`,
//! so the seeded users cannot drift from what the server writes and reads. Users are named
//! `bench000000`, `bench000001`, ...; the printed key is the last user's.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use portcullis_auth::api_key::{format, UserRecord};
use portcullis_auth::{valid_user_name, UserStore};

/// Users per transaction: one sync to disk per batch, and memory bounded for any count.
const BATCH: usize = 10_000;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: seed_users <data-dir> <count>";
    let dir = PathBuf::from(args.next().context(usage)?);
    let count: usize = args
        .next()
        .context(usage)?
        .parse()
        .context("while reading <count>")?;
    if count == 0 {
        bail!("<count> must be at least 1: the seeder prints the last user's key");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("while starting the runtime")?;
    let key = runtime.block_on(seed(&dir, count))?;
    println!("{key}");
    Ok(())
}

/// Stores `count` users in `dir`'s user store; returns the last user's key.
async fn seed(dir: &std::path::Path, count: usize) -> anyhow::Result<String> {
    let store = UserStore::open(dir)
        .await
        .with_context(|| format!("while opening the user store in {}", dir.display()))?;
    let created_at_ms = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the clock is before 1970")?
            .as_millis(),
    )
    .context("the clock is past the year 292 million")?;
    let mut last_key = String::new();
    let mut batch = Vec::with_capacity(BATCH.min(count));
    for i in 0..count {
        let id = format!("bench{i:06}");
        if !valid_user_name(&id) {
            bail!("{id:?} is not a valid user name");
        }
        let key = format::generate().context("while drawing a key from the OS random source")?;
        batch.push(UserRecord::new(&id, &key, created_at_ms));
        if i + 1 == count {
            last_key = key.expose().to_owned();
        }
        if batch.len() == BATCH || i + 1 == count {
            store
                .insert_many(&batch)
                .await
                .context("while storing the users (is the store already seeded?)")?;
            batch.clear();
        }
    }
    Ok(last_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_auth::digest;

    #[tokio::test]
    async fn seeds_users_the_store_reads_back_with_a_working_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = seed(dir.path(), BATCH + 3).await.expect("seed");
        let key_id = format::parse(&key).expect("a well-formed database key");
        let users = UserStore::open(dir.path())
            .await
            .expect("reopen")
            .load()
            .await
            .expect("load");
        assert_eq!(users.len(), BATCH + 3);
        let last = users
            .iter()
            .find(|u| u.key_id == key_id)
            .expect("the printed key's user");
        assert_eq!(last.id, format!("bench{:06}", BATCH + 2));
        assert_eq!(last.key_digest, digest(key.as_bytes()));
        assert!(last.active && !last.revoked);
    }
}
