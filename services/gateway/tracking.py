"""The API's truth about applications: ``GET /applications/{id}`` and ``GET /dead-letters``.

Both read the gateway's status store (``services.gateway.status``), fed by its follower of the
``applications``, ``payout-decisions`` and ``dead-letter`` topics. Personal data in a dead
letter's original message is masked in every answer (``services.gateway.masking``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query

from dopomoga.money import format_uah
from services.gateway.auth import Principal, api_key_check
from services.gateway.masking import mask, mask_text
from services.gateway.models import ERRORS, ErrorBody

APP_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,95}$"


def application_view(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "application_id": row["application_id"],
        "status": row["status"],
        "stage": row.get("stage"),
        "at": row.get("at"),
        "program_id": row.get("program_id"),
        "period": row.get("period"),
    }
    if row["status"] == "dead_lettered":
        out.update(reason_code=row.get("reason_code"), reason=mask_text(row.get("reason") or ""),
                   dead_letter_id=row.get("dead_letter_id"))
    if row["status"] == "decided":
        kop = row.get("payout_kop")
        out["decision"] = {"status": row.get("payout_status"), "final": bool(row.get("final")),
                           "payout_kop": kop, "payout_text": format_uah(kop) if isinstance(kop, int) else None,
                           "coefficient": row.get("coefficient"), "reason_code": row.get("reason_code"),
                           "details": f"/decisions/{row['application_id']}"}
    return out


def dead_letter_view(row: dict[str, Any], *, original: bool = False) -> dict[str, Any]:
    out = {k: row.get(k) for k in ("event_id", "occurred_at", "service", "source_topic", "reason_code",
                                   "application_id", "program_id", "resubmitted_as", "resubmitted_at")}
    out["stage"] = row.get("service")
    out["reason"] = mask_text(row.get("reason") or "")
    if original:
        data = row.get("original")
        out["original_masked"] = mask(data) if data is not None else mask_text((row.get("original_text") or "")[:4000])
    return out


def install(app: FastAPI, gw: Callable[[], Any]) -> None:
    readers = Depends(api_key_check(gw, "viewer", "registry"))

    @app.get("/applications/{application_id}", tags=["operators"], responses={**ERRORS, 404: {"model": ErrorBody}})
    def application_status(application_id: Annotated[str, Path(pattern=APP_ID)],
                           principal: Principal = readers) -> dict[str, Any]:
        """Where an application is: `accepted`, `decided` (with the budget decision) or `dead_lettered`
        (with the reason, the stage that rejected it and the time). Roles `viewer` or `registry`."""
        g = gw()
        row = g.status.application(application_id)
        if row is None and g.ingest.seen(application_id) is not None:  # published here, not yet read back
            row = {"application_id": application_id, "status": "accepted", "stage": "gateway"}
        if row is None:
            raise HTTPException(404, "this application id is not known to the gateway")
        return application_view(row)

    @app.get("/dead-letters", tags=["operators"], responses=ERRORS)
    def list_dead_letters(
        service: Annotated[str | None, Query(max_length=32, description="the stage that rejected it")] = None,
        reason_code: Annotated[str | None, Query(max_length=96)] = None,
        program_id: Annotated[str | None, Query(max_length=96)] = None,
        since: Annotated[str | None, Query(max_length=40, description="ISO 8601 time, UTC")] = None,
        open_only: Annotated[bool, Query(description="only those not yet corrected and resubmitted")] = False,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        per_page: Annotated[int, Query(ge=1, le=200)] = 50,
        principal: Principal = readers,
    ) -> dict[str, Any]:
        """Rejected messages, newest first: reason, stage, time, the original with personal data masked."""
        total, rows = gw().status.dead_letters(service=service, reason_code=reason_code, program_id=program_id,
                                               since=since, open_only=open_only, limit=per_page,
                                               offset=(page - 1) * per_page)
        items = [dead_letter_view(gw().status.dead_letter(r["event_id"]) or r, original=True) for r in rows]
        return {"total": total, "page": page, "per_page": per_page, "items": items}
