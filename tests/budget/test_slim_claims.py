"""The budget service decodes a claim slim (``EntitlementClaim``, issue 15): the ledger decides
exactly as with the full ``EntitlementCalculated`` and stores the same rows, replays return the
stored bytes, and an id reused with other content is still a conflict - also inside one batch."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from dopomoga.budget.ledger import BudgetLedger
from dopomoga.errors import ApplicationError, LedgerError
from dopomoga.rules.engine import Engine
from dopomoga.rules.programs import Catalog
from schemas.events import (
    TRUSTED,
    AllocationSet,
    ApplicationSubmitted,
    EntitlementCalculated,
    EntitlementClaim,
)
from tests.budget.conftest import allocation, close, entitlement
from tests.budget.test_replay_and_migrations import dump
from tests.factories import application

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "applications.jsonl"
PROGRAM = "zhytomyr.centenarians"


def slim(body: bytes) -> EntitlementClaim:
    return EntitlementClaim.model_validate_json(body, context=TRUSTED)


def example_entitlements(catalog: Catalog) -> list[bytes]:
    """The bytes of every example application's entitlement, as the calculation service sends them."""
    engine = Engine(catalog)
    out = []
    for line in EXAMPLES.read_text().splitlines():
        try:
            application = ApplicationSubmitted.model_validate_json(line)
            out.append(engine.decide_encoded(application, record=False).json)
        except (ValidationError, ApplicationError):
            continue  # the examples' last lines each break a rule a registry can break
    return out


def decided_both_ways(catalog: Catalog, bodies: list[bytes], commands: list, after: list) -> dict[str, tuple]:
    """The decisions (bytes) and the ledger's rows after ``commands``, the claims in batches of 37
    (each batch twice: the second time all replays), then ``after``: with the full models and slim."""
    out: dict[str, tuple] = {}
    for kind in ("full", "slim"):
        ledger = BudgetLedger("sqlite://", catalog)
        decided = ["\n".join(d.model_dump_json() for d in ledger.apply(c)) for c in commands]
        for start in range(0, len(bodies), 37):
            chunk = bodies[start:start + 37]
            claims = [EntitlementCalculated.model_validate_json(b, context=TRUSTED) if kind == "full" else slim(b)
                      for b in chunk]
            for _ in range(2):
                for decisions in ledger.submit_many(claims, chunk, encoded=True):
                    decided.append("\n".join(body for _, body in decisions))
        decided += ["\n".join(d.model_dump_json() for d in ledger.apply(c)) for c in after]
        out[kind] = (decided, dump(ledger), ledger)
    return out


def test_slim_claims_give_the_decisions_and_rows_of_the_full_events_for_every_example():
    catalog = Catalog.load()
    bodies = example_entitlements(catalog)
    fulls = [EntitlementCalculated.model_validate_json(b, context=TRUSTED) for b in bodies]
    assert len(fulls) > 400
    assert {"first_come", "pro_rata_at_close"} <= {e.budget_policy for e in fulls if e.eligible}
    assert any(e.operator.pending_confirmation for e in fulls) and any(not e.eligible for e in fulls)
    years = sorted({int(e.period[:4]) for e in fulls})
    allocations = [
        AllocationSet(event_id=f"alloc-{p}-{y}", occurred_at=dt.datetime(y, 1, 2, tzinfo=dt.UTC), program_id=p,
                      year=y, annual_kop=30_000_000, plan={"kind": "even"}, amendment_id="t", legal_reference="t")
        for p in sorted({e.program_id for e in fulls}) for y in years
    ]
    closes = [close(p, period) for p, period in sorted({(e.program_id, e.period) for e in fulls})]
    both = decided_both_ways(catalog, bodies, allocations, closes)
    assert both["slim"][0] == both["full"][0]
    assert sum(1 for d in both["full"][0] if d) > 400
    assert both["slim"][1] == both["full"][1]
    # the stored entitlement is the event as received, readable as the full model
    assert both["slim"][2].entitlement(fulls[0].application_id) == fulls[0]


def test_slim_claims_ranked_by_budget_priority_are_decided_as_the_full_events(budget_catalog):
    program = "zaporizhzhia.test-priority"
    engine = Engine(budget_catalog)
    bodies = [
        engine.decide_encoded(application(program, {"claim_kop": 100_000 + 1_000 * i, "disability_group": i % 3},
                                          submitted_on="2023-04-10", period="2023-04", person=i), record=False).json
        for i in range(60)
    ]
    both = decided_both_ways(budget_catalog, bodies, [allocation(program, 2023, 12_000_000)], [close(program, "2023-04")])
    decided = both["full"][0]
    assert any('"status":"prorated"' in d for d in decided) and any('"reason_code":"within_allocation"' in d
                                                                    for d in decided)
    assert both["slim"][0] == decided
    assert both["slim"][1] == both["full"][1]


def test_a_slim_claim_without_its_bytes_is_refused(ledger, budget_catalog):
    body = entitlement(budget_catalog, PROGRAM, "s-1", 100_000, "2023-04").model_dump_json().encode()
    with pytest.raises(ValueError):
        ledger.submit_many([slim(body)])


def test_a_batch_with_a_replay_and_a_conflicting_id_is_refused_whole_and_one_by_one_only_the_conflict_fails(
    ledger, budget_catalog
):
    ledger.apply(allocation(PROGRAM, 2023, 12_000_000))
    first = entitlement(budget_catalog, PROGRAM, "c-1", 100_000, "2023-04", person=1)
    first_body = first.model_dump_json().encode()
    stored = ledger.submit_many([slim(first_body)], [first_body], encoded=True)[0]
    new = entitlement(budget_catalog, PROGRAM, "c-2", 100_000, "2023-04", person=2)
    other = entitlement(budget_catalog, PROGRAM, "c-1", 100_000, "2023-04", person=3)  # the id of c-1, another person
    bodies = [e.model_dump_json().encode() for e in (new, first, other)]
    before = dump(ledger)
    with pytest.raises(LedgerError) as caught:
        ledger.submit_many([slim(b) for b in bodies], bodies, encoded=True)
    assert caught.value.reason_code == "input_conflict"
    assert other.application.applicant.id not in str(caught.value)
    assert dump(ledger) == before  # rolled back: c-2 not taken either
    # one by one (what the service does after a failed batch): the new claim decided, the replay
    # returns the stored bytes, only the conflict fails
    assert ledger.submit_many([slim(bodies[0])], bodies[:1])[0][0].application_id == "c-2"
    assert ledger.submit_many([slim(bodies[1])], bodies[1:2], encoded=True)[0] == stored
    with pytest.raises(LedgerError):
        ledger.submit_many([slim(bodies[2])], bodies[2:])
    assert ledger.payout("c-1").payee.id == first.application.applicant.id


@pytest.mark.parametrize("slimmed", [False, True], ids=["full", "slim"])
def test_an_id_twice_in_one_batch_with_other_content_is_a_conflict(ledger, budget_catalog, slimmed):
    ledger.apply(allocation(PROGRAM, 2023, 12_000_000))
    first = entitlement(budget_catalog, PROGRAM, "d-1", 100_000, "2023-04", person=1)
    other = entitlement(budget_catalog, PROGRAM, "d-1", 100_000, "2023-04", person=2)
    bodies = [e.model_dump_json().encode() for e in (first, other)]
    claims = [slim(b) for b in bodies] if slimmed else [first, other]
    before = dump(ledger)
    with pytest.raises(LedgerError) as caught:
        ledger.submit_many(claims, bodies)
    assert caught.value.reason_code == "input_conflict"
    assert dump(ledger) == before
    # the same content twice in one batch is a replay of itself
    twice = ledger.submit_many([claims[0], claims[0]], [bodies[0], bodies[0]], encoded=True)
    assert twice[0] == twice[1] and json.loads(twice[0][0].body)["payee"]["id"] == first.application.applicant.id
