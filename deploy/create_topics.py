"""Create Dopomoga's topics with replication 3 (min.insync.replicas 2) on a real cluster.

``services.topology.create_topics`` creates them with replication 1 (right for the embedded
single broker); in production every topic is replicated. Existing topics are left alone.
Usage: python deploy/create_topics.py kafka-1:9092,kafka-2:9092,kafka-3:9092 [replication]
"""

from __future__ import annotations

import sys
import time

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from services.topology import TOPICS


def main(bootstrap: str, replication: int = 3) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="dopomoga-topics")
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise
            print(f"waiting for the cluster: {type(exc).__name__}", flush=True)
            time.sleep(2)
    existing = set(admin.list_topics())
    for spec in TOPICS:
        if spec.name in existing:
            print(f"{spec.name}: exists")
            continue
        configs = {**spec.configs(), "min.insync.replicas": str(min(2, replication))}
        try:
            admin.create_topics([NewTopic(spec.name, spec.partitions, replication, topic_configs=configs)])
            print(f"{spec.name}: created ({spec.partitions} partitions, replication {replication})")
        except TopicAlreadyExistsError:
            print(f"{spec.name}: exists")
    admin.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3)
