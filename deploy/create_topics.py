"""Create Dopomoga's topics on a real cluster: wait for it, then replication 3, min.insync.replicas 2.

The topology and the creation live in ``services.platform.topology``; this script only waits for a
cluster that is still starting (docker compose) and asks for production replication.
Usage: python deploy/create_topics.py kafka-1:9092,kafka-2:9092,kafka-3:9092 [replication]
"""

from __future__ import annotations

import sys
import time

from kafka.errors import KafkaError

from services.platform.topology import create_topics


def main(bootstrap: str, replication: int = 3) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            result = create_topics(bootstrap, replication=replication)
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise
            print(f"waiting for the cluster: {type(exc).__name__}", flush=True)
            time.sleep(2)
    for topic, outcome in result.items():
        print(f"{topic}: {outcome} (replication {replication})")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3)
