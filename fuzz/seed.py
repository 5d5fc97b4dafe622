#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ from the cases of the unit tests and
docs/hostile-inputs.md, and the test keys of tests/fixtures/oidc/. Deterministic; rerun after
changing a target's input format. Needs python3 with `cryptography` (Debian
python3-cryptography) to read the fixture keys' public numbers.

Each file is one input in the format the target's module documents (fuzz/src/<target>.rs).
"""
import base64
import json
import os
import zlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ROOT = Path(__file__).resolve().parent
FIXTURES = ROOT.parent / "tests" / "fixtures" / "oidc"
ISSUER = "https://issuer.example"
CLIENT_ID = "portcullis"
NOW = 1_700_000_000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def write(target: str, cases: list) -> None:
    directory = ROOT / "corpus" / target
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("seed-*"):
        old.unlink()
    for i, data in enumerate(cases):
        (directory / f"seed-{i:03}").write_bytes(data)


# -- credential: header values separated by \n --------------------------------------------
def credential() -> list:
    values = [
        b"Bearer abc", b"bearer abc", b"BEARER abc", b"bEaReR abc", b"Bearer  abc",
        b"Bearer a.b.c", b"Bearer abc==", b"Basic dXNlcjpwYXNz", b"Token abc", b"ApiKey abc",
        b"Bearerabc", b"Bearer a\nBearer b", b"Bearer a\nBasic b", b"Bearer a, Bearer b",
        b"Bearer a,b", b" ", b"   ", b"Bearer", b"Bearer ", b"bearer    ", b"Bearer\tabc",
        b"Bearer abc def", b"Bearer ab\xffc", b"Bearer abc ", b"\tBearer abc",
        b"Bearer pcu_0123456789ABcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ0000000000",
        b"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln",
    ]
    return [b""] + values


# -- jws: selector, then a raw token or header \n payload \n signature ----------------------
def jws() -> list:
    header = {"alg": "RS256", "kid": "rsa-a", "typ": "JWT"}
    claims = {
        "iss": ISSUER, "aud": CLIENT_ID, "sub": "alice", "email": "alice@example.com",
        "exp": NOW + 3600, "iat": NOW - 10, "nbf": NOW - 10, "groups": ["admins", "readers"],
    }
    sig = b"\x01\x02signature-bytes"
    headers = [
        header, {"alg": "RS256"}, {"alg": "ES256", "kid": "ec-a"}, {"alg": "EdDSA"},
        {"alg": "PS512", "typ": "at+jwt"}, {"alg": "none"}, {"alg": "nOnE"}, {"alg": "HS256"},
        {"alg": "RS256", "crit": []}, {"alg": "RS256", "cty": "JWT"}, {"alg": "RS256", "enc": "A128GCM"},
        {"alg": "RS256", "typ": "id_token"}, {"alg": "RS256", "kid": "../../dev/null"},
        {"alg": "RS256", "kid": "k" * 300}, {"alg": "RS256", "kid": 7}, {"alg": 1}, {},
        {"alg": "RS256", "jku": "https://attacker.test/jwks", "x5c": ["AAAA"]},
    ]
    payloads = [
        claims,
        {**claims, "exp": NOW - 3600}, {**claims, "exp": NOW}, {k: v for k, v in claims.items() if k != "exp"},
        {**claims, "exp": "1700003600"}, {**claims, "exp": 1700003600.5}, {**claims, "exp": -1},
        {**claims, "exp": 1e300}, {**claims, "exp": 2**64}, {**claims, "nbf": NOW + 3600},
        {**claims, "iat": NOW + 3600}, {**claims, "iss": ISSUER + "/"}, {**claims, "iss": 5},
        {**claims, "aud": "other"}, {**claims, "aud": ["other", CLIENT_ID]}, {**claims, "aud": 3},
        {**claims, "aud": [CLIENT_ID, 3]}, {k: v for k, v in claims.items() if k != "aud"},
        {**claims, "sub": ""}, {**claims, "sub": "ad\u202emin"}, {**claims, "sub": 42},
        {**claims, "groups": "admins"}, {**claims, "groups": ["a\u0000b", "", "ok", 7]},
        {**claims, "groups": {"a": 1}}, {**claims, "deep": [[[[[[[[[[1]]]]]]]]]]},
    ]
    cases = []
    for i, h in enumerate(headers):
        body = compact(h) + b"\n" + compact(claims) + b"\n" + sig
        cases.append(bytes([8 | (i % 8)]) + body)
    for i, p in enumerate(payloads):
        body = compact(header) + b"\n" + compact(p) + b"\n" + sig
        cases.append(bytes([8 | (i % 8)]) + body)
    # Duplicate members and non-JSON, written by hand.
    cases.append(bytes([8]) + b'{"alg":"RS256","alg":"none"}\n' + compact(claims) + b"\n")
    cases.append(bytes([8]) + compact(header) + b'\n{"iss":"' + ISSUER.encode() + b'","iss":"x"}\n')
    cases.append(bytes([8]) + b' {"alg":"RS256"}\n' + compact(claims) + b"\n")
    cases.append(bytes([8]) + b"not json\nnot json\n")
    # Raw tokens: the same first claims, and shapes.
    token = f"{b64(compact(header))}.{b64(compact(claims))}.{b64(sig)}"
    for raw in [token, token + ".x", token.replace(".", "..", 1), token + "=",
                b64(compact(header)) + "." + b64(compact(claims)) + ".",
                "a.b.c", "....", "x" * 9000 + ".a.b", token[:-1] + "+"]:
        cases.append(bytes([0]) + raw.encode())
    return cases


# -- jwks: selector (advertised algorithms), then the document ------------------------------
def public_jwk(path: Path) -> dict:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None).public_key()
    if isinstance(key, rsa.RSAPublicKey):
        n = key.public_numbers().n
        e = key.public_numbers().e
        return {"kty": "RSA", "n": b64(n.to_bytes((n.bit_length() + 7) // 8, "big")),
                "e": b64(e.to_bytes((e.bit_length() + 7) // 8, "big"))}
    if isinstance(key, ec.EllipticCurvePublicKey):
        numbers = key.public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": b64(numbers.x.to_bytes(32, "big")),
                "y": b64(numbers.y.to_bytes(32, "big"))}
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
    raise ValueError(path)


def jwks() -> list:
    rsa_a = {**public_jwk(FIXTURES / "rsa-a.pem"), "kid": "rsa-a", "alg": "RS256", "use": "sig"}
    rsa_b = {**public_jwk(FIXTURES / "rsa-b.pem"), "kid": "rsa-b"}
    weak = {**public_jwk(FIXTURES / "rsa-1024.pem"), "kid": "weak"}
    ec_a = {**public_jwk(FIXTURES / "ec-p256-a.pem"), "kid": "ec-a", "alg": "ES256"}
    ec_b = {**public_jwk(FIXTURES / "ec-p256-b.pem"), "kid": "ec-b"}
    ed = {**public_jwk(FIXTURES / "ed25519.pem"), "kid": "ed", "alg": "EdDSA"}
    documents = [
        {"keys": [rsa_a]}, {"keys": [rsa_a, rsa_b]}, {"keys": [rsa_a, ec_a, ed]},
        {"keys": [rsa_a, {**rsa_b, "kid": "rsa-a"}]}, {"keys": [rsa_a, rsa_a]},
        {"keys": [{**rsa_b, "kid": None}, {k: v for k, v in rsa_a.items() if k != "kid"}]},
        {"keys": [weak]}, {"keys": [{**rsa_a, "use": "enc"}]}, {"keys": [{**rsa_a, "key_ops": ["sign"]}]},
        {"keys": [{**rsa_a, "key_ops": ["verify"]}]}, {"keys": [{**rsa_a, "alg": "ES256"}]},
        {"keys": [{**ec_a, "alg": "RS256"}]}, {"keys": [{**ec_a, "crv": "P-384"}]},
        {"keys": [{**ec_b, "x": ec_b["x"][:-2]}]}, {"keys": [{**ed, "crv": "X25519"}]},
        {"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256", "kid": "hmac"}]},
        {"keys": [{**rsa_a, "n": rsa_a["n"] + "="}]}, {"keys": [{**rsa_a, "e": "AAAAAAAAAAAAAQAB"}]},
        {"keys": [{**rsa_a, "kid": "k" * 300}]}, {"keys": [{**rsa_a, "kid": 5}]},
        {"keys": [1, "x", None, [], {}]}, {"keys": {}}, {"nokeys": []}, [], {"keys": []},
    ]
    selectors = [0, 0xFF, 0x01, 0x41, 0xC0]
    cases = []
    for i, doc in enumerate(documents):
        cases.append(bytes([selectors[i % len(selectors)]]) + compact(doc))
    cases.append(bytes([0xFF]) + b'{"keys": [' + compact(rsa_a) + b"]} trailing")
    return cases


# -- db_key: mode byte, then a presented key (even) or bytes for a well-formed key (odd) -----
ALPHABET = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def checksum(body: str) -> str:
    value = zlib.crc32(body.encode())
    digits = []
    for _ in range(6):
        digits.append(chr(ALPHABET[value % 62]))
        value //= 62
    return "".join(reversed(digits))


def db_key() -> list:
    body = "pcu_" + "AbCdEf012345" + "_" + "x" * 43
    key = body + checksum(body)
    flipped = key[:25] + ("a" if key[25] != "a" else "b") + key[26:]
    cases = [bytes([0]) + k.encode() for k in [
        key, flipped, "", "pcu_", key[:-1], key + "x", key.replace("pcu_", "pcx_", 1),
        key.replace("_", "-"), key[:20] + "!" + key[21:], key[:30] + "é" + key[32:],
    ]]
    cases += [bytes([1]) + bytes(range(i, i + 60)) for i in (0, 40, 150)]
    return cases


# -- settings: entries separated by \0, NAME=value or !NAME=value --------------------------
def settings() -> list:
    environments = [
        [],
        ["AUTHENTICATION_APIKEY_ENABLED=true", "AUTHENTICATION_APIKEY_ALLOWED_KEYS=k1,k2",
         "AUTHENTICATION_APIKEY_USERS=alice,bob"],
        ["AUTHENTICATION_APIKEY_ENABLED=true", "!AUTHENTICATION_APIKEY_ALLOWED_KEYS=k1,,k2",
         "AUTHENTICATION_APIKEY_USERS=alice"],
        ["!PORTCULLIS_UPSTREAM_URL=http://db:8080"], ["!PORTCULLIS_UPSTREAM_URL=ftp://db"],
        ["!PORTCULLIS_UPSTREAM_URL=not a url"], ["!PORTCULLIS_BOOTSTRAP_ADMIN_KEY=short"],
        ["AUTHENTICATION_OIDC_ENABLED=true", "!AUTHENTICATION_OIDC_ISSUER=https://idp.example",
         "AUTHENTICATION_OIDC_CLIENT_ID=portcullis", "AUTHENTICATION_OIDC_USERNAME_CLAIM=email",
         "AUTHENTICATION_OIDC_GROUPS_CLAIM=groups"],
        ["AUTHENTICATION_OIDC_ENABLED=true", "!AUTHENTICATION_OIDC_ISSUER=http://[::1",
         "!AUTHENTICATION_OIDC_JWKS_URL=https://idp.example/jwks"],
        ["AUTHENTICATION_OIDC_ENABLED=true", "AUTHENTICATION_OIDC_ISSUER=https://idp.example",
         "AUTHENTICATION_OIDC_CERTIFICATE=-----\nnot pem"],
        ["PORTCULLIS_HTTP_ADDR=0.0.0.0:99999", "PORTCULLIS_WORKERS=0", "PORTCULLIS_MAX_BODY=10x",
         "PORTCULLIS_BODY_TIMEOUT=-1s", "PORTCULLIS_MAX_BATCH_OBJECTS=0", "LOG_LEVEL=loud",
         "LOG_FORMAT=xml", "PROMETHEUS_MONITORING_ENABLED=maybe", "PROMETHEUS_MONITORING_PORT=-2"],
        ["PORTCULLIS_OIDC_REFRESH_INTERVAL=5m", "PORTCULLIS_OIDC_KID_MISS_COOLDOWN=10s",
         "PORTCULLIS_OIDC_MAX_STALENESS=1h", "PORTCULLIS_OIDC_LEEWAY=30s",
         "PORTCULLIS_OIDC_FETCH_TIMEOUT=99999999999999999999h"],
        ["AUTHORIZATION_ADMINLIST_ENABLED=true", "AUTHORIZATION_ADMINLIST_USERS=alice",
         "AUTHORIZATION_ADMINLIST_READONLY_USERS=alice", "AUTHORIZATION_ADMINLIST_GROUPS=ops,"],
        ["AUTHORIZATION_RBAC_ENABLED=true", "AUTHORIZATION_RBAC_ROOT_USERS=root"],
        ["PORTCULLIS_NOT_A_VARIABLE=1", "AUTHENTICATION_DB_USERS_ENABLED=true",
         "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=false", "PERSISTENCE_DATA_PATH="],
    ]
    cases = [b"\0".join(e.encode() for e in env) for env in environments]
    # Selector entries: every index once, the marker bit on every other.
    cases.append(b"\0".join(bytes([i | (0x80 if i % 2 else 0)]) + b"x" for i in range(64)))
    return cases


# -- store_json: selector, then JSON ------------------------------------------------------
def store_json() -> list:
    batches = [
        b'{"fields": ["ALL"], "objects": [{"class": "A"}, {}], "x": {"y": [1]}}',
        b'{"objects": []}', b'{"objects": [{}, {}]}', b'{"objects": [{}, {}, {}]}',
        b'{"objects": [{}, "x", 0]}', b'{"objects": [0]}', b'{"objects": [{}, {}, [], {}]}',
        b'{"objects": [null]}', b'{"items": []}', b'{"objects": 5}', b'{"objects": {}}', b"[]",
        b'"objects"', b"{", b'{"objects": [}', b"", b"{} x",
        b'{"objects": [{"a": 1}], "objects": [{"b": 2}]}',
        b'{"objects": [{"class": "Article", "properties": {"title": "x"}, "id": '
        b'"5f2b1c2e-8b7a-4c55-9a8f-3f9b2d1e0c4a"}]}',
    ]
    cases = [bytes([(limit << 2) & 0xFC]) + body for body in batches for limit in (2, 7)]
    values = [
        b'"hello"', b'""', b"3", b"-7", b"9223372036854775807", b"18446744073709551615",
        b"1.5", b"2.0", b'"1"', b"true", b"null", b'"2024-02-29T13:45:00Z"',
        b'"2024-02-29T13:45:00.123456+02:00"', b'"2024-02-29"', b'"2024-12-31T23:59:60Z"',
        b'"5f2b1c2e-8b7a-4c55-9a8f-3f9b2d1e0c4a"', b'"not-a-uuid"', b'{"a": {"b": 1}}',
        b'["a", "b"]', b'["a", 1]', b"[1, 2.5]", b'[{"a": 1}, 2]', b'"' + b"x" * 500 + b'"',
    ]
    for type_index in range(16):
        for value in values[type_index % 4::4]:
            cases.append(bytes([2 | (type_index << 2)]) + value)
    classes = [
        {"class": "Article", "properties": [{"name": "title", "dataType": ["text"]},
                                             {"name": "count", "dataType": ["int"]}]},
        {"class": "article"}, {"class": ""}, {"class": "9x"}, {"class": "A" * 300},
        {"class": "Article", "properties": [{"name": "a", "dataType": ["text"]},
                                             {"name": "A", "dataType": ["int"]}]},
        {"class": "Article", "properties": {}}, {"class": "Article", "properties": [1]},
        {"class": "Article", "vectorizer": "text2vec-openai"},
        {"class": "Article", "multiTenancyConfig": {"enabled": True}},
        {"class": "Article", "properties": [{"name": "ref", "dataType": ["Other", "Third"]}]},
    ]
    cases += [bytes([3]) + compact(c) for c in classes]
    return cases


def main() -> None:
    for name, cases in [("credential", credential()), ("jws", jws()), ("jwks", jwks()),
                        ("db_key", db_key()), ("settings", settings()),
                        ("store_json", store_json())]:
        write(name, cases)
        print(f"{name}: {len(cases)} seeds")


if __name__ == "__main__":
    main()
