"""What-if scenarios as data: a YAML file of proposed changes, checked like a program file.

A scenario names what a council proposal would change, each change with its reference::

    scenario: pm-plus-10-from-july
    title_uk: Прожитковий мінімум +10 % з 1 липня 2023 року
    parameters:                    # dated parameter values (global, or a program's own)
      - {name: pm_general, from: 2023-07-01, change_percent: "10", reference: "проєкт рішення № ..."}
      - {name: centenarian_payment, program: zhytomyr.centenarians, from: 2023-01-01,
         value: "5000", reference: "..."}
    programs:                      # replacement program versions (a program file, same id)
      - {file: proposals/centenarians-2023.yaml, reference: "..."}
    allocations:                   # per program or pooled budget line (its holder id), district, year / month
      - {program: zhytomyr.centenarians, year: 2023, change_percent: "-20", reference: "..."}
      - {program: zhytomyr.large-families, year: 2023, months: {2023-07: "150000"}, reference: "..."}
    budget:                        # budget-policy changes
      - {program: zhytomyr.triplets, policy: pro_rata_at_close, reference: "..."}

Every error names the file and the position (``scenario.yaml:14:11: parameters.2.name: ...``).
``Scenario.catalog(base)`` gives the rules with the changes applied (only the programs a change
touches are reloaded: the others are the baseline's own objects), ``Scenario.allocations(base)``
the allocation commands, each change appended as an amendment (the ledger's last amendment wins).
The format is documented in docs/whatif.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
import json
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from dopomoga.budget.allocation import monthly_plan
from dopomoga.budget.commands import allocation_set
from dopomoga.budget.lines import BudgetLines
from dopomoga.money import round_half_up, uah_to_kop
from dopomoga.periods import split_period
from dopomoga.rules.parameters import Parameter, ParameterError, ParameterSet, ParameterValue
from dopomoga.rules.programs import BudgetSpec, Catalog, Program, ProgramError, load_program
from dopomoga.whatif.positions import Located, PositionedError
from schemas.events import AllocationSet, MonthlyPlan

Number = StrictStr | StrictInt  # exact: a float in a scenario is refused, as in parameter files


class ScenarioError(PositionedError):
    """A scenario file that cannot be applied; the message starts with ``file:line:column``."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ParameterOverride(_Strict):
    name: str
    program: str | None = Field(default=None, description="the program whose own parameter this is")
    from_: dt.date = Field(alias="from")
    to: dt.date | None = Field(default=None, description="last day of the change; the law's values resume after")
    value: Number | None = Field(default=None, description="the new value, in the parameter's unit (UAH as text)")
    change_percent: Number | None = Field(default=None, description="scale every value in force by this percent")
    round_to: Literal["kopiyka", "hryvnia"] = "kopiyka"
    reference: Annotated[str, Field(min_length=3)]


class ProgramReplacement(_Strict):
    file: str
    reference: Annotated[str, Field(min_length=3)]


class AllocationChange(_Strict):
    program: str
    year: int
    district: str | None = None
    line: str | None = Field(default=None, description="the budget line's code, as a check (budget-lines.yaml)")
    annual_uah: Number | None = None
    change_percent: Number | None = None
    months: dict[str, Number] | None = Field(default=None, description="YYYY-MM -> UAH for the month")
    reference: Annotated[str, Field(min_length=3)]


class BudgetChange(_Strict):
    program: str
    policy: Literal["pro_rata_at_close", "first_come", "priority_then_pro_rata", "district_split"] | None = None
    when_short: Literal["defer", "refuse"] | None = None
    late_claims: Literal["next_period", "refuse"] | None = None
    carry_over: bool | None = None
    reference: Annotated[str, Field(min_length=3)]


class ScenarioFile(_Strict):
    scenario: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9\-_.]*$")]
    title_uk: str
    description: str | None = None
    parameters: list[ParameterOverride] = []
    programs: list[ProgramReplacement] = []
    allocations: list[AllocationChange] = []
    budget: list[BudgetChange] = []


def _percent(raw: Number, located: Located, loc: tuple[Any, ...]) -> Fraction:
    try:
        value = Fraction(Decimal(str(raw)))
    except (InvalidOperation, ValueError):
        raise located.error(loc, f"{raw!r} is not a percentage", ScenarioError) from None
    if value <= -100:
        raise located.error(loc, "a change of -100 % or less leaves nothing", ScenarioError)
    return value


def _scaled(value: int, percent: Fraction, unit: str, round_to: str) -> int:
    exact = Fraction(value) * (100 + percent) / 100
    if unit == "UAH" and round_to == "hryvnia":
        return round_half_up(exact.numerator, exact.denominator * 100) * 100
    return round_half_up(exact.numerator, exact.denominator)


def _amount(raw: Number, unit: str, located: Located, loc: tuple[Any, ...]) -> int:
    try:
        value = uah_to_kop(raw) if unit == "UAH" else int(str(raw))
    except ValueError as exc:
        raise located.error(loc, str(exc), ScenarioError) from None
    if value < 0:
        raise located.error(loc, "must not be negative", ScenarioError)
    return value


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A checked scenario file (``load_scenario``)."""

    spec: ScenarioFile
    source: Located
    base: Catalog
    changed_catalog: Catalog
    changed_programs: frozenset[str]  # ids whose rules, parameters or budget block differ
    lines: BudgetLines = dataclasses.field(default_factory=BudgetLines)

    @property
    def id(self) -> str:
        return self.spec.scenario

    def catalog(self) -> Catalog:
        return self.changed_catalog

    def allocations(self, base: list[AllocationSet]) -> list[AllocationSet]:
        """The baseline allocation commands, then each change as an amendment (last one wins)."""
        result = list(base)
        for index, change in enumerate(self.spec.allocations):
            loc = ("allocations", index)
            current = None
            key = self.lines.holder(change.program)  # a pooled line's holder, named by it or by a program
            for allocation in result:
                if (self.lines.holder(allocation.program_id), allocation.year, allocation.district) == (
                    key, change.year, change.district
                ):
                    current = allocation
            if current is None:
                if change.months is None and change.annual_uah is None:
                    raise self.source.error(
                        loc, f"no baseline allocation of {change.program} for {change.year} to change", ScenarioError
                    )
                plan = (0,) * 12
            else:
                plan = monthly_plan(current.year, current.annual_kop, current.plan.kind, current.plan.months)
            if change.annual_uah is not None:
                annual = _amount(change.annual_uah, "UAH", self.source, (*loc, "annual_uah"))
                kind = current.plan.kind if current is not None and current.plan.kind != "explicit" else "even"
                months = None
            elif change.change_percent is not None:
                percent = _percent(change.change_percent, self.source, (*loc, "change_percent"))
                scaled = [_scaled(m, percent, "kop", "kopiyka") for m in plan]
                kind, annual, months = "explicit", sum(scaled), _month_map(change.year, scaled)
            else:
                vector = list(plan)
                for period, raw in (change.months or {}).items():
                    vector[split_period(period)[1] - 1] = _amount(raw, "UAH", self.source, (*loc, "months", period))
                kind, annual, months = "explicit", sum(vector), _month_map(change.year, vector)
            result.append(allocation_set(
                program_id=change.program, year=change.year, annual_kop=annual,
                plan=MonthlyPlan(kind=kind, months=months), district=change.district,
                amendment_id=f"whatif-{self.id}-{index + 1}", legal_reference=change.reference,
                occurred_at=dt.datetime(change.year, 1, 2, 12, tzinfo=dt.UTC),
            ))
        return result


def _month_map(year: int, vector: list[int]) -> dict[str, int]:
    return {f"{year}-{m + 1:02d}": amount for m, amount in enumerate(vector)}


def load_scenario(path: Path, base: Catalog) -> Scenario:
    """Read and check a scenario against the baseline catalog; every error names file and position."""
    located = Located.load(path, ScenarioError)
    try:
        spec = ScenarioFile.model_validate(located.data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p in ("str", "int", "function-after")))
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise located.error(loc, first["msg"] + more, ScenarioError) from None

    # -- parameters ------------------------------------------------------------------------
    global_params = {name: base.parameters[name] for name in base.parameters.names()}
    changed_globals: set[str] = set()
    for index, override in enumerate(spec.parameters):
        loc = ("parameters", index)
        if (override.value is None) == (override.change_percent is None):
            raise located.error(loc, "give exactly one of value, change_percent", ScenarioError)
        if override.to is not None and override.to < override.from_:
            raise located.error((*loc, "to"), "ends before it starts", ScenarioError)
        if override.program is not None:
            if override.program not in base.programs:
                raise located.error((*loc, "program"), f"unknown program {override.program!r}"
                                    + _suggest(override.program, sorted(base.programs)), ScenarioError)
            continue  # a program's own parameter: applied after any replacement of the program
        if override.name not in global_params:
            owners = sorted(p.id for p in base.programs.values() if override.name in p.local_parameters)
            hint = f" (a parameter of {', '.join(owners)}: add `program:`)" if owners else _suggest(
                override.name, sorted(global_params))
            raise located.error((*loc, "name"), f"unknown parameter {override.name!r}{hint}", ScenarioError)
        changed_globals.add(override.name)
        global_params[override.name] = _override(global_params[override.name], override, located, loc)

    parameters = ParameterSet(global_params, base.parameters.sources)
    programs: dict[str, Program] = dict(base.programs)
    changed: set[str] = set()
    for program in base.programs.values():
        reads = {n for v in program.versions for n in v.parameter_names} | set(program.priority_parameters)
        if reads & changed_globals:
            programs[program.id] = load_program(program.path, parameters)  # new values, new rules hash
            changed.add(program.id)

    # -- replacement programs ----------------------------------------------------------------
    for index, replacement in enumerate(spec.programs):
        loc = ("programs", index, "file")
        file = (path.parent / replacement.file).resolve()
        try:
            program = load_program(file, parameters)
        except (ProgramError, OSError) as exc:
            raise located.error(loc, f"replacement program does not load: {exc}", ScenarioError) from None
        if program.id not in base.programs:
            raise located.error(loc, f"{file} defines {program.id!r}, which is not a program of the catalog"
                                + _suggest(program.id, sorted(base.programs)), ScenarioError)
        if program.spec.city != base.programs[program.id].spec.city:
            raise located.error(loc, f"{program.id} belongs to {base.programs[program.id].spec.city}", ScenarioError)
        programs[program.id] = program
        changed.add(program.id)

    # -- program's own parameters, budget blocks -------------------------------------------
    local_params: dict[str, dict[str, Parameter]] = {}
    for index, override in enumerate(spec.parameters):
        if override.program is None:
            continue
        table = local_params.setdefault(override.program, dict(programs[override.program].local_parameters))
        if override.name not in table:
            raise located.error(("parameters", index, "name"),
                                f"program {override.program} has no parameter {override.name!r}"
                                + _suggest(override.name, sorted(table)), ScenarioError)
        table[override.name] = _override(table[override.name], override, located, ("parameters", index))
    for program_id, table in local_params.items():
        programs[program_id] = _amended(programs[program_id], local_parameters=table,
                                        note=[o.model_dump(mode="json") for o in spec.parameters
                                              if o.program == program_id])
        changed.add(program_id)
    for index, change in enumerate(spec.budget):
        loc = ("budget", index)
        if change.program not in programs:
            raise located.error((*loc, "program"), f"unknown program {change.program!r}"
                                + _suggest(change.program, sorted(programs)), ScenarioError)
        program = programs[change.program]
        updates = change.model_dump(exclude={"program", "reference"}, exclude_none=True)
        if not updates:
            raise located.error(loc, "changes nothing (give policy, when_short, late_claims or carry_over)",
                                ScenarioError)
        if updates.get("policy") == "priority_then_pro_rata" and program.priority is None:
            raise located.error((*loc, "policy"), f"{change.program} has no budget.priority to rank by",
                                ScenarioError)
        if updates.get("policy") == "district_split" and not program.spec.budget.by_district:
            raise located.error((*loc, "policy"), f"{change.program} has no district budgets", ScenarioError)
        budget = BudgetSpec.model_validate({**program.spec.budget.model_dump(), **updates})
        programs[change.program] = _amended(program, spec=program.spec.model_copy(update={"budget": budget}),
                                            note=change.model_dump(mode="json"))
        changed.add(change.program)

    # -- allocations (checked against the baseline commands in Scenario.allocations) ---------
    lines = BudgetLines.load(base.root)
    for index, change in enumerate(spec.allocations):
        loc = ("allocations", index)
        line = lines.line_of(change.program) or lines.line_by_holder(change.program)
        if change.program not in programs and lines.line_by_holder(change.program) is None:
            holders = sorted({lines.holder(p) for p in programs} - set(programs))
            raise located.error((*loc, "program"), f"unknown program or budget line holder {change.program!r}"
                                + _suggest(change.program, sorted(programs) + holders), ScenarioError)
        if change.line is not None and (line is None or line.code != change.line):
            raise located.error((*loc, "line"), f"{change.program} is not on budget line {change.line}"
                                + (f" (its line is {line.code})" if line else " (it has no budget line)"),
                                ScenarioError)
        given = [f for f in ("annual_uah", "change_percent", "months") if getattr(change, f) is not None]
        if len(given) != 1:
            raise located.error(loc, "give exactly one of annual_uah, change_percent, months", ScenarioError)
        for period in change.months or {}:
            try:
                year, _ = split_period(period)
            except ValueError:
                year = None
            if year != change.year:
                raise located.error((*loc, "months", period), f"not a month of {change.year} (YYYY-MM)",
                                    ScenarioError)

    catalog = Catalog(programs, parameters, base.root, base.cities)
    return Scenario(spec, located, base, catalog, frozenset(changed), lines)


def _override(parameter: Parameter, override: ParameterOverride, located: Located, loc: tuple[Any, ...]) -> Parameter:
    """The parameter's dated values with the override applied from ``from`` (to ``to``)."""
    start, end = override.from_, override.to
    unit = parameter.unit
    try:
        in_force = parameter.at(start)
    except ParameterError:
        in_force = None
    reference = f"сценарій: {override.reference}"
    inside: list[ParameterValue]
    if override.value is not None:
        value = _amount(override.value, unit, located, (*loc, "value"))
        inside = [ParameterValue(name=parameter.name, value=value, unit=unit, effective_from=start, reference=reference)]
    else:
        if in_force is None:
            raise located.error((*loc, "from"), f"{parameter.name} has no value on {start} to scale", ScenarioError)
        percent = _percent(override.change_percent, located, (*loc, "change_percent"))  # type: ignore[arg-type]
        originals = [dataclasses.replace(in_force, effective_from=start)] + [
            v for v in parameter.values if v.effective_from > start and (end is None or v.effective_from <= end)
        ]
        inside = [
            ParameterValue(parameter.name, _scaled(v.value, percent, unit, override.round_to), unit, v.effective_from,
                           f"{reference} ({override.change_percent} % до: {v.reference})")
            for v in originals
        ]
    before = [v for v in parameter.values if v.effective_from < start]
    after: list[ParameterValue] = []
    if end is not None:
        resume = end + dt.timedelta(days=1)
        after = [v for v in parameter.values if v.effective_from > end]
        if not any(v.effective_from == resume for v in after):
            try:
                after.insert(0, dataclasses.replace(parameter.at(resume), effective_from=resume))
            except ParameterError:
                pass
    values = tuple(sorted(before + inside + after, key=lambda v: v.effective_from))
    return dataclasses.replace(parameter, dates=tuple(v.effective_from for v in values), values=values)


def _amended(program: Program, note: Any, **changes: Any) -> Program:
    """A program with some of its parts changed, and a rules hash that says so."""
    digest = hashlib.sha256(program.rules_hash.encode())
    digest.update(json.dumps(note, ensure_ascii=False, sort_keys=True, default=str).encode())
    return dataclasses.replace(program, rules_hash=digest.hexdigest()[:16], **changes)
