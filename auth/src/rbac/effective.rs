//! A subject's effective permissions: the grants of every role it holds, merged and indexed by
//! action and by the first filter, so a check looks at the few grants that can match instead of
//! scanning every role's list.
//!
//! Within one action, a grant is found through its first filter (the collection, role, user or
//! group name, whichever the domain names first):
//! - a grant whose filters all match everything makes the action allowed outright;
//! - an exact first filter is a key in a hash map from that name to its grants;
//! - a first filter starting with a literal run (`Movie*`, `Movie*Archive`) is kept in a list
//!   sorted by that run; the runs that are prefixes of the asked name are found by binary
//!   search, without visiting the others;
//! - the rest (a first filter of `*` with narrower later filters, or one starting with `*`)
//!   are checked one by one.
//!
//! Each candidate is then checked whole with [`Grant::allows`], so the answer is exactly that of
//! checking every grant in turn; the index only skips grants that cannot match. Building it
//! allocates; checking does not.

use std::collections::HashMap;

use super::action::{Action, ACTION_COUNT};
use super::filter::Filter;
use super::permission::{Grant, RoleScope};
use super::role::Request;

/// One action's grants from every held role.
#[derive(Debug, Default)]
struct ActionGrants {
    /// Some grant's filters all match everything: every request of the action is allowed.
    everything: bool,
    /// Every grant, duplicates dropped (for the scope and coverage questions).
    grants: Box<[Grant]>,
    /// Exact first filter -> the grants (indices into `grants`) that have it.
    exact: HashMap<Box<str>, Box<[u32]>>,
    /// (literal run a first filter starts with, grant index), sorted by the run.
    prefixed: Box<[(Box<str>, u32)]>,
    /// Grants whose first filter starts with a star.
    scanned: Box<[u32]>,
}

impl ActionGrants {
    fn new(grants: Vec<Grant>) -> Self {
        let mut everything = false;
        let mut exact: HashMap<Box<str>, Vec<u32>> = HashMap::new();
        let mut prefixed = Vec::new();
        let mut scanned = Vec::new();
        for (i, grant) in grants.iter().enumerate() {
            let i = i as u32;
            if grant.filters.iter().all(|f| matches!(f, Filter::Any)) {
                everything = true;
            }
            match &grant.filters[0] {
                Filter::Exact(name) => exact.entry(name.clone()).or_default().push(i),
                Filter::Prefix(run) => prefixed.push((run.clone(), i)),
                Filter::Glob {
                    open_start: false,
                    parts,
                    ..
                } => prefixed.push((parts[0].clone(), i)),
                Filter::Any | Filter::Suffix(_) | Filter::Glob { .. } => scanned.push(i),
            }
        }
        prefixed.sort_by(|a, b| a.0.cmp(&b.0));
        ActionGrants {
            everything,
            grants: grants.into_boxed_slice(),
            exact: exact
                .into_iter()
                .map(|(name, list)| (name, list.into_boxed_slice()))
                .collect(),
            prefixed: prefixed.into_boxed_slice(),
            scanned: scanned.into_boxed_slice(),
        }
    }

    fn grant_allows(&self, i: u32, request: &Request<'_>) -> bool {
        self.grants[i as usize].allows(request)
    }

    fn allows(&self, request: &Request<'_>) -> bool {
        if self.everything {
            return true;
        }
        let first = request.values[0];
        if let Some(list) = self.exact.get(first) {
            if list.iter().any(|&i| self.grant_allows(i, request)) {
                return true;
            }
        }
        self.prefixed_allows(request) || self.scanned.iter().any(|&i| self.grant_allows(i, request))
    }

    /// Visits, from the back of the sorted list, only the runs that are prefixes of the first
    /// name. `probe` is always a prefix of the name, and every unvisited run that is a prefix
    /// of the name is a prefix of `probe`, so it sorts at or before `probe`. A visited run that
    /// is not a prefix shares `common` leading bytes with `probe` and sorts after
    /// `probe[..common]`; any prefix of the name sorting before it is at most `common` long.
    /// Each step either visits a candidate or shortens `probe`.
    fn prefixed_allows(&self, request: &Request<'_>) -> bool {
        let name = request.values[0].as_bytes();
        let mut probe = name;
        let mut end = self.prefixed.len();
        loop {
            end = self.prefixed[..end].partition_point(|(run, _)| run.as_bytes() <= probe);
            let Some((run, i)) = end.checked_sub(1).map(|last| &self.prefixed[last]) else {
                return false;
            };
            end -= 1;
            let run = run.as_bytes();
            if name.starts_with(run) {
                if self.grant_allows(*i, request) {
                    return true;
                }
            } else {
                let common = run.iter().zip(probe).take_while(|(a, b)| a == b).count();
                probe = &probe[..common];
            }
        }
    }
}

/// Every action's grants for one combination of roles.
#[derive(Debug)]
pub struct Effective {
    /// Action index -> 1 + its position in `actions`, or 0 when no held role grants it.
    slots: [u8; ACTION_COUNT],
    actions: Box<[ActionGrants]>,
}

impl Effective {
    /// Merges grants (from any number of roles), dropping duplicates.
    pub fn new<'a>(grants: impl IntoIterator<Item = &'a Grant>) -> Self {
        let mut by_action: Vec<Vec<Grant>> = vec![Vec::new(); ACTION_COUNT];
        for grant in grants {
            let list = &mut by_action[grant.action.index()];
            if !list.contains(grant) {
                list.push(grant.clone());
            }
        }
        let mut slots = [0u8; ACTION_COUNT];
        let mut actions = Vec::new();
        for (index, list) in by_action.into_iter().enumerate() {
            if !list.is_empty() {
                actions.push(ActionGrants::new(list));
                slots[index] = actions.len() as u8;
            }
        }
        Effective {
            slots,
            actions: actions.into_boxed_slice(),
        }
    }

    fn action(&self, action: Action) -> Option<&ActionGrants> {
        match self.slots[action.index()] {
            0 => None,
            slot => Some(&self.actions[usize::from(slot) - 1]),
        }
    }

    /// Whether some grant allows the request. Allocates nothing.
    pub fn allows(&self, request: &Request<'_>) -> bool {
        self.action(request.action)
            .is_some_and(|grants| grants.allows(request))
    }

    /// The widest scope with which some grant allows a role action on `role`.
    pub fn role_scope(&self, action: Action, role: &str) -> Option<RoleScope> {
        let request = Request::named(action, role);
        self.action(action)?
            .grants
            .iter()
            .filter(|g| g.allows(&request))
            .map(|g| g.scope)
            .max()
    }

    /// Whether some grant covers `asked` (see [`Grant::covers`]).
    pub fn covers(&self, asked: &Grant) -> bool {
        self.action(asked.action)
            .is_some_and(|grants| grants.grants.iter().any(|g| g.covers(asked)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::permission::Permission;
    use serde_json::json;

    fn grant(value: serde_json::Value) -> Grant {
        Grant::from_wire(&serde_json::from_value::<Permission>(value).unwrap()).unwrap()
    }

    fn data(collection: &str, tenant: &str) -> Grant {
        grant(json!({"action": "read_data", "data": {"collection": collection, "tenant": tenant}}))
    }

    /// The index answers exactly what checking every grant in turn answers.
    fn assert_same(grants: &[Grant], requests: &[Request<'_>]) {
        let effective = Effective::new(grants);
        for request in requests {
            let scanned = grants.iter().any(|g| g.allows(request));
            assert_eq!(
                effective.allows(request),
                scanned,
                "{request:?} against {grants:?}"
            );
        }
    }

    #[test]
    fn the_index_agrees_with_a_scan_of_every_grant() {
        let filters = [
            "Movie",
            "Movie*",
            "Mov*",
            "M*e",
            "Mo*ie*",
            "*ie",
            "*",
            "Movies",
            "Book*",
            "B*k",
            "Movie*x",
            "A",
            "Z*",
            "MovieArchive",
        ];
        let tenants = ["*", "t1", "t*"];
        let names = [
            "Movie",
            "Movies",
            "MovieArchive",
            "Mov",
            "Mo",
            "M",
            "",
            "*",
            "Book",
            "Bk",
            "Movix",
            "Moviex",
            "Zebra",
            "A",
            "Aa",
            "Ébène",
        ];
        let requests: Vec<Request<'_>> = names
            .iter()
            .flat_map(|n| {
                ["t1", "t2", "*"]
                    .into_iter()
                    .map(move |t| Request::data(Action::ReadData, n, t, "*"))
            })
            .collect();
        // Every single grant, and growing sets of them in two orders.
        let all: Vec<Grant> = filters
            .iter()
            .flat_map(|f| tenants.iter().map(move |t| data(f, t)))
            .collect();
        for g in &all {
            assert_same(std::slice::from_ref(g), &requests);
        }
        // The cases are not all one answer: without the `*` filter some names get in, some not.
        let no_star: Vec<Grant> = all
            .iter()
            .filter(|g| !matches!(g.filters[0], Filter::Any))
            .cloned()
            .collect();
        let allowed = requests
            .iter()
            .filter(|r| Effective::new(&no_star).allows(r))
            .count();
        assert!(allowed > 10 && allowed < requests.len() - 10, "{allowed}");
        for n in 1..all.len() {
            assert_same(&all[..n], &requests);
            assert_same(&all[all.len() - n..], &requests);
            let strided: Vec<Grant> = all.iter().step_by(n).cloned().collect();
            assert_same(&strided, &requests);
        }
    }

    #[test]
    fn many_prefixes_that_are_prefixes_of_each_other() {
        // Collection filters are upper-cased, as Weaviate does.
        let grants: Vec<Grant> = ["A", "Ab", "Abc", "Abd", "Abcd", "B", "Abca"]
            .iter()
            .map(|p| data(&format!("{p}*"), "only"))
            .chain([data("Abc*", "*")])
            .collect();
        let names = ["Abcde", "Abd", "Ab", "A", "Abcz", "B", "C", "Abce", "abc"];
        let requests: Vec<Request<'_>> = names
            .iter()
            .flat_map(|n| {
                ["only", "other"]
                    .into_iter()
                    .map(move |t| Request::data(Action::ReadData, n, t, ""))
            })
            .collect();
        assert_same(&grants, &requests);
        let effective = Effective::new(&grants);
        // Only the `Abc*` grant on every tenant lets `other` in.
        assert!(effective.allows(&Request::data(Action::ReadData, "Abcde", "other", "")));
        assert!(!effective.allows(&Request::data(Action::ReadData, "Abde", "other", "")));
        assert!(effective.allows(&Request::data(Action::ReadData, "Abde", "only", "")));
        assert!(!effective.allows(&Request::data(Action::ReadData, "Cde", "only", "")));
    }

    #[test]
    fn actions_are_separate_and_all_needs_a_star() {
        let effective = Effective::new(&[
            data("Movie", "*"),
            grant(json!({"action": "read_collections", "collections": {"collection": "*"}})),
        ]);
        assert!(effective.allows(&Request::data(Action::ReadData, "Movie", "x", "y")));
        assert!(!effective.allows(&Request::data(Action::UpdateData, "Movie", "x", "y")));
        assert!(!effective.allows(&Request::data(Action::ReadData, "*", "x", "y")));
        assert!(effective.allows(&Request::collection(Action::ReadCollections, "*")));
    }

    #[test]
    fn scope_and_coverage_over_merged_roles() {
        let effective = Effective::new(&[
            grant(json!({"action": "update_roles", "roles": {"role": "team-*"}})),
            grant(json!({"action": "update_roles", "roles": {"role": "team-x", "scope": "all"}})),
            data("Movie*", "*"),
        ]);
        assert_eq!(
            effective.role_scope(Action::UpdateRoles, "team-x"),
            Some(RoleScope::All)
        );
        assert_eq!(
            effective.role_scope(Action::UpdateRoles, "team-y"),
            Some(RoleScope::Match)
        );
        assert_eq!(effective.role_scope(Action::UpdateRoles, "ops"), None);
        assert!(effective.covers(&data("MovieA", "*")));
        assert!(!effective.covers(&data("*", "*")));
    }
}
