#!/usr/bin/env python3
"""Seeds a Portcullis user store with N database users for the benchmark.

Usage: seed_users.py <users.db> <count>   (the store must exist: start the server once first)
Prints one valid key (of the last user) on standard output. Keys follow Portcullis' format,
pcu_<id12>_<secret43><crc6>, base62, and only their SHA-256 digests are stored, as the server
does.
"""
import hashlib
import random
import sqlite3
import sys
import time
import zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        out.append(ALPHABET[n % 62])
        n //= 62
    return "".join(reversed(out))


_RNG = random.SystemRandom()


def random_base62(n: int) -> str:
    return "".join(_RNG.choices(ALPHABET, k=n))


def make_key() -> tuple[str, str]:
    key_id = random_base62(12)
    body = f"pcu_{key_id}_{random_base62(43)}"
    return key_id, body + base62(zlib.crc32(body.encode()), 6)


def main() -> None:
    path, count = sys.argv[1], int(sys.argv[2])
    now = int(time.time() * 1000)
    db = sqlite3.connect(path)
    rows = []
    key = ""
    for i in range(count):
        key_id, key = make_key()
        rows.append((f"bench{i:06d}", key_id, hashlib.sha256(key.encode()).digest(), now))
    db.executemany(
        "INSERT INTO users (id, key_id, key_digest, active, revoked, created_at_ms) VALUES (?, ?, ?, 1, 0, ?)",
        rows,
    )
    db.commit()
    db.close()
    print(key)


if __name__ == "__main__":
    main()
