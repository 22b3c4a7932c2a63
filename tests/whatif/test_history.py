"""The in-memory grant history keeps a subject's only grant without a dict of its own (a large
what-if's parent holds a million of them); it counts exactly what a dict per subject counted."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from dopomoga.rules.history import Grant, InMemoryHistory


class DictPerSubject:
    """The history as it was: every subject key a dict of its grants by application id."""

    def __init__(self) -> None:
        self.by_key: dict[str, dict[str, Grant]] = defaultdict(dict)

    def record(self, grant: Grant) -> None:
        for key in grant.keys:
            self.by_key[key][grant.application_id] = grant

    def forget(self, application_id: str) -> None:
        for grants in self.by_key.values():
            grants.pop(application_id, None)

    def count(self, keys, program_ids, start, end, period, exclude_application) -> int:
        seen: set[str] = set()
        for key in keys:
            for application_id, grant in self.by_key.get(key, {}).items():
                if application_id == exclude_application or application_id in seen:
                    continue
                if grant.program_id not in program_ids or (start is not None and grant.on < start) \
                        or (end is not None and grant.on > end) or (period is not None and grant.period != period):
                    continue
                seen.add(application_id)
        return len(seen)


KEYS = st.sampled_from(["rnokpp:1", "rnokpp:2", "household:h1", "fact:deceased_id:d1"])
APPS = st.sampled_from(["a1", "a2", "a3", "a4"])
PROGRAMS = st.sampled_from(["p1", "p2"])
DATES = st.dates(min_value=dt.date(2023, 1, 1), max_value=dt.date(2023, 3, 31))
GRANTS = st.builds(lambda keys, app, program, on: Grant(tuple(dict.fromkeys(keys)), program, app, on,
                                                          f"{on.year}-{on.month:02d}"),
                   st.lists(KEYS, min_size=1, max_size=3), APPS, PROGRAMS, DATES)
STEPS = st.lists(st.one_of(st.tuples(st.just("record"), GRANTS), st.tuples(st.just("forget"), APPS)), max_size=25)
QUERIES = st.tuples(st.lists(KEYS, min_size=1, max_size=3), st.lists(PROGRAMS, min_size=1, max_size=2),
                    st.none() | DATES, st.none() | DATES, st.none() | st.sampled_from(["2023-01", "2023-02"]), APPS)


@settings(max_examples=300, deadline=None)
@given(STEPS, st.lists(QUERIES, min_size=1, max_size=10))
def test_the_in_memory_history_counts_what_a_dict_per_subject_counted(steps, queries):
    history, reference = InMemoryHistory(), DictPerSubject()
    for kind, value in steps:
        for target in (history, reference):
            getattr(target, kind)(value)
        for keys, programs, start, end, period, exclude in queries:
            assert history.count(keys, programs, start, end, period, exclude) == \
                reference.count(keys, programs, start, end, period, exclude)


def test_a_grant_recorded_again_for_the_same_application_replaces_it_under_every_key():
    history = InMemoryHistory()
    first = Grant(("rnokpp:1", "household:h1"), "p1", "a1", dt.date(2023, 1, 3), "2023-01")
    history.record(first)
    history.record(Grant(("rnokpp:1",), "p2", "a1", dt.date(2023, 2, 3), "2023-02"))
    assert history.count(["rnokpp:1"], ["p1"], None, None, None, "x") == 0
    assert history.count(["rnokpp:1"], ["p2"], None, None, None, "x") == 1
    assert history.count(["household:h1"], ["p1"], None, None, None, "x") == 1
    history.forget("a1")
    assert history.count(["rnokpp:1", "household:h1"], ["p1", "p2"], None, None, None, "x") == 0
