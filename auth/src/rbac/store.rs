//! The durable roles: custom roles and every assignment, kept in the user store's SQLite file
//! (tables `rbac_roles` and `rbac_assignments`, migration `0002_rbac.sql`) so that deleting a
//! database user removes its `db:` assignments in the user's own transaction. Each change here
//! is one transaction; the RoleRegistry is the only writer of these tables.

use sqlx::Row;

use super::permission::Permission;
use super::policy::Namespace;
use crate::api_key::shared::log_roles;
use crate::api_key::{SharedUserStore, UserStore};

/// Failures of the role tables. Messages name the role, never a key.
#[derive(Debug, thiserror::Error)]
pub enum RoleStoreError {
    /// A query failed.
    #[error("role store query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// The store shared by replicas did not answer within the bound (at start).
    #[error("the user store did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// A stored row could not be read back.
    #[error("role store row for {row:?} is invalid: {what}")]
    BadRow {
        /// The role or subject.
        row: String,
        /// What is wrong.
        what: String,
    },
}

impl RoleStoreError {
    /// Whether the store could not be reached or did not answer (as opposed to refusing what
    /// was asked): a replica starts through it.
    pub fn is_unavailable(&self) -> bool {
        match self {
            RoleStoreError::Timeout(_) => true,
            RoleStoreError::Query(err) => crate::api_key::shared::unreachable_error(err),
            RoleStoreError::BadRow { .. } => false,
        }
    }
}

/// Everything stored, as read at start.
#[derive(Debug, Default)]
pub struct StoredRoles {
    /// Custom roles with their wire permissions, by name.
    pub roles: Vec<(String, Vec<Permission>)>,
    /// Every assignment: (namespace, subject, role).
    pub assignments: Vec<(Namespace, String, String)>,
}

/// One assignment as written: whose, and which role.
pub type Assignment<'a> = (Namespace, &'a str, &'a str);

/// The role tables of a user store: the SQLite file's, or those of the store shared by
/// replicas (where each change is also a `roles` entry of the change log, notified, so every
/// replica reloads its roles).
#[derive(Clone, Debug)]
pub struct RoleStore {
    users: Option<UserStore>,
    shared: Option<SharedUserStore>,
}

/// The namespace of its stored name.
fn namespace(name: &str) -> Option<Namespace> {
    match name {
        "db" => Some(Namespace::Db),
        "oidc" => Some(Namespace::Oidc),
        "group" => Some(Namespace::Group),
        _ => None,
    }
}

impl RoleStore {
    /// The role tables in `users`' file (created by its migrations).
    pub fn new(users: UserStore) -> Self {
        RoleStore {
            users: Some(users),
            shared: None,
        }
    }

    /// The role tables of the store shared by replicas.
    pub fn shared(store: SharedUserStore) -> Self {
        RoleStore {
            users: None,
            shared: Some(store),
        }
    }

    /// The revocation bound of the store shared by replicas (`None` for the SQLite file):
    /// how long the start waits for it before going on without the stored roles.
    pub fn shared_bound(&self) -> Option<std::time::Duration> {
        self.shared.as_ref().map(SharedUserStore::bound)
    }

    /// The SQLite file's pool (every method asks the shared store first, when there is one).
    fn sqlite(&self) -> Result<&sqlx::SqlitePool, RoleStoreError> {
        self.users
            .as_ref()
            .map(UserStore::pool)
            .ok_or(RoleStoreError::Query(sqlx::Error::PoolClosed))
    }

    /// Reads every custom role and every assignment.
    pub async fn load(&self) -> Result<StoredRoles, RoleStoreError> {
        if let Some(shared) = &self.shared {
            return shared_load(shared).await;
        }
        let pool = self.sqlite()?;
        let mut stored = StoredRoles::default();
        for row in sqlx::query("SELECT name, permissions FROM rbac_roles ORDER BY name")
            .fetch_all(pool)
            .await?
        {
            let (name, text): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            stored.roles.push(role_entry(name, &text)?);
        }
        for row in sqlx::query("SELECT namespace, subject, role FROM rbac_assignments")
            .fetch_all(pool)
            .await?
        {
            let ns: String = row.try_get(0)?;
            stored
                .assignments
                .push(assignment_entry(&ns, row.try_get(1)?, row.try_get(2)?)?);
        }
        Ok(stored)
    }

    /// Makes the settings' assignments true in one transaction: every assignment of the
    /// `mirrored` roles is replaced by `exact`, and `additive` ones are added if missing.
    pub async fn apply_settings(
        &self,
        mirrored: &[&str],
        exact: &[Assignment<'_>],
        additive: &[Assignment<'_>],
    ) -> Result<(), RoleStoreError> {
        if let Some(shared) = &self.shared {
            let mut tx = shared.pool().begin().await?;
            for role in mirrored {
                sqlx::query("DELETE FROM portcullis_rbac_assignments WHERE role = $1")
                    .bind(role)
                    .execute(&mut *tx)
                    .await?;
            }
            for (ns, subject, role) in exact.iter().chain(additive) {
                shared_assign(&mut tx, *ns, subject, role).await?;
            }
            log_roles(&mut tx, "settings").await?;
            tx.commit().await?;
            return Ok(());
        }
        let mut tx = self.sqlite()?.begin().await?;
        for role in mirrored {
            sqlx::query("DELETE FROM rbac_assignments WHERE role = ?")
                .bind(role)
                .execute(&mut *tx)
                .await?;
        }
        for (ns, subject, role) in exact.iter().chain(additive) {
            insert_assignment(&mut tx, *ns, subject, role).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores a role's full permission list (a new role, or a changed one).
    pub async fn put_role(
        &self,
        name: &str,
        permissions: &[Permission],
    ) -> Result<(), RoleStoreError> {
        let text = serde_json::to_string(permissions).map_err(|err| RoleStoreError::BadRow {
            row: name.to_owned(),
            what: err.to_string(),
        })?;
        if let Some(shared) = &self.shared {
            let mut tx = shared.pool().begin().await?;
            sqlx::query(
                "INSERT INTO portcullis_rbac_roles (name, permissions) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET permissions = excluded.permissions",
            )
            .bind(name)
            .bind(text)
            .execute(&mut *tx)
            .await?;
            log_roles(&mut tx, "put_role").await?;
            tx.commit().await?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO rbac_roles (name, permissions) VALUES (?, ?) \
             ON CONFLICT(name) DO UPDATE SET permissions = excluded.permissions",
        )
        .bind(name)
        .bind(text)
        .execute(self.sqlite()?)
        .await?;
        Ok(())
    }

    /// Deletes a role and every assignment of it in one transaction.
    pub async fn delete_role(&self, name: &str) -> Result<(), RoleStoreError> {
        if let Some(shared) = &self.shared {
            let mut tx = shared.pool().begin().await?;
            sqlx::query("DELETE FROM portcullis_rbac_roles WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM portcullis_rbac_assignments WHERE role = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            log_roles(&mut tx, "delete_role").await?;
            tx.commit().await?;
            return Ok(());
        }
        let mut tx = self.sqlite()?.begin().await?;
        sqlx::query("DELETE FROM rbac_roles WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM rbac_assignments WHERE role = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds (`assign`) or removes assignments in one transaction.
    pub async fn change_assignments(
        &self,
        assign: bool,
        changes: &[Assignment<'_>],
    ) -> Result<(), RoleStoreError> {
        if let Some(shared) = &self.shared {
            let mut tx = shared.pool().begin().await?;
            for (ns, subject, role) in changes {
                if assign {
                    shared_assign(&mut tx, *ns, subject, role).await?;
                } else {
                    sqlx::query(
                        "DELETE FROM portcullis_rbac_assignments \
                         WHERE namespace = $1 AND subject = $2 AND role = $3",
                    )
                    .bind(ns.as_str())
                    .bind(subject)
                    .bind(role)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            log_roles(&mut tx, "assignments").await?;
            tx.commit().await?;
            return Ok(());
        }
        let mut tx = self.sqlite()?.begin().await?;
        for (ns, subject, role) in changes {
            if assign {
                insert_assignment(&mut tx, *ns, subject, role).await?;
            } else {
                sqlx::query(
                    "DELETE FROM rbac_assignments WHERE namespace = ? AND subject = ? AND role = ?",
                )
                .bind(ns.as_str())
                .bind(subject)
                .bind(role)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A stored role row: its name and its permissions (JSON in the /v1/authz wire form).
fn role_entry(name: String, text: &str) -> Result<(String, Vec<Permission>), RoleStoreError> {
    match serde_json::from_str(text) {
        Ok(permissions) => Ok((name, permissions)),
        Err(err) => Err(RoleStoreError::BadRow {
            row: name,
            what: err.to_string(),
        }),
    }
}

/// A stored assignment row, its namespace checked.
fn assignment_entry(
    ns: &str,
    subject: String,
    role: String,
) -> Result<(Namespace, String, String), RoleStoreError> {
    match namespace(ns) {
        Some(ns) => Ok((ns, subject, role)),
        None => Err(RoleStoreError::BadRow {
            row: subject,
            what: format!("unknown namespace {ns:?}"),
        }),
    }
}

async fn shared_load(shared: &SharedUserStore) -> Result<StoredRoles, RoleStoreError> {
    let pool = shared.pool();
    let mut stored = StoredRoles::default();
    for row in sqlx::query("SELECT name, permissions FROM portcullis_rbac_roles ORDER BY name")
        .fetch_all(pool)
        .await?
    {
        let (name, text): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        stored.roles.push(role_entry(name, &text)?);
    }
    for row in sqlx::query("SELECT namespace, subject, role FROM portcullis_rbac_assignments")
        .fetch_all(pool)
        .await?
    {
        let ns: String = row.try_get(0)?;
        stored
            .assignments
            .push(assignment_entry(&ns, row.try_get(1)?, row.try_get(2)?)?);
    }
    Ok(stored)
}

async fn shared_assign(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    ns: Namespace,
    subject: &str,
    role: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO portcullis_rbac_assignments (namespace, subject, role) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(ns.as_str())
    .bind(subject)
    .bind(role)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_assignment(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    ns: Namespace,
    subject: &str,
    role: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO rbac_assignments (namespace, subject, role) VALUES (?, ?, ?) \
         ON CONFLICT DO NOTHING",
    )
    .bind(ns.as_str())
    .bind(subject)
    .bind(role)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn permission(value: serde_json::Value) -> Permission {
        serde_json::from_value(value).expect("permission")
    }

    #[actix::test]
    async fn roles_and_assignments_survive_a_reopen_and_deletes_cascade() {
        let dir = tempfile::tempdir().expect("temp dir");
        let users = UserStore::open(dir.path()).await.expect("open");
        let store = RoleStore::new(users.clone());
        let read = permission(json!({"action": "read_data", "data": {"collection": "Movie"}}));
        store
            .put_role("team:a,b", std::slice::from_ref(&read))
            .await
            .expect("put");
        store.put_role("other", &[]).await.expect("put");
        store
            .change_assignments(
                true,
                &[
                    (Namespace::Db, "alice", "team:a,b"),
                    (Namespace::Oidc, "bob:x", "team:a,b"),
                    (Namespace::Group, "ops", "other"),
                    (Namespace::Db, "alice", "other"),
                ],
            )
            .await
            .expect("assign");
        drop((store, users));

        let users = UserStore::open(dir.path()).await.expect("reopen");
        let store = RoleStore::new(users.clone());
        let stored = store.load().await.expect("load");
        assert_eq!(
            stored.roles,
            vec![
                ("other".to_owned(), vec![]),
                ("team:a,b".to_owned(), vec![read])
            ]
        );
        assert_eq!(stored.assignments.len(), 4);

        // Deleting a role removes its assignments; deleting a user removes its db: ones.
        store.delete_role("other").await.expect("delete role");
        users.delete("alice").await.expect("delete user");
        let mut left = store.load().await.expect("load").assignments;
        left.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(
            left,
            vec![(Namespace::Oidc, "bob:x".to_owned(), "team:a,b".to_owned())]
        );
    }

    #[actix::test]
    async fn settings_replace_mirrored_roles_and_add_the_others() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = RoleStore::new(UserStore::open(dir.path()).await.expect("open"));
        store
            .change_assignments(
                true,
                &[
                    (Namespace::Db, "old-root", "root"),
                    (Namespace::Db, "kept", "admin"),
                ],
            )
            .await
            .expect("assign");
        store
            .apply_settings(
                &["root", "read-only"],
                &[(Namespace::Oidc, "new-root", "root")],
                &[(Namespace::Db, "viewer-user", "viewer")],
            )
            .await
            .expect("apply");
        let mut all = store.load().await.expect("load").assignments;
        all.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(
            all,
            vec![
                (Namespace::Db, "kept".to_owned(), "admin".to_owned()),
                (Namespace::Oidc, "new-root".to_owned(), "root".to_owned()),
                (Namespace::Db, "viewer-user".to_owned(), "viewer".to_owned()),
            ]
        );
    }
}
