"""Grant history: the port behind "once in 10 years", "one per household", "not received in 2015-2020".

The engine only reads counts. Services feed the history from final payout decisions
(and record an eligible application provisionally, so two applications racing for
the same one-off grant are not both approved); tests and the batch CLI use the
in-memory adapter below.
"""

from __future__ import annotations

import datetime as dt
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
    """Grant history held in memory (tests, batch decisions).

    A subject key with one grant holds the grant itself; one with more, a dict by application id
    (most subjects have one grant: a dict each would be ~200 bytes more per key, a million keys in
    a large what-if)."""

    def __init__(self, grants: Iterable[Grant] = ()):
        self._by_key: dict[str, Grant | dict[str, Grant]] = {}
        for grant in grants:
            self.record(grant)

    @property
    def empty(self) -> bool:
        """No grant recorded (then every count is 0)."""
        return not self._by_key

    def record(self, grant: Grant) -> None:
        by_key = self._by_key
        application_id = grant.application_id
        for key in grant.keys:
            found = by_key.get(key)
            if found is None or (type(found) is Grant and found.application_id == application_id):
                by_key[key] = grant
            elif type(found) is Grant:
                by_key[key] = {found.application_id: found, application_id: grant}
            else:
                found[application_id] = grant

    def forget(self, application_id: str) -> None:
        by_key = self._by_key
        for key, found in list(by_key.items()):
            if type(found) is Grant:
                if found.application_id == application_id:
                    del by_key[key]
            else:
                found.pop(application_id, None)

    def _grants(self, key: str) -> Iterable[Grant]:
        found = self._by_key.get(key)
        if found is None:
            return ()
        return (found,) if type(found) is Grant else found.values()

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
            for grant in self._grants(key):
                application_id = grant.application_id
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
