"""Grant history: the port behind "once in 10 years", "one per household", "not received in 2015-2020".

The engine only reads counts. Services feed the history from final payout decisions
(and record an eligible application provisionally, so two applications racing for
the same one-off grant are not both approved); tests and the batch CLI use the
in-memory adapter below.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Grant:
    keys: tuple[str, ...]  # subject keys: "rnokpp:...", "household:...", "fact:deceased_id:..."
    program_id: str
    application_id: str
    on: dt.date  # date of the granted application
    period: str  # month claimed, YYYY-MM


class GrantHistory(Protocol):
    def count(
        self,
        keys: Sequence[str],
        program_ids: Sequence[str],
        start: dt.date | None,
        end: dt.date | None,
        period: str | None,
        exclude_application: str,
    ) -> int: ...

    def record(self, grant: Grant) -> None: ...

    def forget(self, application_id: str) -> None: ...


class InMemoryHistory:
    """Grant history held in memory (tests, batch decisions)."""

    def __init__(self, grants: Iterable[Grant] = ()):
        self._by_key: dict[str, dict[str, Grant]] = defaultdict(dict)
        for grant in grants:
            self.record(grant)

    def record(self, grant: Grant) -> None:
        for key in grant.keys:
            self._by_key[key][grant.application_id] = grant

    def forget(self, application_id: str) -> None:
        for grants in self._by_key.values():
            grants.pop(application_id, None)

    def count(
        self,
        keys: Sequence[str],
        program_ids: Sequence[str],
        start: dt.date | None,
        end: dt.date | None,
        period: str | None,
        exclude_application: str,
    ) -> int:
        seen: set[str] = set()
        for key in keys:
            for application_id, grant in self._by_key.get(key, {}).items():
                if application_id == exclude_application or application_id in seen:
                    continue
                if grant.program_id not in program_ids:
                    continue
                if start is not None and grant.on < start:
                    continue
                if end is not None and grant.on > end:
                    continue
                if period is not None and grant.period != period:
                    continue
                seen.add(application_id)
        return len(seen)
