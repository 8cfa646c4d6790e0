"""redis-py's RedisCluster against a Cairn cluster, unchanged.

Usage: redis_py_cluster.py PORT PHASE
  PHASE "write": writes py:0..199 through the cluster client (routed to
  each slot's leader) and checks common commands; prints "written".
  PHASE "after-failover": run after a node was killed; writes py:200..299,
  retrying while leaders move, then reads every key back. Exits non-zero on
  any wrong answer.
"""

import sys
import time

from redis.cluster import RedisCluster
from redis.exceptions import ConnectionError, RedisClusterException, RedisError, TimeoutError

PORT = int(sys.argv[1])
PHASE = sys.argv[2]


def retrying(call, seconds=20):
    """Runs call() until it succeeds or `seconds` pass (leaders move)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except (ConnectionError, TimeoutError, RedisClusterException, RedisError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def expect(got, want, what):
    if got != want:
        sys.exit(f"{what}: got {got!r}, want {want!r}")


rc = retrying(lambda: RedisCluster(host="127.0.0.1", port=PORT, cluster_error_retry_attempts=10))

if PHASE == "write":
    for i in range(200):
        expect(rc.set(f"py:{i}", str(i)), True, f"SET py:{i}")
    expect(rc.mget_nonatomic([f"py:{i}" for i in range(3)]), [b"0", b"1", b"2"], "MGET across slots")
    expect(rc.hset("py:h", mapping={"a": "1", "b": "2"}), 2, "HSET")
    expect(rc.hgetall("py:h"), {b"a": b"1", b"b": b"2"}, "HGETALL")
    expect(rc.incrbyfloat("py:f", 0.1), 0.1, "INCRBYFLOAT")
    pipe = rc.pipeline()
    for i in range(10):
        pipe.incr(f"py:n:{i}")
    expect(pipe.execute(), [1] * 10, "pipelined INCR across slots")
    expect(rc.info()["cluster_enabled"], 1, "INFO cluster_enabled")
    print("written", flush=True)
elif PHASE == "after-failover":
    for i in range(200, 300):
        expect(retrying(lambda: rc.set(f"py:{i}", str(i))), True, f"SET py:{i}")
    for i in range(300):
        expect(retrying(lambda: rc.get(f"py:{i}")), str(i).encode(), f"GET py:{i}")
    print("read back", flush=True)
else:
    sys.exit(f"unknown phase {PHASE}")
