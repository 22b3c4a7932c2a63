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
