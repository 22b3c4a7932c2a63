"""Builders for test inputs: valid applications with synthetic (never real) people."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from schemas.events import Applicant, ApplicationSubmitted, Payment

UTC = dt.UTC
# A valid UA IBAN (checksum correct; bank code 322313) used for synthetic payees.
TEST_IBAN = "UA213223130000026007233566001"


def rnokpp(seed: str | int) -> str:
    """A checksum-valid РНОКПП derived from ``seed`` (synthetic, not a real person)."""
    from stdnum.ua import rntrc

    digits = str(int(hashlib.sha256(str(seed).encode()).hexdigest(), 16))[:9].rjust(9, "1")
    return digits + rntrc.calc_check_digit(digits)


def edrpou(seed: str | int) -> str:
    """A checksum-valid ЄДРПОУ code derived from ``seed`` (via python-stdnum)."""
    from stdnum.ua import edrpou as std

    base = str(int(hashlib.sha256(f"e{seed}".encode()).hexdigest(), 16))[:7].rjust(7, "1")
    return base + std.calc_check_digit(base)


def passport(seed: str | int) -> str:
    """A passport booklet number (two Cyrillic capitals, six digits) derived from ``seed``."""
    digits = str(int(hashlib.sha256(f"p{seed}".encode()).hexdigest(), 16))[:6]
    return "АБ" + digits


def application(
    program_id: str,
    facts: dict[str, Any],
    *,
    submitted_on: dt.date | str = "2023-04-01",
    application_id: str | None = None,
    birth_date: dt.date | str | None = None,
    period: str | None = None,
    person: str | int = 1,
    id_kind: str = "rnokpp",
    household_id: str | None = None,
    district: str | None = None,
    channel: str = "bank",
    name: str = "Тестова Особа",
) -> ApplicationSubmitted:
    submitted = dt.date.fromisoformat(submitted_on) if isinstance(submitted_on, str) else submitted_on
    birth = dt.date.fromisoformat(birth_date) if isinstance(birth_date, str) else birth_date
    identifier = {"rnokpp": rnokpp, "edrpou": edrpou, "passport": passport}[id_kind](person)
    app_id = application_id or f"app-{program_id.split('.')[-1]}-{person}-{submitted.isoformat()}-{period or ''}".rstrip("-")
    return ApplicationSubmitted(
        event_id=f"ev-{app_id}",
        occurred_at=dt.datetime.combine(submitted, dt.time(9, 0), tzinfo=UTC),
        application_id=app_id,
        program_id=program_id,
        registry="test-registry",
        submitted_on=submitted,
        period=period,
        applicant=Applicant(
            id_kind=id_kind, id=identifier, name=name, birth_date=birth, household_id=household_id, district=district
        ),
        payment=Payment(channel=channel, iban=TEST_IBAN if channel in ("bank", "treasury") else None),
        facts=facts,
    )


def program_root(root, *cities: str):
    """A programs folder for a test catalog: the global parameters and each city's ``city.yaml``."""
    import shutil

    from dopomoga.rules.programs import PROGRAMS_DIR

    shutil.copytree(PROGRAMS_DIR / "parameters", root / "parameters", dirs_exist_ok=True)
    for city in cities:
        (root / city).mkdir(exist_ok=True)
        shutil.copy(PROGRAMS_DIR / city / "city.yaml", root / city / "city.yaml")
    return root
