"""Budget lines: how a city's money is appropriated, as data (``programs/<city>/budget-lines.yaml``).

A budget line is what the council appropriates and amends during the year: a measure or task of
the programme (its code in the programme's numbering; the КПКВК code where the seed gives one),
the measures (programs) it funds, and its fund sources with their shares (state / oblast / city,
e.g. 004 L33-55: orphans' housing 30 % state, 70 % city).

- ``allocated: measure`` (the default): each program of the line has its own allocation (the
  council earmarks per measure); the ledger's budget key is the program, as before.
- ``allocated: line``: the line's programs share one allocation (000 L22: line 1.1.2 funds both
  general material aid and the 100 000 UAH aid to families of fallen defenders). The ledger's
  budget key is then the line's *holder id*, ``<city>.line-<code>`` (e.g.
  ``zhytomyr.line-1-1-2``): allocations, plans, month closes and status are per line.
- ``sources``: each payout is split by these shares to the kopiyka (largest remainder, the
  earlier source first on a tie); ``amount_covers`` names the sources the program's computed
  amount stands for when it computes only one source's share (orphans' housing computes the
  city's 70 %: its payouts are the city's alone, and the state's 30 % is paid outside the ledger).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dopomoga.money import largest_remainder

LINES_FILE = "budget-lines.yaml"
SOURCES_UK = {
    "state": "державний бюджет",
    "oblast": "обласний бюджет",
    "city": "бюджет міської територіальної громади",
    "other": "інші джерела",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FundShare(_Strict):
    source: Literal["state", "oblast", "city", "other"]
    share: Annotated[int, Field(gt=0, description="weight (percent or any integers)")]
    reference: str | None = None


class LineMeasure(_Strict):
    measure: str = Field(description="the measure's code in the programme (e.g. 1.1.7)")
    program: str | None = Field(default=None, description="the encoded program paying it, if any")
    name_uk: str
    reference: str


class BudgetLine(_Strict):
    code: str = Field(description="the programme's code of the line (task or measure number)")
    kpkvk: str | None = Field(default=None, description="КПКВК code, where the seed gives one")
    name_uk: str
    task: str | None = None
    task_uk: str | None = None
    executors_uk: str | None = None
    term: str | None = None
    reference: str
    allocated: Literal["measure", "line"] = "measure"
    measures: Annotated[list[LineMeasure], Field(min_length=1)]
    sources: list[FundShare] = Field(default_factory=lambda: [FundShare(source="city", share=1)])
    amount_covers: list[str] | None = None
    planned_kop: dict[int, int] = Field(
        default_factory=dict, description="the programme's orientative volume per year (kopiyky)"
    )

    @model_validator(mode="after")
    def _check(self) -> BudgetLine:
        names = [s.source for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"line {self.code}: a source is listed twice")
        if self.amount_covers is not None and not set(self.amount_covers) <= set(names):
            raise ValueError(f"line {self.code}: amount_covers names a source the line does not have")
        return self

    def holder(self, city: str) -> str:
        return f"{city}.line-{self.code.replace('.', '-').lower()}"

    def programs(self) -> list[str]:
        return [m.program for m in self.measures if m.program is not None]

    def keys(self, city: str) -> list[str]:
        """The ledger's budget keys of this line: its holder id when allocated whole (or when no
        encoded program pays it: its allocation is then recorded against the line), else its programs."""
        programs = self.programs()
        return [self.holder(city)] if self.allocated == "line" or not programs else programs

    def paying_sources(self) -> list[FundShare]:
        """The sources a payout of this line is split between."""
        if self.amount_covers is None:
            return list(self.sources)
        return [s for s in self.sources if s.source in self.amount_covers]


class CityLines(_Strict):
    city: str
    reference: str
    lines: list[BudgetLine]


class LinesError(ValueError):
    """A budget-lines.yaml that cannot be used (file and reason in the message)."""


def load_city_lines(path: Path) -> CityLines:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        lines = CityLines.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise LinesError(f"{path}: {exc}") from None
    if lines.city != path.parent.name:
        raise LinesError(f"{path}: city {lines.city!r} is not the folder's {path.parent.name!r}")
    return lines


class BudgetLines:
    """Every city's budget lines, indexed by program and by holder id."""

    def __init__(self, cities: Mapping[str, CityLines] | None = None):
        self.cities = dict(cities or {})
        self._line_of: dict[str, tuple[str, BudgetLine]] = {}
        self._holders: dict[str, tuple[str, BudgetLine]] = {}
        for city, data in self.cities.items():
            codes: set[str] = set()
            for line in data.lines:
                if line.code in codes:
                    raise LinesError(f"{city}: line {line.code} is listed twice")
                codes.add(line.code)
                self._holders[line.holder(city)] = (city, line)
                for measure in line.measures:
                    if measure.program is None:
                        continue
                    if measure.program in self._line_of:
                        raise LinesError(f"{city}: program {measure.program} is on two lines")
                    self._line_of[measure.program] = (city, line)

    @classmethod
    def load(cls, root: Path) -> BudgetLines:
        return cls({p.parent.name: load_city_lines(p) for p in sorted(root.glob(f"*/{LINES_FILE}"))})

    def line_of(self, program_id: str) -> BudgetLine | None:
        found = self._line_of.get(program_id)
        return None if found is None else found[1]

    def holder(self, program_id: str) -> str:
        """The ledger's budget key for a program: its line's holder id when the line is allocated whole."""
        found = self._line_of.get(program_id)
        if found is None or found[1].allocated != "line":
            return program_id
        return found[1].holder(found[0])

    def line_by_holder(self, holder: str) -> BudgetLine | None:
        found = self._holders.get(holder)
        return None if found is None else found[1]

    def members(self, holder: str) -> tuple[str, ...]:
        """The programs whose claims are charged to ``holder`` (a pooled line, or the program itself)."""
        line = self.line_by_holder(holder)
        if line is None or line.allocated != "line":
            return (holder,)
        return tuple(m.program for m in line.measures if m.program is not None)

    def programs(self) -> tuple[str, ...]:
        return tuple(sorted(self._line_of))

    def split(self, program_id: str, amount_kop: int) -> list[tuple[str, int]] | None:
        """A payout split by its line's fund sources to the kopiyka (``None``: the program has no line)."""
        line = self.line_of(program_id)
        if line is None:
            return None
        sources = line.paying_sources()
        keys = [f"{i:02d}" for i in range(len(sources))]  # ties: the source listed first
        amounts = largest_remainder(amount_kop, [s.share for s in sources], keys)
        return [(s.source, a) for s, a in zip(sources, amounts, strict=True)]
