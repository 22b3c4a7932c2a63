"""Identifiers checked at the boundary: РНОКПП, passport, ЄДРПОУ, UA IBAN.

Field libraries do the checking (python-stdnum, schwifty); this module only
chooses which check applies to which identifier kind.
"""

from __future__ import annotations

import re
from typing import Literal

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.ua import edrpou, rntrc

IdKind = Literal["rnokpp", "passport", "edrpou"]

# Passport of a citizen of Ukraine: the booklet (two Cyrillic capitals + six digits)
# or the ID card (nine digits). People who refused a РНОКПП on religious grounds are
# identified by it instead (domain-facts.md §3).
_PASSPORT_BOOKLET = re.compile(r"^[А-ЩЬЮЯҐЄІЇ]{2}\d{6}$")
_PASSPORT_CARD = re.compile(r"^\d{9}$")


def normalise_identifier(kind: IdKind, value: str) -> str:
    """Return the canonical form of an identifier or raise ValueError with a clear reason."""
    raw = value.strip()
    if kind == "rnokpp":
        try:
            return rntrc.validate(raw)
        except StdnumError as exc:
            raise ValueError(f"РНОКПП is not valid ({exc.message})") from None
    if kind == "edrpou":
        try:
            return edrpou.validate(raw)
        except StdnumError as exc:
            raise ValueError(f"ЄДРПОУ code is not valid ({exc.message})") from None
    if kind == "passport":
        compact = raw.replace(" ", "").upper()
        if _PASSPORT_BOOKLET.match(compact) or _PASSPORT_CARD.match(compact):
            return compact
        raise ValueError("passport must be two Cyrillic capitals and six digits, or a nine-digit ID card")
    raise ValueError(f"unknown identifier kind {kind!r}")


def normalise_ua_iban(value: str) -> str:
    """Validate a Ukrainian IBAN (29 characters, checksum) and return it compact."""
    try:
        iban = IBAN(value)
    except SchwiftyException as exc:
        # schwifty's own message can quote the value ("Invalid characters in IBAN UA…"): a fixed
        # text per kind of error instead, so no reason, answer or log ever carries the IBAN.
        raise ValueError(f"IBAN is not valid ({_IBAN_ERRORS.get(type(exc).__name__, 'malformed')})") from None
    if iban.country_code != "UA":
        raise ValueError("IBAN must be Ukrainian (UA)")
    return iban.compact


_IBAN_ERRORS = {
    "InvalidChecksumDigits": "checksum digits do not match",
    "InvalidLength": "wrong length",
    "InvalidCountryCode": "unknown country code",
    "InvalidStructure": "characters or structure not allowed",
    "InvalidBankCode": "unknown bank code",
    "InvalidBranchCode": "unknown branch code",
    "InvalidAccountCode": "invalid account number",
    "InvalidBBANChecksum": "national checksum does not match",
    "NationalChecksumNotVerified": "national checksum not verified",
}
