"""Calculation service: ``eligibility-decisions`` -> ``entitlements`` (key program:year).

Thin adapter around ``Engine.calculate_encoded``; pure, so a replay re-emits the same bytes.
The key ``program:period[:district]`` sends every claim on one budget to one partition.

Run: ``python -m services.calculation``.
"""

from __future__ import annotations

import functools

from dopomoga.rules.engine import Engine
from dopomoga.rules.programs import Catalog
from schemas.events import EligibilityDecided
from services.platform.config import settings
from services.platform.observability import decision_counter
from services.platform.rejections import Source, decode
from services.platform.runtime import StreamService
from services.platform.topology import ELIGIBILITY_DECISIONS, ENTITLEMENTS, budget_partition_key

cfg = settings("calculation")
service = StreamService(cfg, outputs=[ENTITLEMENTS])
engine = Engine(Catalog.load())
app = service.app


def calculate(raw: bytes | None, source: Source):
    eligibility = decode(EligibilityDecided, raw, trusted=True)
    entitlement = engine.calculate_encoded(eligibility)  # the event's bytes, no model
    decision_counter(cfg.service, entitlement.program_id, "entitled" if entitlement.eligible else "refused").inc()
    yield ENTITLEMENTS, _partition_key(entitlement.program_id, entitlement.period), entitlement.json


@functools.cache
def _partition_key(program_id: str, period: str) -> str:
    return budget_partition_key(program_id, period)


service.agent(ELIGIBILITY_DECISIONS, calculate)


def main() -> None:
    service.run()


if __name__ == "__main__":
    main()
