//! The RBAC decision on the request path allocates nothing (issue 13: "a check is a lookup by
//! action plus a match over that action's patterns, with no allocation"): the route plan and
//! the check of its needs, for database users and OIDC users with groups, allowed and denied,
//! and the whole `Enforcer::decide` (audit log off) of an allowed request, counted by
//! `allocation-counter`'s global allocator. A denial's 403 message is written into a new
//! string, which is the one allocation left, on the refused path only.
//!
//! The count is of this test's thread alone. A process-wide count also took in the test
//! harness's own thread, whose first wait for the test allocates: on a loaded machine that
//! wait began inside the counted loop (CI after stop 23: 4 allocations, 900 bytes, none freed).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use actix_web::http::Method;
use portcullis_auth::rbac::{CompiledRole, Grant, Namespace, Permission, Policies};
use portcullis_auth::{Principal, PrincipalKind};
use portcullis_config::AuditLog;
use portcullis_server::authz::{plan, Enforcer, Plan};
use serde_json::json;

/// The plan and check for one request: whether it is allowed. Allowed requests go through the
/// whole decision; denied ones stop before the 403 message is written.
fn decide(enforcer: &Enforcer, principal: &Principal, method: &Method, path: &str) -> bool {
    match plan(method, path, "") {
        Plan::Check(needs) => {
            enforcer.first_denied(principal, needs.as_slice()).is_none()
                && enforcer
                    .decide(principal, needs.as_slice(), IpAddr::V4(Ipv4Addr::LOCALHOST))
                    .is_ok()
        }
        other => panic!("{path}: expected a checked route, got {other:?}"),
    }
}

#[test]
fn an_rbac_decision_allocates_nothing() {
    let role = |permissions: Vec<serde_json::Value>| {
        CompiledRole::new(permissions.into_iter().map(|value| {
            let permission: Permission = serde_json::from_value(value).expect("a permission");
            Grant::from_wire(&permission).expect("a valid grant")
        }))
    };
    let policies = Policies::new();
    let mut permissions = Vec::new();
    for i in 0..200 {
        // Exact names, prefixes, globs and suffixes, all on read_data.
        let collection = match i % 4 {
            0 => format!("Col{i}"),
            1 => format!("Col{i}x*"),
            2 => format!("Col*{i}*Archive"),
            _ => format!("*Suffix{i}"),
        };
        permissions.push(json!({"action": "read_data", "data": {"collection": collection}}));
    }
    permissions.push(json!({"action": "read_data", "data": {"collection": "Movie"}}));
    permissions.push(json!({"action": "update_data", "data": {"collection": "Book*"}}));
    policies.set_role("many", role(permissions));
    policies.set_role(
        "tenant",
        role(vec![
            json!({"action": "read_data", "data": {"collection": "*", "tenant": "t1"}}),
        ]),
    );
    policies.set_assignments(Namespace::Db, "bench", ["many", "tenant"]);
    policies.set_assignments(Namespace::Group, "film", ["many"]);
    policies.set_assignments(Namespace::Oidc, "carol", ["viewer"]);
    let enforcer = Enforcer::new(Arc::new(policies), AuditLog::Off, true);

    let db = Principal::new("bench", Vec::new(), PrincipalKind::DbUser);
    let oidc = Principal::new(
        "dave",
        vec!["other".into(), "film".into()],
        PrincipalKind::Oidc,
    );
    let viewer = Principal::new("carol", Vec::new(), PrincipalKind::Oidc);
    let id = "00000000-0000-4000-8000-000000000001";
    let get = Method::GET;
    let put = Method::PUT;
    let cases: Vec<(&Principal, &Method, String, bool)> = vec![
        (&db, &get, format!("/v1/objects/Movie/{id}"), true),
        (&db, &get, format!("/v1/objects/Col5xyz/{id}"), true),
        (&db, &get, format!("/v1/objects/Col2222Archive/{id}"), true),
        (&db, &get, format!("/v1/objects/AnySuffix3/{id}"), true),
        (&db, &get, format!("/v1/objects/Nothing/{id}"), false),
        (&db, &put, format!("/v1/objects/Books/{id}"), true),
        (&db, &put, format!("/v1/objects/Movie/{id}"), false),
        (&oidc, &get, format!("/v1/objects/Movie/{id}"), true),
        (&oidc, &get, format!("/v1/objects/Nothing/{id}"), false),
        (&viewer, &get, format!("/v1/objects/Nothing/{id}"), true),
        (&viewer, &put, format!("/v1/objects/Nothing/{id}"), false),
    ];
    // Once outside the count: the answers are right, and per-thread state (arc-swap's debt
    // list, the hash maps' seeds) exists.
    for (principal, method, path, allowed) in &cases {
        assert_eq!(
            decide(&enforcer, principal, method, path),
            *allowed,
            "{} {method} {path}",
            principal.username()
        );
    }
    let mut answers = 0usize;
    let counted = allocation_counter::measure(|| {
        for _ in 0..100 {
            for (principal, method, path, _) in &cases {
                answers += usize::from(decide(&enforcer, principal, method, path));
            }
        }
    });
    assert_eq!(answers, 100 * 7);
    // A reallocation is counted as an allocation.
    assert_eq!(
        counted.count_total, 0,
        "the decision allocated: {counted:?}"
    );
    // The counter counts: a box made here is seen.
    let boxed = allocation_counter::measure(|| {
        std::hint::black_box(Box::new(answers));
    });
    assert_eq!(
        boxed.count_total, 1,
        "the counter is not the global allocator"
    );
}
