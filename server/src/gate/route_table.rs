//! The route table: every path the server answers is classified here before any handler runs,
//! with the access it needs and the template used as its metric label. Nothing is open by
//! omission: a path the table does not know is answered 404 by the gate after authentication,
//! without reaching a handler.
//!
//! To add a route: add a row to [`ROUTES`] (more specific rows before less specific ones) and
//! register the handler in the module that serves it.

use actix_web::http::Method;
use portcullis_auth::Verb;

/// What a route requires of the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No credential is read (health probes).
    Public,
    /// No credential is needed, but one that is sent is validated (a bad one is refused):
    /// `/v1/.well-known/openid-configuration`, which clients call before they have one.
    CredentialOptional,
    /// Any authenticated principal, including anonymous where it is on; no verb is checked
    /// (GET and HEAD of `/v1`, `/v1/meta`, `/v1/users/own-info`, as in Weaviate).
    Authenticated,
    /// An authenticated principal allowed to perform this verb on the database.
    Verb(Verb),
    /// An authenticated principal allowed to read or to manage database users: an
    /// administrator (`docs/users.md`).
    Users(Verb),
    /// Not a route of ours: authenticate, then answer 404 without a handler.
    Unrouted,
}

/// How a row decides the access of a request.
#[derive(Clone, Copy, Debug)]
pub enum Rule {
    /// No credential is read.
    Public,
    /// No credential is needed; one that is sent is validated.
    CredentialOptional,
    /// Any authenticated principal for GET and HEAD, the route's only methods; any other
    /// method is judged a write. With an upstream, every `/v1` path Portcullis does not own is
    /// forwarded whatever its method, so `DELETE /v1/meta` or `POST /v1` must be judged as
    /// what the upstream may take it for, never by no verb.
    Authenticated,
    /// GET and HEAD read; every other method writes.
    ByMethod,
    /// Every method reads (queries sent with POST, such as GraphQL).
    Read,
    /// Database users: GET and HEAD read them, every other method manages them.
    Users,
}

/// One row: a template whose `{name}` segments match any one non-empty segment, and whose
/// final `{path*}` segment matches the rest of the path.
#[derive(Debug)]
pub struct Route {
    /// The template, also the metric label.
    pub template: &'static str,
    /// The access rule.
    pub rule: Rule,
    /// Whether the template has no `{..}` segment (matched by one comparison).
    literal: bool,
}

const fn route(template: &'static str, rule: Rule) -> Route {
    let bytes = template.as_bytes();
    let mut literal = true;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' {
            literal = false;
        }
        i += 1;
    }
    Route {
        template,
        rule,
        literal,
    }
}

/// Every route, first match wins.
pub const ROUTES: &[Route] = &[
    route("/", Rule::Public),
    route("/v1/.well-known/live", Rule::Public),
    route("/v1/.well-known/ready", Rule::Public),
    route("/v1", Rule::Authenticated),
    route("/v1/meta", Rule::Authenticated),
    route("/v1/users/own-info", Rule::Authenticated),
    route(
        "/v1/.well-known/openid-configuration",
        Rule::CredentialOptional,
    ),
    // Database users (api/users.rs): administrators only, and with the admin list on its
    // read-only subjects may list and read them.
    route("/v1/users/db", Rule::Users),
    route("/v1/users/db/{id}", Rule::Users),
    route("/v1/users/db/{id}/rotate-key", Rule::Users),
    route("/v1/users/db/{id}/activate", Rule::Users),
    route("/v1/users/db/{id}/deactivate", Rule::Users),
    route("/v1/graphql", Rule::Read),
    // The embedded document store (store/routes.rs).
    route("/v1/schema", Rule::ByMethod),
    route("/v1/schema/{class}", Rule::ByMethod),
    route("/v1/schema/{class}/properties", Rule::ByMethod),
    route("/v1/objects", Rule::ByMethod),
    route("/v1/objects/{class}/{id}", Rule::ByMethod),
    route("/v1/batch/objects", Rule::ByMethod),
    // Everything else under /v1 (the database API): verb by method.
    route("/v1/{path*}", Rule::ByMethod),
];

/// Number of label slots: every row plus `unrouted`.
pub const ROUTE_SLOTS: usize = ROUTES.len() + 1;

/// A classified request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteMatch {
    /// Row index in [`ROUTES`], or `ROUTES.len()` for unrouted paths.
    pub id: usize,
    /// What the caller needs.
    pub access: Access,
}

impl RouteMatch {
    /// The route template, the only form of the path used as a label.
    pub fn template(&self) -> &'static str {
        template_of(self.id)
    }
}

/// The label for a slot id.
pub fn template_of(id: usize) -> &'static str {
    ROUTES.get(id).map(|r| r.template).unwrap_or("unrouted")
}

fn matches(row: &Route, path: &str) -> bool {
    let template = row.template;
    // Most rows are literal: one comparison, no splitting.
    if row.literal {
        return template == path;
    }
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) if ts.starts_with('{') && ts.ends_with("*}") => {
                // The tail matches any non-empty rest.
                return !ps.is_empty() || p.next().is_some();
            }
            (Some(ts), Some(ps)) if ts.starts_with('{') => {
                if ps.is_empty() {
                    return false;
                }
            }
            (Some(ts), Some(ps)) => {
                if ts != ps {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// GET and HEAD read; every other method, known or not, may write.
fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// Classifies a request by method and path (the path without its query string).
pub fn classify(method: &Method, path: &str) -> RouteMatch {
    // "/v1/" is the index, as "/v1".
    let path = if path == "/v1/" { "/v1" } else { path };
    for (id, row) in ROUTES.iter().enumerate() {
        if matches(row, path) {
            let access = match row.rule {
                Rule::Public => Access::Public,
                Rule::CredentialOptional => Access::CredentialOptional,
                Rule::Authenticated if is_read(method) => Access::Authenticated,
                Rule::Authenticated => Access::Verb(Verb::Write),
                Rule::Read => Access::Verb(Verb::Read),
                Rule::ByMethod if is_read(method) => Access::Verb(Verb::Read),
                Rule::ByMethod => Access::Verb(Verb::Write),
                Rule::Users if is_read(method) => Access::Users(Verb::Read),
                Rule::Users => Access::Users(Verb::Write),
            };
            return RouteMatch { id, access };
        }
    }
    RouteMatch {
        id: ROUTES.len(),
        access: Access::Unrouted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_kind_of_route() {
        let cases = [
            (
                Method::GET,
                "/v1/.well-known/live",
                "/v1/.well-known/live",
                Access::Public,
            ),
            (
                Method::GET,
                "/v1/.well-known/ready",
                "/v1/.well-known/ready",
                Access::Public,
            ),
            (
                Method::GET,
                "/v1/.well-known/openid-configuration",
                "/v1/.well-known/openid-configuration",
                Access::CredentialOptional,
            ),
            (Method::GET, "/v1/meta", "/v1/meta", Access::Authenticated),
            (Method::GET, "/v1", "/v1", Access::Authenticated),
            (Method::GET, "/v1/", "/v1", Access::Authenticated),
            (
                Method::GET,
                "/v1/users/own-info",
                "/v1/users/own-info",
                Access::Authenticated,
            ),
            (
                Method::GET,
                "/v1/objects",
                "/v1/objects",
                Access::Verb(Verb::Read),
            ),
            (
                Method::HEAD,
                "/v1/objects/C/1",
                "/v1/objects/{class}/{id}",
                Access::Verb(Verb::Read),
            ),
            (
                Method::GET,
                "/v1/objects/C/1",
                "/v1/objects/{class}/{id}",
                Access::Verb(Verb::Read),
            ),
            (
                Method::PUT,
                "/v1/objects/C/1",
                "/v1/objects/{class}/{id}",
                Access::Verb(Verb::Write),
            ),
            (
                Method::PATCH,
                "/v1/objects/C/1",
                "/v1/objects/{class}/{id}",
                Access::Verb(Verb::Write),
            ),
            (
                Method::DELETE,
                "/v1/objects/C/1",
                "/v1/objects/{class}/{id}",
                Access::Verb(Verb::Write),
            ),
            (
                Method::GET,
                "/v1/schema",
                "/v1/schema",
                Access::Verb(Verb::Read),
            ),
            (
                Method::POST,
                "/v1/schema",
                "/v1/schema",
                Access::Verb(Verb::Write),
            ),
            (
                Method::GET,
                "/v1/schema/C",
                "/v1/schema/{class}",
                Access::Verb(Verb::Read),
            ),
            (
                Method::PUT,
                "/v1/schema/C",
                "/v1/schema/{class}",
                Access::Verb(Verb::Write),
            ),
            (
                Method::POST,
                "/v1/schema/C/properties",
                "/v1/schema/{class}/properties",
                Access::Verb(Verb::Write),
            ),
            (
                Method::POST,
                "/v1/batch/objects",
                "/v1/batch/objects",
                Access::Verb(Verb::Write),
            ),
            (
                Method::GET,
                "/v1/objects/C/1/references/r",
                "/v1/{path*}",
                Access::Verb(Verb::Read),
            ),
            (
                Method::POST,
                "/v1/graphql",
                "/v1/graphql",
                Access::Verb(Verb::Read),
            ),
            (
                Method::POST,
                "/v1/objects",
                "/v1/objects",
                Access::Verb(Verb::Write),
            ),
            (
                Method::DELETE,
                "/v1/schema/C",
                "/v1/schema/{class}",
                Access::Verb(Verb::Write),
            ),
            // The no-verb routes take GET and HEAD only: any other method is a write (with
            // an upstream it is forwarded), never open to any authenticated caller.
            (Method::HEAD, "/v1/meta", "/v1/meta", Access::Authenticated),
            (
                Method::POST,
                "/v1/meta",
                "/v1/meta",
                Access::Verb(Verb::Write),
            ),
            (
                Method::DELETE,
                "/v1/meta",
                "/v1/meta",
                Access::Verb(Verb::Write),
            ),
            (Method::POST, "/v1", "/v1", Access::Verb(Verb::Write)),
            (Method::PUT, "/v1/", "/v1", Access::Verb(Verb::Write)),
            (Method::OPTIONS, "/v1", "/v1", Access::Verb(Verb::Write)),
            (
                Method::from_bytes(b"PURGE").expect("a valid method"),
                "/v1/meta",
                "/v1/meta",
                Access::Verb(Verb::Write),
            ),
            (
                Method::POST,
                "/v1/users/own-info",
                "/v1/users/own-info",
                Access::Verb(Verb::Write),
            ),
            (
                Method::GET,
                "/v1/users/db",
                "/v1/users/db",
                Access::Users(Verb::Read),
            ),
            (
                Method::GET,
                "/v1/users/db/u1",
                "/v1/users/db/{id}",
                Access::Users(Verb::Read),
            ),
            (
                Method::POST,
                "/v1/users/db/u1",
                "/v1/users/db/{id}",
                Access::Users(Verb::Write),
            ),
            (
                Method::DELETE,
                "/v1/users/db/u1",
                "/v1/users/db/{id}",
                Access::Users(Verb::Write),
            ),
            (
                Method::POST,
                "/v1/users/db/u1/rotate-key",
                "/v1/users/db/{id}/rotate-key",
                Access::Users(Verb::Write),
            ),
            (
                Method::POST,
                "/v1/users/db/u1/deactivate",
                "/v1/users/db/{id}/deactivate",
                Access::Users(Verb::Write),
            ),
            (
                Method::HEAD,
                "/v1/users/db",
                "/v1/users/db",
                Access::Users(Verb::Read),
            ),
            (Method::GET, "/metrics", "unrouted", Access::Unrouted),
            (Method::GET, "/v1x", "unrouted", Access::Unrouted),
            (Method::GET, "/v1/", "/v1", Access::Authenticated),
        ];
        for (method, path, template, access) in cases {
            let m = classify(&method, path);
            assert_eq!(
                (m.template(), m.access),
                (template, access),
                "{method} {path}"
            );
        }
    }

    /// Whether `path` matches `template`, through a row built as [`ROUTES`]' are.
    fn template_matches(template: &'static str, path: &str) -> bool {
        matches(&route(template, Rule::ByMethod), path)
    }

    #[test]
    fn literal_rows_are_the_rows_without_a_parameter() {
        for row in ROUTES {
            assert_eq!(row.literal, !row.template.contains('{'), "{}", row.template);
        }
    }

    #[test]
    fn parameter_segments_match_one_non_empty_segment() {
        assert!(template_matches("/v1/x/{id}", "/v1/x/abc"));
        assert!(!template_matches("/v1/x/{id}", "/v1/x/"));
        assert!(!template_matches("/v1/x/{id}", "/v1/x/abc/def"));
        assert!(template_matches("/v1/x/{id}/rotate", "/v1/x/abc/rotate"));
        assert!(!template_matches("/v1/x/{id}/rotate", "/v1/x/abc/other"));
        assert!(template_matches("/v1/{path*}", "/v1/a/b/c"));
        assert!(!template_matches("/v1/{path*}", "/v1"));
        assert!(template_matches("/v1/meta", "/v1/meta"));
        assert!(!template_matches("/v1/meta", "/v1/meta/x"));
    }

    #[test]
    fn templates_never_contain_raw_request_paths() {
        let m = classify(&Method::GET, "/v1/objects/secret-looking-id");
        assert_eq!(m.template(), "/v1/{path*}");
    }
}
