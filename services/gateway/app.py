"""Operator and registry gateway (FastAPI): ``uvicorn services.gateway.app:app``.

(About 455 lines: the API's routes in one place; the console, auth, ingest, limits, status store,
docs assets and confirmations each have their own module beside it.)

- registries ``POST /applications`` (one or a batch) -> topic ``applications`` (202, idempotent);
- operators read programs, parameters, budgets and decisions (role ``viewer``);
- budget administrators set allocations and close periods -> topic ``budget-commands``;
- ``/metrics`` (Prometheus) and ``/healthz`` need no key.

Authentication: header ``X-API-Key`` (see ``services/gateway/auth.py`` for roles and config).
Bad input is answered 4xx with a readable message; values sent by the caller (which may be
personal data) are never echoed in errors or logged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import threading
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from dopomoga.budget.commands import allocation_set, period_closed
from dopomoga.budget.location import open_ledger
from dopomoga.money import format_uah, kop_to_decimal_str
from dopomoga.rules.parameters import ParameterError
from dopomoga.rules.programs import Catalog
from schemas.events import (
    ApplicationSubmitted,
    EntitlementCalculated,
    PayoutDecided,
)
from services.gateway.auth import FailureLimiter, KeyStore, Principal, api_key_check
from services.gateway.confirmations import install as install_confirmations
from services.gateway.docs_assets import install as install_docs
from services.gateway.ingest import IngestLog, admit_allocation, admit_applications, open_ingest_log
from services.gateway.limits import BodyLimit
from services.gateway.masking import mask
from services.gateway.models import (
    ERRORS,
    AllocationRequest,
    CommandAccepted,
    ErrorBody,
    IngestResponse,
    PeriodCloseRequest,
)
from services.gateway.whatif import install as install_whatif
from services.gateway.wiring import install as install_wiring
from services.platform.gauges import allowed_labels, update_budget_gauges
from services.platform.observability import EVENTS_PRODUCED
from services.platform.rejections import reason_code_of
from services.platform.topology import BUDGET_COMMANDS, command_key

SERVICE = "gateway"
MAX_BATCH = 1000
SEND_TIMEOUT_S = float(os.environ.get("DOPOMOGA_GATEWAY_SEND_TIMEOUT", "10"))

REQUESTS = Counter(
    "dopomoga_gateway_requests_total", "Gateway requests by route template, method and status",
    ["route", "method", "status"],
)

TAGS = [
    {"name": "registries", "description": "Applications and claims from registries (role `registry`)."},
    {"name": "operators", "description": "Programs, parameters, budgets and decisions (role `viewer`)."},
    {"name": "budget", "description": "Allocations and period closes (role `budget_admin`)."},
    {"name": "service", "description": "Health and metrics (no key)."},
]


# -- the application -----------------------------------------------------------------------------

class Gateway:
    """Dependencies of the app, injectable for tests (producer, ledger, keys, ingest log)."""

    def __init__(self, *, catalog: Catalog | None = None, keys: KeyStore | None = None,
                 producer: Any = None, producer_factory: Callable[[], Any] | None = None,
                 ledger: Any = None, ledger_factory: Callable[[], Any] | None = None,
                 ingest_log: IngestLog | None = None):
        self.catalog = catalog or Catalog.load()
        self.keys = keys or KeyStore.from_env()
        self._producer = producer
        self._probe_real = producer is None  # an injected producer (tests) has no broker to probe
        self._producer_factory = producer_factory or _kafka_producer
        self._ledger = ledger
        self._ledger_factory = ledger_factory or _open_ledger
        if ingest_log is None:
            from services.platform.config import settings

            ingest_log = open_ingest_log(settings(SERVICE).var_dir)  # PostgreSQL when shared (ingest_url)
        self.ingest = ingest_log
        self.limiter = FailureLimiter()
        self._lock, self._ledger_lock = threading.Lock(), threading.Lock()
        if self.keys.development:
            logging.getLogger("dopomoga.gateway").warning(
                "DOPOMOGA_DEV is set: development API keys and users are accepted; never in production")

    def producer(self) -> Any:
        with self._lock:
            if self._producer is None:
                try:
                    self._producer = self._producer_factory()
                except Exception as exc:
                    raise HTTPException(503, f"the broker is not reachable: {type(exc).__name__}") from None
            return self._producer

    def broker_reachable(self) -> bool | None:
        """Does a bootstrap address accept a TCP connection (0.5 s each)? ``None`` with an injected
        producer (tests): nothing to probe. A dead broker is reported on /healthz (issue 15)."""
        if not self._probe_real or self._producer_factory is not _kafka_producer:
            return None
        import socket

        from services.platform.config import settings

        for address in settings(SERVICE).bootstrap.split(","):
            host, _, port = address.strip().rpartition(":")
            try:
                with socket.create_connection((host or "127.0.0.1", int(port)), timeout=0.5):
                    return True
            except (OSError, ValueError):
                continue
        return False

    def ledger(self) -> Any:
        with self._ledger_lock:  # not the producer's lock: reads never wait behind an unreachable broker
            if self._ledger is None:
                try:
                    self._ledger = self._ledger_factory()
                except Exception as exc:
                    raise HTTPException(503, f"the budget ledger is not available: {type(exc).__name__}") from None
            return self._ledger

    def publish(self, topic: str, key: str, value: bytes) -> None:
        self.publish_many(topic, [(key, value)])

    def publish_many(self, topic: str, items: list[tuple[str, bytes]]) -> None:
        """Send every record at once, then wait for all acknowledgements (a batch in one round trip)."""
        if not items:
            return
        producer = self.producer()
        try:
            futures = [producer.send(topic, key=key.encode("utf-8"), value=value) for key, value in items]
            for future in futures:
                if future is not None and hasattr(future, "get"):
                    future.get(timeout=SEND_TIMEOUT_S)
        except HTTPException:
            raise
        except Exception as exc:
            raise HTTPException(503, f"publishing to {topic} failed: {type(exc).__name__}; retry later") from None
        EVENTS_PRODUCED.labels(SERVICE, topic).inc(len(items))


def _kafka_producer() -> Any:
    from kafka import KafkaProducer

    from services.platform.config import settings

    return KafkaProducer(bootstrap_servers=settings(SERVICE).bootstrap.split(","), acks="all", linger_ms=5,
                         client_id="dopomoga-gateway", request_timeout_ms=int(SEND_TIMEOUT_S * 1000))


def _open_ledger() -> Any:
    from services.platform.config import ledger_app_id

    return open_ledger(app_id=ledger_app_id())


def _messages(exc: ValidationError | RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        out.append({"loc": loc, "msg": str(err.get("msg", "invalid")), "type": err.get("type", "")})
    return out[:50]


def _summary(errors: list[dict[str, Any]]) -> str:
    parts = [f"{'.'.join(e['loc']) or '(body)'}: {e['msg']}" for e in errors[:5]]
    more = f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def _uah(kop: Any) -> Any:
    return {"kop": kop, "uah": kop_to_decimal_str(kop), "text": format_uah(kop)} if isinstance(kop, int) else kop


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def create_app(gateway: Gateway | None = None) -> FastAPI:
    holder: dict[str, Gateway] = {}

    def gw() -> Gateway:
        if "gw" not in holder:
            holder["gw"] = gateway or Gateway()
        return holder["gw"]

    if gateway is not None:
        holder["gw"] = gateway

    app = FastAPI(
        title="Dopomoga gateway",
        version="1.0.0",
        description=(
            "Registries submit applications; operators read programs, parameters, budgets and decisions "
            "(with the trace and the Ukrainian explanation); budget administrators set allocations and close "
            "months. Money is integer kopiyky. Authenticate with the `X-API-Key` header."
        ),
        openapi_tags=TAGS,
        docs_url=None,  # served from the package by docs_assets.install (no CDN)
        redoc_url=None,
    )
    install_docs(app)
    def require(role: str) -> Callable[..., Principal]:
        return api_key_check(gw, role)  # X-API-Key with the role, lockout on failures (services/gateway/auth.py)

    viewer = Depends(require("viewer"))
    admin = Depends(require("budget_admin"))
    registry = Depends(require("registry"))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _messages(exc)
        return JSONResponse(status_code=422, content={"error": "invalid_request", "message": _summary(errors),
                                                      "reason_code": reason_code_of(exc.errors()), "errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                 409: "conflict", 413: "too_large", 429: "too_many_requests", 503: "unavailable"}
        return JSONResponse(status_code=exc.status_code, headers=getattr(exc, "headers", None),
                            content={"error": codes.get(exc.status_code, "error"), "message": str(exc.detail)})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - a bug
        return JSONResponse(status_code=500, content={"error": "internal", "message": type(exc).__name__})

    @app.middleware("http")
    async def _count(request: Request, call_next):
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "(unmatched)")  # never the raw path: ids are personal data
        REQUESTS.labels(template, request.method, str(response.status_code)).inc()
        return response

    def _program(program_id: str):
        program = gw().catalog.programs.get(program_id)
        if program is None:
            raise HTTPException(404, f"unknown program {program_id!r}"[:200])
        return program

    # -- registries ---------------------------------------------------------------------------
    @app.post("/applications", status_code=202, tags=["registries"], response_model=IngestResponse,
              responses={**ERRORS, 409: {"model": ErrorBody, "description": "an id reused for other content"},
                         503: {"model": ErrorBody, "description": "the broker is unavailable"}})
    def submit_applications(
        body: Annotated[
            ApplicationSubmitted | Annotated[list[ApplicationSubmitted], Field(min_length=1, max_length=MAX_BATCH)],
            Body(description=f"one application, or a batch of up to {MAX_BATCH}"),
        ],
        principal: Principal = registry,
    ) -> IngestResponse:
        """Validate and publish applications to `applications` (key: application id). Idempotent per id."""
        g = gw()  # plausibility, size, atomic id claims, publishing: services/gateway/ingest.py
        return admit_applications(body if isinstance(body, list) else [body], catalog=g.catalog, log=g.ingest,
                                  publish=g.publish, publish_many=g.publish_many)  # type: ignore[return-value]  # or a JSONResponse refusal

    # -- operators ----------------------------------------------------------------------------
    @app.get("/programs", tags=["operators"], responses=ERRORS)
    def list_programs(principal: Principal = viewer) -> list[dict[str, Any]]:
        """Every program: title, legal basis, budget policy, rule versions."""
        return [
            {
                "id": p.id,
                "title_uk": p.spec.title.uk,
                "title_en": p.spec.title.en,
                "city": p.spec.city,
                "legal_basis": p.spec.legal_basis.model_dump(mode="json"),
                "payee": p.spec.payee,
                "payment_channels": list(p.spec.payment_channels),
                "frequency": p.spec.frequency.kind,
                "budget_policy": p.spec.budget.policy,
                "versions": [v.effective_from.isoformat() for v in p.versions],
                "rules_hash": p.rules_hash,
            }
            for p in sorted(gw().catalog.programs.values(), key=lambda p: p.id)
        ]

    @app.get("/programs/{program_id}", tags=["operators"], responses={**ERRORS, 404: {"model": ErrorBody}})
    def get_program(program_id: Annotated[str, Path(max_length=96)], principal: Principal = viewer) -> dict[str, Any]:
        """One program as written: conditions, amounts and every rule's clause (legal reference)."""
        program = _program(program_id)
        body = program.spec.model_dump(mode="json", by_alias=True)
        body["rules_hash"] = program.rules_hash
        body["parameters_read"] = {
            v.effective_from.isoformat(): list(v.parameter_names) for v in program.versions
        }
        return body

    @app.get("/parameters", tags=["operators"], responses=ERRORS)
    def get_parameters(
        as_of: Annotated[dt.date | None, Query(description="date (YYYY-MM-DD); default today")] = None,
        principal: Principal = viewer,
    ) -> dict[str, Any]:
        """Global parameters (ПМ, minimum wage...) in force on a date, each with its law."""
        on = as_of or dt.date.today()
        params = gw().catalog.parameters
        values, missing = [], []
        for name in params.names():
            try:
                value = params.at(name, on)
            except ParameterError:
                missing.append(name)
                continue
            values.append({
                "name": name,
                "description_uk": params[name].description_uk,
                "unit": value.unit,
                "value": value.value,
                "value_uah": kop_to_decimal_str(value.value) if value.unit == "UAH" else None,
                "effective_from": value.effective_from.isoformat(),
                "reference": value.reference,
            })
        return {"as_of": on.isoformat(), "parameters": values, "not_yet_in_force": missing}

    @app.get("/budget/need-report", tags=["operators"], responses=ERRORS)
    def need_report(
        year: Annotated[int, Query(ge=2000, le=2100)],
        program_id: Annotated[str | None, Query(max_length=96)] = None,
        principal: Principal = viewer,
    ) -> dict[str, Any]:
        """Per program and month: need, allocation, paid, shortfall (for the council's budget)."""
        if program_id is not None:
            _program(program_id)
        rows = [_plain(r) for r in gw().ledger().need_report(year, program_id=program_id)]
        totals = {k: sum(r.get(k, 0) for r in rows if isinstance(r, dict))
                  for k in ("need_kop", "allocation_kop", "paid_kop", "shortfall_kop")}
        return {"year": year, "program_id": program_id, "rows": rows, "totals": totals}

    @app.get("/budget/{program_id}/{period}", tags=["operators"], responses={**ERRORS, 404: {"model": ErrorBody}})
    def budget_status(
        program_id: Annotated[str, Path(max_length=96)],
        period: Annotated[str, Path(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")],
        district: Annotated[str | None, Query(max_length=64)] = None,
        principal: Principal = viewer,
    ) -> dict[str, Any]:
        """Allocation, available, reserved, paid, need and coefficient of one month."""
        _program(program_id)
        ledger = gw().ledger()
        status = _plain(ledger.status(program_id, period, district))
        try:
            update_budget_gauges(ledger, [(program_id, period, district)], allowed_labels(gw().catalog))  # declared only
        except Exception:  # gauges are a convenience; the answer does not depend on them
            pass
        status["in_uah"] = {k: _uah(v) for k, v in status.items() if k.endswith("_kop")}
        return status

    @app.get("/decisions/{application_id}", tags=["operators"], responses={**ERRORS, 404: {"model": ErrorBody}})
    def get_decision(
        application_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,95}$")],
        principal: Principal = viewer,
    ) -> dict[str, Any]:
        """The latest payout decision, the entitlement with its trace, and the explanations in Ukrainian."""
        ledger = gw().ledger()
        payout: PayoutDecided | None = ledger.payout(application_id)
        entitlement: EntitlementCalculated | None = ledger.entitlement(application_id)
        if payout is None and entitlement is None:
            raise HTTPException(404, "no decision for this application id; GET /applications/{id} says whether "
                                "it was accepted, is still on its way or was dead-lettered (with the reason)")
        explanation = " ".join(
            text for text in (entitlement.explanation_uk if entitlement else None,
                              payout.explanation_uk if payout else None) if text
        )
        return mask({  # never a full РНОКПП, name or IBAN in an API answer (services/gateway/masking.py)
            "application_id": application_id,
            "status": payout.status if payout else None,
            "final": payout.final if payout else False,
            "payout_kop": payout.payout_kop if payout else None,
            "payout": _uah(payout.payout_kop) if payout else None,
            "explanation_uk": explanation,
            "payout_decision": payout.model_dump(mode="json") if payout else None,
            "entitlement": entitlement.model_dump(mode="json", exclude={"application"}) if entitlement else None,
        })

    # -- budget administrators ----------------------------------------------------------------
    @app.post("/budget/allocations", status_code=202, tags=["budget"], response_model=CommandAccepted,
              responses={**ERRORS, 503: {"model": ErrorBody}})
    def set_allocation(request: AllocationRequest, principal: Principal = admin) -> CommandAccepted:
        """Set or amend a program's annual appropriation -> `budget-commands` (AllocationSet)."""
        _program(request.program_id)
        try:
            event = allocation_set(occurred_at=dt.datetime.now(dt.UTC), **request.model_dump())
        except ValidationError as exc:
            errors = _messages(exc)
            raise HTTPException(422, _summary(errors)) from None
        if (refused := admit_allocation(event, gw().ingest)) is not None:  # amendment id reused: 409
            return refused  # type: ignore[return-value]
        key = command_key(event.program_id, event.year, event.district)
        gw().publish(BUDGET_COMMANDS, key, event.model_dump_json().encode("utf-8"))
        return CommandAccepted(event_id=event.event_id, event_type=event.event_type, topic=BUDGET_COMMANDS, key=key)

    @app.post("/budget/periods/close", status_code=202, tags=["budget"], response_model=CommandAccepted,
              responses={**ERRORS, 503: {"model": ErrorBody}})
    def close_period(request: PeriodCloseRequest, principal: Principal = admin) -> CommandAccepted:
        """Close a month -> `budget-commands` (PeriodClosed). Closing twice is harmless (same event id)."""
        _program(request.program_id)
        closed_by = request.closed_by or "".join(c if c.isalnum() or c in "._:-" else "-" for c in principal.name)[:96]
        try:
            event = period_closed(request.program_id, request.period, request.district,
                                  closed_by=closed_by or "operator", occurred_at=dt.datetime.now(dt.UTC))
        except ValidationError as exc:
            raise HTTPException(422, _summary(_messages(exc))) from None
        key = command_key(event.program_id, event.period, event.district)
        gw().publish(BUDGET_COMMANDS, key, event.model_dump_json().encode("utf-8"))
        return CommandAccepted(event_id=event.event_id, event_type=event.event_type, topic=BUDGET_COMMANDS, key=key)

    install_confirmations(app, gw, Depends(require("approver")), _program, ERRORS)  # POST /budget/confirmations
    install_whatif(app, gw)  # POST /whatif, GET /whatif/{job} and its downloads (services/gateway/whatif.py)

    # -- service ----------------------------------------------------------------------------------
    @app.get("/healthz", tags=["service"])
    def healthz() -> JSONResponse:
        """The catalog is loaded and the broker answers: 200 ``ok``; 503 ``broker_unreachable`` when no
        bootstrap address accepts a connection (applications cannot be taken). Says whether
        development keys are in use."""
        g = gw()
        reachable = g.broker_reachable()
        body = {"status": "ok" if reachable is not False else "broker_unreachable",
                "broker": {None: "not checked", True: "reachable", False: "unreachable"}[reachable],
                "programs": len(g.catalog.programs), "development_keys": g.keys.development}
        return JSONResponse(body, status_code=503 if reachable is False else 200)

    @app.get("/metrics", tags=["service"], response_class=Response)
    def metrics() -> Response:
        """Prometheus metrics of this process (no personal data in labels)."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # GET /applications/{id}, GET /dead-letters, the status follower and the console (services/gateway/wiring.py)
    install_wiring(app, gw, follow=gateway is None)
    app.add_middleware(BodyLimit)  # 413 before reading an oversized body (services/gateway/limits.py)
    return app


app = create_app()
