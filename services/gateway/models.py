"""The gateway's request and response bodies (OpenAPI documented) and its error answers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import Identifier, Kopiyky, MonthlyPlan, Period, ProgramId, ShortText


class Accepted(BaseModel):
    application_id: str
    status: Literal["accepted", "duplicate"]


class IngestResponse(BaseModel):
    accepted: int = Field(description="newly published")
    duplicates: int = Field(description="already published with the same content (not published again)")
    results: list[Accepted]


class AllocationRequest(BaseModel):
    """An annual appropriation and its monthly plan (becomes an ``AllocationSet`` event)."""

    model_config = ConfigDict(extra="forbid")

    program_id: ProgramId
    district: Annotated[str, Field(max_length=64)] | None = None
    year: Annotated[int, Field(ge=2000, le=2100)]
    annual_kop: Kopiyky
    plan: MonthlyPlan
    amendment_id: Identifier = Field(description="id of this decision of the council; re-posting it is idempotent")
    legal_reference: ShortText


class PeriodCloseRequest(BaseModel):
    """Close a month: pro-rata claims are settled, the month's decisions become final."""

    model_config = ConfigDict(extra="forbid")

    program_id: ProgramId
    district: Annotated[str, Field(max_length=64)] | None = None
    period: Period
    closed_by: Identifier | None = Field(default=None, description="default: the API key's name")


class CommandAccepted(BaseModel):
    event_id: str
    event_type: str
    topic: str
    key: str


class ErrorBody(BaseModel):
    error: str
    message: str
    errors: list[dict[str, Any]] | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no or unknown X-API-Key"},
    403: {"model": ErrorBody, "description": "the key lacks the role"},
    422: {"model": ErrorBody, "description": "invalid input"},
}
