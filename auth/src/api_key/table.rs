//! The database users as the KeyRegistry holds them: each user once, as one compact row in
//! one table, found by name (kept sorted, so a listing walks it in order, a page at a time)
//! and by key id. Only the actor touches the table; requests read the published answers.
//!
//! Why this shape: a million users must fit in a few hundred bytes each and load in a
//! second. A row is about 90 bytes plus its name, held once as an `Arc<str>` that the name
//! index and any published principal share; the indexes hold a row number, not a copy.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use crate::digest::KeyDigest;

/// A key id: the 12 base62 characters after `pcu_` (`format.rs`), held inline.
pub(super) type KeyId = [u8; 12];

/// The key id of a key id's text; `None` when it is not 12 bytes long.
pub(super) fn key_id(text: &str) -> Option<KeyId> {
    text.as_bytes().try_into().ok()
}

/// The index of a row in the table; stable for as long as the user exists.
pub(super) type Slot = u32;

/// One database user.
pub(super) struct UserRow {
    /// The user name, shared with the name index and with published principals.
    pub(super) name: Arc<str>,
    /// SHA-256 of the current key.
    pub(super) digest: KeyDigest,
    /// The current key's id.
    pub(super) key_id: KeyId,
    pub(super) active: bool,
    pub(super) revoked: bool,
    pub(super) created_at_ms: i64,
    /// The last use the table knows of (Unix ms, 0 for never). Uses since then are counted in
    /// the user's published answer, if it has one, and folded in here by the flush and when
    /// the answer is withdrawn.
    pub(super) last_used_ms: i64,
    /// The last-used time the store holds; the flush writes only users past it.
    pub(super) persisted_last_used_ms: i64,
}

impl UserRow {
    /// The first three characters of the key id, shown to admins.
    pub(super) fn first_letters(&self) -> String {
        self.key_id[..3].iter().map(|&b| char::from(b)).collect()
    }
}

/// Every database user, with its two indexes and the counts by state.
#[derive(Default)]
pub(super) struct UserTable {
    rows: Vec<Option<UserRow>>,
    /// Rows of deleted users, reused by the next creations.
    free: Vec<Slot>,
    by_name: BTreeMap<Arc<str>, Slot>,
    by_key: HashMap<KeyId, Slot>,
    active: usize,
}

impl UserTable {
    /// How many users there are.
    pub(super) fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Active users; the rest are inactive.
    pub(super) fn active(&self) -> usize {
        self.active
    }

    /// Adds a user. The caller has checked that neither its name nor its key id is taken;
    /// `None` (nothing added) when one is, or when the table holds `u32::MAX` rows.
    pub(super) fn insert(&mut self, row: UserRow) -> Option<Slot> {
        if self.by_name.contains_key(&row.name) || self.by_key.contains_key(&row.key_id) {
            return None;
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => Slot::try_from(self.rows.len()).ok()?,
        };
        self.by_name.insert(row.name.clone(), slot);
        self.by_key.insert(row.key_id, slot);
        if row.active {
            self.active += 1;
        }
        let index = slot as usize;
        if index == self.rows.len() {
            self.rows.push(Some(row));
        } else {
            self.rows[index] = Some(row);
        }
        Some(slot)
    }

    /// Removes a user by name, returning its row.
    pub(super) fn remove(&mut self, name: &str) -> Option<UserRow> {
        let slot = self.by_name.remove(name)?;
        let row = self.rows.get_mut(slot as usize)?.take()?;
        self.by_key.remove(&row.key_id);
        if row.active {
            self.active -= 1;
        }
        self.free.push(slot);
        Some(row)
    }

    /// The slot of a user, by name.
    pub(super) fn slot_of(&self, name: &str) -> Option<Slot> {
        self.by_name.get(name).copied()
    }

    /// The user holding a key id.
    pub(super) fn by_key(&self, key_id: &KeyId) -> Option<(Slot, &UserRow)> {
        let slot = *self.by_key.get(key_id)?;
        Some((slot, self.row(slot)?))
    }

    /// Whether a key id is taken.
    pub(super) fn key_taken(&self, key_id: &KeyId) -> bool {
        self.by_key.contains_key(key_id)
    }

    /// A user, by name.
    pub(super) fn get(&self, name: &str) -> Option<&UserRow> {
        self.row(self.slot_of(name)?)
    }

    /// A user, by slot.
    pub(super) fn row(&self, slot: Slot) -> Option<&UserRow> {
        self.rows.get(slot as usize)?.as_ref()
    }

    /// A user, by slot, to change anything but its name, key id or state (which have their
    /// own methods, to keep the indexes and counts right).
    pub(super) fn row_mut(&mut self, slot: Slot) -> Option<&mut UserRow> {
        self.rows.get_mut(slot as usize)?.as_mut()
    }

    /// Gives a user a new key; `false` when there is no such user or the key id is taken.
    pub(super) fn set_key(&mut self, slot: Slot, key_id: KeyId, digest: KeyDigest) -> bool {
        if self.by_key.contains_key(&key_id) {
            return false;
        }
        let Some(row) = self.rows.get_mut(slot as usize).and_then(Option::as_mut) else {
            return false;
        };
        self.by_key.remove(&row.key_id);
        row.key_id = key_id;
        row.digest = digest;
        self.by_key.insert(key_id, slot);
        true
    }

    /// Sets a user's flags, keeping the counts.
    pub(super) fn set_state(&mut self, slot: Slot, active: bool, revoked: bool) -> bool {
        let Some(row) = self.rows.get_mut(slot as usize).and_then(Option::as_mut) else {
            return false;
        };
        match (row.active, active) {
            (false, true) => self.active += 1,
            (true, false) => self.active -= 1,
            _ => {}
        }
        row.active = active;
        row.revoked = revoked;
        true
    }

    /// Up to `limit` users in name order, starting after `after` (from the first without it).
    pub(super) fn page<'a>(
        &'a self,
        after: Option<&str>,
        limit: usize,
    ) -> impl Iterator<Item = &'a UserRow> + 'a {
        let start = match after {
            Some(name) => Bound::Excluded(name),
            None => Bound::Unbounded,
        };
        self.by_name
            .range::<str, _>((start, Bound::Unbounded))
            .take(limit)
            .filter_map(|(_, &slot)| self.row(slot))
    }
}

/// A table being filled from the store at start-up: rows as the store hands them over,
/// indexed by key id as they come; the name index is built once, at the end.
///
/// Why not [`UserTable::insert`] row by row: a B-tree insert per user is a descent of the
/// tree with a string comparison at each level (about a quarter of the load's time for a
/// million users), where building the tree in bulk from sorted names is one pass, and names
/// the store hands over in name order (a seeded store, or one filled in name order) are
/// sorted in one pass as well.
pub(super) struct TableLoader {
    rows: Vec<Option<UserRow>>,
    by_key: HashMap<KeyId, Slot>,
    active: usize,
}

impl TableLoader {
    /// An empty loader with room for `capacity` users.
    pub(super) fn with_capacity(capacity: usize) -> Self {
        TableLoader {
            rows: Vec::with_capacity(capacity),
            by_key: HashMap::with_capacity(capacity),
            active: 0,
        }
    }

    /// Adds a user; `false` (nothing added) when its key id is taken, or when the table
    /// holds `u32::MAX` rows. A taken name is found by [`TableLoader::finish`].
    pub(super) fn push(&mut self, row: UserRow) -> bool {
        let Ok(slot) = Slot::try_from(self.rows.len()) else {
            return false;
        };
        match self.by_key.entry(row.key_id) {
            Entry::Occupied(_) => return false,
            Entry::Vacant(entry) => entry.insert(slot),
        };
        if row.active {
            self.active += 1;
        }
        self.rows.push(Some(row));
        true
    }

    /// The table, with its name index; `Err` with the name when two users share it.
    pub(super) fn finish(self) -> Result<UserTable, Arc<str>> {
        let mut names = Vec::with_capacity(self.rows.len());
        for (slot, row) in (0..).zip(&self.rows) {
            if let Some(row) = row {
                names.push((row.name.clone(), slot));
            }
        }
        // Collecting sorts (stably, in one pass when already sorted) and keeps one user per
        // name, so a shorter index means a duplicate.
        let by_name: BTreeMap<Arc<str>, Slot> = names.into_iter().collect();
        if by_name.len() != self.rows.len() {
            let duplicate = (0..).zip(&self.rows).find_map(|(slot, row)| {
                let row = row.as_ref()?;
                (by_name.get(&row.name) != Some(&slot)).then(|| row.name.clone())
            });
            return Err(duplicate.unwrap_or_else(|| Arc::from("")));
        }
        Ok(UserTable {
            rows: self.rows,
            free: Vec::new(),
            by_name,
            by_key: self.by_key,
            active: self.active,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, key: &str, active: bool) -> UserRow {
        UserRow {
            name: name.into(),
            digest: crate::digest::digest(key.as_bytes()),
            key_id: key_id(key).expect("12 bytes"),
            active,
            revoked: false,
            created_at_ms: 1,
            last_used_ms: 0,
            persisted_last_used_ms: 0,
        }
    }

    #[test]
    fn finds_users_by_name_and_key_and_reuses_freed_rows() {
        let mut t = UserTable::default();
        let a = t.insert(row("carol", "aaaaaaaaaaaa", true)).expect("carol");
        let b = t
            .insert(row("alice", "bbbbbbbbbbbb", false))
            .expect("alice");
        assert!(
            t.insert(row("alice", "cccccccccccc", true)).is_none(),
            "name taken"
        );
        assert!(
            t.insert(row("bob", "aaaaaaaaaaaa", true)).is_none(),
            "key taken"
        );
        assert_eq!((t.len(), t.active()), (2, 1));
        assert_eq!(t.by_key(b"bbbbbbbbbbbb").map(|(s, _)| s), Some(b));
        assert_eq!(
            t.get("carol").map(|r| r.first_letters()),
            Some("aaa".into())
        );

        assert!(t.set_key(a, *b"dddddddddddd", [7; 32]));
        assert!(
            t.by_key(b"aaaaaaaaaaaa").is_none(),
            "the old key id is gone"
        );
        assert_eq!(t.by_key(b"dddddddddddd").map(|(s, _)| s), Some(a));
        assert!(
            !t.set_key(a, *b"bbbbbbbbbbbb", [7; 32]),
            "another user's key id"
        );

        assert!(t.set_state(b, true, true));
        assert_eq!(t.active(), 2);
        let removed = t.remove("carol").expect("carol removed");
        assert_eq!(&*removed.name, "carol");
        assert!(t.by_key(b"dddddddddddd").is_none());
        assert_eq!((t.len(), t.active()), (1, 1));
        let again = t.insert(row("dave", "eeeeeeeeeeee", true)).expect("dave");
        assert_eq!(again, a, "the freed row is reused");
    }

    #[test]
    fn pages_walk_the_names_in_order() {
        let mut t = UserTable::default();
        for (i, name) in ["d", "b", "a", "e", "c"].into_iter().enumerate() {
            t.insert(row(name, &format!("{i:012}"), true))
                .expect("insert");
        }
        let names = |after, limit| -> Vec<String> {
            t.page(after, limit).map(|r| r.name.to_string()).collect()
        };
        assert_eq!(names(None, 2), ["a", "b"]);
        assert_eq!(names(Some("b"), 2), ["c", "d"]);
        assert_eq!(names(Some("bb"), 10), ["c", "d", "e"]);
        assert!(names(Some("e"), 10).is_empty());
    }

    #[test]
    fn a_loaded_table_is_the_table_of_its_rows_in_any_order() {
        let mut loader = TableLoader::with_capacity(3);
        for (name, key, active) in [
            ("carol", "cccccccccccc", true),
            ("alice", "aaaaaaaaaaaa", false),
            ("bob", "bbbbbbbbbbbb", true),
        ] {
            assert!(loader.push(row(name, key, active)), "{name}");
        }
        assert!(
            !loader.push(row("dave", "aaaaaaaaaaaa", true)),
            "a key id taken"
        );
        let t = loader.finish().unwrap_or_else(|name| panic!("dup {name}"));
        assert_eq!((t.len(), t.active()), (3, 2));
        let names: Vec<String> = t.page(None, 10).map(|r| r.name.to_string()).collect();
        assert_eq!(names, ["alice", "bob", "carol"]);
        let (slot, alice) = t.by_key(b"aaaaaaaaaaaa").expect("alice by key");
        assert_eq!((&*alice.name, t.slot_of("alice")), ("alice", Some(slot)));
        assert_eq!(
            t.get("carol").map(|r| r.first_letters()),
            Some("ccc".into())
        );
    }

    #[test]
    fn a_loaded_table_refuses_a_name_twice() {
        let mut loader = TableLoader::with_capacity(0);
        assert!(loader.push(row("bob", "aaaaaaaaaaaa", true)));
        assert!(loader.push(row("alice", "bbbbbbbbbbbb", true)));
        assert!(loader.push(row("bob", "cccccccccccc", true)));
        assert_eq!(loader.finish().err().as_deref(), Some("bob"));
    }

    #[test]
    fn a_loaded_table_takes_changes_like_any_other() {
        let mut loader = TableLoader::with_capacity(1);
        assert!(loader.push(row("alice", "aaaaaaaaaaaa", true)));
        let mut t = loader.finish().unwrap_or_else(|name| panic!("dup {name}"));
        let bob = t.insert(row("bob", "bbbbbbbbbbbb", true)).expect("bob");
        assert_eq!(t.slot_of("bob"), Some(bob));
        assert!(t.remove("alice").is_some());
        assert_eq!(
            t.insert(row("ann", "cccccccccccc", false)),
            Some(0),
            "alice's row reused"
        );
        assert_eq!((t.len(), t.active()), (2, 1));
    }
}
