"""Kafka topology of Dopomoga's streaming services, declared once: the topics and the services.

Every topic is created explicitly (Tansu auto-creates unknown topics with 4 partitions on
a Metadata request, and Faust does not create source topics). ``entitlements`` and
``budget-commands`` are co-partitioned (same partition count, the same key), and the key
is the budget year, ``program:year``: a year's allocations, claims of every month and
district, and period closes are one ordered sequence. (Keying by month is not enough:
unspent money carries forward within the year and deferred claims move to the next month
when a month closes, so a December close must never overtake October's.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DAY_MS = 24 * 3600 * 1000
MAX_MESSAGE_BYTES = 256 * 1024  # larger events are dead-lettered by the services
DEFAULT_PARTITIONS = int(os.environ.get("DOPOMOGA_PARTITIONS", "4"))


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    value: str
    retention_ms: int
    partitions: int = DEFAULT_PARTITIONS
    description: str = ""

    def configs(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), "max.message.bytes": str(4 * MAX_MESSAGE_BYTES)}


APPLICATIONS = "applications"
ELIGIBILITY_DECISIONS = "eligibility-decisions"
ENTITLEMENTS = "entitlements"
BUDGET_COMMANDS = "budget-commands"
PAYOUT_DECISIONS = "payout-decisions"
DEAD_LETTER = "dead-letter"

# Inputs are kept long (a year) so decisions can be replayed with a new consumer group.
TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(APPLICATIONS, "application_id", "ApplicationSubmitted", 400 * DAY_MS,
              description="applications and claims published by registries"),
    TopicSpec(ELIGIBILITY_DECISIONS, "application_id", "EligibilityDecided", 400 * DAY_MS,
              description="who qualifies, with every condition and clause"),
    TopicSpec(ENTITLEMENTS, "program:year (budget_partition_key)", "EntitlementCalculated", 400 * DAY_MS,
              description="amount claimed; partitioned per budget"),
    TopicSpec(BUDGET_COMMANDS, "program:year (budget_partition_key)",
              "AllocationSet | PeriodClosed", 3650 * DAY_MS,
              description="allocations and period closes; co-partitioned with entitlements"),
    TopicSpec(PAYOUT_DECISIONS, "application_id", "PayoutDecided", 3650 * DAY_MS,
              description="provisional and final payout decisions (treasury reads final ones)"),
    TopicSpec(DEAD_LETTER, "source topic", "Rejected", 400 * DAY_MS,
              description="events no service could process, with the original bytes and the reason"),
)
BY_NAME = {t.name: t for t in TOPICS}


@dataclass(frozen=True)
class ServiceSpec:
    """One deployable: how it runs, what it reads and writes, where its metrics are.

    ``python -m <module>`` runs it (``dopomoga up``, the supervisor, the streaming tests, the
    bench, the Dockerfile's image); ``metrics_port`` is the default of
    ``DOPOMOGA_METRICS_PORT_<NAME>``; ``group`` is its Kafka consumer group (and Faust app id,
    prefixed per run by ``DOPOMOGA_APP_PREFIX``); ``pipeline`` marks the stream services an
    application passes through on its way to a payout decision.
    """

    name: str
    module: str
    metrics_port: int
    consumes: tuple[str, ...] = ()
    produces: tuple[str, ...] = ()
    pipeline: bool = False
    description: str = ""

    @property
    def group(self) -> str:
        return f"dopomoga-{self.name}"


# Adding a service is one entry here (and its package under services/).
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("eligibility", "services.eligibility", 9101, (APPLICATIONS, PAYOUT_DECISIONS),
                (ELIGIBILITY_DECISIONS, DEAD_LETTER), pipeline=True,
                description="who qualifies; grant history fed back from payout decisions"),
    ServiceSpec("calculation", "services.calculation", 9102, (ELIGIBILITY_DECISIONS,), (ENTITLEMENTS, DEAD_LETTER),
                pipeline=True, description="how much, with a trace"),
    ServiceSpec("budget", "services.budget", 9103, (ENTITLEMENTS, BUDGET_COMMANDS), (PAYOUT_DECISIONS, DEAD_LETTER),
                pipeline=True, description="the budget ledger: what is paid within the allocation"),
    ServiceSpec("gateway", "services.gateway", 9104, (APPLICATIONS, PAYOUT_DECISIONS, DEAD_LETTER),
                (APPLICATIONS, BUDGET_COMMANDS),
                description="HTTP API and operator console; follows applications, decisions and dead letters "
                            "into its status store"),
    ServiceSpec("treasury", "services.treasury", 9105, (PAYOUT_DECISIONS,), (DEAD_LETTER,),
                description="payment registers from final payout decisions"),
)
SERVICE_BY_NAME = {s.name: s for s in SERVICES}
PIPELINE = tuple(s.name for s in SERVICES if s.pipeline)
CO_PARTITIONED = (ENTITLEMENTS, BUDGET_COMMANDS)
assert len({BY_NAME[n].partitions for n in CO_PARTITIONED}) == 1, "entitlements and budget-commands must be co-partitioned"


def budget_partition_key(program_id: str, period_or_year: str | int) -> str:
    """Kafka key of every budget input (entitlement, allocation, close): ``program:year``."""
    return f"{program_id}:{str(period_or_year)[:4]}"


def command_key(program_id: str, period_or_year: str | int, district: str | None = None) -> str:
    """Key of a budget command (``district`` does not split the sequence of a budget year)."""
    return budget_partition_key(program_id, period_or_year)


def bootstrap_of(url: str) -> str:
    """'kafka://127.0.0.1:9092' -> '127.0.0.1:9092' (several hosts separated by ';' or ',')."""
    hosts = url.removeprefix("kafka://").replace(";", ",")
    return ",".join(h.removeprefix("kafka://") for h in hosts.split(","))


def create_topics(
    bootstrap: str, topics: tuple[TopicSpec, ...] = TOPICS, timeout_s: float = 15.0, replication: int = 1
) -> dict[str, str]:
    """Create the topics (kafka-python 3.x admin API); existing ones are left alone.

    ``replication`` 1 suits the embedded single broker; a production cluster uses 3, and then
    ``min.insync.replicas`` is 2 so an acknowledged write survives the loss of one broker.

    Returns {topic: "created" | "exists"}; raises if an existing topic has a different
    partition count than declared (co-partitioning would silently break).
    """
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="dopomoga-topology",
                             request_timeout_ms=int(timeout_s * 1000))
    try:
        existing = set(admin.list_topics())
        result: dict[str, str] = {}
        insync = {"min.insync.replicas": "2"} if replication >= 3 else {}
        new = [
            NewTopic(t.name, t.partitions, replication, topic_configs={**t.configs(), **insync})
            for t in topics
            if t.name not in existing
        ]
        if new:
            try:
                admin.create_topics(new, timeout_ms=int(timeout_s * 1000))
            except TopicAlreadyExistsError:
                pass
        for spec in topics:
            result[spec.name] = "exists" if spec.name in existing else "created"
        described = admin.describe_topics([t.name for t in topics])
        for topic in described:
            declared = BY_NAME.get(topic["name"])
            if declared and len(topic["partitions"]) != declared.partitions:
                raise RuntimeError(
                    f"topic {topic['name']} has {len(topic['partitions'])} partitions, declared {declared.partitions}"
                )
        return result
    finally:
        admin.close()
