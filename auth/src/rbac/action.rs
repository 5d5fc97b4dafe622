//! The closed set of RBAC actions and the resource domains they act on, named as Weaviate names
//! them on the wire (`read_data`, `assign_and_revoke_users`, ...).

/// A kind of resource a permission is about; each has its own JSON key and filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Domain {
    /// Collection definitions (`collections{collection}`).
    Collections,
    /// Tenants of a collection (`tenants{collection,tenant}`).
    Tenants,
    /// Objects (`data{collection,tenant,object}`).
    Data,
    /// Backups (`backups{collection}`).
    Backups,
    /// Node status (`nodes{verbosity,collection}`).
    Nodes,
    /// Cluster statistics and tasks (no filter).
    Cluster,
    /// Roles (`roles{role,scope}`).
    Roles,
    /// Users (`users{users}`).
    Users,
    /// OIDC groups (`groups{group,groupType}`).
    Groups,
    /// Replication operations (`replicate{collection,shard}`).
    Replicate,
    /// Collection aliases (`aliases{collection,alias}`).
    Aliases,
}

impl Domain {
    /// The permission's JSON key for this domain's filters; none for the cluster.
    pub fn key(self) -> Option<&'static str> {
        Some(match self {
            Domain::Collections => "collections",
            Domain::Tenants => "tenants",
            Domain::Data => "data",
            Domain::Backups => "backups",
            Domain::Nodes => "nodes",
            Domain::Cluster => return None,
            Domain::Roles => "roles",
            Domain::Users => "users",
            Domain::Groups => "groups",
            Domain::Replicate => "replicate",
            Domain::Aliases => "aliases",
        })
    }
}

macro_rules! actions {
    ($($variant:ident = $name:literal in $domain:ident,)*) => {
        /// One RBAC action. The order is the wire enum's, and [`Action::index`] numbers them
        /// densely so compiled roles can index grants by action.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl Action {
            /// Every action, in wire order.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The wire name.
            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }

            /// The action with this wire name.
            pub fn parse(name: &str) -> Option<Action> {
                match name {
                    $($name => Some(Action::$variant),)*
                    _ => None,
                }
            }

            /// The domain the action is about.
            pub fn domain(self) -> Domain {
                match self {
                    $(Action::$variant => Domain::$domain,)*
                }
            }
        }
    };
}

actions! {
    CreateCollections = "create_collections" in Collections,
    ReadCollections = "read_collections" in Collections,
    UpdateCollections = "update_collections" in Collections,
    DeleteCollections = "delete_collections" in Collections,
    CreateTenants = "create_tenants" in Tenants,
    ReadTenants = "read_tenants" in Tenants,
    UpdateTenants = "update_tenants" in Tenants,
    DeleteTenants = "delete_tenants" in Tenants,
    CreateData = "create_data" in Data,
    ReadData = "read_data" in Data,
    UpdateData = "update_data" in Data,
    DeleteData = "delete_data" in Data,
    ManageBackups = "manage_backups" in Backups,
    ReadNodes = "read_nodes" in Nodes,
    ReadCluster = "read_cluster" in Cluster,
    CreateRoles = "create_roles" in Roles,
    ReadRoles = "read_roles" in Roles,
    UpdateRoles = "update_roles" in Roles,
    DeleteRoles = "delete_roles" in Roles,
    CreateUsers = "create_users" in Users,
    ReadUsers = "read_users" in Users,
    UpdateUsers = "update_users" in Users,
    DeleteUsers = "delete_users" in Users,
    AssignAndRevokeUsers = "assign_and_revoke_users" in Users,
    ReadGroups = "read_groups" in Groups,
    AssignAndRevokeGroups = "assign_and_revoke_groups" in Groups,
    CreateReplicate = "create_replicate" in Replicate,
    ReadReplicate = "read_replicate" in Replicate,
    UpdateReplicate = "update_replicate" in Replicate,
    DeleteReplicate = "delete_replicate" in Replicate,
    CreateAliases = "create_aliases" in Aliases,
    ReadAliases = "read_aliases" in Aliases,
    UpdateAliases = "update_aliases" in Aliases,
    DeleteAliases = "delete_aliases" in Aliases,
}

/// How many actions there are.
pub const ACTION_COUNT: usize = Action::ALL.len();

impl Action {
    /// A dense number in `0..ACTION_COUNT`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the action only reads (`read_*`): the built-in viewer and read-only roles hold
    /// exactly these.
    pub fn is_read(self) -> bool {
        self.name().starts_with("read_")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_index_densely() {
        assert_eq!(ACTION_COUNT, 34);
        for (i, action) in Action::ALL.iter().enumerate() {
            assert_eq!(action.index(), i);
            assert_eq!(Action::parse(action.name()), Some(*action));
        }
        assert_eq!(Action::parse("manage_roles"), None);
        assert_eq!(Action::parse("READ_DATA"), None);
    }

    #[test]
    fn read_actions_are_the_read_prefixed_ones() {
        let reads: Vec<_> = Action::ALL.iter().filter(|a| a.is_read()).collect();
        assert_eq!(reads.len(), 10);
        assert!(!Action::ManageBackups.is_read());
        assert!(Action::ReadCluster.is_read());
        assert_eq!(Action::ReadCluster.domain().key(), None);
        assert_eq!(Action::AssignAndRevokeGroups.domain(), Domain::Groups);
    }
}
