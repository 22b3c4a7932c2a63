"""Prometheus metrics and structured logging shared by every service (and the gateway).

Labels carry only service names, topics, partitions, reason codes, program ids and
periods - never personal data (names, identifiers, IBANs, application ids).
"""

from __future__ import annotations

import functools
import logging
import os
import sys

import structlog
from prometheus_client import Counter, Gauge, Histogram, start_http_server

EVENTS_CONSUMED = Counter(
    "dopomoga_events_consumed_total", "Events read from a topic", ["service", "topic"]
)
BATCHES = Counter(
    "dopomoga_batches_total", "Input batches processed (events consumed / batches = the mean batch size)", ["service", "topic"]
)
EVENTS_PRODUCED = Counter(
    "dopomoga_events_produced_total", "Events written to a topic", ["service", "topic"]
)
EVENTS_DEAD_LETTERED = Counter(
    "dopomoga_events_dead_lettered_total", "Events sent to dead-letter, by reason code", ["service", "reason"]
)
DECISIONS = Counter(
    "dopomoga_decisions_total", "Decisions taken, by program and outcome", ["service", "program", "outcome"]
)


@functools.cache
def decision_counter(service: str, program: str, outcome: str):
    """The ``DECISIONS`` child for these labels (cached: ``labels()`` costs more than ``inc()``).

    Program ids reach it only after the catalog knew them, so the cache stays small."""
    return DECISIONS.labels(service, program, outcome)


DECISION_LATENCY = Histogram(
    "dopomoga_decision_latency_seconds",
    "Time from reading an event to handing its decision to the producer",
    ["service"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BUDGET_UTILISATION = Gauge(
    "dopomoga_budget_utilisation_ratio", "Share of the period's allocation committed to payouts", ["program", "period"]
)
BUDGET_COEFFICIENT = Gauge(
    "dopomoga_budget_coefficient", "Payout/claim coefficient of the period (1 = paid in full)", ["program", "period"]
)
TREASURY_EXPORTS_PENDING = Gauge(
    "dopomoga_treasury_exports_pending",
    "Months whose register export failed and is being retried by the treasury follower",
)
CONSUMER_LAG = Gauge(
    "dopomoga_consumer_lag",
    "Messages not yet processed: fetch high watermark minus position (ListOffsets is wrong on Tansu 0.6.0)",
    ["service", "topic", "partition"],
)

_LOGGING_DONE = False

#: Keys that must never reach a log line; dropped if a caller passes them by mistake.
FORBIDDEN_LOG_KEYS = frozenset(
    {"name", "applicant", "payee", "iban", "rnokpp", "id", "application_id", "payment", "facts", "birth_date"}
)


def _drop_personal(_logger, _method, event_dict):
    for key in FORBIDDEN_LOG_KEYS & set(event_dict):
        event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(service: str, level: str | None = None) -> structlog.BoundLogger:
    """JSON lines on stderr (console rendering when attached to a terminal)."""
    global _LOGGING_DONE
    level_name = (level or os.environ.get("DOPOMOGA_LOG_LEVEL", "info")).upper()
    if not _LOGGING_DONE:
        renderer = (
            structlog.dev.ConsoleRenderer(colors=False)
            if sys.stderr.isatty()
            else structlog.processors.JSONRenderer(ensure_ascii=False)
        )
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                _drop_personal,
                renderer,
            ],
            wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level_name, logging.INFO)),
            logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
            cache_logger_on_first_use=True,
        )
        _LOGGING_DONE = True
    return structlog.get_logger(f"dopomoga.{service}").bind(service=service)


def serve_metrics(port: int | None) -> int | None:
    """Serve /metrics on 127.0.0.1:port (0 or None: do not serve)."""
    if not port:
        return None
    start_http_server(port, addr=os.environ.get("DOPOMOGA_METRICS_ADDR", "127.0.0.1"))
    return port
