"""``POST /budget/confirmations``: an approver confirms an amount the act does not state.

A decision whose amount uses a parameter value marked ``inferred`` in its program file is held by
the ledger (``held``, ``awaiting_confirmation``). The head of department confirms the value with the
document that sets it; the gateway publishes a ``ParameterConfirmed`` to ``budget-commands`` and the
budget service admits the held claims of that program's year. Confirming twice is harmless (one event
id per program, year and parameter).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dopomoga.budget.commands import parameter_confirmed
from schemas.events import Identifier, ProgramId, ShortText
from services.gateway.models import CommandAccepted, ErrorBody
from services.platform.topology import BUDGET_COMMANDS, command_key


class ConfirmationRequest(BaseModel):
    """The document that sets a value the act does not state (becomes a ``ParameterConfirmed``)."""

    model_config = ConfigDict(extra="forbid")

    program_id: ProgramId
    year: int = Field(ge=2000, le=2100)
    parameter: Identifier
    document: ShortText = Field(min_length=3, description="e.g. «рішення виконавчого комітету від … № …»")


def install(app: FastAPI, gw: Callable[[], Any], approver: Any, program: Callable[[str], Any],
            errors: dict[int | str, dict[str, Any]]) -> None:
    @app.post("/budget/confirmations", status_code=202, tags=["budget"], response_model=CommandAccepted,
              responses={**errors, 503: {"model": ErrorBody}})
    def confirm_parameter(request: ConfirmationRequest, principal: Any = approver) -> CommandAccepted:
        """Confirm a parameter value marked inferred -> `budget-commands` (ParameterConfirmed). Approvers only."""
        found = program(request.program_id)
        parameter = found.local_parameters.get(request.parameter)
        if parameter is None or not any(v.inferred for v in parameter.values):
            raise HTTPException(422, f"{request.program_id} has no value of {request.parameter!r} awaiting "
                                     "confirmation (only values marked inferred are confirmed)")
        who = "".join(c if c.isalnum() or c in "._:-" else "-" for c in principal.name)[:96] or "approver"
        try:
            event = parameter_confirmed(request.program_id, request.year, request.parameter,
                                        document=request.document, confirmed_by=who,
                                        occurred_at=dt.datetime.now(dt.UTC))
        except ValidationError as exc:
            raise HTTPException(422, str(exc.errors()[0]["msg"])[:200]) from None
        key = command_key(event.program_id, event.year)
        gw().publish(BUDGET_COMMANDS, key, event.model_dump_json().encode("utf-8"))
        return CommandAccepted(event_id=event.event_id, event_type=event.event_type, topic=BUDGET_COMMANDS, key=key)
