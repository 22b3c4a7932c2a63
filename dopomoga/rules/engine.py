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

import datetime as dt
from typing import Any

import cel

from dopomoga.errors import ApplicationError
from dopomoga.explain_uk import (
    eligible_sentence,
    excluded_rows_sentence,
    granted_sentence,
    refusal_reason,
    refusal_sentence,
    refusal_sentence_of,
    render_calculation,
    term_ended,
)
from dopomoga.ids import decision_id
from dopomoga.periods import int_to_date
from dopomoga.rules.expressions import CEL_ERRORS, FUNCTIONS, Expression, typed_key
from dopomoga.rules.history import Grant, GrantHistory, InMemoryHistory
from dopomoga.rules.programs import Catalog, CompiledFlag, CompiledItems
from dopomoga.rules.records import Encoded, encoded_eligibility, encoded_entitlement, head
from dopomoga.rules.scope import Context, ScopeBuilder, VersionPlan, show, shown
from dopomoga.rules.windows import grant_for, history_count
from schemas.events import (
    SCHEMA_VERSION,
    ApplicationSubmitted,
    EligibilityDecided,
    EntitlementCalculated,
)

__all__ = ["Encoded", "Engine"]

#: The largest amount an event may carry (``schemas.events.Kopiyky``): 100 billion hryvnias. A formula
#: that gives more on absurd facts is a ``bad_amount`` error, never an event that fails validation.
MAX_KOP = 10**13


class Engine:
    def __init__(self, catalog: Catalog, history: GrantHistory | None = None):
        self.catalog = catalog
        self.history: GrantHistory = history if history is not None else InMemoryHistory()
        self.scopes = ScopeBuilder(catalog, self.history)

    def context(self, application: ApplicationSubmitted, as_of: dt.date | None = None,
                history: dict[str, int] | None = None) -> Context:
        """The application's scope under the rules in force (``dopomoga.rules.scope``)."""
        return self.scopes.context(application, as_of, history)

    def grant_for(self, application: ApplicationSubmitted) -> Grant:
        """The history record of a granted application (all keys any scope may ask for)."""
        return grant_for(self.scopes.plan(application.program_id).program, application)

    # -- rules -----------------------------------------------------------------------------
    def _evaluate(self, context: Context, application: ApplicationSubmitted
                  ) -> tuple[list[dict[str, Any]], bool, Any, list[str]]:
        """Every condition (and the frequency limit): their records, whether all hold, the amount if the
        combined call computed it (else ``None``), and the failed ones' parts of a refusal
        (``explain_uk.refusal_reason``)."""
        vplan = context.vplan
        scope = context.scope
        if context.ended:
            ended = self._term_ended(context)
            return [ended], False, None, [refusal_reason(ended["refusal_uk"], ended["clause"])]
        combined = context.version.combined
        values: list[Any] | None = None
        if combined is not None and not (context.missing and not vplan.combined_variables.isdisjoint(context.missing)):
            try:
                values = combined.run(scope)
            except CEL_ERRORS:
                values = None  # evaluate one by one below, to name the rule that fails
        results: list[dict[str, Any]] = []
        reasons: list[str] = []
        for index, (condition, names) in enumerate(vplan.conditions):
            if values is not None:
                passed = values[index]
            else:
                expression = condition.expression
                _require_parameters(expression, context)
                try:
                    passed = expression.run(scope)
                except CEL_ERRORS as exc:
                    raise ApplicationError(
                        "evaluation_failed", f"program {context.program.id}, rule {condition.id!r}: {exc}"
                    ) from None
            if not passed:
                reasons.append(refusal_reason(condition.refusal_uk, condition.clause_uk))
            results.append({
                "id": condition.id,
                "clause": condition.clause_uk,
                "expression": condition.expression.source,
                "inputs": show(names, scope),
                "passed": passed,
                "refusal_uk": None if passed else condition.refusal_uk,
            })
        limit = context.program.spec.frequency.limit
        if limit is not None:
            prior = history_count(self.history, context.program, application, limit)
            passed = prior == 0
            if not passed:
                reasons.append(refusal_reason(limit.refusal_uk, limit.clause_uk))
            results.append({
                "id": "frequency_limit",
                "clause": limit.clause_uk,
                "expression": "prior_grants == 0",
                "inputs": {"prior_grants": prior},
                "passed": passed,
                "refusal_uk": None if passed else limit.refusal_uk,
            })
        amount = values[-1] if values is not None and context.version.combined_amount else None
        return results, not reasons, amount, reasons

    @staticmethod
    def _term_ended(context: Context) -> dict[str, Any]:
        """The one condition an application after the rules' term fails: the programme has ended."""
        version = context.version
        spec = context.program.spec
        end = version.effective_to.isoformat() if version.effective_to else ""
        return {
            "id": "programme_term",
            "clause": spec.legal_basis.clause_uk,
            "expression": f"rules_date <= {end}",
            "inputs": {"rules_date": _iso_date(context)},
            "passed": False,
            "refusal_uk": version.term_uk or term_ended(version.effective_to),
        }

    def _flag(self, flag: CompiledFlag, scope: dict[str, Any], context: Context, item: int | None) -> None:
        """A non-refusing check: when it does not hold, the operator section carries it."""
        if not self._run(flag.expression, scope, context):
            _raise_flag(flag, context, item)

    def _amount(self, context: Context, trace: list[dict[str, Any]]) -> int:
        """The amount, one rule at a time (items, and the fallback that names a failing rule)."""
        version = context.version
        scope = context.scope
        dates = context.plan.dates
        if version.items is not None:
            items = version.items
            checks, formula_shown = context.vplan.row_checks, context.vplan.item_formula_shown
            total = 0
            excluded = context.excluded
            rows = scope.get(items.of, [])
            rows_cel = _RowsCel(items, context.program.spec.inputs[items.of].fields or {}, scope,
                                context.missing) if rows else None
            for index, row in enumerate(rows):
                # One call per item (its checks and amount); one call per rule if it fails, to name it.
                values = rows_cel.row(row) if rows_cel is not None else None
                row_scope = {**scope, **row} if values is None else None
                included = True
                reasons: list[str] = []
                for position, (step, clause, expression, exclude_uk, names) in enumerate(checks):
                    if values is not None:
                        passed = values[position]
                    else:
                        passed = self._run(expression, row_scope, context)
                    included = included and passed
                    if not passed:  # the row filter's clause is the amount's, which the sentence cites already
                        reasons.append((exclude_uk or "рядок не відповідає умовам") if step == "include"
                                       else f"{exclude_uk} ({clause})")
                    trace.append({
                        "step": f"item:{index + 1}:{step}",
                        "clause": clause,
                        "expression": expression.source,
                        "inputs": show(names, scope, row),
                        "result": passed if passed else f"{passed} — {exclude_uk or ''}".strip(),
                    })
                if not included:
                    excluded.append((index + 1, "; ".join(reasons)))
                    continue
                if values is not None:
                    value = values[-1]
                else:
                    value = self._run(items.formula, row_scope, context)
                self._check_amount(value, context, f"item {index + 1}")
                trace.append({
                    "step": f"item:{index + 1}:amount",
                    "clause": version.amount_clause_uk,
                    "expression": items.formula.source,
                    "inputs": show(formula_shown, scope, row),
                    "result": value,
                })
                for position, flag in enumerate(items.flags):
                    held = rows_cel.flag(position, value) if rows_cel is not None else None
                    if held is None:  # not evaluated, or failed: again as a rule of its own, to name it
                        if row_scope is None:
                            row_scope = {**scope, **row}
                        row_scope["item_amount"] = value  # what a row's flag may compare (a printed sum)
                        self._flag(flag, row_scope, context, index + 1)
                    elif not held:
                        _raise_flag(flag, context, index + 1)
                total += value
            scope = {**scope, "items_total": total}
            context.scope["items_total"] = total  # what the calculation shown to the citizen reads
        for name, expression in version.values:  # named intermediate amounts, after the items' total
            value = self._run(expression, scope, context)
            self._check_amount(value, context, f"value {name}")
            trace.append({
                "step": f"value:{name}",
                "clause": version.amount_clause_uk,
                "expression": expression.source,
                "inputs": show(shown(expression, dates), scope),
                "result": value,
            })
            scope[name] = context.scope[name] = value  # the formula, flags and the citizen's calculation read it
        amount = self._run(version.formula, scope, context)
        self._check_amount(amount, context, "amount")
        trace.append(self._amount_step(context, scope, amount, {"items_total": scope.get("items_total")}))
        return amount

    @staticmethod
    def _amount_step(context: Context, scope: dict[str, Any], amount: int, extra: dict[str, Any] | None
                     ) -> dict[str, Any]:
        return {
            "step": "amount",
            "clause": context.version.amount_clause_uk,
            "expression": context.vplan.amount_expression,
            "inputs": show(context.vplan.formula_shown, scope, extra),
            "result": amount,
        }

    @staticmethod
    def _run(expression: Expression, scope: dict[str, Any], context: Context) -> Any:
        _require_parameters(expression, context)
        try:
            return expression.run(scope)
        except CEL_ERRORS as exc:
            raise ApplicationError("evaluation_failed", f"program {context.program.id}: {expression.where}: {exc}") from None

    @staticmethod
    def _check_amount(value: Any, context: Context, what: str) -> None:
        if type(value) is not int or value < 0 or value > MAX_KOP:
            raise ApplicationError(
                "bad_amount",
                f"program {context.program.id}: {what} must be a whole number of kopiyky from 0 to {MAX_KOP}, "
                f"got {value!r}",
            )

    # -- decisions -------------------------------------------------------------------------
    def _eligibility_record(self, application: ApplicationSubmitted, as_of: dt.date | None, record: bool,
                            encoded: bool = False) -> dict[str, Any]:
        """The decision record; ``encoded``: its constant parts as written JSON (``records.fragment``),
        for ``to_json`` only (the model is validated from the plain record)."""
        context = self.scopes.context(application, as_of, None)
        conditions, eligible, _, reasons = self._evaluate(context, application)
        spec = context.program.spec
        if eligible:
            explanation = eligible_sentence(spec.title.uk, spec.legal_basis.act_uk, spec.legal_basis.clause_uk)
            if record:
                self.history.record(self.grant_for(application))
        else:
            explanation = refusal_sentence_of(spec.title.uk, spec.legal_basis.act_uk, reasons)
        return {
            **head("EligibilityDecided", "eligibility", application, context.period),
            "eligible": eligible,
            "rules": context.vplan.rules_json if encoded else context.vplan.rules,
            "conditions": conditions,
            "derived": {name: context.scope[name] for name in spec.history},
            "parameters": context.parameters_json if encoded else list(context.parameters),
            "explanation_uk": explanation,
            "application": application,
            "operator": {
                "sources": context.vplan.sources_json if encoded else context.vplan.sources,
                "pending_confirmation": (),
                "flags": context.flags,
            },
        }

    def _entitlement_record(
        self,
        context: Context,
        application: ApplicationSubmitted,
        conditions: Any,
        eligible: bool,
        computed: Any,
        encoded: bool = False,
        reasons: list[str] | None = None,
    ) -> dict[str, Any]:
        """``conditions``: records, or models (the calculation stage's); ``reasons``: the failed ones' parts of a refusal, if known (else read from ``conditions``)."""
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
            for flag in context.version.flags:  # after the amount: a flag may read items_total
                self._flag(flag, context.scope, context, None)
            calculation = context.version.calculation
            explanation = granted_sentence(
                amount, spec.frequency.kind, context.period, context.vplan.granted_tail,
                _calculation(context.vplan, calculation, context.scope) if calculation else None,
            )
            if context.excluded:
                explanation += " " + excluded_rows_sentence(context.excluded)
        elif reasons is not None:
            explanation = refusal_sentence_of(spec.title.uk, spec.legal_basis.act_uk, reasons)
        else:
            explanation = refusal_sentence(spec.title.uk, spec.legal_basis.act_uk, conditions)
        district = application.applicant.district if spec.budget.by_district else None
        period = context.period
        budget_key = f"{program.id}:{period}:{district}" if district else f"{program.id}:{period}"
        ident = decision_id("entitlement", application.application_id)
        return {  # ``records.head``'s fields, written out here (one dict instead of two per decision)
            "event_id": ident,
            "schema_version": SCHEMA_VERSION,
            "occurred_at": application.occurred_at,
            "event_type": "EntitlementCalculated",
            "decision_id": ident,
            "application_id": application.application_id,
            "program_id": application.program_id,
            "period": period,
            "budget_key": budget_key,
            "budget_policy": spec.budget.policy,
            "eligible": eligible,
            "amount_kop": amount,
            "rules": context.vplan.rules_json if encoded else context.vplan.rules,
            "conditions": conditions,
            "parameters": context.parameters_json if encoded else list(context.parameters),
            "trace": trace,
            "explanation_uk": explanation,
            "application": application,
            "operator": {
                "sources": context.vplan.sources_json if encoded else context.vplan.sources,
                "pending_confirmation": context.pending if eligible else (),
                "flags": context.flags,
            },
        }

    def _decide_record(self, application: ApplicationSubmitted, as_of: dt.date | None, record: bool,
                       encoded: bool = False) -> dict[str, Any]:
        context = self.scopes.context(application, as_of, None)
        conditions, eligible, computed, reasons = self._evaluate(context, application)
        if eligible and record:
            self.history.record(self.grant_for(application))
        return self._entitlement_record(context, application, conditions, eligible, computed, encoded, reasons)

    def _calculate_record(self, eligibility: EligibilityDecided, as_of: dt.date | None,
                          encoded: bool = False) -> dict[str, Any]:
        application = eligibility.application
        context = self.scopes.context(application, as_of or eligibility.rules.effective_from, dict(eligibility.derived))
        return self._entitlement_record(context, application, eligibility.conditions, eligibility.eligible, None,
                                        encoded)

    def check_eligibility(
        self, application: ApplicationSubmitted, as_of: dt.date | None = None, record: bool = False
    ) -> EligibilityDecided:
        """Decide who qualifies. ``record`` books an eligible application into the history."""
        return EligibilityDecided.model_validate(self._eligibility_record(application, as_of, record))

    def check_eligibility_encoded(
        self, application: ApplicationSubmitted, as_of: dt.date | None = None, record: bool = False
    ) -> Encoded:
        """``check_eligibility``, as the bytes of the event."""
        data = self._eligibility_record(application, as_of, record, encoded=True)
        return encoded_eligibility(data)

    def calculate(self, eligibility: EligibilityDecided, as_of: dt.date | None = None) -> EntitlementCalculated:
        """Compute the amount of an eligibility decision (zero, with the refusal, if ineligible)."""
        return EntitlementCalculated.model_validate(self._calculate_record(eligibility, as_of))

    def calculate_encoded(self, eligibility: EligibilityDecided, as_of: dt.date | None = None) -> Encoded:
        """``calculate``, as the bytes of the event."""
        return encoded_entitlement(self._calculate_record(eligibility, as_of, encoded=True))

    def decide(
        self, application: ApplicationSubmitted, as_of: dt.date | None = None, record: bool = True
    ) -> EntitlementCalculated:
        """Eligibility and amount in one call (the batch CLI and the offline reference).

        Gives exactly what ``calculate(check_eligibility(application))`` gives.
        """
        return EntitlementCalculated.model_validate(self._decide_record(application, as_of, record))

    def decide_encoded(self, application: ApplicationSubmitted, as_of: dt.date | None = None, record: bool = True) -> Encoded:
        """``decide``, as the bytes of the event (what the batch CLI writes)."""
        return encoded_entitlement(self._decide_record(application, as_of, record, encoded=True))


class _RowsCel:
    """One decision's item rows evaluated through one ``cel.Context``.

    What the row list and the row flags read outside the row (parameters, the application's
    inputs) and the helper functions are converted into CEL once per decision; each row then
    converts only its own fields (all rows have exactly the declared fields, so every row replaces
    the last one's), and each flag only ``item_amount``. cel-rust converts a value in about 0.3-2 µs,
    so the rows' shared values are no longer converted again for every row and flag.

    The values are those of the per-call binding (``Expression.run``): a row's fields over the
    scope, a name the scope lacks left unbound. ``row``/``flag`` return ``None`` when CEL fails, and
    the caller evaluates that rule again on its own, which names it in the error.
    """

    __slots__ = ("context", "flags", "per_row", "program")

    def __init__(self, items: CompiledItems, fields: dict[str, str], scope: dict[str, Any], missing: dict[str, str]):
        row = items.row
        usable = row is not None and "item_amount" not in row.variables  # a row never reads its own amount
        expressions = ([row] if usable else []) + [flag.expression for flag in items.flags]
        names = {name for expression in expressions for name in expression.variables}
        self.per_row = tuple(name for name in sorted(names) if name in fields)
        context = cel.Context()
        for name in sorted(names):
            if name not in fields and name != "item_amount" and name in scope:
                context.add_variable(name, scope[name])
        for name in sorted({name for expression in expressions for name in expression.functions}):
            context.add_function(name, FUNCTIONS[name])
        self.context = context
        self.program = row.program if usable else None
        # a flag that reads a parameter without a value on the date is an error even if CEL would not
        # need it (``_require_parameters``): such flags are left to the caller
        self.flags = tuple(None if missing and not missing.keys().isdisjoint(flag.expression.variables)
                           else flag.expression.program for flag in items.flags)

    def row(self, row: dict[str, Any]) -> Any:
        """The row's compiled list (its checks, then its amount), or ``None``."""
        context = self.context
        for name in self.per_row:
            context.add_variable(name, row[name])
        if self.program is None:
            return None
        try:
            return self.program.execute(context)
        except CEL_ERRORS:
            return None

    def flag(self, position: int, item_amount: int) -> Any:
        """Whether the row (the last one given to ``row``) passes flag ``position``, or ``None``."""
        program = self.flags[position]
        if program is None:
            return None
        context = self.context
        context.add_variable("item_amount", item_amount)
        try:
            return program.execute(context)
        except CEL_ERRORS:
            return None


def _calculation(vplan: VersionPlan, calculation: Any, scope: dict[str, Any]) -> str:
    """``render_calculation(calculation, scope)``, remembered per rule version by the values it shows
    (with their types: ``True == 1``, but they are written differently); a month's rate, a fixed payment
    repeat, and writing the sums costs more than the lookup."""
    key = typed_key(tuple([scope.get(name) for name in vplan.calculation_names]))
    memo = vplan.calculation_memo
    try:
        text = memo.get(key)
    except TypeError:  # a value that cannot be a key (a list)
        return render_calculation(calculation, scope)
    if text is None:
        text = render_calculation(calculation, scope)
        if len(memo) >= 4096:
            memo.clear()
        memo[key] = text
    return text


def _raise_flag(flag: CompiledFlag, context: Context, item: int | None) -> None:
    context.flags.append({"id": flag.id, "item": item, "clause": flag.clause_uk, "flag_uk": flag.flag_uk})


def _iso_date(context: Context) -> str:
    """The date that chose the rule version (what the programme_term condition shows)."""
    name = "period_start" if context.program.spec.rules_on == "period_start" else "submitted_on"
    return int_to_date(context.scope[name]).isoformat()


def _require_parameters(expression: Expression, context: Context) -> None:
    if context.missing:
        for name in expression.variables:
            if name in context.missing:
                raise ApplicationError("no_parameter_value", context.missing[name])


