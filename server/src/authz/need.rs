//! One thing a request needs ([`Need`]: an RBAC action on named resources) and the small
//! fixed-size list of them a route needs ([`Needs`]), kept on the stack.

use std::borrow::Cow;

use portcullis_auth::rbac::{Action, Request};

/// An action on concrete names, in the domain's filter order (see
/// [`portcullis_auth::rbac::Request`]). Names borrow from the request's path or query where
/// they can; one is owned only when it had to change (a collection's first letter upper-cased)
/// or came from a parsed body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need<'a> {
    /// The action.
    pub action: Action,
    /// The names, unused ones empty; `*` asks for "all".
    pub values: [Cow<'a, str>; 3],
}

const EMPTY: Cow<'static, str> = Cow::Borrowed("");

impl<'a> Need<'a> {
    /// An action on up to three names.
    pub fn new(action: Action, values: [Cow<'a, str>; 3]) -> Self {
        Need { action, values }
    }

    /// An action on one collection (collections, backups).
    pub fn collection(action: Action, collection: Cow<'a, str>) -> Self {
        Need::new(action, [collection, EMPTY, EMPTY])
    }

    /// A tenants action.
    pub fn tenant(action: Action, collection: Cow<'a, str>, tenant: Cow<'a, str>) -> Self {
        Need::new(action, [collection, tenant, EMPTY])
    }

    /// A data action.
    pub fn data(
        action: Action,
        collection: Cow<'a, str>,
        tenant: Cow<'a, str>,
        object: Cow<'a, str>,
    ) -> Self {
        Need::new(action, [collection, tenant, object])
    }

    /// An action on one name (users, groups, roles).
    pub fn named(action: Action, name: Cow<'a, str>) -> Self {
        Need::new(action, [name, EMPTY, EMPTY])
    }

    /// An action on two names (replicate, aliases).
    pub fn pair(action: Action, first: Cow<'a, str>, second: Cow<'a, str>) -> Self {
        Need::new(action, [first, second, EMPTY])
    }

    /// `read_nodes` with minimal output.
    pub fn nodes_minimal() -> Self {
        Need::new(Action::ReadNodes, [Cow::Borrowed("minimal"), EMPTY, EMPTY])
    }

    /// `read_nodes` with verbose output for a collection (`*` for all).
    pub fn nodes_verbose(collection: Cow<'a, str>) -> Self {
        Need::new(
            Action::ReadNodes,
            [Cow::Borrowed("verbose"), collection, EMPTY],
        )
    }

    /// `read_cluster`.
    pub fn cluster() -> Self {
        Need::new(Action::ReadCluster, [EMPTY, EMPTY, EMPTY])
    }

    /// The model's request for this need (borrows, allocates nothing).
    pub fn request(&self) -> Request<'_> {
        Request {
            action: self.action,
            values: [&self.values[0], &self.values[1], &self.values[2]],
        }
    }

    /// The same need with owned names, to outlive the request it was read from.
    pub fn into_owned(self) -> Need<'static> {
        let [a, b, c] = self.values;
        Need {
            action: self.action,
            values: [
                Cow::Owned(a.into_owned()),
                Cow::Owned(b.into_owned()),
                Cow::Owned(c.into_owned()),
            ],
        }
    }
}

/// Most routes need one to three checks: at most this many, on the stack.
pub const MAX_NEEDS: usize = 4;

/// A route's needs, every one of which must be allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Needs<'a> {
    items: [Need<'a>; MAX_NEEDS],
    len: usize,
    /// Set when a need did not fit: such a list allows nothing.
    overflowed: bool,
}

impl<'a> Needs<'a> {
    /// No need yet.
    pub fn new() -> Self {
        Needs {
            items: [
                Need::cluster(),
                Need::cluster(),
                Need::cluster(),
                Need::cluster(),
            ],
            len: 0,
            overflowed: false,
        }
    }

    /// One need.
    pub fn one(need: Need<'a>) -> Self {
        Needs::new().with(need)
    }

    /// These needs and `need`. The route table never asks for more than [`MAX_NEEDS`]; if it
    /// did, the list would be marked [overflowed](Needs::overflowed) and allow nothing, never
    /// silently drop a check.
    pub fn with(mut self, need: Need<'a>) -> Self {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = need;
                self.len += 1;
            }
            None => self.overflowed = true,
        }
        self
    }

    /// Whether a need did not fit (the list then allows nothing).
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// The needs.
    pub fn as_slice(&self) -> &[Need<'a>] {
        &self.items[..self.len]
    }

    /// The needs, to rewrite in place (an alias resolved to its collection).
    pub fn as_mut_slice(&mut self) -> &mut [Need<'a>] {
        &mut self.items[..self.len]
    }
}

impl Default for Needs<'_> {
    fn default() -> Self {
        Needs::new()
    }
}
