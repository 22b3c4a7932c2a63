"""Rejections: decoding an event with a reason for every refusal, and the dead-letter record.

Shared by every deployable: the Faust services (``services.platform.runtime``) and the
treasury follower (kafka-python) publish the same ``Rejected`` record for an input they cannot
process, with the original bytes and a reason code, never the input's values in the reason.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from dopomoga.ids import decision_id
from schemas.events import SCHEMA_VERSION, TRUSTED, Rejected
from services.platform.topology import MAX_MESSAGE_BYTES

M = TypeVar("M", bound=BaseModel)
UTC = dt.UTC
#: Original bytes kept in a dead-letter record (the whole message up to this size).
MAX_ORIGINAL_KEPT = 640 * 1024
#: pydantic-core's JSON errors for bytes or escapes that are not Unicode scalar values.
_UNICODE_ERRORS = ("surrogate", "unicode code point", "hex escape", "UTF-8", "utf-8")


class Rejection(Exception):
    """An input this service cannot process; it goes to ``dead-letter`` with the reason."""

    def __init__(self, reason_code: str, reason: str):
        super().__init__(reason)
        self.reason_code = reason_code
        self.reason = reason


def _where(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(event)"


def reason_code_of(errors: list[dict]) -> str:
    """The reason code of pydantic validation errors (shared with the gateway's 422 answers)."""
    for err in errors:
        loc = tuple(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", ""))
        if "schema_version" in loc:
            return "unsupported_schema_version"
        if err.get("type") == "string_unicode":
            return "invalid_unicode"
        if "iban" in loc or "IBAN" in msg:
            return "invalid_iban"
        if {"applicant", "payee"} & set(loc) and any(w in msg for w in ("РНОКПП", "ЄДРПОУ", "passport")):
            return "invalid_identifier"
        if err.get("type") == "int_type" and isinstance(err.get("input"), float):
            return "float_money"
    return "invalid_event"


def classify_validation(exc: ValidationError) -> Rejection:
    """A reason code and a readable reason, without echoing input values (personal data)."""
    errors = exc.errors(include_url=False, include_input=True)
    code = reason_code_of(errors)  # type: ignore[arg-type]
    reason = "; ".join(f"{_where(err['loc'])}: {err['msg']}" for err in errors[:5])
    if len(errors) > 5:
        reason += f"; and {len(errors) - 5} more"
    return Rejection(code, reason[:1900])


def decode(model: type[M], raw: bytes | None, *, trusted: bool = False) -> M:
    """Bytes -> event, or ``Rejection`` (oversized, invalid_json, unsupported_schema_version, ...).

    ``trusted=True`` only for topics our own services produce (``eligibility-decisions``,
    ``entitlements``, ``payout-decisions``): identifiers and IBANs were checked where the
    application entered, so their check-digit/registry checks are skipped (``schemas.events.TRUSTED``).
    """
    if raw is None:
        raise Rejection("empty_message", "the message has no value")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise Rejection("oversized", f"the message is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES} bytes")
    try:
        return model.model_validate_json(raw, context=TRUSTED if trusted else None)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            if any(word in first["msg"] for word in _UNICODE_ERRORS):
                raise Rejection("invalid_unicode", f"not valid Unicode: {first['msg']}") from None
            raise Rejection("invalid_json", f"not valid JSON: {first['msg']}") from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise Rejection("invalid_json", "not valid JSON") from None
        if not isinstance(data, dict):
            raise Rejection("invalid_json", f"expected a JSON object, got {type(data).__name__}") from None
        version = data.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            shown = version if isinstance(version, int | str) and len(str(version)) < 20 else "?"
            raise Rejection(
                "unsupported_schema_version",
                f"schema_version {shown!r} is not supported; this service reads version {SCHEMA_VERSION}",
            ) from None
        raise classify_validation(exc) from None


@dataclass(frozen=True, slots=True)
class Source:
    topic: str
    partition: int | None
    offset: int | None
    timestamp: float | None = None


def dead_letter(service: str, source: Source, raw: bytes | None, rejection: Rejection) -> Rejected:
    """The Rejected record of an input; its id is derived from (service, topic, partition, offset)."""
    original = raw or b""
    reason = rejection.reason
    if len(original) > MAX_ORIGINAL_KEPT:
        reason = f"{reason} (original truncated to the first {MAX_ORIGINAL_KEPT} of {len(original)} bytes)"
        original = original[:MAX_ORIGINAL_KEPT]
    when = dt.datetime.fromtimestamp(source.timestamp, UTC) if source.timestamp else dt.datetime.now(UTC)
    ident = decision_id(f"rejected:{service}", f"{source.topic}:{source.partition}:{source.offset}")
    return Rejected(
        event_id=ident,
        occurred_at=when,
        service=service,
        source_topic=source.topic,
        source_partition=source.partition,
        source_offset=source.offset,
        reason_code=rejection.reason_code,
        reason=reason[:2000],
        original_b64=base64.b64encode(original).decode("ascii"),
    )
