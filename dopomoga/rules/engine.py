"""The rules engine: an application and the rules in force on its date -> a decision.

Pure: no Kafka, no clock, no randomness. The same application and the same program
files give byte-identical decisions (ids are UUIDv5 of the application; timestamps
are copied from the application).

- ``check_eligibility`` evaluates every condition of the rule version in force
  (plus the program's frequency limit) and records each result and its clause;
- ``calculate`` evaluates the amount formula of an eligible application;
- ``decide`` does both.

Each has an ``*_encoded`` twin that returns the decision as the bytes of its event
(``Encoded.json``), for the batch CLI and the services. Both come from one record
built once per decision: the model is that record validated by the event's pydantic
model, the bytes are that record written by pydantic-core's serializer, and a test
checks that the two are byte-identical for every example and every program.

How one decision is evaluated (the hot path): the program's facts are checked
against its declared inputs; the scope (facts, the application's standard inputs,
history counts, parameter values on the date) is built once; then one CEL call
evaluates the version's ``combined`` list - every condition, and the amount if all
of them hold. If that call fails (or a parameter it reads has no value on the date),
the rules are run one by one instead, so the error names the rule that failed.

Bad input raises ``ApplicationError`` with a reason code and a clear message; the
services turn that into a dead-letter record, the CLI into a per-line error.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from pydantic import BaseModel

from dopomoga.money import format_uah
from dopomoga.rules.expressions import Expression, date_to_int, int_to_date
from dopomoga.rules.history import Grant, GrantHistory, InMemoryHistory
from dopomoga.rules.parameters import ParameterError, ParameterValue
from dopomoga.rules.programs import (
    STANDARD_INPUTS,
    Catalog,
    CompiledCondition,
    CompiledVersion,
    HistorySpec,
    InputSpec,
    Program,
    ProgramError,
)
from schemas.events import (
    SCHEMA_VERSION,
    ApplicationSubmitted,
    ConditionResult,
    EligibilityDecided,
    EntitlementCalculated,
    ParameterUse,
    RulesRef,
)

NAMESPACE = uuid.UUID("6d1b3c7e-2f4a-5b8c-9d0e-1f2a3b4c5d6e")
_NAMESPACE_BYTES = NAMESPACE.bytes

FREQUENCY_UK = {"one_off": "одноразово", "monthly": "щомісячно", "yearly": "щорічно", "per_claim": "за розрахунком"}
MONTHS_UK = (
    "січень лютий березень квітень травень червень липень серпень вересень жовтень листопад грудень"
).split()


class ApplicationError(ValueError):
    """The application cannot be decided as submitted (dead-letter / per-line error)."""

    def __init__(self, reason_code: str, message: str):
        super().__init__(message)
        self.reason_code = reason_code


class Encoded(NamedTuple):
    """A decision as the bytes of its event, with the fields services route and count by.

    ``json`` is byte for byte what ``model_dump_json()`` of the decision's model gives.
    ``amount_kop`` and ``budget_key`` are ``None`` for an eligibility decision.
    """

    application_id: str
    program_id: str
    period: str
    eligible: bool
    amount_kop: int | None
    budget_key: str | None
    json: bytes


def decision_id(stage: str, application_id: str) -> str:
    """Deterministic id of a decision: the same application always gets the same id.

    A UUIDv5 (RFC 4122, SHA-1 name-based) of ``stage:application_id`` in Dopomoga's
    namespace; computed directly because ``uuid.uuid5`` costs more than a rule.
    """
    h = hashlib.sha1(_NAMESPACE_BYTES + f"{stage}:{application_id}".encode()).hexdigest()
    # version 5 in the high nibble of octet 6, the RFC 4122 variant (10xx) in octet 8
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


_VARIANT = {c: "89ab"[int(c, 16) & 0x3] for c in "0123456789abcdef"}


@functools.lru_cache(maxsize=4096)
def period_uk(period: str) -> str:
    year, month = period.split("-")
    return f"{MONTHS_UK[int(month) - 1]} {year} р."


class _Period(NamedTuple):
    start: dt.date
    start_int: int
    end_int: int
    month_int: int  # YYYYMM
    year_start: dt.date


@functools.lru_cache(maxsize=4096)
def _period(period: str) -> _Period:
    year, month = int(period[:4]), int(period[5:])
    start = dt.date(year, month, 1)
    end = dt.date(year, month, calendar.monthrange(year, month)[1])
    return _Period(start, date_to_int(start), date_to_int(end), year * 100 + month, dt.date(year, 1, 1))


@functools.lru_cache(maxsize=65536)
def _iso(value: int) -> str:
    return int_to_date(value).isoformat()


# -- what the hot path needs, worked out once per program and per rule version ---------------

_ZERO: dict[str, Any] = {
    "bool": False, "int": 0, "money": 0, "string": "", "enum": "", "date": 0, "list": [], "items": [],
}

Shown = tuple[tuple[str, bool], ...]  # the names an expression reads, each with "is a date"


@dataclass(frozen=True, slots=True)
class _Fact:
    name: str
    spec: InputSpec
    presence: str | None  # has_<name> (optional facts only)
    date_fields: tuple[str, ...]  # item fields that are dates


@dataclass(frozen=True, slots=True)
class _ProgramPlan:
    program: Program
    facts: tuple[_Fact, ...]
    dates: frozenset[str]  # names whose values are YYYYMMDD dates (shown as ISO in traces)
    channels: frozenset[str]


@dataclass(frozen=True, slots=True)
class _VersionPlan:
    rules: RulesRef
    conditions: tuple[tuple[CompiledCondition, Shown], ...]
    combined_variables: frozenset[str]
    formula_shown: Shown
    amount_expression: str  # the formula and its named rounding, as the trace shows it
    granted_tail: str  # ") — «title». Підстава: act, clause. [explanation]"


def _shown(expression: Expression, dates: frozenset[str]) -> Shown:
    return tuple((name, name in dates) for name in expression.variables)


def _show(shown: Shown, scope: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The values an expression read, dates as ISO strings (what the decision shows)."""
    if extra is None:
        inputs = {name: scope.get(name) for name, _ in shown}
    else:
        inputs = {name: extra[name] if name in extra else scope.get(name) for name, _ in shown}
    for name, is_date in shown:
        if is_date:
            value = inputs[name]
            if isinstance(value, int) and value > 0:
                inputs[name] = _iso(value)
    return inputs


class _Context:
    __slots__ = ("missing", "parameters", "period", "plan", "program", "scope", "version", "vplan")

    def __init__(self, plan: _ProgramPlan, version: CompiledVersion, vplan: _VersionPlan, scope: dict[str, Any],
                 parameters: tuple[ParameterUse, ...], period: str, missing: dict[str, str]):
        self.program = plan.program
        self.plan = plan
        self.version = version
        self.vplan = vplan
        self.scope = scope
        self.parameters = parameters
        self.period = period
        self.missing = missing


class Engine:
    def __init__(self, catalog: Catalog, history: GrantHistory | None = None):
        self.catalog = catalog
        self.history: GrantHistory = history if history is not None else InMemoryHistory()
        self._parameter_cache: dict[
            tuple[int, dt.date], tuple[dict[str, int], tuple[ParameterUse, ...], dict[str, str]]
        ] = {}
        self._program_plans: dict[str, _ProgramPlan] = {}
        self._version_plans: dict[CompiledVersion, _VersionPlan] = {}  # CompiledVersion hashes by identity

    # -- plans -----------------------------------------------------------------------------
    def _plan(self, program_id: str) -> _ProgramPlan:
        plan = self._program_plans.get(program_id)
        if plan is not None:
            return plan
        try:
            program = self.catalog.get(program_id)
        except ProgramError as exc:
            raise ApplicationError("unknown_program", str(exc)) from None
        facts = []
        dates = {name for name, kind in STANDARD_INPUTS.items() if kind == "date"}
        for name, spec in program.spec.inputs.items():
            date_fields = tuple(f for f, t in (spec.fields or {}).items() if t == "date")
            facts.append(_Fact(name, spec, None if spec.required else f"has_{name}", date_fields))
            if spec.type == "date":
                dates.add(name)
            dates.update(date_fields)
        plan = _ProgramPlan(program, tuple(facts), frozenset(dates), frozenset(program.spec.payment_channels))
        self._program_plans[program_id] = plan
        return plan

    def _version_plan(self, plan: _ProgramPlan, version: CompiledVersion) -> _VersionPlan:
        cached = self._version_plans.get(version)
        if cached is not None:
            return cached
        program, dates = plan.program, plan.dates
        spec = program.spec
        tail = f") — «{spec.title.uk}». Підстава: {spec.legal_basis.act_uk}, {version.amount_clause_uk}."
        if version.explanation_uk:
            tail += " " + version.explanation_uk
        vplan = _VersionPlan(
            rules=RulesRef(
                program_id=program.id,
                version=spec.version,
                effective_from=version.effective_from,
                rules_hash=program.rules_hash,
            ),
            conditions=tuple((c, _shown(c.expression, dates)) for c in version.conditions),
            combined_variables=frozenset(version.combined.variables if version.combined else ()),
            formula_shown=_shown(version.formula, dates),
            amount_expression=f"{version.formula.source}  [округлення: {version.rounding_uk}]",
            granted_tail=tail,
        )
        self._version_plans[version] = vplan
        return vplan

    # -- scope ---------------------------------------------------------------------------
    @staticmethod
    def _facts(plan: _ProgramPlan, facts: dict[str, Any]) -> dict[str, Any]:
        program = plan.program
        if not facts.keys() <= program.fact_names:
            unknown = sorted(set(facts) - program.fact_names)
            raise ApplicationError("unknown_fact", f"program {program.id} does not use fact(s) {', '.join(unknown)}")
        scope: dict[str, Any] = {}
        for fact in plan.facts:
            name, spec = fact.name, fact.spec
            if name not in facts:
                if fact.presence is None:
                    raise ApplicationError("missing_fact", f"program {program.id} needs fact {name!r}: {spec.description_uk}")
                # An absent optional fact reads as its type's zero, and has_<name> says it was absent.
                scope[name] = _ZERO[spec.type]
                scope[fact.presence] = False
                continue
            if fact.presence is not None:
                scope[fact.presence] = True
            value = facts[name]
            kind = spec.type
            bad = False
            if kind == "bool":
                bad = type(value) is not bool
            elif kind == "int" or kind == "money":
                bad = type(value) is not int or (kind == "money" and value < 0)
            elif kind == "string":
                bad = not isinstance(value, str)
            elif kind == "enum":
                bad = value not in (spec.values or [])
            elif kind == "date":
                if isinstance(value, str):
                    try:
                        value = date_to_int(dt.date.fromisoformat(value))
                    except ValueError:
                        bad = True
                else:
                    bad = True
            elif kind == "list":
                bad = not isinstance(value, list) or not all(isinstance(v, str) for v in value)
            elif kind == "items":
                fields = spec.fields or {}
                bad = not isinstance(value, list) or not all(
                    isinstance(row, dict)
                    and set(row) == set(fields)
                    and all(_fits(row[f], t) for f, t in fields.items())
                    for row in value
                )
                if not bad and fact.date_fields:
                    value = [
                        {**row, **{f: date_to_int(dt.date.fromisoformat(row[f])) for f in fact.date_fields}}
                        for row in value
                    ]
            if bad:
                expected = f"one of {spec.values}" if kind == "enum" else kind
                raise ApplicationError("bad_fact", f"fact {name!r} of program {program.id} must be {expected}")
            scope[name] = value
        return scope

    def _context(self, application: ApplicationSubmitted, as_of: dt.date | None, history: dict[str, int] | None) -> _Context:
        plan = self._plan(application.program_id)
        program = plan.program
        spec = program.spec
        period = application.effective_period
        when = _period(period)
        rules_date = as_of or (when.start if spec.rules_on == "period_start" else application.submitted_on)
        try:
            version = program.version_on(rules_date)
        except ProgramError as exc:
            raise ApplicationError("no_rules_in_force", str(exc)) from None
        vplan = self._version_plan(plan, version)
        applicant = application.applicant
        scope = self._facts(plan, application.facts)
        birth = applicant.birth_date
        scope["submitted_on"] = date_to_int(application.submitted_on)
        scope["period"] = when.month_int
        scope["period_start"] = when.start_int
        scope["period_end"] = when.end_int
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
                scope[name] = self._history_count(program, application, hist)
        else:
            scope.update(history)
        parameters_on = spec.parameters_on
        on = (
            application.submitted_on
            if parameters_on == "submitted_on"
            else when.start
            if parameters_on == "period_start"
            else when.year_start
        )
        values, used, missing = self._parameters(program, version, on)
        scope.update(values)
        return _Context(plan, version, vplan, scope, used, period, missing)

    def _parameters(
        self, program: Program, version: CompiledVersion, on: dt.date
    ) -> tuple[dict[str, int], tuple[ParameterUse, ...], dict[str, str]]:
        """Parameter values of a rule version on a date (cached: parameters never change at run time)."""
        key = (id(version), on)
        cached = self._parameter_cache.get(key)
        if cached is not None:
            return cached
        values: dict[str, int] = {}
        used: list[ParameterUse] = []
        missing: dict[str, str] = {}
        for name in version.parameter_names:
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
            used.append(_parameter_use(value))
        if len(self._parameter_cache) > 100_000:
            self._parameter_cache.clear()
        result = (values, tuple(used), missing)
        self._parameter_cache[key] = result
        return result

    # -- history ---------------------------------------------------------------------------
    def _subject_keys(self, scope: str, application: ApplicationSubmitted) -> list[str]:
        applicant = application.applicant
        if scope == "household" and applicant.household_id:
            return [f"household:{applicant.household_id}"]
        if scope.startswith("fact:"):
            name = scope[5:]
            if name in application.facts:
                return [f"fact:{name}:{application.facts[name]}"]
        return [applicant.subject_key]

    def _history_count(self, program: Program, application: ApplicationSubmitted, spec: HistorySpec) -> int:
        window = spec.window
        start = end = None
        period = None
        if window == "lifetime":
            pass
        elif window == "calendar_year":
            year = int(application.effective_period[:4])
            start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
        elif window == "period":
            period = application.effective_period
        elif window == "years":
            on = application.submitted_on
            years = spec.years or 0
            try:
                back = on.replace(year=on.year - years)
            except ValueError:  # 29 February
                back = on.replace(year=on.year - years, day=28)
            start, end = back + dt.timedelta(days=1), on
        elif window == "dates":
            start, end = spec.from_date, spec.to_date
        return self.history.count(
            [application.applicant.subject_key] if spec.scope == "person" else self._subject_keys(spec.scope, application),
            spec.programs or [program.id],
            start,
            end,
            period,
            application.application_id,
        )

    def grant_for(self, application: ApplicationSubmitted) -> Grant:
        """The history record of a granted application (all keys any scope may ask for)."""
        program = self._plan(application.program_id).program
        scopes = {h.scope for h in program.spec.history.values()}
        if program.spec.frequency.limit:
            scopes.add(program.spec.frequency.limit.scope)
        keys = [application.applicant.subject_key]
        for scope in sorted(scopes - {"person"}):
            keys.extend(k for k in self._subject_keys(scope, application) if k not in keys)
        return Grant(
            keys=tuple(keys),
            program_id=program.id,
            application_id=application.application_id,
            on=application.submitted_on,
            period=application.effective_period,
        )

    # -- rules -----------------------------------------------------------------------------
    def _evaluate(self, context: _Context, application: ApplicationSubmitted) -> tuple[list[dict[str, Any]], bool, Any]:
        """Every condition (and the frequency limit): their records, whether all hold, and the
        amount if the combined call computed it (else ``None``)."""
        vplan = context.vplan
        scope = context.scope
        combined = context.version.combined
        values: list[Any] | None = None
        if combined is not None and not (context.missing and not vplan.combined_variables.isdisjoint(context.missing)):
            try:
                values = combined.run(scope)
            except (TypeError, RuntimeError, ValueError):
                values = None  # evaluate one by one below, to name the rule that fails
        results: list[dict[str, Any]] = []
        eligible = True
        for index, (condition, shown) in enumerate(vplan.conditions):
            if values is not None:
                passed = values[index]
            else:
                expression = condition.expression
                _require_parameters(expression, context)
                try:
                    passed = expression.run(scope)
                except (TypeError, RuntimeError, ValueError) as exc:
                    raise ApplicationError(
                        "evaluation_failed", f"program {context.program.id}, rule {condition.id!r}: {exc}"
                    ) from None
            if not passed:
                eligible = False
            results.append({
                "id": condition.id,
                "clause": condition.clause_uk,
                "expression": condition.expression.source,
                "inputs": _show(shown, scope),
                "passed": passed,
                "refusal_uk": None if passed else condition.refusal_uk,
            })
        limit = context.program.spec.frequency.limit
        if limit is not None:
            prior = self._history_count(context.program, application, limit)
            passed = prior == 0
            if not passed:
                eligible = False
            results.append({
                "id": "frequency_limit",
                "clause": limit.clause_uk,
                "expression": "prior_grants == 0",
                "inputs": {"prior_grants": prior},
                "passed": passed,
                "refusal_uk": None if passed else limit.refusal_uk,
            })
        amount = values[-1] if values is not None and context.version.combined_amount else None
        return results, eligible, amount

    def _amount(self, context: _Context, trace: list[dict[str, Any]]) -> int:
        """The amount, one rule at a time (items, and the fallback that names a failing rule)."""
        version = context.version
        scope = context.scope
        dates = context.plan.dates
        if version.items is not None:
            items = version.items
            include_shown = _shown(items.include_when, dates) if items.include_when is not None else ()
            formula_shown = _shown(items.formula, dates)
            total = 0
            for index, row in enumerate(scope.get(items.of, [])):
                row_scope = {**scope, **row}
                # One call per item (include and amount); one call per rule if it fails, to name it.
                try:
                    both = items.row.run(row_scope) if items.row is not None else None
                except (TypeError, RuntimeError, ValueError):
                    both = None
                if both is not None and items.include_when is not None:
                    included, value = both
                elif both is not None:
                    included, value = True, both[0]
                else:
                    included = True if items.include_when is None else self._run(items.include_when, row_scope, context)
                    value = self._run(items.formula, row_scope, context) if included else None
                if items.include_when is not None:
                    trace.append({
                        "step": f"item:{index + 1}:include",
                        "clause": version.amount_clause_uk,
                        "expression": items.include_when.source,
                        "inputs": _show(include_shown, scope, row),
                        "result": included if included else f"{included} — {items.exclude_uk or ''}".strip(),
                    })
                if not included:
                    continue
                self._check_amount(value, context, f"item {index + 1}")
                trace.append({
                    "step": f"item:{index + 1}:amount",
                    "clause": version.amount_clause_uk,
                    "expression": items.formula.source,
                    "inputs": _show(formula_shown, scope, row),
                    "result": value,
                })
                total += value
            scope = {**scope, "items_total": total}
        amount = self._run(version.formula, scope, context)
        self._check_amount(amount, context, "amount")
        trace.append(self._amount_step(context, scope, amount, {"items_total": scope.get("items_total")}))
        return amount

    @staticmethod
    def _amount_step(context: _Context, scope: dict[str, Any], amount: int, extra: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "step": "amount",
            "clause": context.version.amount_clause_uk,
            "expression": context.vplan.amount_expression,
            "inputs": _show(context.vplan.formula_shown, scope, extra),
            "result": amount,
        }

    @staticmethod
    def _run(expression: Expression, scope: dict[str, Any], context: _Context) -> Any:
        _require_parameters(expression, context)
        try:
            return expression.run(scope)
        except (TypeError, RuntimeError, ValueError) as exc:
            raise ApplicationError("evaluation_failed", f"program {context.program.id}: {expression.where}: {exc}") from None

    @staticmethod
    def _check_amount(value: Any, context: _Context, what: str) -> None:
        if type(value) is not int or value < 0:
            raise ApplicationError(
                "bad_amount", f"program {context.program.id}: {what} must be a non-negative number of kopiyky, got {value!r}"
            )

    # -- decisions -------------------------------------------------------------------------
    def _eligibility_record(self, application: ApplicationSubmitted, as_of: dt.date | None, record: bool) -> dict[str, Any]:
        context = self._context(application, as_of, None)
        conditions, eligible, _ = self._evaluate(context, application)
        spec = context.program.spec
        if eligible:
            explanation = (
                f"Право на «{spec.title.uk}» підтверджено: виконано всі умови "
                f"({spec.legal_basis.act_uk}, {spec.legal_basis.clause_uk})."
            )
            if record:
                self.history.record(self.grant_for(application))
        else:
            explanation = _refusal_sentence(spec.title.uk, spec.legal_basis.act_uk, conditions)
        return {
            **_head("EligibilityDecided", "eligibility", application, context.period),
            "eligible": eligible,
            "rules": context.vplan.rules,
            "conditions": conditions,
            "derived": {name: context.scope[name] for name in spec.history},
            "parameters": list(context.parameters),
            "explanation_uk": explanation,
            "application": application,
        }

    def _entitlement_record(
        self,
        context: _Context,
        application: ApplicationSubmitted,
        conditions: list[dict[str, Any]] | list[ConditionResult],
        eligible: bool,
        computed: Any,
    ) -> dict[str, Any]:
        program = context.program
        spec = program.spec
        trace: list[dict[str, Any]] = []
        amount = 0
        if eligible:
            if computed is not None:
                self._check_amount(computed, context, "amount")
                amount = computed
                trace.append(self._amount_step(context, context.scope, amount, None))
            else:
                amount = self._amount(context, trace)
            kind = spec.frequency.kind
            explanation = (
                f"Призначено {format_uah(amount)} ({FREQUENCY_UK[kind]}"
                + (f", за {period_uk(context.period)}" if kind == "monthly" or kind == "per_claim" else "")
                + context.vplan.granted_tail
            )
        else:
            explanation = _refusal_sentence(spec.title.uk, spec.legal_basis.act_uk, conditions)
        district = application.applicant.district if spec.budget.by_district else None
        budget_key = f"{program.id}:{context.period}" + (f":{district}" if district else "")
        return {
            **_head("EntitlementCalculated", "entitlement", application, context.period),
            "budget_key": budget_key,
            "budget_policy": spec.budget.policy,
            "eligible": eligible,
            "amount_kop": amount,
            "rules": context.vplan.rules,
            "conditions": conditions,
            "parameters": list(context.parameters),
            "trace": trace,
            "explanation_uk": explanation,
            "application": application,
        }

    def _decide_record(self, application: ApplicationSubmitted, as_of: dt.date | None, record: bool) -> dict[str, Any]:
        context = self._context(application, as_of, None)
        conditions, eligible, computed = self._evaluate(context, application)
        if eligible and record:
            self.history.record(self.grant_for(application))
        return self._entitlement_record(context, application, conditions, eligible, computed)

    def _calculate_record(self, eligibility: EligibilityDecided, as_of: dt.date | None) -> dict[str, Any]:
        application = eligibility.application
        context = self._context(application, as_of or eligibility.rules.effective_from, dict(eligibility.derived))
        return self._entitlement_record(context, application, eligibility.conditions, eligibility.eligible, None)

    def check_eligibility(
        self, application: ApplicationSubmitted, as_of: dt.date | None = None, record: bool = False
    ) -> EligibilityDecided:
        """Decide who qualifies. ``record`` books an eligible application into the history."""
        return EligibilityDecided.model_validate(self._eligibility_record(application, as_of, record))

    def check_eligibility_encoded(
        self, application: ApplicationSubmitted, as_of: dt.date | None = None, record: bool = False
    ) -> Encoded:
        """``check_eligibility``, as the bytes of the event."""
        data = self._eligibility_record(application, as_of, record)
        return Encoded(
            data["application_id"], data["program_id"], data["period"], data["eligible"], None, None, _to_json(data)
        )

    def calculate(self, eligibility: EligibilityDecided, as_of: dt.date | None = None) -> EntitlementCalculated:
        """Compute the amount of an eligibility decision (zero, with the refusal, if ineligible)."""
        return EntitlementCalculated.model_validate(self._calculate_record(eligibility, as_of))

    def calculate_encoded(self, eligibility: EligibilityDecided, as_of: dt.date | None = None) -> Encoded:
        """``calculate``, as the bytes of the event."""
        return _encoded_entitlement(self._calculate_record(eligibility, as_of))

    def decide(
        self, application: ApplicationSubmitted, as_of: dt.date | None = None, record: bool = True
    ) -> EntitlementCalculated:
        """Eligibility and amount in one call (the batch CLI and the offline reference).

        Gives exactly what ``calculate(check_eligibility(application))`` gives.
        """
        return EntitlementCalculated.model_validate(self._decide_record(application, as_of, record))

    def decide_encoded(self, application: ApplicationSubmitted, as_of: dt.date | None = None, record: bool = True) -> Encoded:
        """``decide``, as the bytes of the event (what the batch CLI writes)."""
        return _encoded_entitlement(self._decide_record(application, as_of, record))


def _fields(value: Any) -> dict[str, Any]:
    """orjson's hook for a nested pydantic model (application, rules, parameters): its fields."""
    if isinstance(value, BaseModel):
        return value.__dict__
    raise TypeError(f"cannot write {type(value).__name__} in a decision")


def _head(event_type: str, stage: str, application: ApplicationSubmitted, period: str) -> dict[str, Any]:
    """The fields every decision event starts with, in the models' field order."""
    ident = decision_id(stage, application.application_id)
    return {
        "event_id": ident,
        "schema_version": SCHEMA_VERSION,
        "occurred_at": application.occurred_at,
        "event_type": event_type,
        "decision_id": ident,
        "application_id": application.application_id,
        "program_id": application.program_id,
        "period": period,
    }


def _to_json(data: dict[str, Any]) -> bytes:
    """The event's JSON, written by orjson from the decision record.

    Byte for byte what pydantic's ``model_dump_json()`` gives for the validated event:
    the same field order, compact separators, UTF-8 unescaped, dates ISO, UTC as ``Z``
    (tests/core/test_encoded.py checks every example decision and generated ones).
    """
    return orjson.dumps(data, default=_fields, option=orjson.OPT_UTC_Z)


def _encoded_entitlement(data: dict[str, Any]) -> Encoded:
    return Encoded(
        data["application_id"],
        data["program_id"],
        data["period"],
        data["eligible"],
        data["amount_kop"],
        data["budget_key"],
        _to_json(data),
    )


def _fits(value: Any, kind: str) -> bool:
    if kind == "date":
        if not isinstance(value, str):
            return False
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return False
        return True
    if kind == "bool":
        return isinstance(value, bool)
    if kind in ("int", "money"):
        return isinstance(value, int) and not isinstance(value, bool) and (kind == "int" or value >= 0)
    return isinstance(value, str)


def _require_parameters(expression: Expression, context: _Context) -> None:
    if context.missing:
        for name in expression.variables:
            if name in context.missing:
                raise ApplicationError("no_parameter_value", context.missing[name])


@functools.lru_cache(maxsize=65536)
def _parameter_use(value: ParameterValue) -> ParameterUse:
    return ParameterUse(
        name=value.name,
        value=value.value,
        unit="kop" if value.unit == "UAH" else value.unit,
        effective_from=value.effective_from,
        reference=value.reference,
    )


def _refusal_sentence(title_uk: str, act_uk: str, conditions: list[dict[str, Any]] | list[ConditionResult]) -> str:
    reasons = "; ".join(
        f"{c['refusal_uk']} ({c['clause']})" if isinstance(c, dict) else f"{c.refusal_uk} ({c.clause})"
        for c in conditions
        if not (c["passed"] if isinstance(c, dict) else c.passed)
    )
    return f"Відмовлено у призначенні «{title_uk}»: {reasons}. Підстава: {act_uk}."
