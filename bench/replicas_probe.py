#!/usr/bin/env python3
"""Rotations timed for bench/replicas.sh: creates the user `probe` on replica A, then rotates
its key N times on A. For each rotation, threads hammer A, B and C with the old key
(GET /v1/users/own-info) from just before the rotate is sent until each answers 401; the row
is (the rotate call's latency, the time from sending it to the last replica's first 401).
Prints markdown rows with p50 and p99 of each, and how many rotations the replicas
acknowledged in full (X-Portcullis-Replicas-Acknowledged: 3).

Usage: replicas_probe.py <admin-key> <rotations> <addr-a> <addr-b> <addr-c>
"""

import http.client
import json
import sys
import threading
import time


def request(conn, method, path, key):
    conn.request(method, path, headers={"Authorization": "Bearer " + key})
    reply = conn.getresponse()
    return reply.status, reply.getheader("x-portcullis-replicas-acknowledged"), reply.read()


def connect(addr):
    host, port = addr.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=30)


def until_refused(addr, key, start, out, index):
    """Requests with `key` until a 401; the time of that answer, after `start`."""
    conn = connect(addr)
    while time.perf_counter() - start < 30:
        status, _, _ = request(conn, "GET", "/v1/users/own-info", key)
        if status == 401:
            out[index] = time.perf_counter() - start
            return
        if status != 200:
            print("unexpected %d from %s" % (status, addr), file=sys.stderr)
            return
    print("%s still accepts the old key after 30 s" % addr, file=sys.stderr)


def quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main():
    admin, rotations, replicas = sys.argv[1], int(sys.argv[2]), sys.argv[3:6]
    writer = connect(replicas[0])
    status, _, body = request(writer, "POST", "/v1/users/db/probe", admin)
    if status != 201:
        raise SystemExit("create: %d %s" % (status, body))
    key = json.loads(body)["apikey"]
    # Every replica accepts it before the first rotation.
    for addr in replicas:
        conn = connect(addr)
        deadline = time.time() + 30
        while request(conn, "GET", "/v1/users/own-info", key)[0] != 200:
            if time.time() > deadline:
                raise SystemExit("%s never accepted the new user's key" % addr)
            time.sleep(0.005)
    latencies, refusals, full_acks = [], [], 0
    for _ in range(rotations):
        out = [None] * len(replicas)
        start = time.perf_counter()
        threads = [
            # Daemons: a failed rotation exits without waiting for them.
            threading.Thread(target=until_refused, args=(addr, key, start, out, i), daemon=True)
            for i, addr in enumerate(replicas)
        ]
        for thread in threads:
            thread.start()
        status, acked, body = request(writer, "POST", "/v1/users/db/probe/rotate-key", admin)
        latencies.append(time.perf_counter() - start)
        if status != 200:
            raise SystemExit("rotate: %d %s" % (status, body))
        full_acks += acked == str(len(replicas))
        for thread in threads:
            thread.join()
        if None in out:
            raise SystemExit("a replica did not refuse the old key (above)")
        refusals.append(max(out))
        key = json.loads(body)["apikey"]
        # The new key must work everywhere before the next rotation (the old one's loops
        # start from an accepted key).
        for addr in replicas:
            conn = connect(addr)
            while request(conn, "GET", "/v1/users/own-info", key)[0] != 200:
                time.sleep(0.001)
    ms = lambda s: "%.2f ms" % (s * 1000)
    print("| rotate-key with acknowledgement, p50 / p99 (%d rotations) | %s / %s |"
          % (rotations, ms(quantile(latencies, 0.5)), ms(quantile(latencies, 0.99))))
    print("| send to the last of %d replicas refusing the old key, p50 / p99 | %s / %s |"
          % (len(replicas), ms(quantile(refusals, 0.5)), ms(quantile(refusals, 0.99))))
    print("| rotations acknowledged by all %d replicas | %d of %d |"
          % (len(replicas), full_acks, rotations))


if __name__ == "__main__":
    main()
