"""Budget-limit service: ``entitlements`` + ``budget-commands`` -> ``payout-decisions`` (key application_id).

Thin adapter around ``dopomoga.budget.ledger.BudgetLedger`` (SQLite). Both inputs are
co-partitioned by budget key, so one consumer handles a budget in order. At-least-once:
a replayed entitlement or command makes the ledger return the decisions it already
took, which are re-published unchanged (same decision ids; consumers dedupe on them).

Run: ``python -m services.budget``.
"""

from __future__ import annotations

from pydantic import TypeAdapter

from dopomoga.budget import ledger as ledger_module
from dopomoga.rules.programs import Catalog, ProgramError
from schemas.events import AllocationSet, EntitlementCalculated, PayoutDecided, PeriodClosed
from services.budget.adapters.gauges import update_budget_gauges
from services.config import settings
from services.observability import DECISIONS
from services.runtime import Rejection, Source, StreamService, decode
from services.topology import BUDGET_COMMANDS, ENTITLEMENTS, PAYOUT_DECISIONS

cfg = settings("budget")
service = StreamService(cfg, outputs=[PAYOUT_DECISIONS])
catalog = Catalog.load()
ledger_path = cfg.var_dir / f"{cfg.app_id}-ledger.sqlite"
ledger_path.parent.mkdir(parents=True, exist_ok=True)
ledger = ledger_module.BudgetLedger(f"sqlite:///{ledger_path}", catalog)
app = service.app
_COMMAND = TypeAdapter(AllocationSet | PeriodClosed)
_touched: set[tuple[str, str, str | None]] = set()


class _Command:
    """Pydantic needs a class for ``decode``; budget commands are a union."""

    @staticmethod
    def model_validate_json(raw: bytes) -> AllocationSet | PeriodClosed:
        return _COMMAND.validate_json(raw)


def _known_program(program_id: str) -> None:
    try:
        catalog.get(program_id)
    except ProgramError as exc:
        raise Rejection("unknown_program", str(exc)) from None


def _publish(decisions: list[PayoutDecided]):
    for decision in decisions:
        DECISIONS.labels(cfg.service, decision.program_id, decision.status + (":final" if decision.final else "")).inc()
        _touched.add((decision.program_id, decision.period, decision.district))
        yield PAYOUT_DECISIONS, decision.application_id, decision.model_dump_json().encode()


def on_entitlement(raw: bytes | None, source: Source):
    entitlement = decode(EntitlementCalculated, raw)
    _known_program(entitlement.program_id)
    yield from _publish(ledger.submit(entitlement))


def on_command(raw: bytes | None, source: Source):
    command = decode(_Command, raw)  # type: ignore[arg-type]
    _known_program(command.program_id)
    yield from _publish(ledger.apply(command))


def after_batch() -> None:
    update_budget_gauges(ledger, _touched)
    _touched.clear()


service.agent(ENTITLEMENTS, on_entitlement, after_batch=after_batch)
service.agent(BUDGET_COMMANDS, on_command, after_batch=after_batch)


def main() -> None:
    service.run()


if __name__ == "__main__":
    main()
