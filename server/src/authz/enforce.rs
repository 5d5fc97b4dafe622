//! The RBAC decision for one call ([`Enforcer::decide`]): every need checked against the
//! published policies, in order, stopping at the first denial (as Weaviate), then one audit
//! line for the decision. Checking allocates nothing; the audit line is formatted by the
//! logging layer from borrowed values, and only when its level is on; a denial's message is
//! built only for the 403.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use portcullis_auth::rbac::{Action, Policies, Request};
use portcullis_auth::Principal;
use portcullis_config::AuditLog;

use super::need::Need;
use super::routes::UNMAPPED;

/// Where RBAC decisions are logged (`PORTCULLIS_AUDIT_LOG`, the audit target).
pub const AUDIT_TARGET: &str = "portcullis::audit";

/// Weaviate's `rbac_log_version` for the audit line's shape.
const LOG_VERSION: u8 = 2;

/// The RBAC decision and its audit log, shared by every listener.
pub struct Enforcer {
    policies: Arc<Policies>,
    audit: AuditLog,
    ip_in_audit: bool,
}

impl fmt::Debug for Enforcer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enforcer")
            .field("policies", &self.policies)
            .field("audit", &self.audit)
            .field("ip_in_audit", &self.ip_in_audit)
            .finish()
    }
}

/// A refused call: the 403 message in Weaviate's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl Enforcer {
    /// The enforcer over `policies`, logging what `audit` says, with the client address in
    /// each line unless `ip_in_audit` is false (`AUTHORIZATION_RBAC_IP_IN_AUDIT_LOG_DISABLED`).
    pub fn new(policies: Arc<Policies>, audit: AuditLog, ip_in_audit: bool) -> Self {
        Enforcer {
            policies,
            audit,
            ip_in_audit,
        }
    }

    /// The published policies.
    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// Whether `principal` may perform `request`, without an audit line: for the items of a
    /// filtered list, whose request has one line ([`Enforcer::audit_list`]).
    #[inline]
    pub fn allows(&self, principal: &Principal, request: &Request<'_>) -> bool {
        self.policies.allows(principal, request)
    }

    /// The index of the first need `principal` is not allowed, if any. Allocates nothing.
    pub fn first_denied(&self, principal: &Principal, needs: &[Need<'_>]) -> Option<usize> {
        needs
            .iter()
            .position(|need| !self.policies.allows(principal, &need.request()))
    }

    /// Decides a call that needs `needs` (all of them), logs the decision, and on a denial
    /// returns the 403 message.
    pub fn decide(
        &self,
        principal: &Principal,
        needs: &[Need<'_>],
        client: IpAddr,
    ) -> Result<(), Refused> {
        let denied = self.first_denied(principal, needs);
        self.audit(principal, needs, denied, client);
        match denied {
            None => Ok(()),
            Some(i) => Err(Refused(forbidden_message(principal, &needs[i]))),
        }
    }

    /// Decides a call on a route no rule covers ([`UNMAPPED`]).
    pub fn decide_unmapped(&self, principal: &Principal, client: IpAddr) -> Result<(), Refused> {
        let needs =
            UNMAPPED.map(|(action, [a, b, c])| Need::new(action, [a.into(), b.into(), c.into()]));
        self.decide(principal, &needs, client)
    }

    /// The one audit line of a listing filtered per item with `action`.
    pub fn audit_list(&self, principal: &Principal, action: Action, client: IpAddr) {
        if self.audit != AuditLog::All {
            return;
        }
        tracing::info!(
            target: AUDIT_TARGET,
            action = "authorize",
            component = "RBAC",
            user = ?principal.username(),
            groups = ?principal.groups(),
            request_action = action.name(),
            permissions = "[filtered per item]",
            result = "filtered",
            rbac_log_version = LOG_VERSION,
            source_ip = %SourceIp(self.ip_in_audit.then_some(client)),
            "authorization of a listing",
        );
    }

    fn audit(
        &self,
        principal: &Principal,
        needs: &[Need<'_>],
        denied: Option<usize>,
        client: IpAddr,
    ) {
        let permissions = Permissions { needs, denied };
        let source_ip = SourceIp(self.ip_in_audit.then_some(client));
        match (denied, self.audit) {
            (_, AuditLog::Off) | (None, AuditLog::Denials) => {}
            (None, AuditLog::All) => tracing::info!(
                target: AUDIT_TARGET,
                action = "authorize",
                component = "RBAC",
                user = ?principal.username(),
                groups = ?principal.groups(),
                request_action = %Actions(needs),
                permissions = %permissions,
                result = "success",
                rbac_log_version = LOG_VERSION,
                source_ip = %source_ip,
                "authorization allowed",
            ),
            (Some(_), AuditLog::All | AuditLog::Denials) => tracing::warn!(
                target: AUDIT_TARGET,
                action = "authorize",
                component = "RBAC",
                user = ?principal.username(),
                groups = ?principal.groups(),
                request_action = %Actions(needs),
                permissions = %permissions,
                result = "denied",
                rbac_log_version = LOG_VERSION,
                source_ip = %source_ip,
                "authorization denied",
            ),
        }
    }
}

/// The principal's groups as Weaviate's 403 names them: ` (of group 'g')`, ` (of groups 'a',
/// 'b')`, or nothing without groups.
pub fn groups_suffix(principal: &Principal) -> String {
    match principal.groups() {
        [] => String::new(),
        [one] => format!(" (of group '{one}')"),
        many => {
            let quoted: Vec<String> = many.iter().map(|g| format!("'{g}'")).collect();
            format!(" (of groups {})", quoted.join(", "))
        }
    }
}

/// Weaviate's 403 message for `need`.
pub fn forbidden_message(principal: &Principal, need: &Need<'_>) -> String {
    let groups = groups_suffix(principal);
    format!(
        "rbac: authorization, forbidden action: user '{}'{} has insufficient permissions to {} [{}]",
        principal.username(),
        groups,
        need.action.name(),
        Resource(need)
    )
}

/// A need's resource in Weaviate's words (`[Domain: data, Collection: Movie, Tenant: *,
/// Object: *]`), written without an intermediate string.
pub struct Resource<'n, 'a>(pub &'n Need<'a>);

impl fmt::Display for Resource<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use portcullis_auth::rbac::Domain;
        let need = self.0;
        let [a, b, c] = &need.values;
        match need.action.domain() {
            Domain::Collections => write!(f, "[Domain: collections, Collection: {a}]"),
            Domain::Backups => write!(f, "[Domain: backups, Collection: {a}]"),
            Domain::Tenants => write!(f, "[Domain: tenants, Collection: {a}, Tenant: {b}]"),
            Domain::Data => write!(
                f,
                "[Domain: data, Collection: {a}, Tenant: {b}, Object: {c}]"
            ),
            Domain::Nodes if a == "minimal" => write!(f, "[Domain: nodes, Verbosity: minimal]"),
            Domain::Nodes => write!(f, "[Domain: nodes, Verbosity: verbose, Collection: {b}]"),
            Domain::Cluster => write!(f, "[Domain: cluster]"),
            Domain::Roles => write!(f, "[Domain: roles, Role: {a}]"),
            Domain::Users => write!(f, "[Domain: users, User: {a}]"),
            Domain::Groups => write!(f, "[Domain: groups, Group type: oidc, Group: {a}]"),
            Domain::Replicate => write!(f, "[Domain: replicate, Collection: {a}, Shard: {b}]"),
            Domain::Aliases => write!(f, "[Domain: aliases, Collection: {a}, Alias: {b}]"),
        }
    }
}

/// The actions of a decision, each once, comma-separated.
struct Actions<'n, 'a>(&'n [Need<'a>]);

impl fmt::Display for Actions<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (i, need) in self.0.iter().enumerate() {
            if self.0[..i].iter().any(|n| n.action == need.action) {
                continue;
            }
            if !first {
                f.write_str(",")?;
            }
            f.write_str(need.action.name())?;
            first = false;
        }
        Ok(())
    }
}

/// The checked needs and their results, as Weaviate's `permissions` field (JSON): those
/// allowed before a denial, then the denied one (the rest were not checked).
struct Permissions<'n, 'a> {
    needs: &'n [Need<'a>],
    denied: Option<usize>,
}

impl fmt::Display for Permissions<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let checked = self.denied.map_or(self.needs.len(), |i| i + 1);
        f.write_str("[")?;
        for (i, need) in self.needs[..checked].iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let result = if Some(i) == self.denied {
                "denied"
            } else {
                "success"
            };
            // A name from a body may hold anything, quotes included: escaped, so the line
            // stays JSON and a name cannot forge a result.
            write!(
                f,
                "{{\"action\":\"{}\",\"resource\":{},\"results\":\"{result}\"}}",
                need.action.name(),
                JsonString(&Resource(need)),
            )?;
        }
        f.write_str("]")
    }
}

/// A Display value written as a JSON string (quoted, with `"`, `\` and control characters
/// escaped).
struct JsonString<'v, T: fmt::Display>(&'v T);

impl<T: fmt::Display> fmt::Display for JsonString<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Escaper<'f, 'g>(&'f mut fmt::Formatter<'g>);
        impl fmt::Write for Escaper<'_, '_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                for c in s.chars() {
                    match c {
                        '"' => self.0.write_str("\\\"")?,
                        '\\' => self.0.write_str("\\\\")?,
                        c if (c as u32) < 0x20 => write!(self.0, "\\u{:04x}", c as u32)?,
                        c => fmt::Write::write_char(self.0, c)?,
                    }
                }
                Ok(())
            }
        }
        f.write_str("\"")?;
        fmt::Write::write_fmt(&mut Escaper(f), format_args!("{}", self.0))?;
        f.write_str("\"")
    }
}

/// The audit line's source address, or `-` when it is left out.
struct SourceIp(Option<IpAddr>);

impl fmt::Display for SourceIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("-"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_auth::rbac::{Grant, Namespace, Permission};
    use portcullis_auth::PrincipalKind;
    use serde_json::json;
    use std::borrow::Cow;

    fn policies_with(role: &str, permissions: Vec<serde_json::Value>) -> Arc<Policies> {
        let policies = Policies::new();
        let grants = permissions.into_iter().map(|v| {
            let p: Permission = serde_json::from_value(v).unwrap();
            Grant::from_wire(&p).unwrap()
        });
        policies.set_role(role, portcullis_auth::rbac::CompiledRole::new(grants));
        Arc::new(policies)
    }

    fn data(action: Action, class: &'static str) -> Need<'static> {
        Need::data(action, Cow::Borrowed(class), "*".into(), "*".into())
    }

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn decides_every_need_and_names_the_first_denied_in_weaviates_words() {
        let policies = policies_with(
            "movies",
            vec![json!({"action": "read_data", "data": {"collection": "Movie*"}})],
        );
        policies.set_assignments(Namespace::Db, "alice", ["movies"]);
        policies.set_assignments(Namespace::Group, "film", ["movies"]);
        let enforcer = Enforcer::new(policies, AuditLog::All, true);
        let alice = Principal::new("alice", Vec::new(), PrincipalKind::DbUser);
        assert_eq!(
            enforcer.decide(&alice, &[data(Action::ReadData, "MovieA")], CLIENT),
            Ok(())
        );
        let refused = enforcer
            .decide(
                &alice,
                &[
                    data(Action::ReadData, "Movie"),
                    data(Action::UpdateData, "Movie"),
                ],
                CLIENT,
            )
            .unwrap_err();
        assert_eq!(
            refused.0,
            "rbac: authorization, forbidden action: user 'alice' has insufficient permissions to update_data [[Domain: data, Collection: Movie, Tenant: *, Object: *]]"
        );
        let carol = Principal::new(
            "carol",
            vec!["film".into(), "x".into()],
            PrincipalKind::Oidc,
        );
        assert_eq!(
            enforcer.decide(&carol, &[data(Action::ReadData, "Book")], CLIENT).unwrap_err().0,
            "rbac: authorization, forbidden action: user 'carol' (of groups 'film', 'x') has insufficient permissions to read_data [[Domain: data, Collection: Book, Tenant: *, Object: *]]"
        );
        // "All" needs a grant on all.
        assert!(enforcer
            .decide(&alice, &[data(Action::ReadData, "*")], CLIENT)
            .is_err());
        // An empty need list (open routes never come here, but) allows.
        assert_eq!(enforcer.decide(&alice, &[], CLIENT), Ok(()));
    }

    #[test]
    fn unmapped_routes_are_for_those_allowed_everything() {
        let policies = Arc::new(Policies::new());
        policies.set_assignments(Namespace::Db, "root", ["root"]);
        policies.set_assignments(Namespace::Db, "admin", ["admin"]);
        policies.set_assignments(Namespace::Db, "viewer", ["viewer"]);
        let enforcer = Enforcer::new(policies, AuditLog::Off, true);
        let user = |name: &str| Principal::new(name, Vec::new(), PrincipalKind::DbUser);
        assert!(enforcer.decide_unmapped(&user("root"), CLIENT).is_ok());
        assert!(enforcer.decide_unmapped(&user("admin"), CLIENT).is_ok());
        assert!(enforcer.decide_unmapped(&user("viewer"), CLIENT).is_err());
        assert!(enforcer.decide_unmapped(&user("nobody"), CLIENT).is_err());
    }

    #[test]
    fn the_audit_permissions_are_json_with_results_up_to_the_denial() {
        let needs = [
            data(Action::ReadData, "Movie"),
            Need::data(Action::UpdateData, "Mo\"v".into(), "*".into(), "*".into()),
            data(Action::DeleteData, "Movie"),
        ];
        let text = Permissions {
            needs: &needs,
            denied: Some(1),
        }
        .to_string();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            json!([
                {"action": "read_data", "resource": "[Domain: data, Collection: Movie, Tenant: *, Object: *]", "results": "success"},
                {"action": "update_data", "resource": "[Domain: data, Collection: Mo\"v, Tenant: *, Object: *]", "results": "denied"},
            ])
        );
        assert_eq!(
            Actions(&needs).to_string(),
            "read_data,update_data,delete_data"
        );
        assert_eq!(SourceIp(None).to_string(), "-");
    }
}
