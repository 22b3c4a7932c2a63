"""The demo gives a default allocation to every program year of the examples that has none, but
never to a program the catalog does not know (that application is meant for dead-letter)."""

from __future__ import annotations

import json

from services.devstack.demo import default_allocations


def _line(program_id: str, submitted_on: str) -> bytes:
    return json.dumps({"program_id": program_id, "submitted_on": submitted_on}).encode()


def test_the_demo_allocates_only_to_known_programs_without_an_allocation():
    lines = [_line("zhytomyr.centenarians", "2023-04-01"), _line("nowhere.unknown", "2023-04-01"), b"{broken"]
    made = default_allocations(lines, [], known={"zhytomyr.centenarians"})
    assert [(a.program_id, a.year) for a in made] == [("zhytomyr.centenarians", 2023)]
    assert default_allocations(lines, made, known={"zhytomyr.centenarians"}) == []


def test_a_claim_deferred_into_a_year_without_an_allocation_is_owed_not_waited_for():
    from services.devstack.demo import _owed
    from services.devstack.watch import Outcomes
    from tests.treasury.fakes import PROGRAM, payout

    outcomes = Outcomes()
    outcomes.decisions["a"].append(payout(1, period="2024-01", status="deferred", final=False))
    outcomes.decisions["b"].append(payout(2, period="2023-12", status="deferred", final=False))
    outcomes.decisions["c"].append(payout(3, period="2024-01"))
    funded = {(PROGRAM, "2023", None)}
    assert [_owed(outcomes, i, funded) for i in "abcd"] == [True, False, False, False]
