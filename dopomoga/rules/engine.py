"""The rules engine: an application and the rules in force on its date -> a decision.

Pure: no Kafka, no clock, no randomness. The same application and the same program
files give byte-identical decisions (ids are UUIDv5 of the application; timestamps
are copied from the application).

- ``check_eligibility`` evaluates every condition of the rule version in force
  (plus the program's frequency limit) and records each result and its clause;
- ``calculate`` evaluates the amount formula of an eligible application;
- ``decide`` does both.

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
from typing import Any

from dopomoga.money import format_uah
from dopomoga.rules.expressions import Expression, date_to_int, int_to_date
from dopomoga.rules.history import Grant, GrantHistory, InMemoryHistory
from dopomoga.rules.parameters import ParameterError, ParameterValue
from dopomoga.rules.programs import (
    STANDARD_INPUTS,
    Catalog,
    CompiledVersion,
    HistorySpec,
    Program,
    ProgramError,
)
from schemas.events import (
    ApplicationSubmitted,
    ConditionResult,
    EligibilityDecided,
    EntitlementCalculated,
    ParameterUse,
    RulesRef,
    TraceStep,
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


def decision_id(stage: str, application_id: str) -> str:
    """Deterministic id of a decision: the same application always gets the same id.

    A UUIDv5 (RFC 4122, SHA-1 name-based) of ``stage:application_id`` in Dopomoga's
    namespace; computed directly because ``uuid.uuid5`` costs more than a rule.
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{stage}:{application_id}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def period_uk(period: str) -> str:
    year, month = period.split("-")
    return f"{MONTHS_UK[int(month) - 1]} {year} р."


@dataclass(frozen=True, slots=True)
class _Context:
    program: Program
    version: CompiledVersion
    scope: dict[str, Any]
    dates: frozenset[str]  # names whose values are YYYYMMDD dates (shown as ISO in traces)
    parameters: tuple[ParameterValue, ...]
    period: str
    missing: dict[str, str]  # parameters with no value on the date -> why


class Engine:
    def __init__(self, catalog: Catalog, history: GrantHistory | None = None):
        self.catalog = catalog
        self.history: GrantHistory = history if history is not None else InMemoryHistory()
        self._parameter_cache: dict[tuple[int, dt.date], tuple[dict[str, int], tuple[ParameterValue, ...], dict[str, str]]] = {}

    # -- scope ---------------------------------------------------------------------------
    def _program(self, application: ApplicationSubmitted) -> Program:
        try:
            return self.catalog.get(application.program_id)
        except ProgramError as exc:
            raise ApplicationError("unknown_program", str(exc)) from None

    def _facts(self, program: Program, application: ApplicationSubmitted) -> tuple[dict[str, Any], set[str]]:
        facts = application.facts
        unknown = sorted(set(facts) - program.fact_names)
        if unknown:
            raise ApplicationError(
                "unknown_fact", f"program {program.id} does not use fact(s) {', '.join(unknown)}"
            )
        scope: dict[str, Any] = {}
        dates: set[str] = set()
        for name, spec in program.spec.inputs.items():
            if name not in facts:
                if spec.required:
                    raise ApplicationError("missing_fact", f"program {program.id} needs fact {name!r}: {spec.description_uk}")
                # An absent optional fact reads as its type's zero, and has_<name> says it was absent.
                scope[name] = _ZERO[spec.type]
                scope[f"has_{name}"] = False
                continue
            if not spec.required:
                scope[f"has_{name}"] = True
            value = facts[name]
            kind = spec.type
            bad = False
            if kind == "bool":
                bad = not isinstance(value, bool)
            elif kind in ("int", "money"):
                bad = not isinstance(value, int) or isinstance(value, bool) or (kind == "money" and value < 0)
            elif kind == "string":
                bad = not isinstance(value, str)
            elif kind == "enum":
                bad = value not in (spec.values or [])
            elif kind == "date":
                if isinstance(value, str):
                    try:
                        value = date_to_int(dt.date.fromisoformat(value))
                        dates.add(name)
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
                date_fields = [f for f, t in fields.items() if t == "date"]
                if not bad and date_fields:
                    value = [{**row, **{f: date_to_int(dt.date.fromisoformat(row[f])) for f in date_fields}} for row in value]
                    dates.update(date_fields)
            if bad:
                expected = f"one of {spec.values}" if kind == "enum" else kind
                raise ApplicationError("bad_fact", f"fact {name!r} of program {program.id} must be {expected}")
            scope[name] = value
        return scope, dates

    def _context(self, application: ApplicationSubmitted, as_of: dt.date | None, history: dict[str, int] | None) -> _Context:
        program = self._program(application)
        period = application.effective_period
        year, month = int(period[:4]), int(period[5:])
        period_start = dt.date(year, month, 1)
        rules_date = as_of or (period_start if program.spec.rules_on == "period_start" else application.submitted_on)
        try:
            version = program.version_on(rules_date)
        except ProgramError as exc:
            raise ApplicationError("no_rules_in_force", str(exc)) from None
        period_end = dt.date(year, month, calendar.monthrange(year, month)[1])
        applicant = application.applicant
        scope, dates = self._facts(program, application)
        scope.update(
            submitted_on=date_to_int(application.submitted_on),
            period=year * 100 + month,
            period_start=date_to_int(period_start),
            period_end=date_to_int(period_end),
            birth_date=date_to_int(applicant.birth_date) if applicant.birth_date else 0,
            applicant_kind=applicant.id_kind,
            district=applicant.district or "",
            payment_channel=application.payment.channel,
        )
        dates |= {name for name, kind in STANDARD_INPUTS.items() if kind == "date"}
        if application.payment.channel not in program.spec.payment_channels:
            raise ApplicationError(
                "bad_payment_channel",
                f"program {program.id} pays by {', '.join(program.spec.payment_channels)}, "
                f"not {application.payment.channel}",
            )
        if history is None:
            history = {name: self._history_count(program, application, spec) for name, spec in program.spec.history.items()}
        scope.update(history)
        on = {
            "submitted_on": application.submitted_on,
            "period_start": period_start,
            "year_start": dt.date(year, 1, 1),
        }[program.spec.parameters_on]
        values, used, missing = self._parameters(program, version, on)
        scope.update(values)
        return _Context(program, version, scope, frozenset(dates), used, period, missing)

    def _parameters(
        self, program: Program, version: CompiledVersion, on: dt.date
    ) -> tuple[dict[str, int], tuple[ParameterValue, ...], dict[str, str]]:
        """Parameter values of a rule version on a date (cached: parameters never change at run time)."""
        key = (id(version), on)
        cached = self._parameter_cache.get(key)
        if cached is not None:
            return cached
        values: dict[str, int] = {}
        used: list[ParameterValue] = []
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
            used.append(value)
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
        on = application.submitted_on
        start = end = None
        period = None
        if spec.window == "calendar_year":
            year = int(application.effective_period[:4])
            start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
        elif spec.window == "period":
            period = application.effective_period
        elif spec.window == "years":
            years = spec.years or 0
            try:
                back = on.replace(year=on.year - years)
            except ValueError:  # 29 February
                back = on.replace(year=on.year - years, day=28)
            start, end = back + dt.timedelta(days=1), on
        elif spec.window == "dates":
            start, end = spec.from_date, spec.to_date
        return self.history.count(
            self._subject_keys(spec.scope, application),
            spec.programs or [program.id],
            start,
            end,
            period,
            application.application_id,
        )

    def grant_for(self, application: ApplicationSubmitted) -> Grant:
        """The history record of a granted application (all keys any scope may ask for)."""
        program = self._program(application)
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

    # -- decisions -------------------------------------------------------------------------
    def _inputs_shown(self, expression: Expression, context: _Context, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        for name in expression.variables:
            value = (extra or {}).get(name, context.scope.get(name))
            if name in context.dates and isinstance(value, int) and value > 0:
                value = int_to_date(value).isoformat()
            shown[name] = value
        return shown

    @staticmethod
    def _rules(context: _Context) -> RulesRef:
        return _rules_ref(context.program, context.version)

    def _evaluate_conditions(self, context: _Context, application: ApplicationSubmitted) -> list[ConditionResult]:
        results: list[ConditionResult] = []
        combined = context.version.conditions_map
        values: dict[str, Any] | None = None
        if combined is not None and not any(name in context.missing for name in combined.variables):
            try:
                values = combined.run(context.scope)
            except (TypeError, RuntimeError, ValueError):
                values = None  # evaluate one by one below, to name the rule that fails
        for condition in context.version.conditions:
            if values is not None:
                passed = values[condition.id]
            else:
                _require_parameters(condition.expression, context)
                try:
                    passed = condition.expression.run(context.scope)
                except (TypeError, RuntimeError, ValueError) as exc:
                    raise ApplicationError(
                        "evaluation_failed", f"program {context.program.id}, rule {condition.id!r}: {exc}"
                    ) from None
            results.append(
                ConditionResult(
                    id=condition.id,
                    clause=condition.clause_uk,
                    expression=condition.expression.source,
                    inputs=self._inputs_shown(condition.expression, context),
                    passed=passed,
                    refusal_uk=None if passed else condition.refusal_uk,
                )
            )
        limit = context.program.spec.frequency.limit
        if limit is not None:
            prior = self._history_count(context.program, application, limit)
            results.append(
                ConditionResult(
                    id="frequency_limit",
                    clause=limit.clause_uk,
                    expression="prior_grants == 0",
                    inputs={"prior_grants": prior},
                    passed=prior == 0,
                    refusal_uk=None if prior == 0 else limit.refusal_uk,
                )
            )
        return results

    def check_eligibility(
        self, application: ApplicationSubmitted, as_of: dt.date | None = None, record: bool = False
    ) -> EligibilityDecided:
        """Decide who qualifies. ``record`` books an eligible application into the history."""
        context = self._context(application, as_of, None)
        conditions = self._evaluate_conditions(context, application)
        eligible = all(c.passed for c in conditions)
        spec = context.program.spec
        if eligible:
            explanation = (
                f"Право на «{spec.title.uk}» підтверджено: виконано всі умови "
                f"({spec.legal_basis.act_uk}, {spec.legal_basis.clause_uk})."
            )
        else:
            explanation = _refusal_sentence(spec.title.uk, spec.legal_basis.act_uk, conditions)
        if eligible and record:
            self.history.record(self.grant_for(application))
        ident = decision_id("eligibility", application.application_id)
        return EligibilityDecided(
            event_id=ident,
            occurred_at=application.occurred_at,
            decision_id=ident,
            application_id=application.application_id,
            program_id=application.program_id,
            period=context.period,
            eligible=eligible,
            rules=self._rules(context),
            conditions=conditions,
            derived={name: context.scope[name] for name in spec.history},
            parameters=[_parameter_use(p) for p in context.parameters],
            explanation_uk=explanation,
            application=application,
        )

    def calculate(self, eligibility: EligibilityDecided, as_of: dt.date | None = None) -> EntitlementCalculated:
        """Compute the amount of an eligibility decision (zero, with the refusal, if ineligible)."""
        application = eligibility.application
        context = self._context(application, as_of or eligibility.rules.effective_from, dict(eligibility.derived))
        return self._entitlement(context, application, eligibility.conditions, eligibility.eligible)

    def decide(
        self, application: ApplicationSubmitted, as_of: dt.date | None = None, record: bool = True
    ) -> EntitlementCalculated:
        """Eligibility and amount in one call (the batch CLI and the offline reference).

        Gives exactly what ``calculate(check_eligibility(application))`` gives.
        """
        context = self._context(application, as_of, None)
        conditions = self._evaluate_conditions(context, application)
        eligible = all(c.passed for c in conditions)
        if eligible and record:
            self.history.record(self.grant_for(application))
        return self._entitlement(context, application, conditions, eligible)

    def _entitlement(
        self,
        context: _Context,
        application: ApplicationSubmitted,
        conditions: list[ConditionResult],
        eligible: bool,
    ) -> EntitlementCalculated:
        program = context.program
        spec = program.spec
        trace: list[TraceStep] = []
        amount = 0
        if eligible:
            amount = self._amount(context, trace)
            explanation = (
                f"Призначено {format_uah(amount)} ({FREQUENCY_UK[spec.frequency.kind]}"
                + (f", за {period_uk(context.period)}" if spec.frequency.kind in ("monthly", "per_claim") else "")
                + f") — «{spec.title.uk}». Підстава: {spec.legal_basis.act_uk}, {context.version.amount_clause_uk}."
            )
            if context.version.explanation_uk:
                explanation += " " + context.version.explanation_uk
        else:
            explanation = _refusal_sentence(spec.title.uk, spec.legal_basis.act_uk, conditions)
        district = application.applicant.district if spec.budget.by_district else None
        budget_key = f"{program.id}:{context.period}" + (f":{district}" if district else "")
        ident = decision_id("entitlement", application.application_id)
        return EntitlementCalculated(
            event_id=ident,
            occurred_at=application.occurred_at,
            decision_id=ident,
            application_id=application.application_id,
            program_id=application.program_id,
            period=context.period,
            budget_key=budget_key,
            budget_policy=spec.budget.policy,
            eligible=eligible,
            amount_kop=amount,
            rules=self._rules(context),
            conditions=conditions,
            parameters=[_parameter_use(p) for p in context.parameters],
            trace=trace,
            explanation_uk=explanation,
            application=application,
        )

    def _amount(self, context: _Context, trace: list[TraceStep]) -> int:
        version = context.version
        scope = context.scope
        if version.items is not None:
            items = version.items
            total = 0
            for index, row in enumerate(scope.get(items.of, [])):
                row_scope = {**scope, **row}
                included = True
                if items.include_when is not None:
                    included = self._run(items.include_when, row_scope, context)
                    trace.append(
                        TraceStep(
                            step=f"item:{index + 1}:include",
                            clause=version.amount_clause_uk,
                            expression=items.include_when.source,
                            inputs=self._inputs_shown(items.include_when, context, row),
                            result=included if included else f"{included} — {items.exclude_uk or ''}".strip(),
                        )
                    )
                if not included:
                    continue
                value = self._run(items.formula, row_scope, context)
                self._check_amount(value, context, f"item {index + 1}")
                trace.append(
                    TraceStep(
                        step=f"item:{index + 1}:amount",
                        clause=version.amount_clause_uk,
                        expression=items.formula.source,
                        inputs=self._inputs_shown(items.formula, context, row),
                        result=value,
                    )
                )
                total += value
            scope = {**scope, "items_total": total}
        amount = self._run(version.formula, scope, context)
        self._check_amount(amount, context, "amount")
        trace.append(
            TraceStep(
                step="amount",
                clause=version.amount_clause_uk,
                expression=f"{version.formula.source}  [округлення: {version.rounding_uk}]",
                inputs=self._inputs_shown(version.formula, context, {"items_total": scope.get("items_total")}),
                result=amount,
            )
        )
        return amount

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


_ZERO: dict[str, Any] = {
    "bool": False, "int": 0, "money": 0, "string": "", "enum": "", "date": 0, "list": [], "items": [],
}


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


@functools.lru_cache(maxsize=4096)
def _rules_ref(program: Program, version: CompiledVersion) -> RulesRef:
    return RulesRef(
        program_id=program.id,
        version=program.spec.version,
        effective_from=version.effective_from,
        rules_hash=program.rules_hash,
    )


@functools.lru_cache(maxsize=65536)
def _parameter_use(value: ParameterValue) -> ParameterUse:
    return ParameterUse(
        name=value.name,
        value=value.value,
        unit="kop" if value.unit == "UAH" else value.unit,
        effective_from=value.effective_from,
        reference=value.reference,
    )


def _refusal_sentence(title_uk: str, act_uk: str, conditions: list[ConditionResult]) -> str:
    reasons = "; ".join(f"{c.refusal_uk} ({c.clause})" for c in conditions if not c.passed)
    return f"Відмовлено у призначенні «{title_uk}»: {reasons}. Підстава: {act_uk}."
