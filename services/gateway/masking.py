"""Masking personal data for people who may not see it (viewers) and for every API answer.

A РНОКПП (10 digits), a passport number, an IBAN and a person's name are shown as a hint only
(``********34``, ``UA** … 1234``, ``І. П***``). The full value is shown in the console to a role
allowed to reveal it, and every reveal is written to the audit trail (``services.gateway.users``).
"""

from __future__ import annotations

import re
from typing import Any

RNOKPP = re.compile(r"(?<![0-9A-Za-z])\d{10}(?![0-9A-Za-z])")
IBAN = re.compile(r"(?<![0-9A-Za-z])UA\d{2}(?:\s?\d){25}(?![0-9A-Za-z])", re.I)
#: Roles that may reveal a masked value (each reveal is audited); viewers and approvers may not.
REVEAL_ROLES = frozenset({"registry", "budget_admin"})
PERSONAL_KEYS = {"iban": "iban", "id": "id", "name": "name", "birth_date": "date"}
PERSON_PARENTS = {"applicant", "payee"}


def mask_id(value: str) -> str:
    text = str(value)
    return "*" * max(0, len(text) - 2) + text[-2:] if len(text) > 2 else "**"


def mask_iban(value: str) -> str:
    text = re.sub(r"\s", "", str(value))
    return f"{text[:2]}** **** … {text[-4:]}" if len(text) > 8 else "****"


def mask_name(value: str) -> str:
    parts = str(value).split()
    return " ".join(p[0] + "***" for p in parts if p) or "***"


def mask_text(text: str) -> str:
    """Any РНОКПП-like 10-digit number or Ukrainian IBAN inside free text."""
    text = IBAN.sub(lambda m: mask_iban(m.group(0)), text)
    return RNOKPP.sub(lambda m: mask_id(m.group(0)), text)


def mask(value: Any, parent: str | None = None) -> Any:
    """A copy of a JSON-like value with personal data masked (keys of a person, and any text)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(item, str) and key == "iban":
                out[key] = mask_iban(item)
            elif isinstance(item, str) and parent in PERSON_PARENTS and key == "id":
                out[key] = mask_id(item)
            elif isinstance(item, str) and parent in PERSON_PARENTS and key == "name":
                out[key] = mask_name(item)
            elif isinstance(item, str) and parent in PERSON_PARENTS and key == "birth_date":
                out[key] = item[:4] + "-**-**"
            else:
                out[key] = mask(item, key)
        return out
    if isinstance(value, list):
        return [mask(v, parent) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value
