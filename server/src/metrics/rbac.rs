//! The roles metrics: `portcullis_rbac_roles` (how many roles exist, the four built-in ones
//! included) and `portcullis_rbac_changes_total{op,result}` (role and assignment changes made
//! through `/v1/authz`), registered only when RBAC is on.

use prometheus::{IntCounterVec, IntGauge, Opts};

use super::labels::label_enum;
use super::Metrics;

label_enum! {
    /// The `op` label of `portcullis_rbac_changes_total`.
    pub enum RbacOp {
        /// `POST /v1/authz/roles`.
        CreateRole => "create_role",
        /// `DELETE /v1/authz/roles/{id}`.
        DeleteRole => "delete_role",
        /// `POST /v1/authz/roles/{id}/add-permissions`.
        AddPermissions => "add_permissions",
        /// `POST /v1/authz/roles/{id}/remove-permissions`.
        RemovePermissions => "remove_permissions",
        /// `POST /v1/authz/{users,groups}/{id}/assign`.
        Assign => "assign",
        /// `POST /v1/authz/{users,groups}/{id}/revoke`.
        Revoke => "revoke",
    }
}

label_enum! {
    /// The `result` label of `portcullis_rbac_changes_total`.
    pub enum RbacResult {
        /// Stored and published.
        Ok => "ok",
        /// Refused (4xx): invalid, forbidden, missing or conflicting.
        Rejected => "rejected",
        /// The store failed (500); nothing changed.
        Failed => "failed",
    }
}

/// The roles metrics' handles.
#[derive(Clone, Debug)]
pub struct RbacMetrics {
    roles: IntGauge,
    changes: IntCounterVec,
}

impl RbacMetrics {
    /// Sets the role count.
    pub fn set_roles(&self, count: usize) {
        self.roles.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Counts one change.
    pub fn observe_change(&self, op: RbacOp, result: RbacResult) {
        self.changes
            .with_label_values(&[op.as_str(), result.as_str()])
            .inc();
    }
}

impl Metrics {
    /// Registers the roles metrics (when RBAC is on), every label pair at zero.
    pub fn register_rbac(&self) -> Result<RbacMetrics, prometheus::Error> {
        let roles = IntGauge::new(
            "portcullis_rbac_roles",
            "Roles that exist, the four built-in ones included.",
        )?;
        let changes = IntCounterVec::new(
            Opts::new(
                "portcullis_rbac_changes_total",
                "Role and assignment changes through /v1/authz by operation and result.",
            ),
            &["op", "result"],
        )?;
        for op in RbacOp::ALL {
            for result in RbacResult::ALL {
                changes.with_label_values(&[op.as_str(), result.as_str()]);
            }
        }
        self.registry.register(Box::new(roles.clone()))?;
        self.registry.register(Box::new(changes.clone()))?;
        Ok(RbacMetrics { roles, changes })
    }
}
