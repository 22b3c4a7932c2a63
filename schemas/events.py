"""Events exchanged by Dopomoga's services (schema version 1).

Rules for every event:
- money is integer kopiyky (``Kopiyky``); floats are rejected, never coerced;
- ``event_id`` is unique per event; for decisions it is derived from the input, so a
  replayed input produces the same id (idempotent consumers dedupe on it);
- ``occurred_at`` is timezone-aware; decision timestamps are copied from their input,
  never read from the clock, so the same input gives byte-identical output;
- personal data (names, identifiers, IBANs) travels in events but never in logs or
  metric labels.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.identifiers import IdKind, normalise_identifier, normalise_ua_iban

SCHEMA_VERSION = 1

#: Validation context for events our own services produced (``model_validate_json(raw,
#: context=TRUSTED)``): their РНОКПП/ЄДРПОУ/passport and IBAN were checked and made canonical
#: where the application entered (the ``applications`` topic, the gateway), so the check-digit
#: and IBAN-registry checks are skipped; every other constraint still applies. Never use it
#: for input from outside (registries, the gateway, ``applications``).
TRUSTED: dict[str, Any] = {"trusted": True}


def _trusted(info: ValidationInfo) -> bool:
    return bool(info.context) and info.context.get("trusted") is True

#: Money: whole kopiyky, never negative, at most 10^13 kop (10^11 UAH) per amount.
Kopiyky = Annotated[StrictInt, Field(ge=0, le=10**13, description="amount in kopiyky (1 UAH = 100 kop)")]
#: Signed money, for deltas (amendments may reduce an allocation).
SignedKopiyky = Annotated[StrictInt, Field(ge=-(10**13), le=10**13)]
Period = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="calendar month YYYY-MM")]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,95}$")]
ProgramId = Annotated[str, Field(pattern=r"^[a-z0-9]+(\.[a-z0-9\-]+)+$", max_length=96)]
ShortText = Annotated[str, Field(max_length=512)]

#: A scalar fact value. Dates are ISO strings ("2023-04-01"); the program file says which
#: facts are dates and the engine parses them.
Scalar = StrictBool | StrictInt | Annotated[StrictStr, Field(max_length=512)]
FactValue = Scalar | Annotated[list[Scalar], Field(max_length=500)] | Annotated[
    list[Annotated[dict[Annotated[str, Field(max_length=64)], Scalar], Field(max_length=64)]],
    Field(max_length=500),
]

PaymentChannel = Literal["bank", "post", "my_transfer", "treasury"]
PayoutStatus = Literal["paid", "prorated", "pending", "deferred", "refused", "held"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Identifier
    schema_version: Literal[1] = SCHEMA_VERSION
    occurred_at: AwareDatetime


class Applicant(BaseModel):
    """Who applies (a person) or claims (an organisation such as a carrier)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id_kind: IdKind
    id: Annotated[str, Field(min_length=1, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=256)]
    birth_date: dt.date | None = None
    household_id: Identifier | None = None
    district: Annotated[str, Field(max_length=64)] | None = None

    # A field validator, not a model "after" validator: pydantic re-runs a model's after
    # validators whenever an instance is nested into another model (a PayoutDecided built
    # with the entitlement's applicant), and the checks below cost ~50 µs each.
    @field_validator("id")
    @classmethod
    def _check_identifier(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("id_kind")
        if _trusted(info) or kind is None:  # no kind: id_kind's own error is reported
            return value
        return normalise_identifier(kind, value)

    @property
    def subject_key(self) -> str:
        """Stable key of the person or organisation, for grant history."""
        return f"{self.id_kind}:{self.id}"


class Payment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: PaymentChannel
    iban: str | None = None

    @field_validator("iban")
    @classmethod
    def _iban(cls, value: str | None, info: ValidationInfo) -> str | None:
        return value if value is None or _trusted(info) else normalise_ua_iban(value)

    @model_validator(mode="after")
    def _bank_needs_iban(self) -> Payment:
        if self.channel in ("bank", "treasury") and self.iban is None:
            raise ValueError(f"payment channel {self.channel!r} needs an IBAN")
        return self


class ApplicationSubmitted(_Event):
    """A person's application or an organisation's claim, published by a registry."""

    event_type: Literal["ApplicationSubmitted"] = "ApplicationSubmitted"
    application_id: Identifier
    program_id: ProgramId
    registry: Identifier
    submitted_on: dt.date = Field(description="date of the application; selects the rules in force")
    period: Period | None = Field(
        default=None, description="month claimed (monthly benefits, carriers' claims); default: month of submitted_on"
    )
    applicant: Applicant
    payment: Payment
    facts: Annotated[dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")], FactValue], Field(max_length=64)]

    @property
    def effective_period(self) -> str:
        if self.period is not None:
            return self.period
        return f"{self.submitted_on.year:04d}-{self.submitted_on.month:02d}"


class ConditionResult(BaseModel):
    """One evaluated condition: the rule, the values it read, the result, the clause."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    clause: str
    expression: str
    inputs: dict[str, Any]
    passed: bool
    refusal_uk: str | None = None


class ParameterUse(BaseModel):
    """A parameter value used by a decision, with the date it took effect and its law."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    value: int
    unit: str
    effective_from: dt.date
    reference: str


class TraceStep(BaseModel):
    """One step of the amount calculation (per item, then the total)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    step: str
    clause: str
    expression: str
    inputs: dict[str, Any]
    result: Any


class RulesRef(BaseModel):
    """Which rules decided: program id, the version in force, and a hash of the rule text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    program_id: str
    version: str
    effective_from: dt.date
    rules_hash: str


class RuleSource(BaseModel):
    """Where a rule comes from in the source documents (seed lines, spec ids): for operators only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str
    source: str


class RaisedFlag(BaseModel):
    """A check that does not refuse but asks an operator to look (e.g. a carrier's printed K differs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    item: int | None = Field(default=None, description="the item row (1-based) it concerns, if any")
    clause: str
    flag_uk: str


class OperatorNotes(BaseModel):
    """The operator-only part of a decision: never part of the sentence a citizen receives.

    ``sources`` point each rule at its place in the source documents; the readings chosen where
    the act is silent stay in the program file (``readings_uk``), shown beside the decision.

    ``pending_confirmation`` names the parameters whose values the act does not state (worked out
    from the department's figures): the decision is not payable until an operator confirms them
    with a document reference in the program file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: list[RuleSource] = Field(default_factory=list)
    pending_confirmation: list[str] = Field(default_factory=list)
    flags: list[RaisedFlag] = Field(default_factory=list)


class EligibilityDecided(_Event):
    event_type: Literal["EligibilityDecided"] = "EligibilityDecided"
    decision_id: Identifier
    application_id: Identifier
    program_id: ProgramId
    period: Period
    eligible: bool
    rules: RulesRef
    conditions: list[ConditionResult]
    derived: dict[str, Any]
    parameters: list[ParameterUse]
    explanation_uk: str
    application: ApplicationSubmitted
    operator: OperatorNotes = Field(default_factory=OperatorNotes)


class EntitlementCalculated(_Event):
    event_type: Literal["EntitlementCalculated"] = "EntitlementCalculated"
    decision_id: Identifier
    application_id: Identifier
    program_id: ProgramId
    period: Period
    budget_key: str = Field(description="program:period[:district]; the partition key of budget input")
    budget_policy: str
    eligible: bool
    amount_kop: Kopiyky
    rules: RulesRef
    conditions: list[ConditionResult]
    parameters: list[ParameterUse]
    trace: list[TraceStep]
    explanation_uk: str
    application: ApplicationSubmitted
    operator: OperatorNotes = Field(default_factory=OperatorNotes)


class ClaimedApplication(BaseModel):
    """The part of an entitlement's application the budget ledger reads: who is paid, and how."""

    model_config = ConfigDict(frozen=True)  # the application's other fields are not read here

    applicant: Applicant
    payment: Payment


class ClaimedOperator(BaseModel):
    """The part of an entitlement's operator notes the budget ledger reads."""

    model_config = ConfigDict(frozen=True)

    pending_confirmation: list[str] = Field(default_factory=list)


class EntitlementClaim(BaseModel):
    """``EntitlementCalculated`` as the budget ledger reads it: only the fields a claim's budget
    decision uses (issue 15: decoding the whole event, conditions and trace included, was the
    largest part of the budget's CPU per claim).

    Validated from the same trusted bytes (``entitlements``: produced by our calculation service),
    every field it has with the full model's types, so each value is what ``EntitlementCalculated``
    gives; the fields it lacks (conditions, parameters, trace, the application's facts) are not
    read, and not validated here. The ledger stores the event's bytes as received and decodes the
    full model where it needs more (a claim ranked by ``budget.priority``, a replayed id's content
    check): ``dopomoga.budget.ledger``.
    """

    model_config = ConfigDict(frozen=True)

    event_type: Literal["EntitlementCalculated"] = "EntitlementCalculated"
    event_id: Identifier
    schema_version: Literal[1] = SCHEMA_VERSION
    occurred_at: AwareDatetime
    decision_id: Identifier
    application_id: Identifier
    program_id: ProgramId
    period: Period
    budget_key: str
    budget_policy: str
    eligible: bool
    amount_kop: Kopiyky
    rules: RulesRef
    explanation_uk: str
    application: ClaimedApplication
    operator: ClaimedOperator = Field(default_factory=ClaimedOperator)


class FundSource(BaseModel):
    """The part of a payout one fund source pays (state, oblast or city budget, other)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["state", "oblast", "city", "other"]
    amount_kop: Kopiyky


class PayoutDecided(_Event):
    """A budget-limit decision. Treasury exporters read only ``final`` ones."""

    event_type: Literal["PayoutDecided"] = "PayoutDecided"
    decision_id: Identifier
    application_id: Identifier
    program_id: ProgramId
    period: Period
    district: str | None = None
    status: PayoutStatus
    final: bool
    claimed_kop: Kopiyky
    payout_kop: Kopiyky
    coefficient: str = Field(description="payout/claim share as an exact fraction 'p/q' or '1'")
    policy: str
    reason_code: str
    explanation_uk: str
    entitlement_decision_id: Identifier
    rules: RulesRef
    payee: Applicant
    payment: Payment
    line: Annotated[str, Field(max_length=64)] | None = Field(
        default=None, description="the budget line paying it (programs/<city>/budget-lines.yaml), if it has one"
    )
    sources: list[FundSource] | None = Field(
        default=None,
        description="the payout split by fund source to the kopiyka (largest remainder; Σ = payout_kop); "
        "None when the program has no budget line or nothing is paid",
    )


class MonthlyPlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["even", "december", "explicit"]
    months: dict[Period, Kopiyky] | None = None

    @model_validator(mode="after")
    def _explicit_needs_months(self) -> MonthlyPlan:
        if (self.kind == "explicit") != (self.months is not None):
            raise ValueError("an explicit plan lists months; other plans must not")
        return self


class AllocationSet(_Event):
    """Sets (or amends) a program's annual appropriation and its monthly plan."""

    event_type: Literal["AllocationSet"] = "AllocationSet"
    program_id: ProgramId
    district: Annotated[str, Field(max_length=64)] | None = None
    year: Annotated[int, Field(ge=2000, le=2100)]
    annual_kop: Kopiyky
    plan: MonthlyPlan
    amendment_id: Identifier
    legal_reference: ShortText
    line: Annotated[str, Field(max_length=64)] | None = Field(
        default=None, description="the budget line's code (budget-lines.yaml); program_id may be the line's holder id"
    )
    reason_uk: ShortText | None = Field(default=None, description="why the plan is set or amended")
    document: ShortText | None = Field(default=None, description="the decision setting or amending it (number)")
    amended_on: dt.date | None = Field(default=None, description="the date of that decision")

    @model_validator(mode="after")
    def _explicit_months_in_year_and_sum(self) -> AllocationSet:
        if self.plan.months is not None:
            if any(not m.startswith(f"{self.year}-") for m in self.plan.months):
                raise ValueError("explicit plan months must lie in the allocation year")
            if sum(self.plan.months.values()) != self.annual_kop:
                raise ValueError("explicit monthly plan must add up to annual_kop")
        return self


class ParameterConfirmed(_Event):
    """An operator confirms a parameter value the act does not state, with the document that sets it.

    Claims of the program's budget year held for that value (``held``, ``awaiting_confirmation``)
    are then admitted; later claims that used it are admitted at once.
    """

    event_type: Literal["ParameterConfirmed"] = "ParameterConfirmed"
    program_id: ProgramId
    year: Annotated[int, Field(ge=2000, le=2100)]
    parameter: Identifier
    document: ShortText
    confirmed_by: Identifier


class PeriodClosed(_Event):
    event_type: Literal["PeriodClosed"] = "PeriodClosed"
    program_id: ProgramId
    district: Annotated[str, Field(max_length=64)] | None = None
    period: Period
    closed_by: Identifier


class Rejected(_Event):
    """Dead-letter record: the original bytes, who rejected them and why."""

    event_type: Literal["Rejected"] = "Rejected"
    service: Identifier
    source_topic: Identifier
    source_partition: int | None = None
    source_offset: int | None = None
    reason_code: Identifier
    reason: Annotated[str, Field(max_length=2000)]
    original_b64: str = Field(description="the rejected message value, base64")


ALL_EVENTS: tuple[type[_Event], ...] = (
    ApplicationSubmitted,
    EligibilityDecided,
    EntitlementCalculated,
    PayoutDecided,
    AllocationSet,
    ParameterConfirmed,
    PeriodClosed,
    Rejected,
)
