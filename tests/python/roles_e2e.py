"""Roles (RBAC) through the official Weaviate Python client against a running Portcullis.

Driven by tests/tests/python_client.rs, which starts the real binary with
AUTHORIZATION_RBAC_ENABLED=true and passes, in the environment:

  PORTCULLIS_E2E_HTTP_PORT, PORTCULLIS_E2E_GRPC_PORT   the server's ports on 127.0.0.1
  PORTCULLIS_E2E_SCENARIO   roles-db | roles-oidc
  PORTCULLIS_E2E_API_KEY    a root user's API key (the script manages roles with it)
  (roles-oidc) PORTCULLIS_E2E_ALICE_TOKEN, PORTCULLIS_E2E_BOB_TOKEN   access tokens of the
                            real OpenID provider's users alice (groups admins, staff) and bob
                            (group readers)

roles-db: roles made with the client's permission builders, assigned to and revoked from
database users the script creates; list, get, exists, has_permissions (coverage: a `viewer`
has every read), get_assigned_roles(include_permissions=True), get_user_assignments,
get_my_user; a viewer cannot write, a collection-scoped role reads only its collection, and a
role manager with scope `match` cannot grant more than it holds.

roles-oidc: roles assigned to an OIDC user and to OIDC groups; the users get the permissions
(alice through her group), group listings are sorted, and revoking takes them away.

Each scenario checks what it can itself (a failed check exits non-zero with the reason on
standard error) and prints one line `RESULT <json>` with what it saw, which the Rust test checks
again. Credentials are never printed.
"""

import json
import os
import sys

import weaviate
import weaviate.classes as wvc
from weaviate.classes.rbac import Permissions, RoleScope
from weaviate.exceptions import InsufficientPermissionsError


def env(name):
    value = os.environ.get(name)
    if value is None or value == "":
        fail(f"{name} is not set")
    return value


def fail(message):
    print(f"roles_e2e: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def connect(credentials):
    return weaviate.connect_to_custom(
        http_host="127.0.0.1",
        http_port=int(env("PORTCULLIS_E2E_HTTP_PORT")),
        http_secure=False,
        grpc_host="127.0.0.1",
        grpc_port=int(env("PORTCULLIS_E2E_GRPC_PORT")),
        grpc_secure=False,
        auth_credentials=credentials,
    )


def api_key(key):
    return wvc.init.Auth.api_key(key)


def bearer(token):
    return wvc.init.Auth.bearer_token(token, expires_in=600)


def refused(call):
    """The name of the exception `call` raised when refused; fails if it was answered."""
    try:
        call()
    except InsufficientPermissionsError as e:
        return type(e).__name__
    fail("a call that must be refused was answered")


def summary(role):
    """A role's permissions as sorted `action resource` strings."""
    out = []
    for p in role.permissions:
        resource = {
            k: v
            for k, v in p.model_dump().items()
            if k != "actions" and v is not None
        }
        for action in p.actions:
            out.append(f"{action.value} {json.dumps(resource, sort_keys=True)}")
    return sorted(out)


def make_collections(client):
    for name in ("Movie", "Book"):
        client.collections.delete(name)
        client.collections.create(
            name,
            # The index flags spelled out: the embedded store keeps a class as sent, and the
            # client's collections.list_all() reads them back.
            properties=[
                wvc.config.Property(
                    name="title",
                    data_type=wvc.config.DataType.TEXT,
                    index_filterable=True,
                    index_searchable=True,
                )
            ],
        )
        client.collections.get(name).data.insert({"title": f"a {name}"})


def read(client, name):
    return len(client.collections.get(name).query.fetch_objects(limit=10).objects)


def roles_db():
    result = {}
    users = ("py-viewer", "py-movies", "py-manager", "py-target")
    with connect(api_key(env("PORTCULLIS_E2E_API_KEY"))) as admin:
        make_collections(admin)
        keys = {user: admin.users.db.create(user_id=user) for user in users}

        admin.roles.create(
            role_name="movie-reader",
            permissions=[
                Permissions.collections(collection="movie", read_config=True),
                Permissions.data(collection="Movie", read=True),
            ],
        )
        admin.roles.create(
            role_name="role-manager",
            permissions=[
                Permissions.roles(
                    role="*", create=True, read=True, update=True, delete=True,
                    scope=RoleScope.MATCH,
                ),
                Permissions.users(user="*", read=True, assign_and_revoke=True),
                Permissions.data(collection="Movie*", read=True),
            ],
        )
        result["roles"] = sorted(admin.roles.list_all())
        result["movie_reader"] = summary(admin.roles.get("movie-reader"))
        result["exists"] = [admin.roles.exists("movie-reader"), admin.roles.exists("nope")]
        result["get_missing"] = admin.roles.get("nope") is None
        has = admin.roles.has_permissions
        result["has"] = {
            "movie-reader read Movie": has(
                permissions=Permissions.data(collection="Movie", read=True), role="movie-reader"
            ),
            "movie-reader read Book": has(
                permissions=Permissions.data(collection="Book", read=True), role="movie-reader"
            ),
            "movie-reader read+update Movie": has(
                permissions=Permissions.data(collection="Movie", read=True, update=True),
                role="movie-reader",
            ),
            "role-manager read MovieNight": has(
                permissions=Permissions.data(collection="MovieNight", read=True),
                role="role-manager",
            ),
            "viewer read Book": has(
                permissions=[
                    Permissions.data(collection="Book", read=True),
                    Permissions.collections(collection="Book", read_config=True),
                ],
                role="viewer",
            ),
            "viewer create Book": has(
                permissions=Permissions.data(collection="Book", create=True), role="viewer"
            ),
        }

        admin.users.db.assign_roles(user_id="py-viewer", role_names="viewer")
        admin.users.db.assign_roles(user_id="py-movies", role_names=["movie-reader"])
        admin.users.db.assign_roles(user_id="py-manager", role_names="role-manager")
        full = admin.users.db.get_assigned_roles(user_id="py-movies", include_permissions=True)
        result["assigned_full"] = {name: summary(role) for name, role in full.items()}
        result["assigned_names"] = sorted(admin.users.db.get_assigned_roles(user_id="py-movies"))
        result["user_assignments"] = [
            [a.user_id, a.user_type.value] for a in admin.roles.get_user_assignments("movie-reader")
        ]
        result["assigned_user_ids"] = admin.roles.get_assigned_user_ids("movie-reader")
        result["db_user_roles"] = admin.users.db.get(user_id="py-movies").role_names
        me = admin.users.get_my_user()
        result["admin_me"] = {"user_id": me.user_id, "roles": sorted(me.roles)}

    with connect(api_key(keys["py-viewer"])) as viewer:
        me = viewer.users.get_my_user()
        result["viewer_me"] = {"user_id": me.user_id, "roles": sorted(me.roles)}
        result["viewer_reads"] = [read(viewer, "Movie"), read(viewer, "Book")]
        movie = viewer.collections.get("Movie")
        result["viewer_insert"] = refused(lambda: movie.data.insert({"title": "x"}))
        result["viewer_insert_many"] = refused(
            lambda: movie.data.insert_many([{"title": "x"}, {"title": "y"}])
        )
        result["viewer_delete_collection"] = refused(lambda: viewer.collections.delete("Book"))
        result["viewer_create_role"] = refused(
            lambda: viewer.roles.create(
                role_name="sneaky", permissions=Permissions.data(collection="*", create=True)
            )
        )

    with connect(api_key(keys["py-movies"])) as movies:
        result["movies_exists"] = [
            movies.collections.exists("Movie"),
            refused(lambda: movies.collections.exists("Book")),
        ]
        result["movies_read_movie"] = read(movies, "Movie")
        result["movies_read_book"] = refused(lambda: read(movies, "Book"))
        me = movies.users.get_my_user()
        result["movies_me"] = {name: summary(role) for name, role in me.roles.items()}

    with connect(api_key(keys["py-manager"])) as manager:
        manager.roles.create(
            role_name="movie-sub", permissions=Permissions.data(collection="Movie", read=True)
        )
        result["manager_escalations"] = {
            "create read Book": refused(
                lambda: manager.roles.create(
                    role_name="book-sub",
                    permissions=Permissions.data(collection="Book", read=True),
                )
            ),
            "create read *": refused(
                lambda: manager.roles.create(
                    role_name="all-sub", permissions=Permissions.data(collection="*", read=True)
                )
            ),
            "create roles scope all": refused(
                lambda: manager.roles.create(
                    role_name="boss",
                    permissions=Permissions.roles(role="*", read=True, scope=RoleScope.ALL),
                )
            ),
            "add update Movie": refused(
                lambda: manager.roles.add_permissions(
                    role_name="movie-sub",
                    permissions=Permissions.data(collection="Movie", update=True),
                )
            ),
        }
        result["manager_sees"] = [
            manager.roles.exists("movie-sub"),
            manager.roles.exists("book-sub"),
            manager.roles.exists("boss"),
        ]
        manager.users.db.assign_roles(user_id="py-target", role_names="movie-sub")

    with connect(api_key(keys["py-target"])) as target:
        result["target_read"] = read(target, "Movie")
        result["target_read_book"] = refused(lambda: read(target, "Book"))

    with connect(api_key(env("PORTCULLIS_E2E_API_KEY"))) as admin:
        # The client's revoke_roles drops userType: Weaviate's deprecated path, both namespaces.
        admin.users.db.revoke_roles(user_id="py-movies", role_names="movie-reader")
        result["revoked_names"] = sorted(admin.users.db.get_assigned_roles(user_id="py-movies"))
        admin.roles.remove_permissions(
            role_name="movie-reader",
            permissions=Permissions.data(collection="Movie", read=True),
        )
        result["after_remove"] = summary(admin.roles.get("movie-reader"))
        admin.roles.delete("movie-sub")
        result["deleted_exists"] = admin.roles.exists("movie-sub")

    with connect(api_key(keys["py-movies"])) as movies:
        result["movies_after_revoke"] = refused(lambda: read(movies, "Movie"))
        result["movies_me_after"] = sorted(movies.users.get_my_user().roles)
    with connect(api_key(keys["py-target"])) as target:
        result["target_after_delete"] = refused(lambda: read(target, "Movie"))
    return result


def roles_oidc():
    result = {}
    alice_token = env("PORTCULLIS_E2E_ALICE_TOKEN")
    bob_token = env("PORTCULLIS_E2E_BOB_TOKEN")
    with connect(api_key(env("PORTCULLIS_E2E_API_KEY"))) as admin:
        make_collections(admin)
        admin.roles.create(
            role_name="staff-movies",
            permissions=[
                Permissions.collections(collection="Movie", read_config=True),
                Permissions.data(collection="Movie", read=True),
            ],
        )
        admin.roles.create(
            role_name="bob-books",
            permissions=[
                Permissions.collections(collection="Book", read_config=True),
                Permissions.data(collection="Book", read=True),
            ],
        )
        for group in ("zeta-team", "staff", "alpha-team"):
            admin.groups.oidc.assign_roles(group_id=group, role_names="staff-movies")
        admin.users.oidc.assign_roles(user_id="bob", role_names=["bob-books"])

        result["known_groups"] = admin.groups.oidc.get_known_group_names()
        staff = admin.groups.oidc.get_assigned_roles(group_id="staff", include_permissions=True)
        result["staff_roles"] = {name: summary(role) for name, role in staff.items()}
        result["group_assignments"] = [
            [a.group_id, a.group_type] for a in admin.roles.get_group_assignments("staff-movies")
        ]
        result["bob_roles"] = sorted(admin.users.oidc.get_assigned_roles(user_id="bob"))
        bob_full = admin.users.oidc.get_assigned_roles(user_id="bob", include_permissions=True)
        result["bob_full"] = {name: summary(role) for name, role in bob_full.items()}
        result["bob_assignments"] = [
            [a.user_id, a.user_type.value] for a in admin.roles.get_user_assignments("bob-books")
        ]

    with connect(bearer(alice_token)) as alice:
        me = alice.users.get_my_user()
        result["alice_me"] = {
            "user_id": me.user_id,
            "groups": sorted(me.groups),
            "roles": sorted(me.roles),
        }
        result["alice_reads_movie"] = read(alice, "Movie")
        result["alice_reads_book"] = refused(lambda: read(alice, "Book"))
        result["alice_exists"] = [
            alice.collections.exists("Movie"),
            refused(lambda: alice.collections.exists("Book")),
        ]
        # Her own group's roles need no read_groups; another group's do.
        result["alice_own_group"] = sorted(alice.groups.oidc.get_assigned_roles(group_id="staff"))
        result["alice_other_group"] = refused(
            lambda: alice.groups.oidc.get_assigned_roles(group_id="zeta-team")
        )
    with connect(bearer(bob_token)) as bob:
        me = bob.users.get_my_user()
        result["bob_me"] = {"user_id": me.user_id, "groups": me.groups, "roles": sorted(me.roles)}
        result["bob_reads_book"] = read(bob, "Book")
        result["bob_reads_movie"] = refused(lambda: read(bob, "Movie"))

    with connect(api_key(env("PORTCULLIS_E2E_API_KEY"))) as admin:
        admin.groups.oidc.revoke_roles(group_id="staff", role_names="staff-movies")
        admin.users.oidc.revoke_roles(user_id="bob", role_names="bob-books")
        result["known_groups_after"] = admin.groups.oidc.get_known_group_names()
        result["bob_roles_after"] = sorted(admin.users.oidc.get_assigned_roles(user_id="bob"))

    with connect(bearer(alice_token)) as alice:
        result["alice_after"] = refused(lambda: read(alice, "Movie"))
        result["alice_roles_after"] = sorted(alice.users.get_my_user().roles)
    with connect(bearer(bob_token)) as bob:
        result["bob_after"] = refused(lambda: read(bob, "Book"))
    return result


def main():
    scenario = env("PORTCULLIS_E2E_SCENARIO")
    runs = {"roles-db": roles_db, "roles-oidc": roles_oidc}
    if scenario not in runs:
        fail(f"unknown scenario {scenario!r}")
    result = runs[scenario]()
    result["client_version"] = weaviate.__version__
    print("RESULT " + json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
