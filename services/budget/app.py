"""Budget-limit service: ``entitlements`` + ``budget-commands`` -> ``payout-decisions`` (key application_id).

Thin adapter around ``dopomoga.budget.ledger.BudgetLedger`` (SQLite). Both inputs are
co-partitioned by budget key, so one consumer handles a budget in order. At-least-once:
a replayed entitlement or command makes the ledger return the decisions it already
took, which are re-published unchanged (same decision ids; consumers dedupe on them).

Entitlements are taken a batch at a time (``services.platform.lean``: straight from the
consumer, no Faust stream) and submitted with
``submit_many`` in one ledger transaction. If the batch fails (say one entitlement
raises ``LedgerError``), nothing of it is kept and it is redone one by one, so only the
failing entitlement is dead-lettered, exactly as before.

Run: ``python -m services.budget``.
"""

from __future__ import annotations

import time

from pydantic import TypeAdapter

from dopomoga.budget.ledger import Published
from dopomoga.budget.location import open_ledger
from dopomoga.rules.programs import Catalog, ProgramError
from schemas.events import (
    AllocationSet,
    EntitlementCalculated,
    EntitlementClaim,
    ParameterConfirmed,
    PeriodClosed,
)
from services.platform.config import settings
from services.platform.gauges import allowed_labels, update_budget_gauges
from services.platform.observability import decision_counter
from services.platform.rejections import Rejection, Source, decode
from services.platform.runtime import Output, StreamService
from services.platform.topology import BUDGET_COMMANDS, ENTITLEMENTS, PAYOUT_DECISIONS

cfg = settings("budget")
service = StreamService(cfg, outputs=[PAYOUT_DECISIONS])
catalog = Catalog.load()
cfg.var_dir.mkdir(parents=True, exist_ok=True)
# $DOPOMOGA_DB (PostgreSQL in production), else this service's SQLite file under var/.
ledger = open_ledger(catalog=catalog, app_id=cfg.app_id)
app = service.app
_COMMAND = TypeAdapter(AllocationSet | PeriodClosed | ParameterConfirmed)
_touched: set[tuple[str, str, str | None]] = set()
_labels = allowed_labels(catalog)  # metric label values: catalog programs and declared districts only


class _Command:
    """Pydantic needs a class for ``decode``; budget commands are a union."""

    @staticmethod
    def model_validate_json(raw: bytes, context: dict | None = None) -> AllocationSet | PeriodClosed | ParameterConfirmed:
        return _COMMAND.validate_json(raw, context=context)


def _known_program(program_id: str) -> None:
    try:
        catalog.get(program_id)
    except ProgramError as exc:
        raise Rejection("unknown_program", str(exc)) from None


def _publish(decisions: list[Published]):
    for decision, body in decisions:  # the JSON the ledger stored, sent as it is
        decision_counter(cfg.service, decision.program_id, decision.status + (":final" if decision.final else "")).inc()
        _touched.add((decision.program_id, decision.period, decision.district))
        yield PAYOUT_DECISIONS, decision.application_id, body.encode()


def on_entitlement(raw: bytes | None, source: Source):
    entitlement = decode(EntitlementCalculated, raw, trusted=True)
    _known_program(entitlement.program_id)
    yield from _publish(ledger.submit(entitlement, encoded=True))


def on_command(raw: bytes | None, source: Source):
    command = decode(_Command, raw)  # type: ignore[arg-type]
    _known_program(command.program_id)
    yield from _publish(ledger.apply(command, encoded=True))


_GAUGES_EVERY_S = 1.0  # a budget's gauges: at most once a second (each month read is 3 queries)
_gauges_at = [0.0]


def after_batch() -> None:
    """Refresh the gauges of the budgets touched since the last refresh, at most once a second
    (was: after every batch, ~4 round trips per program-month touched, a share of the serial
    stage's CPU with small batches; issue 15)."""
    now = time.monotonic()
    if now - _gauges_at[0] < _GAUGES_EVERY_S:
        return  # the timer below refreshes them when no batch follows
    _gauges_at[0] = now
    update_budget_gauges(ledger, _touched, _labels)
    _touched.clear()


@app.timer(_GAUGES_EVERY_S)
async def refresh_gauges() -> None:
    if _touched:
        after_batch()


def decide_entitlements(messages: list[tuple[bytes | None, Source]]) -> list[list[Output]]:
    """The outputs of each message, in order: one ledger transaction for the whole batch.

    Each is decoded slim (``EntitlementClaim``: the fields the ledger reads; the ledger stores
    the bytes as received). Messages that do not decode (or name an unknown program) go
    through ``on_entitlement`` alone, which dead-letters them; the rest go to ``submit_many``. If that raises, the
    batch was rolled back and is redone one by one (``on_entitlement`` each), so a failing
    entitlement is dead-lettered and the others still decided.
    """
    outputs: list[list[Output] | None] = [None] * len(messages)
    batch: list[tuple[int, EntitlementClaim]] = []
    for i, (raw, source) in enumerate(messages):
        try:
            entitlement = decode(EntitlementClaim, raw, trusted=True)
            _known_program(entitlement.program_id)
        except Exception:  # same classification as one by one
            outputs[i] = service._handle(on_entitlement, raw, source)
            continue
        batch.append((i, entitlement))
    if batch:
        try:
            # the events as received are what the ledger stores (no second JSON dump)
            decided = ledger.submit_many(
                [entitlement for _, entitlement in batch], [messages[i][0] or b"" for i, _ in batch], encoded=True
            )
        except Exception:
            for i, _ in batch:
                outputs[i] = service._handle(on_entitlement, *messages[i])
        else:
            for (i, _), decisions in zip(batch, decided, strict=True):
                outputs[i] = list(_publish(decisions))
    return [out or [] for out in outputs]


# lean: the entitlements' records go from the consumer to the batch handler without Faust's
# per-record stream machinery (services/platform/lean.py; the budget's hot key is the
# pipeline's serial stage, issue 15); budget commands are few and keep the stream path
service.agent(ENTITLEMENTS, batch_handler=decide_entitlements, after_batch=after_batch, lean=True)
service.agent(BUDGET_COMMANDS, on_command, after_batch=after_batch)


def main() -> None:
    service.run()


if __name__ == "__main__":
    main()
