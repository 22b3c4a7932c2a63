"""The program file format: what a department writes, as pydantic models (docs/programs.md).

One payment per YAML file under ``programs/<city>/``: its title and legal basis, who is paid and
how, its budget block, its declared inputs and history counts, its parameters, and its dated
rule versions (CEL conditions, each with a clause and a refusal, and the amount formula with its
named rounding). ``dopomoga.rules.programs`` loads and compiles these files.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Program files: the repository's programs/ unless DOPOMOGA_PROGRAMS names another folder
#: (an installed image keeps them outside site-packages).
PROGRAMS_DIR = Path(os.environ.get("DOPOMOGA_PROGRAMS") or Path(__file__).resolve().parents[2] / "programs")

#: Names every program may read, bound by the engine from the application itself.
STANDARD_INPUTS: dict[str, str] = {
    "submitted_on": "date",  # date of the application
    "period": "month",  # month claimed, YYYYMM
    "period_start": "date",  # first day of that month
    "period_end": "date",  # last day of that month
    "birth_date": "date",  # applicant's birth date (0 when not given)
    "applicant_kind": "string",  # rnokpp | passport | edrpou
    "district": "string",  # applicant's district ("" when not given)
    "payment_channel": "string",  # bank | post | my_transfer | treasury
}

FactType = Literal["bool", "int", "string", "date", "money", "enum", "list", "items"]


class ProgramError(ValueError):
    """A program file that cannot be loaded; the message names the file and the rule."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    uk: str
    en: str


class LegalBasis(_Strict):
    act_uk: str
    clause_uk: str
    seed: str = Field(description="seed file and lines, e.g. 004:L731-733")


class InputSpec(_Strict):
    type: FactType
    required: bool = True
    description_uk: str
    values: list[str] | None = None  # enum values
    fields: dict[str, Literal["bool", "int", "string", "money", "date"]] | None = None  # item fields

    @model_validator(mode="after")
    def _shape(self) -> InputSpec:
        if (self.type == "enum") != (self.values is not None):
            raise ValueError("'values' belongs to (and is required by) type enum")
        if (self.type == "items") != (self.fields is not None):
            raise ValueError("'fields' belongs to (and is required by) type items")
        return self


class HistorySpec(_Strict):
    """A count of earlier grants, bound as an integer under the history entry's name."""

    programs: list[str] = Field(default_factory=list, description="program ids; empty means this program")
    scope: str = "person"  # person | household | fact:<name>
    window: Literal["lifetime", "calendar_year", "period", "years", "dates"] = "lifetime"
    years: int | None = None
    from_date: dt.date | None = Field(default=None, alias="from")
    to_date: dt.date | None = Field(default=None, alias="to")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _window(self) -> HistorySpec:
        if (self.window == "years") != (self.years is not None):
            raise ValueError("'years' belongs to (and is required by) window: years")
        if (self.window == "dates") != (self.from_date is not None and self.to_date is not None):
            raise ValueError("'from' and 'to' belong to (and are required by) window: dates")
        if not (self.scope in ("person", "household") or self.scope.startswith("fact:")):
            raise ValueError("scope must be person, household or fact:<input name>")
        return self


class FrequencyLimit(HistorySpec):
    clause_uk: str
    refusal_uk: str
    source: str | None = Field(default=None, description="internal pointer (seed lines, spec ids): operators only")


class Frequency(_Strict):
    kind: Literal["one_off", "monthly", "yearly", "per_claim"]
    limit: FrequencyLimit | None = None


class BudgetSpec(_Strict):
    policy: Literal["pro_rata_at_close", "first_come", "priority_then_pro_rata", "district_split"]
    clause_uk: str
    source: str | None = Field(default=None, description="internal pointer (seed lines, spec ids): operators only")
    when_short: Literal["defer", "refuse"] = "defer"
    late_claims: Literal["next_period", "refuse"] = "next_period"
    priority: str | None = None  # CEL -> int class, lower is served first (priority_then_pro_rata)
    by_district: bool = False
    carry_over: bool = Field(
        default=True,
        description="unspent monthly money carries forward within the budget year (never across years)",
    )


class Condition(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    clause_uk: str
    when: str
    refusal_uk: str
    source: str | None = Field(default=None, description="internal pointer (seed lines, spec ids): operators only")


class ItemCondition(_Strict):
    """A condition on one row of an item list (a register row, a route): a row counts only if all hold."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    clause_uk: str
    when: str
    exclude_uk: str = Field(description="why a row that fails it does not count, as the decision shows it")
    source: str | None = Field(default=None, description="internal pointer (seed lines, spec ids): operators only")


class Flag(_Strict):
    """A check that never refuses: when ``when`` is false the decision carries ``flag_uk`` for an operator."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    clause_uk: str
    when: str
    flag_uk: str
    source: str | None = Field(default=None, description="internal pointer (seed lines, spec ids): operators only")


class ItemsSpec(_Strict):
    of: str
    include_when: str | None = None
    exclude_uk: str | None = None
    conditions: list[ItemCondition] = Field(default_factory=list)
    flags: list[Flag] = Field(default_factory=list)
    formula: str


class AmountSpec(_Strict):
    clause_uk: str
    formula: str
    rounding_uk: str = Field(description="the named rounding the formula applies, for the reader")
    items: ItemsSpec | None = None
    values: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], str] = Field(
        default_factory=dict,
        description="named intermediate amounts (CEL, whole non-negative numbers), computed in order before the "
        "formula; the formula, later values, flags and calculation_uk may read them, and the trace shows each",
    )
    calculation_uk: str | None = Field(
        default=None,
        description="the calculation as the citizen reads it, e.g. '{max_flat:uah} × {area_x100:x100} м² ∕ 21 м²' "
        "(names the rules read; formats: uah, x100, date; plain otherwise)",
    )
    source: str | None = Field(default=None, description="internal pointer (seed lines, spec ids): operators only")


class RuleVersion(_Strict):
    effective_from: dt.date
    effective_to: dt.date | None = Field(default=None, description="last day in force (e.g. the program's term)")
    note_uk: str | None = None
    term_uk: str | None = Field(
        default=None, description="why an application after effective_to is refused (the programme's term)"
    )
    conditions: list[Condition]
    flags: list[Flag] = Field(default_factory=list)
    amount: AmountSpec
    explanation_uk: str | None = None


class ProgramFile(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9]+(\.[a-z0-9\-]+)+$")]
    version: str
    title: Text
    city: Annotated[str, Field(pattern=r"^[a-z][a-z0-9\-]*$", description="a folder of programs/ with a city.yaml")]
    legal_basis: LegalBasis
    payee: Literal["person", "organisation"]
    payment_channels: list[Literal["bank", "post", "my_transfer", "treasury"]]
    frequency: Frequency
    budget: BudgetSpec
    parameters_on: Literal["submitted_on", "period_start", "year_start"] = "submitted_on"
    rules_on: Literal["submitted_on", "period_start"] = Field(
        default="submitted_on", description="which date selects the rule version in force"
    )
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    history: dict[str, HistorySpec] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)
    rules: list[RuleVersion]
    readings_uk: list[str] = Field(default_factory=list, description="readings chosen where the seed is silent")
    notes: str | None = None

    @model_validator(mode="after")
    def _versions_ordered(self) -> ProgramFile:
        if not self.rules:
            raise ValueError("a program needs at least one rule version")
        dates = [r.effective_from for r in self.rules]
        if dates != sorted(dates) or len(set(dates)) != len(dates):
            raise ValueError("rule versions must have distinct effective_from dates in ascending order")
        for version, following in zip(self.rules, [*self.rules[1:], None], strict=True):
            if version.effective_to is not None:
                if version.effective_to < version.effective_from:
                    raise ValueError("effective_to is before effective_from")
                if following is not None and following.effective_from <= version.effective_to:
                    raise ValueError("a rule version's effective_to overlaps the next version")
        return self
