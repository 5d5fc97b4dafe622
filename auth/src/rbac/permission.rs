//! Permissions on the wire (`{"action":"read_data","data":{"collection":"Movie*"}}`) and their
//! compiled form, a [`Grant`]: the action, up to three compiled filters in the domain's order,
//! and for roles the scope.
//!
//! | domain | filters, in order |
//! | --- | --- |
//! | collections, backups | collection |
//! | tenants | collection, tenant |
//! | data | collection, tenant, object |
//! | nodes | verbosity (`minimal`/`verbose`), collection (verbose only) |
//! | cluster | none |
//! | roles | role (plus the scope) |
//! | users | users |
//! | groups | group (the group type must be `oidc`) |
//! | replicate | collection, shard |
//! | aliases | collection, alias |

use serde::{Deserialize, Serialize};

use super::action::{Action, Domain};
use super::filter::{normalize, Filter, FilterError, FilterKind};

/// A permission as the `/v1/authz` API reads and writes it. Filters missing from the body
/// default to `*`; keys of other domains are ignored, as in Weaviate.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// The action's wire name.
    pub action: String,
    /// Filters of a `*_collections` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections: Option<Filters>,
    /// Filters of a `*_tenants` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Filters>,
    /// Filters of a `*_data` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Filters>,
    /// Filters of `manage_backups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backups: Option<Filters>,
    /// Filters of `read_nodes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Filters>,
    /// Filters of a `*_roles` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Filters>,
    /// Filters of a `*_users` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Filters>,
    /// Filters of a `*_groups` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Filters>,
    /// Filters of a `*_replicate` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicate: Option<Filters>,
    /// Filters of a `*_aliases` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Filters>,
}

/// The filter fields of every domain (each domain reads its own).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filters {
    /// A collection filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// A tenant filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// An object filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// `minimal` or `verbose` (nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<String>,
    /// A role filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `all` or `match` (roles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// A user filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<String>,
    /// A group filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The group type; only `oidc` exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_type: Option<String>,
    /// A shard filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// An alias filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// Why a permission was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionError {
    /// Not one of the actions.
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    /// A filter that is refused.
    #[error("{action}: {field}: {source}")]
    Filter {
        /// The permission's action.
        action: &'static str,
        /// The filter's field.
        field: &'static str,
        /// Why.
        source: FilterError,
    },
    /// Nodes verbosity other than `minimal` or `verbose`.
    #[error("read_nodes: verbosity must be \"minimal\" or \"verbose\", not {0:?}")]
    Verbosity(String),
    /// Role scope other than `all` or `match`.
    #[error("{action}: scope must be \"all\" or \"match\", not {scope:?}")]
    Scope {
        /// The permission's action.
        action: &'static str,
        /// The refused scope.
        scope: String,
    },
    /// A group permission without its filters, or of a group type other than `oidc`.
    #[error("{0}")]
    Group(String),
}

/// How far a role permission reaches: over every role, or only over roles whose permissions
/// the holder holds too (`match`, Weaviate's default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RoleScope {
    /// Only what the holder holds itself.
    Match,
    /// Every role.
    All,
}

impl RoleScope {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleScope::Match => "match",
            RoleScope::All => "all",
        }
    }
}

/// A compiled permission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// What it allows.
    pub action: Action,
    /// The domain's filters in order ([`Filter::Any`] where the domain has fewer).
    pub filters: [Filter; 3],
    /// For role actions, how far it reaches; [`RoleScope::All`] elsewhere.
    pub scope: RoleScope,
}

const MINIMAL: &str = "minimal";
const VERBOSE: &str = "verbose";

impl Grant {
    /// A grant of `action` on everything (the built-in roles').
    pub fn everything(action: Action) -> Grant {
        Grant {
            action,
            filters: [Filter::Any, Filter::Any, Filter::Any],
            scope: RoleScope::All,
        }
    }

    /// Compiles a wire permission, checking every filter.
    pub fn from_wire(permission: &Permission) -> Result<Grant, PermissionError> {
        let action = Action::parse(&permission.action)
            .ok_or_else(|| PermissionError::UnknownAction(permission.action.clone()))?;
        let name = action.name();
        let empty = Filters::default();
        let filters = match action.domain() {
            Domain::Collections => permission.collections.as_ref(),
            Domain::Tenants => permission.tenants.as_ref(),
            Domain::Data => permission.data.as_ref(),
            Domain::Backups => permission.backups.as_ref(),
            Domain::Nodes => permission.nodes.as_ref(),
            Domain::Cluster => None,
            Domain::Roles => permission.roles.as_ref(),
            Domain::Users => permission.users.as_ref(),
            Domain::Groups => permission.groups.as_ref(),
            Domain::Replicate => permission.replicate.as_ref(),
            Domain::Aliases => permission.aliases.as_ref(),
        };
        if action.domain() == Domain::Groups {
            let Some(groups) = filters else {
                return Err(PermissionError::Group(format!(
                    "{name}: the groups filter is required"
                )));
            };
            let kind = groups.group_type.as_deref().unwrap_or("");
            if kind != "oidc" {
                return Err(PermissionError::Group(format!(
                    "{name}: unknown groupType: {kind}"
                )));
            }
        }
        let filters = filters.unwrap_or(&empty);
        let field = |value: &Option<String>, field: &'static str, kind: FilterKind| {
            let value = value.as_deref().unwrap_or("*");
            normalize(value, kind)
                .map(|normalized| Filter::compile(&normalized))
                .map_err(|source| PermissionError::Filter {
                    action: name,
                    field,
                    source,
                })
        };
        let any = || Filter::Any;
        let mut scope = RoleScope::All;
        let compiled = match action.domain() {
            Domain::Collections | Domain::Backups => [
                field(&filters.collection, "collection", FilterKind::Collection)?,
                any(),
                any(),
            ],
            Domain::Tenants => [
                field(&filters.collection, "collection", FilterKind::Collection)?,
                field(&filters.tenant, "tenant", FilterKind::Name)?,
                any(),
            ],
            Domain::Data => [
                field(&filters.collection, "collection", FilterKind::Collection)?,
                field(&filters.tenant, "tenant", FilterKind::Name)?,
                field(&filters.object, "object", FilterKind::Object)?,
            ],
            Domain::Nodes => match filters.verbosity.as_deref().unwrap_or(MINIMAL) {
                MINIMAL => [Filter::Exact(MINIMAL.into()), any(), any()],
                VERBOSE => [
                    Filter::Exact(VERBOSE.into()),
                    field(&filters.collection, "collection", FilterKind::Collection)?,
                    any(),
                ],
                other => return Err(PermissionError::Verbosity(other.to_owned())),
            },
            Domain::Cluster => [any(), any(), any()],
            Domain::Roles => {
                scope = match filters.scope.as_deref().map(str::to_ascii_lowercase) {
                    None => RoleScope::Match,
                    Some(s) if s == "match" => RoleScope::Match,
                    Some(s) if s == "all" => RoleScope::All,
                    Some(_) => {
                        return Err(PermissionError::Scope {
                            action: name,
                            scope: filters.scope.clone().unwrap_or_default(),
                        })
                    }
                };
                [
                    field(&filters.role, "role", FilterKind::Name)?,
                    any(),
                    any(),
                ]
            }
            Domain::Users => [
                field(&filters.users, "users", FilterKind::Principal)?,
                any(),
                any(),
            ],
            Domain::Groups => [
                field(&filters.group, "group", FilterKind::Principal)?,
                any(),
                any(),
            ],
            Domain::Replicate => [
                field(&filters.collection, "collection", FilterKind::Collection)?,
                field(&filters.shard, "shard", FilterKind::Name)?,
                any(),
            ],
            Domain::Aliases => [
                field(&filters.collection, "collection", FilterKind::Collection)?,
                field(&filters.alias, "alias", FilterKind::Collection)?,
                any(),
            ],
        };
        Ok(Grant {
            action,
            filters: compiled,
            scope,
        })
    }

    /// The wire permission, every filter filled in as Weaviate reads them back.
    pub fn to_wire(&self) -> Permission {
        let text = |i: usize| Some(self.filters[i].to_string());
        let mut filters = Filters::default();
        let mut permission = Permission {
            action: self.action.name().to_owned(),
            ..Permission::default()
        };
        let slot = match self.action.domain() {
            Domain::Collections => {
                filters.collection = text(0);
                &mut permission.collections
            }
            Domain::Backups => {
                filters.collection = text(0);
                &mut permission.backups
            }
            Domain::Tenants => {
                filters.collection = text(0);
                filters.tenant = text(1);
                &mut permission.tenants
            }
            Domain::Data => {
                filters.collection = text(0);
                filters.tenant = text(1);
                filters.object = text(2);
                &mut permission.data
            }
            Domain::Nodes => {
                if self.filters[0] == Filter::Exact(MINIMAL.into()) {
                    filters.verbosity = Some(MINIMAL.to_owned());
                } else {
                    // Verbose, or a built-in's grant on every verbosity: shown as its widest.
                    filters.verbosity = Some(VERBOSE.to_owned());
                    filters.collection = text(1);
                }
                &mut permission.nodes
            }
            Domain::Cluster => return permission,
            Domain::Roles => {
                filters.role = text(0);
                filters.scope = Some(self.scope.as_str().to_owned());
                &mut permission.roles
            }
            Domain::Users => {
                filters.users = text(0);
                &mut permission.users
            }
            Domain::Groups => {
                filters.group = text(0);
                filters.group_type = Some("oidc".to_owned());
                &mut permission.groups
            }
            Domain::Replicate => {
                filters.collection = text(0);
                filters.shard = text(1);
                &mut permission.replicate
            }
            Domain::Aliases => {
                filters.collection = text(0);
                filters.alias = text(1);
                &mut permission.aliases
            }
        };
        *slot = Some(filters);
        permission
    }

    /// Whether this grant allows everything `asked` allows: the same action, each filter
    /// matching the asked filter's text, and at least the asked scope. This is what
    /// `has-permission` answers and what a role manager of scope `match` must hold for every
    /// permission it grants or removes.
    pub fn covers(&self, asked: &Grant) -> bool {
        self.action == asked.action
            && self.scope >= asked.scope
            && self
                .filters
                .iter()
                .zip(&asked.filters)
                .all(|(mine, theirs)| mine.matches(&theirs.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<Grant, PermissionError> {
        Grant::from_wire(&serde_json::from_value(value).unwrap())
    }

    #[test]
    fn missing_filters_default_to_everything_and_read_back_filled_in() {
        let grant = parse(json!({"action": "read_data"})).unwrap();
        assert_eq!(grant, Grant::everything(Action::ReadData));
        assert_eq!(
            serde_json::to_value(grant.to_wire()).unwrap(),
            json!({"action": "read_data", "data": {"collection": "*", "tenant": "*", "object": "*"}})
        );
        let cluster = parse(json!({"action": "read_cluster"})).unwrap();
        assert_eq!(
            serde_json::to_value(cluster.to_wire()).unwrap(),
            json!({"action": "read_cluster"})
        );
    }

    #[test]
    fn each_domain_reads_its_own_key_and_round_trips() {
        let cases = [
            json!({"action": "create_collections", "collections": {"collection": "Movie*"}}),
            json!({"action": "read_tenants", "tenants": {"collection": "Movie", "tenant": "t-*"}}),
            json!({"action": "update_data", "data": {"collection": "Movie", "tenant": "*", "object": "*"}}),
            json!({"action": "manage_backups", "backups": {"collection": "*"}}),
            json!({"action": "read_nodes", "nodes": {"verbosity": "minimal"}}),
            json!({"action": "read_nodes", "nodes": {"verbosity": "verbose", "collection": "Movie"}}),
            json!({"action": "create_roles", "roles": {"role": "team-*", "scope": "match"}}),
            json!({"action": "read_roles", "roles": {"role": "*", "scope": "all"}}),
            json!({"action": "assign_and_revoke_users", "users": {"users": "alice@example.com"}}),
            json!({"action": "read_groups", "groups": {"group": "ops:eu,1", "groupType": "oidc"}}),
            json!({"action": "delete_replicate", "replicate": {"collection": "Movie", "shard": "abc*"}}),
            json!({"action": "update_aliases", "aliases": {"collection": "Movie", "alias": "Films"}}),
        ];
        for case in cases {
            let grant = parse(case.clone()).unwrap();
            assert_eq!(serde_json::to_value(grant.to_wire()).unwrap(), case);
        }
    }

    #[test]
    fn other_domains_keys_are_ignored_and_collections_capitalized() {
        let grant = parse(json!({
            "action": "read_data",
            "collections": {"collection": "Other"},
            "data": {"collection": "movie"}
        }))
        .unwrap();
        assert_eq!(grant.filters[0], Filter::Exact("Movie".into()));
        assert_eq!(grant.filters[1], Filter::Any);
    }

    #[test]
    fn bad_permissions_are_refused_with_what_is_wrong() {
        assert_eq!(
            parse(json!({"action": "manage_roles"})),
            Err(PermissionError::UnknownAction("manage_roles".into()))
        );
        let err = parse(json!({"action": "read_data", "data": {"collection": "Movie|Book"}}))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("read_data: collection: filter \"Movie|Book\" uses \"|\""),
            "{err}"
        );
        assert!(matches!(
            parse(json!({"action": "read_nodes", "nodes": {"verbosity": "loud"}})),
            Err(PermissionError::Verbosity(_))
        ));
        assert!(matches!(
            parse(json!({"action": "read_roles", "roles": {"scope": "some"}})),
            Err(PermissionError::Scope { .. })
        ));
        assert_eq!(
            parse(json!({"action": "read_groups", "groups": {"group": "g", "groupType": "ldap"}})),
            Err(PermissionError::Group(
                "read_groups: unknown groupType: ldap".into()
            ))
        );
        assert!(matches!(
            parse(json!({"action": "read_groups"})),
            Err(PermissionError::Group(_))
        ));
    }

    #[test]
    fn roles_default_to_match_scope_and_scope_is_case_insensitive() {
        let grant = parse(json!({"action": "update_roles", "roles": {"role": "x"}})).unwrap();
        assert_eq!(grant.scope, RoleScope::Match);
        let grant = parse(json!({"action": "update_roles", "roles": {"scope": "ALL"}})).unwrap();
        assert_eq!(grant.scope, RoleScope::All);
    }

    #[test]
    fn coverage_follows_filters_scope_and_verbosity() {
        let g = |v| parse(v).unwrap();
        let star = g(json!({"action": "read_data"}));
        let movie = g(json!({"action": "read_data", "data": {"collection": "Movie"}}));
        let movies = g(json!({"action": "read_data", "data": {"collection": "Movie*"}}));
        assert!(star.covers(&movie));
        assert!(star.covers(&movies));
        assert!(movies.covers(&movie));
        assert!(!movie.covers(&movies));
        assert!(!movie.covers(&star));
        assert!(!star.covers(&g(json!({"action": "update_data"}))));
        let all = g(json!({"action": "read_roles", "roles": {"scope": "all"}}));
        let matching = g(json!({"action": "read_roles", "roles": {"scope": "match"}}));
        assert!(all.covers(&matching));
        assert!(!matching.covers(&all));
        let minimal = g(json!({"action": "read_nodes"}));
        let verbose = g(json!({"action": "read_nodes", "nodes": {"verbosity": "verbose"}}));
        assert!(!minimal.covers(&verbose));
        assert!(!verbose.covers(&minimal));
        assert!(Grant::everything(Action::ReadNodes).covers(&minimal));
        assert!(Grant::everything(Action::ReadNodes).covers(&verbose));
    }
}
