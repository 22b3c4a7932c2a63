"""The scope: every name a program's CEL reads, for one application. One builder for all.

Eligibility conditions, the amount formula and the budget priority (``budget.priority``, read by
the ledger) all see the same scope, built here:

- the program's facts (``dopomoga.rules.facts``), with ``has_<fact>`` for optional ones;
- the standard inputs (``STANDARD_INPUTS``: ``submitted_on``, ``period``, ``period_start``,
  ``period_end``, ``birth_date``, ``applicant_kind``, ``district``, ``payment_channel``);
- the history counts the program declares (asked of the grant history, or given: the calculation
  stage and the ledger take them from the eligibility decision);
- the parameter values in force on the program's parameter date.

``ScopeBuilder`` also works out, once per program and per rule version, what the hot path needs
(``ProgramPlan``, ``VersionPlan``) and caches parameter values (they never change at run time).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dopomoga.errors import ApplicationError
from dopomoga.explain_uk import granted_tail
from dopomoga.periods import bounds, date_to_int, int_to_date
from dopomoga.rules.expressions import Expression
from dopomoga.rules.facts import Fact, declared_facts, typed_facts
from dopomoga.rules.history import GrantHistory
from dopomoga.rules.parameters import ParameterError, ParameterValue
from dopomoga.rules.programs import (
    STANDARD_INPUTS,
    Catalog,
    CompiledCondition,
    CompiledItems,
    CompiledVersion,
    Program,
    ProgramError,
)
from dopomoga.rules.records import fragment
from dopomoga.rules.windows import history_count
from schemas.events import ApplicationSubmitted, ParameterUse, RulesRef

Shown = tuple[tuple[str, bool], ...]  # the names an expression reads, each with "is a date"


@dataclass(frozen=True, slots=True)
class ProgramPlan:
    program: Program
    facts: tuple[Fact, ...]
    dates: frozenset[str]  # names whose values are YYYYMMDD dates (shown as ISO in traces)
    channels: frozenset[str]


@dataclass(frozen=True, slots=True)
class VersionPlan:
    rules: RulesRef
    conditions: tuple[tuple[CompiledCondition, Shown], ...]
    combined_variables: frozenset[str]
    formula_shown: Shown
    amount_expression: str  # the formula and its named rounding, as the trace shows it
    granted_tail: str  # ") — «title». Підстава: act, clause. [explanation]"
    sources: tuple[dict[str, str], ...]  # the operator section's pointers (RuleSource records)
    rules_json: Any = None  # ``rules`` and ``sources`` as written in the decision (``records.fragment``)
    sources_json: Any = None
    #: a version with item rows: each check a row must pass, in the order of the compiled row list
    #: (step, clause, expression, why a row failing it is out, the names it shows), and the names the
    #: item formula shows
    row_checks: tuple[tuple[Any, ...], ...] = ()
    item_formula_shown: Shown = ()
    #: the names the version's ``calculation_uk`` shows, and its sentences by their values (``engine._calculation``)
    calculation_names: tuple[str, ...] = ()
    calculation_memo: dict[Any, str] = dataclasses.field(default_factory=dict, compare=False, repr=False)


class Context:
    """One application's scope, with the program, the rule version in force and the parameters used."""

    __slots__ = ("ended", "excluded", "flags", "missing", "parameters", "parameters_json", "pending", "period", "plan",
                 "program", "scope", "version", "vplan")

    def __init__(self, plan: ProgramPlan, version: CompiledVersion, vplan: VersionPlan, scope: dict[str, Any],
                 parameters: tuple[ParameterUse, ...], period: str, missing: dict[str, str],
                 pending: tuple[str, ...] = ()):
        self.program = plan.program
        self.plan = plan
        self.version = version
        self.vplan = vplan
        self.scope = scope
        self.parameters = parameters
        self.period = period
        self.missing = missing
        self.pending = pending  # parameters used whose values await an operator's confirmation
        self.ended = False  # the application falls after the version's term (effective_to)
        self.flags: list[dict[str, Any]] = []  # raised non-refusing checks (operator section)
        self.excluded: list[tuple[int, str]] = []  # item rows not counted: (row number, the reasons)
        self.parameters_json: Any = None  # ``parameters`` as written in the decision (``records.fragment``)


class ShownNames(tuple):
    """A ``Shown`` (pairs of a name and "is a date") that also keeps its names and its date names apart,
    so that ``show`` reads them without unpacking the pairs (built once per rule version)."""

    names: tuple[str, ...]
    dates: tuple[str, ...]


def shown(expression: Expression, dates: frozenset[str]) -> Shown:
    pairs = ShownNames((name, name in dates) for name in expression.variables)
    pairs.names = tuple(name for name, _ in pairs)
    pairs.dates = tuple(name for name, is_date in pairs if is_date)
    return pairs


def show(names: Shown, scope: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The values an expression read, dates as ISO strings (what the decision shows)."""
    if type(names) is ShownNames:
        plain, dates = names.names, names.dates
    else:
        plain = tuple(name for name, _ in names)
        dates = tuple(name for name, is_date in names if is_date)
    get = scope.get
    inputs: dict[str, Any] = {}  # a loop, not a comprehension: Python 3.11 makes a function of each comprehension (~0.1 µs)
    if extra is None:
        for name in plain:
            inputs[name] = get(name)
    else:
        for name in plain:
            inputs[name] = extra[name] if name in extra else get(name)
    for name in dates:
        value = inputs[name]
        if isinstance(value, int) and value > 0:
            inputs[name] = _iso(value)
    return inputs


@functools.lru_cache(maxsize=65536)
def _iso(value: int) -> str:
    return int_to_date(value).isoformat()


@functools.lru_cache(maxsize=65536)
def parameter_use(value: ParameterValue) -> ParameterUse:
    return ParameterUse(
        name=value.name,
        value=value.value,
        unit="kop" if value.unit == "UAH" else value.unit,
        effective_from=value.effective_from,
        reference=value.reference,
    )


def _sources(program: Program, version: CompiledVersion) -> tuple[dict[str, str], ...]:
    """Where the legal basis, each condition, the frequency limit and the amount come from."""
    spec = program.spec
    found = [("legal_basis", spec.legal_basis.seed)]
    found += [(c.id, c.source) for c in version.conditions]
    if spec.frequency.limit is not None:
        found.append(("frequency_limit", spec.frequency.limit.source))
    found.append(("amount", version.amount_source))
    return tuple({"rule": rule, "source": source} for rule, source in found if source)


class ScopeBuilder:
    def __init__(self, catalog: Catalog, history: GrantHistory):
        self.catalog = catalog
        self.history = history
        self._parameter_cache: dict[
            tuple[int, dt.date], tuple[dict[str, int], tuple[ParameterUse, ...], dict[str, str], tuple[str, ...]]
        ] = {}
        self._program_plans: dict[str, ProgramPlan] = {}
        self._version_plans: dict[CompiledVersion, VersionPlan] = {}  # CompiledVersion hashes by identity
        # (program id, period, submission date, as_of) -> ``_dated_parts``
        self._dated: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def plan(self, program_id: str) -> ProgramPlan:
        plan = self._program_plans.get(program_id)
        if plan is not None:
            return plan
        try:
            program = self.catalog.get(program_id)
        except ProgramError as exc:
            raise ApplicationError("unknown_program", str(exc)) from None
        facts = declared_facts(program)
        dates = {name for name, kind in STANDARD_INPUTS.items() if kind == "date"}
        for fact in facts:
            if fact.spec.type == "date":
                dates.add(fact.name)
            dates.update(fact.date_fields)
        plan = ProgramPlan(program, facts, frozenset(dates), frozenset(program.spec.payment_channels))
        self._program_plans[program_id] = plan
        return plan

    def version_plan(self, plan: ProgramPlan, version: CompiledVersion) -> VersionPlan:
        cached = self._version_plans.get(version)
        if cached is not None:
            return cached
        program, dates = plan.program, plan.dates
        spec = program.spec
        vplan = VersionPlan(
            rules=RulesRef(
                program_id=program.id,
                version=spec.version,
                effective_from=version.effective_from,
                rules_hash=program.rules_hash,
            ),
            conditions=tuple((c, shown(c.expression, dates)) for c in version.conditions),
            combined_variables=frozenset(version.combined.variables if version.combined else ()),
            formula_shown=shown(version.formula, dates),
            amount_expression=f"{version.formula.source}  [округлення: {version.rounding_uk}]",
            granted_tail=granted_tail(spec.title.uk, spec.legal_basis.act_uk, version.amount_clause_uk,
                                      version.explanation_uk),
            sources=_sources(program, version),
            row_checks=_row_checks(version.items, version.amount_clause_uk, dates) if version.items else (),
            item_formula_shown=shown(version.items.formula, dates) if version.items else (),
            calculation_names=tuple(name for _, name, _ in version.calculation or () if name is not None),
        )
        vplan = dataclasses.replace(vplan, rules_json=fragment(vplan.rules), sources_json=fragment(vplan.sources))
        self._version_plans[version] = vplan
        return vplan

    def context(
        self, application: ApplicationSubmitted, as_of: dt.date | None, history: Mapping[str, int] | None
    ) -> Context:
        """The scope of an application under the rules in force (on ``as_of`` if given).

        ``history``: the program's history counts as already decided (eligibility's ``derived``);
        ``None`` asks the grant history.
        """
        key = (application.program_id, application.period, application.submitted_on, as_of)
        dated = self._dated.get(key)
        if dated is None:
            dated = self._dated_parts(application, as_of)
            if len(self._dated) > 100_000:
                self._dated.clear()
            self._dated[key] = dated
        plan, version, ended, vplan, period, standard, values, used, missing, pending, parameters_json = dated
        program = plan.program
        spec = program.spec
        applicant = application.applicant
        scope = typed_facts(program, plan.facts, application.facts)
        scope.update(standard)
        birth = applicant.birth_date
        scope["birth_date"] = birth.year * 10000 + birth.month * 100 + birth.day if birth else 0
        scope["applicant_kind"] = applicant.id_kind
        scope["district"] = applicant.district or ""
        channel = application.payment.channel
        scope["payment_channel"] = channel
        if channel not in plan.channels:
            raise ApplicationError(
                "bad_payment_channel",
                f"program {program.id} pays by {', '.join(spec.payment_channels)}, not {channel}",
            )
        if history is None:
            for name, hist in spec.history.items():
                scope[name] = history_count(self.history, program, application, hist)
        else:
            scope.update(history)
        scope.update(values)
        context = Context(plan, version, vplan, scope, used, period, missing, pending)
        context.ended = ended
        context.parameters_json = parameters_json
        return context

    def _dated_parts(self, application: ApplicationSubmitted, as_of: dt.date | None) -> tuple[Any, ...]:
        """What an application's scope takes from its program, period and dates alone (the same for every
        application of the program with the same period, submission date and ``as_of``): the plan, the
        rule version in force and its plan, the period, the standard date inputs, the parameters."""
        plan = self.plan(application.program_id)
        program = plan.program
        spec = program.spec
        period = application.effective_period
        when = bounds(period)
        rules_date = as_of or (when.start if spec.rules_on == "period_start" else application.submitted_on)
        try:
            version, ended = program.version_for(rules_date)
        except ProgramError as exc:
            raise ApplicationError("no_rules_in_force", str(exc)) from None
        vplan = self.version_plan(plan, version)
        standard = {
            "submitted_on": date_to_int(application.submitted_on),
            "period": when.month_int,
            "period_start": when.start_int,
            "period_end": when.end_int,
        }
        parameters_on = spec.parameters_on
        on = (
            application.submitted_on
            if parameters_on == "submitted_on"
            else when.start
            if parameters_on == "period_start"
            else when.year_start
        )
        values, used, missing, pending = self.parameters(program, version, on)
        return (plan, version, ended, vplan, period, standard, values, used, missing, pending, fragment(list(used)))

    def parameters(
        self, program: Program, version: CompiledVersion, on: dt.date
    ) -> tuple[dict[str, int], tuple[ParameterUse, ...], dict[str, str], tuple[str, ...]]:
        """Parameter values of a rule version on a date (cached: parameters never change at run time).

        Also the names of the values used that await an operator's confirmation (``inferred``)."""
        key = (id(version), on)
        cached = self._parameter_cache.get(key)
        if cached is not None:
            return cached
        values: dict[str, int] = {}
        used: list[ParameterUse] = []
        missing: dict[str, str] = {}
        pending: list[str] = []
        names = version.parameter_names
        if program.priority_parameters:
            names = tuple(dict.fromkeys((*names, *program.priority_parameters)))
        for name in names:
            try:
                value = (
                    program.local_parameters[name].at(on)
                    if name in program.local_parameters
                    else self.catalog.parameters.at(name, on)
                )
            except ParameterError as exc:
                # Only an error if a rule that is actually evaluated reads it (a refused
                # application never evaluates the amount formula).
                missing[name] = str(exc)
                continue
            values[name] = value.value
            if name in version.parameter_names:
                used.append(parameter_use(value))
                if value.pending_confirmation:
                    pending.append(name)
        if len(self._parameter_cache) > 100_000:
            self._parameter_cache.clear()
        result = (values, tuple(used), missing, tuple(pending))
        self._parameter_cache[key] = result
        return result


def _row_checks(items: CompiledItems, amount_clause: str, dates: frozenset[str]) -> tuple[tuple[Any, ...], ...]:
    checks: list[tuple[Any, ...]] = []
    if items.include_when is not None:
        checks.append(("include", amount_clause, items.include_when, items.exclude_uk, shown(items.include_when, dates)))
    for condition in items.conditions:
        checks.append((condition.id, condition.clause_uk, condition.expression, condition.refusal_uk,
                       shown(condition.expression, dates)))
    return tuple(checks)
