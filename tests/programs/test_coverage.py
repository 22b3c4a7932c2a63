"""docs/coverage.md accounts for every program file, and every file it names exists (issue 14)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COVERAGE = ROOT / "docs" / "coverage.md"
CITIES = ("zaporizhzhia", "zhytomyr", "kamianske")
FILE = re.compile(r"programs/(?:zaporizhzhia|zhytomyr|kamianske)/[a-z0-9-]+\.yaml")
ROW = re.compile(r"^\| (\d{3}) L\d")
STATUSES = {
    "program",
    "national",
    "discretionary",
    "in kind",
    "institutional",
    "not stated",
    "needs capability",
}
CAPABILITIES = {"privileges", "commission amount", "channel cost"}


@pytest.fixture(scope="module")
def text() -> str:
    return COVERAGE.read_text(encoding="utf-8")


def rows(text: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if ROW.match(line)
    ]


def is_program(path: Path) -> bool:
    """A program file has an id '<city>.<name>' (a city's own data file, city.yaml, has just '<city>')."""
    return (
        re.search(r"^id: [a-z]+\.[a-z0-9-]+\s*$", path.read_text(encoding="utf-8"), re.MULTILINE) is not None
    )


def test_every_program_file_of_every_city_is_named_in_the_coverage_document(text):
    files = sorted(
        f"programs/{p.parent.name}/{p.name}"
        for city in CITIES
        for p in (ROOT / "programs" / city).glob("*.yaml")
        if is_program(p)
    )
    assert len(files) >= 56
    named_in_rows = {name for row in rows(text) for name in FILE.findall(row[4])}
    missing = [f for f in files if f not in named_in_rows]
    assert not missing, f"program files with no row in docs/coverage.md: {missing}"


def test_every_file_the_coverage_document_names_exists(text):
    named = set(FILE.findall(text))
    assert named
    absent = sorted(name for name in named if not (ROOT / name).is_file())
    assert not absent, f"docs/coverage.md names files that do not exist: {absent}"


def test_every_row_cites_a_seed_line_and_has_a_status_and_a_file_or_a_reason(text):
    table = rows(text)
    assert {row[0].split()[0] for row in table} == {"000", "002", "003", "004"}
    for row in table:
        assert len(row) == 5, row
        _line, measure, _stated, status, where = row
        assert measure, row
        assert status in STATUSES, row
        if status == "program":
            assert FILE.search(where), row
        else:
            assert not FILE.search(where) or status != "program", row
        if status == "needs capability":
            assert any(f"**{c}**" in where for c in CAPABILITIES), row
        if status in ("not stated", "needs capability"):
            assert where, row  # the reason is written down


def test_the_counts_table_matches_the_rows(text):
    table = rows(text)
    total = re.search(r"\| \*\*all\*\* \| \*\*(\d+)\*\* \| \*\*(\d+)\*\*", text)
    assert total, "the counts table has an 'all' line"
    assert int(total.group(1)) == len(table)
    assert int(total.group(2)) == sum(row[3] == "program" for row in table)
