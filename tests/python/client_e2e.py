"""The official Weaviate Python client (weaviate-client v4) against a running Portcullis.

Driven by tests/tests/python_client.rs, which starts the real binary and passes, in the
environment:

  PORTCULLIS_E2E_HTTP_PORT, PORTCULLIS_E2E_GRPC_PORT   the server's ports on 127.0.0.1
  PORTCULLIS_E2E_SCENARIO   full | wrong-key | read-only | rotated
  PORTCULLIS_E2E_COLLECTION the collection the scenario works on
  PORTCULLIS_E2E_ROTATED_USER, PORTCULLIS_E2E_ADMIN_KEY   (rotated) the database user whose
                            key the scenario connects with, and an admin's key to rotate it
  and one credential:
  PORTCULLIS_E2E_API_KEY        an API key (static or database user)
  PORTCULLIS_E2E_BEARER         an OIDC access token (the test gets one from the real
                                provider with the client-credentials grant)

Each scenario checks what it can itself (a failed check exits non-zero with the reason on
standard error) and prints one line `RESULT <json>` with what it saw, which the Rust test
checks again. Credentials are never printed.
"""

import json
import os
import sys
import uuid

import weaviate
import weaviate.classes as wvc
from weaviate.classes.query import Filter, MetadataQuery
from weaviate.exceptions import (
    AuthenticationFailedError,
    InsufficientPermissionsError,
    UnexpectedStatusCodeError,
    WeaviateQueryError,
)

OBJECTS = 500
NAMESPACE = uuid.UUID("8b9c3f52-3a38-4c0e-9d0b-4f1e2d5a6c7e")


def env(name):
    value = os.environ.get(name)
    if value is None or value == "":
        fail(f"{name} is not set")
    return value


def fail(message):
    print(f"client_e2e: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def credentials():
    if os.environ.get("PORTCULLIS_E2E_API_KEY"):
        return wvc.init.Auth.api_key(os.environ["PORTCULLIS_E2E_API_KEY"])
    if os.environ.get("PORTCULLIS_E2E_BEARER"):
        return wvc.init.Auth.bearer_token(os.environ["PORTCULLIS_E2E_BEARER"], expires_in=600)
    fail("no credential given")


def connect(skip_init_checks=False):
    return weaviate.connect_to_custom(
        http_host="127.0.0.1",
        http_port=int(env("PORTCULLIS_E2E_HTTP_PORT")),
        http_secure=False,
        grpc_host="127.0.0.1",
        grpc_port=int(env("PORTCULLIS_E2E_GRPC_PORT")),
        grpc_secure=False,
        auth_credentials=credentials(),
        skip_init_checks=skip_init_checks,
    )


def properties(i):
    return {"title": f"item {i}", "count": i % 7, "price": i * 0.5, "done": i % 2 == 0}


def object_id(name, i):
    return uuid.uuid5(NAMESPACE, f"{name}/{i}")


def full(name):
    """Connect, create, insert_many, then read it back every way the issue lists."""
    result = {}
    with connect() as client:
        result["server_version"] = client.get_meta()["version"]
        client.collections.delete(name)
        client.collections.create(
            name,
            properties=[
                wvc.config.Property(name="title", data_type=wvc.config.DataType.TEXT),
                wvc.config.Property(name="count", data_type=wvc.config.DataType.INT),
                wvc.config.Property(name="price", data_type=wvc.config.DataType.NUMBER),
                wvc.config.Property(name="done", data_type=wvc.config.DataType.BOOL),
            ],
        )
        collection = client.collections.get(name)

        objects = [
            wvc.data.DataObject(properties=properties(i), uuid=object_id(name, i))
            for i in range(OBJECTS)
        ]
        inserted = collection.data.insert_many(objects)
        check(not inserted.has_errors, f"insert_many reported errors: {inserted.errors}")
        check(len(inserted.uuids) == OBJECTS, f"insert_many returned {len(inserted.uuids)} ids")
        result["inserted"] = len(inserted.uuids)

        # A batch with one bad object: the others are written, the bad one reported by index.
        bad = collection.data.insert_many(
            [
                wvc.data.DataObject(properties=properties(OBJECTS), uuid=object_id(name, OBJECTS)),
                wvc.data.DataObject(properties={"count": "seven"}, uuid=object_id(name, -1)),
            ]
        )
        check(bad.has_errors and list(bad.errors) == [1], f"mixed batch errors: {bad.errors}")
        result["batch_error"] = bad.errors[1].message

        ids = sorted(str(object_id(name, i)) for i in range(OBJECTS + 1))

        page = collection.query.fetch_objects(
            limit=10,
            offset=5,
            return_properties=["title", "count"],
            return_metadata=MetadataQuery(creation_time=True, last_update_time=True),
        )
        got = [str(o.uuid) for o in page.objects]
        check(got == ids[5:15], f"fetch_objects page: {got} != {ids[5:15]}")
        for o in page.objects:
            check(set(o.properties) == {"title", "count"}, f"projection: {o.properties}")
            check(o.metadata.creation_time is not None, "creation time missing")
            check(o.metadata.last_update_time is not None, "update time missing")
        result["page"] = got

        seen = [str(o.uuid) for o in collection.iterator()]
        check(seen == ids, f"the cursor saw {len(seen)} objects, not the {len(ids)} in id order")
        result["iterated"] = len(seen)

        target = object_id(name, 42)
        one = collection.query.fetch_object_by_id(target)
        check(one is not None, "fetch_object_by_id found nothing")
        check(one.uuid == target, f"fetch_object_by_id returned {one.uuid}")
        check(one.properties == properties(42), f"object 42 came back as {one.properties}")
        check(one.metadata.creation_time is not None, "fetch_object_by_id: no creation time")
        result["by_id"] = {"uuid": str(one.uuid), "properties": one.properties}
        missing = collection.query.fetch_object_by_id(uuid.UUID(int=0))
        check(missing is None, "fetch_object_by_id of an unknown id found something")

        def matching(filters):
            found = collection.query.fetch_objects(filters=filters, limit=OBJECTS + 1)
            return sorted(str(o.uuid) for o in found.objects)

        def expected(predicate):
            return sorted(str(object_id(name, i)) for i in range(OBJECTS + 1) if predicate(i))

        filters = {
            "count=3": (Filter.by_property("count").equal(3), lambda i: i % 7 == 3),
            "count=3&done": (
                Filter.by_property("count").equal(3) & Filter.by_property("done").equal(True),
                lambda i: i % 7 == 3 and i % 2 == 0,
            ),
            "count=1|count=2": (
                Filter.by_property("count").equal(1) | Filter.by_property("count").equal(2),
                lambda i: i % 7 in (1, 2),
            ),
            "title=item 42": (Filter.by_property("title").equal("item 42"), lambda i: i == 42),
            "price=10.5": (Filter.by_property("price").equal(10.5), lambda i: i == 21),
            "id": (Filter.by_id().equal(object_id(name, 7)), lambda i: i == 7),
        }
        result["filters"] = {}
        for label, (f, predicate) in filters.items():
            got = matching(f)
            check(got == expected(predicate), f"filter {label}: {len(got)} objects")
            result["filters"][label] = len(got)

        total = collection.aggregate.over_all(total_count=True).total_count
        check(total == OBJECTS + 1, f"aggregate total_count {total}")
        result["total_count"] = total
        filtered = collection.aggregate.over_all(
            total_count=True, filters=Filter.by_property("done").equal(False)
        ).total_count
        result["total_count_not_done"] = filtered

        try:
            collection.query.near_vector([0.1, 0.2], limit=1)
            fail("near_vector was answered")
        except WeaviateQueryError as e:
            result["near_vector_error"] = e.message
    return result


def wrong_key(name):
    """A wrong credential fails at connect (the client reads /v1/meta, which answers 401)."""
    result = {}
    try:
        connect().close()
        fail("connected with a wrong key")
    except UnexpectedStatusCodeError as e:
        result["connect_error"] = type(e).__name__
        result["connect_status"] = e.status_code
        result["connect_message"] = e.message
    except AuthenticationFailedError as e:
        result["connect_error"] = type(e).__name__
    return result


def rotated(name):
    """A client connected with a database user's key; an admin rotates that key; the
    connected client's next gRPC call is refused (the old key no longer authenticates)."""
    result = {}
    user = env("PORTCULLIS_E2E_ROTATED_USER")
    admin_key = env("PORTCULLIS_E2E_ADMIN_KEY")
    with connect() as client:
        collection = client.collections.get(name)
        result["before"] = len(collection.query.fetch_objects(limit=2).objects)
        admin = weaviate.connect_to_custom(
            http_host="127.0.0.1",
            http_port=int(env("PORTCULLIS_E2E_HTTP_PORT")),
            http_secure=False,
            grpc_host="127.0.0.1",
            grpc_port=int(env("PORTCULLIS_E2E_GRPC_PORT")),
            grpc_secure=False,
            auth_credentials=wvc.init.Auth.api_key(admin_key),
        )
        with admin:
            new_key = admin.users.db.rotate_key(user_id=user)
            check(new_key and new_key != os.environ["PORTCULLIS_E2E_API_KEY"], "no new key")
        try:
            collection.query.fetch_objects(limit=2)
            fail("the rotated-out key was still accepted")
        except WeaviateQueryError as e:
            result["after_error"] = type(e).__name__
            result["after_message"] = e.message
    return result


def read_only(name):
    """A read-only user: reads work, insert_many is refused and writes nothing."""
    result = {}
    with connect() as client:
        collection = client.collections.get(name)
        before = collection.aggregate.over_all(total_count=True).total_count
        result["count_before"] = before
        try:
            collection.data.insert_many(
                [wvc.data.DataObject(properties=properties(i)) for i in range(5)]
            )
            fail("a read-only user's insert_many was accepted")
        except InsufficientPermissionsError as e:
            result["insert_error"] = type(e).__name__
        after = collection.aggregate.over_all(total_count=True).total_count
        check(after == before, f"the refused insert_many changed the count: {before} -> {after}")
        result["count_after"] = after
        page = collection.query.fetch_objects(limit=3)
        result["read"] = len(page.objects)
    return result


def main():
    scenario = env("PORTCULLIS_E2E_SCENARIO")
    name = env("PORTCULLIS_E2E_COLLECTION")
    runs = {"full": full, "wrong-key": wrong_key, "read-only": read_only, "rotated": rotated}
    if scenario not in runs:
        fail(f"unknown scenario {scenario!r}")
    result = runs[scenario](name)
    result["client_version"] = weaviate.__version__
    print("RESULT " + json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
