"""What the broker tests of tests/devstack count as decided."""

from __future__ import annotations


def parked(outcomes, application_id: str) -> bool:
    """Held for a parameter value awaiting confirmation (``held``): decided as far as the ledger can
    go until an operator confirms the value, by design (issue 13's ParameterConfirmed); not lost."""
    decisions = outcomes.decisions.get(application_id, [])
    return bool(decisions) and decisions[-1].status == "held"


def done(outcomes, application_id: str) -> bool:
    return outcomes.settled(application_id) or parked(outcomes, application_id)
