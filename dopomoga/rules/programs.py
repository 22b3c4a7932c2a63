"""Program files: one payment per YAML file, rules as CEL, every rule with its clause.

The format is documented for departments in ``docs/programs.md``. Loading a program
checks its structure, compiles every expression, checks that each expression only
reads declared names, and evaluates each one once on sample inputs of the declared
types, so a condition that is not boolean, or a formula that is not an integer
amount of kopiyky, fails at load - with the file, the rule and the position - and
never on a citizen's application.

(About 455 lines: compiling a version - conditions, items, flags, the combined CEL list, the
calculation shown to the citizen - is one procedure; the format itself is in program_file.py.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dopomoga.cities import CITY_DATA_FILES, CITY_FILE, City, CityError, load_cities
from dopomoga.errors import ApplicationError, LedgerError
from dopomoga.explain_uk import Calculation, parse_calculation
from dopomoga.rules.expressions import CEL_ERRORS, Expression, ExpressionError, compile_expression
from dopomoga.rules.parameters import Parameter, ParameterError, ParameterSet, parse_parameters
from dopomoga.rules.program_file import (  # noqa: F401 - the format's names, re-exported
    PROGRAMS_DIR,
    STANDARD_INPUTS,
    AmountSpec,
    BudgetSpec,
    Condition,
    FactType,
    Frequency,
    FrequencyLimit,
    HistorySpec,
    InputSpec,
    ItemsSpec,
    LegalBasis,
    ProgramError,
    ProgramFile,
    RuleVersion,
    Text,
)


@dataclass(frozen=True, eq=False)
class CompiledCondition:
    id: str
    clause_uk: str
    refusal_uk: str
    expression: Expression
    source: str | None = None


@dataclass(frozen=True, eq=False)
class CompiledFlag:
    id: str
    clause_uk: str
    flag_uk: str
    expression: Expression
    source: str | None = None


@dataclass(frozen=True, eq=False)
class CompiledItems:
    of: str
    include_when: Expression | None
    exclude_uk: str | None
    formula: Expression
    #: [include_when?, each condition, amount if all hold] (or [amount]) as one CEL list: one call per item.
    row: Expression | None = None
    conditions: tuple[CompiledCondition, ...] = ()  # per-row conditions (refusal_uk: why the row is out)
    flags: tuple[CompiledFlag, ...] = ()


@dataclass(frozen=True, eq=False)
class CompiledVersion:
    effective_from: dt.date
    effective_to: dt.date | None
    conditions: tuple[CompiledCondition, ...]
    amount_clause_uk: str
    rounding_uk: str
    formula: Expression
    items: CompiledItems | None
    explanation_uk: str | None
    parameter_names: tuple[str, ...]  # every parameter this version reads, sorted
    #: Every condition, then (if the version has no items) the amount when all of them pass, as
    #: one CEL list: the engine binds the inputs once and makes one call per decision.
    combined: Expression | None = None
    combined_amount: bool = False  # the last element of ``combined`` is the amount
    amount_source: str | None = None
    calculation: Calculation | None = None  # the citizen's view of the formula (explain_uk)
    flags: tuple[CompiledFlag, ...] = ()
    term_uk: str | None = None
    #: Named intermediate amounts (``amount.values``), in order: computed before the formula.
    values: tuple[tuple[str, Expression], ...] = ()


@dataclass(frozen=True, eq=False)
class Program:
    spec: ProgramFile
    path: Path
    rules_hash: str
    versions: tuple[CompiledVersion, ...]
    local_parameters: dict[str, Parameter]
    priority: Expression | None = None
    fact_names: frozenset[str] = field(default_factory=frozenset)
    priority_parameters: tuple[str, ...] = ()  # parameters budget.priority reads (the scope adds them)

    @property
    def id(self) -> str:
        return self.spec.id

    def priority_class(self, scope: dict[str, Any]) -> int:
        """``budget.priority`` on a decision's scope, lower first (0 without one). A priority that
        cannot be evaluated is an error, never a silent last place (the ledger and the what-if)."""
        if self.priority is None:
            return 0
        try:
            value = self.priority.run(scope)
        except (ApplicationError, KeyError, *CEL_ERRORS) as exc:
            raise LedgerError("priority_failed", f"program {self.id}: budget.priority: {exc}") from None
        if type(value) is not int:
            raise LedgerError("priority_failed", f"program {self.id}: budget.priority gave {value!r}, not an int")
        return value

    def version_for(self, on: dt.date) -> tuple[CompiledVersion, bool]:
        """The version in force on ``on``, or the last one and ``True`` when its term has ended."""
        chosen = None
        for version in self.versions:
            if version.effective_from <= on:
                chosen = version
        if chosen is None:
            raise ProgramError(
                f"program {self.id!r} has no rules in force on {on.isoformat()}: "
                f"its first version takes effect on {self.versions[0].effective_from.isoformat()}"
            )
        return chosen, chosen.effective_to is not None and on > chosen.effective_to

    def version_on(self, on: dt.date) -> CompiledVersion:
        """The version in force on ``on``; an error before the first one and after the last one's term."""
        chosen, ended = self.version_for(on)
        if ended:
            raise ProgramError(
                f"program {self.id!r} has no rules in force on {on.isoformat()}: "
                f"the version of {chosen.effective_from.isoformat()} ended on {chosen.effective_to.isoformat()}"
            )
        return chosen


_SAMPLE_BY_TYPE: dict[str, Any] = {
    "bool": True,
    "int": 1,
    "string": "x",
    "date": 20230401,
    "month": 202304,
    "money": 100,
}


def _sample_scope(spec: ProgramFile, parameter_names: set[str]) -> dict[str, Any]:
    scope: dict[str, Any] = {name: _SAMPLE_BY_TYPE[kind] for name, kind in STANDARD_INPUTS.items()}
    scope["birth_date"] = 19230310
    for name, item in spec.inputs.items():
        if item.type == "enum":
            scope[name] = (item.values or ["x"])[0]
        elif item.type == "list":
            scope[name] = ["x"]
        elif item.type == "items":
            scope[name] = [{k: _SAMPLE_BY_TYPE[t] for k, t in (item.fields or {}).items()}]
        else:
            scope[name] = _SAMPLE_BY_TYPE[item.type]
        if not item.required:
            scope[f"has_{name}"] = True
    for name in spec.history:
        scope[name] = 0
    for name in parameter_names:
        scope[name] = 100
    return scope


def _check_sample(expression: Expression, scope: dict[str, Any], expect: type, what: str) -> None:
    try:
        value = expression.run(scope)
    except CEL_ERRORS as exc:
        raise ProgramError(f"{expression.where}: {what} cannot be evaluated on inputs of the declared types: {exc}") from None
    if type(value) is not expect:
        raise ProgramError(
            f"{expression.where}: {what} must give {expect.__name__}, gives {type(value).__name__} ({value!r})"
        )


def _compiled(source: str, where: str, known: set[str], scope: dict[str, Any], expect: type) -> Expression:
    try:
        expression = compile_expression(source, where, known)
    except ExpressionError as exc:
        raise ProgramError(str(exc)) from None
    _check_sample(expression, scope, expect, where.rsplit("rule ", 1)[-1])
    return expression


def _unique(entries: list[Any], what: str) -> list[Any]:
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            raise ProgramError(f"{what} id {entry.id!r} is used twice")
        seen.add(entry.id)
    return entries


def load_program(path: Path, global_parameters: ParameterSet) -> Program:
    raw_bytes = path.read_bytes()
    try:
        raw = yaml.safe_load(raw_bytes)
    except yaml.YAMLError as exc:
        raise ProgramError(f"{path}: not valid YAML: {exc}") from None
    try:
        spec = ProgramFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise ProgramError(f"{path}: {problems}") from None
    try:
        local = parse_parameters(spec.parameters, f"{path} parameters") if spec.parameters else {}
    except ParameterError as exc:
        raise ProgramError(str(exc)) from None
    clash = sorted(
        set(local) & (set(global_parameters.names()) | set(spec.inputs) | set(STANDARD_INPUTS) | set(spec.history))
    )
    clash += sorted(set(spec.inputs) & (set(STANDARD_INPUTS) | set(spec.history)))
    if clash:
        raise ProgramError(f"{path}: name(s) {', '.join(clash)} are declared twice")
    for name, hist in spec.history.items():
        if hist.scope.startswith("fact:") and hist.scope[5:] not in spec.inputs:
            raise ProgramError(f"{path}: history {name!r} is scoped by unknown input {hist.scope[5:]!r}")
    if spec.frequency.limit and spec.frequency.limit.scope.startswith("fact:"):
        if spec.frequency.limit.scope[5:] not in spec.inputs:
            raise ProgramError(f"{path}: frequency limit is scoped by unknown input {spec.frequency.limit.scope[5:]!r}")

    parameter_names = set(local) | set(global_parameters.names())
    presence = {f"has_{name}" for name, item in spec.inputs.items() if not item.required}
    base_known = set(STANDARD_INPUTS) | set(spec.inputs) | set(spec.history) | parameter_names | presence
    scope = _sample_scope(spec, parameter_names)

    versions: list[CompiledVersion] = []
    used_globals: set[str] = set()
    for version in spec.rules:
        label = f"{path}: version {version.effective_from}"
        conditions: list[CompiledCondition] = []
        seen: set[str] = set()
        for condition in version.conditions:
            if condition.id in seen:
                raise ProgramError(f"{label}: condition id {condition.id!r} is used twice")
            seen.add(condition.id)
            where = f"{label}: rule {condition.id!r}"
            try:
                expression = compile_expression(condition.when, where, base_known)
            except ExpressionError as exc:
                raise ProgramError(str(exc)) from None
            _check_sample(expression, scope, bool, "condition")
            conditions.append(
                CompiledCondition(condition.id, condition.clause_uk, condition.refusal_uk, expression, condition.source)
            )
        items = None
        formula_known = set(base_known)
        if version.amount.items is not None:
            spec_items = version.amount.items
            item_input = spec.inputs.get(spec_items.of)
            if item_input is None or item_input.type != "items":
                raise ProgramError(f"{label}: amount.items.of must name an input of type items")
            item_known = base_known | set(item_input.fields or {})
            item_scope = {**scope, **scope[spec_items.of][0]}
            try:
                include = (
                    compile_expression(spec_items.include_when, f"{label}: rule 'items.include_when'", item_known)
                    if spec_items.include_when
                    else None
                )
                item_formula = compile_expression(spec_items.formula, f"{label}: rule 'items.formula'", item_known)
            except ExpressionError as exc:
                raise ProgramError(str(exc)) from None
            if include is not None:
                _check_sample(include, item_scope, bool, "items.include_when")
            _check_sample(item_formula, item_scope, int, "items.formula (kopiyky)")
            row_conditions = tuple(
                CompiledCondition(c.id, c.clause_uk, c.exclude_uk,
                                  _compiled(c.when, f"{label}: rule 'items.{c.id}'", item_known, item_scope, bool),
                                  c.source)
                for c in _unique(spec_items.conditions, f"{label}: items condition")
            )
            flag_known = item_known | {"item_amount"}  # a row's flag may read the row's computed amount
            flag_scope = {**item_scope, "item_amount": 100}
            row_flags = tuple(
                CompiledFlag(f.id, f.clause_uk, f.flag_uk,
                             _compiled(f.when, f"{label}: rule 'items.flags.{f.id}'", flag_known, flag_scope, bool),
                             f.source)
                for f in _unique(spec_items.flags, f"{label}: items flag")
            )
            checks = ([include.source] if include is not None else []) + [c.expression.source for c in row_conditions]
            guard = " && ".join(f"({c})" for c in checks)
            row_source = (
                "[" + "".join(f"({c}), " for c in checks) + f"({guard}) ? ({item_formula.source}) : 0]"
                if checks
                else f"[({item_formula.source})]"
            )
            try:
                row = compile_expression(row_source, f"{label}: rule 'items'", item_known)
            except ExpressionError as exc:  # pragma: no cover - each part compiled above
                raise ProgramError(str(exc)) from None
            items = CompiledItems(spec_items.of, include, spec_items.exclude_uk, item_formula, row,
                                  row_conditions, row_flags)
            formula_known.add("items_total")
            scope = {**scope, "items_total": 100}
        values: list[tuple[str, Expression]] = []
        for name, source in version.amount.values.items():
            if name in formula_known:
                raise ProgramError(f"{label}: rule 'amount.values.{name}': the name is already an input, "
                                   "parameter or history count")
            values.append((name, _compiled(source, f"{label}: rule 'amount.values.{name}'", formula_known, scope, int)))
            formula_known.add(name)
            scope = {**scope, name: 100}
        try:
            formula = compile_expression(version.amount.formula, f"{label}: rule 'amount'", formula_known)
        except ExpressionError as exc:
            raise ProgramError(str(exc)) from None
        _check_sample(formula, scope, int, "amount formula (kopiyky)")
        flags = tuple(
            CompiledFlag(f.id, f.clause_uk, f.flag_uk,
                         _compiled(f.when, f"{label}: rule 'flags.{f.id}'", formula_known, scope, bool), f.source)
            for f in _unique(version.flags, f"{label}: flag")
        )
        calculation = None
        if version.amount.calculation_uk:
            try:
                calculation = parse_calculation(version.amount.calculation_uk)
            except ValueError as exc:
                raise ProgramError(f"{label}: rule 'amount.calculation_uk': {exc}") from None
            unknown = sorted({n for _, n, _ in calculation if n is not None} - formula_known)
            if unknown:
                raise ProgramError(f"{label}: rule 'amount.calculation_uk': unknown name(s) {', '.join(unknown)}")
        # The same rules as one CEL list: [condition, ..., amount if every condition holds].
        # The engine evaluates it in one call (the inputs are converted once) and falls back to
        # one call per rule to name the rule when evaluation fails. CEL's ternary evaluates only
        # the branch taken, so the formula is never run for an application that is refused.
        parts = [f"({c.expression.source})" for c in conditions]
        combined_amount = items is None and not values  # values are bound one by one before the formula
        if combined_amount:
            guard = " && ".join(parts)
            parts.append(f"(({guard}) ? ({formula.source}) : 0)" if guard else f"({formula.source})")
        combined = None
        if parts:
            try:
                combined = compile_expression("[" + ", ".join(parts) + "]", f"{label}: rules", formula_known)
            except ExpressionError as exc:  # pragma: no cover - each part compiled above
                raise ProgramError(str(exc)) from None
        expressions = [c.expression for c in conditions] + [formula] + [e for _, e in values]
        if items is not None:
            expressions += [e for e in (items.include_when, items.formula) if e is not None]
            expressions += [c.expression for c in (*items.conditions, *items.flags)]
        expressions += [f.expression for f in flags]
        names = {name for e in expressions for name in e.variables}
        version_parameters = tuple(sorted(names & parameter_names))
        used_globals |= set(version_parameters) - set(local)
        versions.append(
            CompiledVersion(
                effective_from=version.effective_from,
                effective_to=version.effective_to,
                conditions=tuple(conditions),
                amount_clause_uk=version.amount.clause_uk,
                rounding_uk=version.amount.rounding_uk,
                formula=formula,
                items=items,
                explanation_uk=version.explanation_uk,
                parameter_names=version_parameters,
                combined=combined,
                combined_amount=combined_amount and combined is not None,
                amount_source=version.amount.source,
                calculation=calculation,
                flags=flags,
                term_uk=version.term_uk,
                values=tuple(values),
            )
        )

    priority = None
    if spec.budget.priority:
        try:
            priority = compile_expression(spec.budget.priority, f"{path}: rule 'budget.priority'", base_known)
        except ExpressionError as exc:
            raise ProgramError(str(exc)) from None
        _check_sample(priority, scope, int, "budget.priority")
        used_globals |= set(priority.variables) & set(global_parameters.names())
        # The ledger evaluates the priority on the claim's scope (dopomoga.rules.scope), with the
        # history counts the decision carries: those a condition or the amount of every version reads.
        counts = set(priority.variables) & set(spec.history)
        for compiled in versions:
            read = set(compiled.formula.variables).union(*(c.expression.variables for c in compiled.conditions))
            if counts - read:
                raise ProgramError(
                    f"{path}: rule 'budget.priority' reads history count(s) {', '.join(sorted(counts - read))}, "
                    f"which version {compiled.effective_from} reads in no condition or amount; the ledger sees "
                    "only the counts a decision shows"
                )

    digest = hashlib.sha256(raw_bytes)
    for name in sorted(used_globals):
        parameter = global_parameters[name]
        digest.update(
            json.dumps(
                [name, parameter.unit, [[str(v.effective_from), v.value, v.reference] for v in parameter.values]],
                ensure_ascii=False,
            ).encode()
        )
    return Program(
        spec=spec,
        path=path,
        rules_hash=digest.hexdigest()[:16],
        versions=tuple(versions),
        local_parameters=local,
        priority=priority,
        fact_names=frozenset(spec.inputs),
        priority_parameters=tuple(sorted(set(priority.variables) & parameter_names)) if priority else (),
    )


class Catalog:
    """Every program and global parameter, loaded and checked once."""

    def __init__(self, programs: dict[str, Program], parameters: ParameterSet, root: Path,
                 cities: dict[str, City] | None = None):
        self.programs = programs
        self.parameters = parameters
        self.root = root
        self.cities: dict[str, City] = cities or {}

    @classmethod
    def load(cls, root: Path = PROGRAMS_DIR) -> Catalog:
        try:
            parameters = ParameterSet.load(root / "parameters")
        except ParameterError as exc:
            raise ProgramError(str(exc)) from None
        try:
            cities = load_cities(root)
        except CityError as exc:
            raise ProgramError(str(exc)) from None
        programs: dict[str, Program] = {}
        for path in sorted(root.glob("*/*.yaml")):
            if path.parent.name == "parameters" or path.name in CITY_DATA_FILES:
                continue
            program = load_program(path, parameters)
            if program.id in programs:
                raise ProgramError(f"{path}: program id {program.id!r} is also used by {programs[program.id].path}")
            if path.parent.name != program.spec.city:
                raise ProgramError(f"{path}: a {program.spec.city} program must live in programs/{program.spec.city}/")
            if program.spec.city not in cities:
                raise ProgramError(f"{path}: city {program.spec.city!r} has no {CITY_FILE} in {path.parent}")
            programs[program.id] = program
        for program in programs.values():
            referenced = [p for h in program.spec.history.values() for p in h.programs]
            if program.spec.frequency.limit:
                referenced += program.spec.frequency.limit.programs
            for other in referenced:
                if other not in programs:
                    raise ProgramError(f"{program.path}: history refers to unknown program {other!r}")
        return cls(programs, parameters, root, cities)

    def get(self, program_id: str) -> Program:
        try:
            return self.programs[program_id]
        except KeyError:
            raise ProgramError(f"unknown program {program_id!r}") from None

