"""The ``applications`` topic's boundary: decode strictly, then refuse what cannot be true.

The gateway runs the same plausibility check (``dopomoga.rules.plausibility``) on its clock;
here the receiving time is the record's broker timestamp (now, if the record has none).
"""

from __future__ import annotations

import datetime as dt
import hashlib

from dopomoga.rules.plausibility import check_application
from dopomoga.rules.programs import Catalog
from schemas.events import ApplicationSubmitted
from services.platform.rejections import Source, decode


def received_time(source: Source) -> dt.datetime:
    if source.timestamp:
        return dt.datetime.fromtimestamp(source.timestamp, dt.UTC)
    return dt.datetime.now(dt.UTC)


def admit(raw: bytes | None, source: Source, catalog: Catalog) -> ApplicationSubmitted:
    """The application in ``raw``, or ``Rejection`` / ``Implausible`` (both dead-lettered with a code)."""
    application = decode(ApplicationSubmitted, raw)
    # pydantic-core's JSON parser already refuses lone surrogates (decode: invalid_unicode)
    check_application(application, catalog, received_time(source), scan_text=False)
    return application


def content_fingerprint(application: ApplicationSubmitted) -> str:
    """sha256 of the application's content, without its ``occurred_at`` (a re-send's time may differ)."""
    return hashlib.sha256(application.model_dump_json(exclude={"occurred_at"}).encode("utf-8")).hexdigest()


def conflict_reason(first: tuple[str, str], mark: str) -> str:
    """Both versions by fingerprint (and where the first was read), never their content."""
    return (f"application id already taken with different content: first version sha256:{first[0][:16]} "
            f"(read at {first[1]}), this version sha256:{mark[:16]}; a new application needs a new id")
