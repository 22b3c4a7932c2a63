"""Who pays: the debtor (paying department and its Treasury account) of each register.

The defaults come from each city's ``programs/<city>/city.yaml`` (``paying_departments``); the
shipped ones are **placeholders**: the departments' real names, but synthetic Treasury IBANs
(bank code 820172 = Державна казначейська служба України, checksums valid, accounts invented).
A deployment sets its own accounts in a JSON file named by ``DOPOMOGA_TREASURY_DEBTORS`` (or
``--debtors``)::

    {"zhytomyr": {"name": "Департамент ...", "iban": "UA..", "bic": null, "edrpou": "..."},
     "zhytomyr.centenarians": {...}}

A program id entry wins over its city's entry (the city is the program id's first part),
which wins over ``"default"``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from schemas.identifiers import normalise_ua_iban


@dataclass(frozen=True)
class Debtor:
    name: str
    iban: str
    bic: str | None = None
    edrpou: str | None = None
    placeholder: bool = False

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "iban": self.iban,
            "bic": self.bic,
            "edrpou": self.edrpou,
            "placeholder": self.placeholder,
        }


def default_debtors(root: Path | None = None) -> dict[str, Debtor]:
    """Each city's paying departments from ``programs/<city>/city.yaml`` (cities are data).

    Keyed by city id, and by program id where a city names a department for one program.
    """
    from dopomoga.cities import load_cities
    from dopomoga.rules.program_file import PROGRAMS_DIR

    debtors: dict[str, Debtor] = {}
    for city in load_cities(root or PROGRAMS_DIR).values():
        for key, department in city.paying_departments.items():
            debtors[city.id if key == "default" else key] = Debtor(
                name=department.name[:70],
                iban=department.iban,
                bic=department.bic,
                edrpou=department.edrpou,
                placeholder=department.placeholder,
            )
    return debtors


DEFAULT_DEBTORS: dict[str, Debtor] = default_debtors()


class DebtorError(ValueError):
    pass


def load_debtors(path: Path | str | None = None) -> dict[str, Debtor]:
    """Defaults, overridden by the JSON file at ``path`` or ``$DOPOMOGA_TREASURY_DEBTORS``."""
    debtors = dict(DEFAULT_DEBTORS)
    source = path or os.environ.get("DOPOMOGA_TREASURY_DEBTORS")
    if not source:
        return debtors
    try:
        raw = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DebtorError(f"debtor file {source} cannot be read: {exc}") from None
    if not isinstance(raw, dict):
        raise DebtorError(f"debtor file {source}: expected an object keyed by city or program id")
    for key, body in raw.items():
        if not isinstance(body, dict) or not body.get("name") or not body.get("iban"):
            raise DebtorError(f"debtor file {source}: entry {key!r} needs 'name' and 'iban'")
        try:
            iban = normalise_ua_iban(str(body["iban"]))
        except ValueError as exc:
            raise DebtorError(f"debtor file {source}: entry {key!r}: {exc}") from None
        debtors[key] = Debtor(
            name=str(body["name"])[:70],
            iban=iban,
            bic=body.get("bic") or None,
            edrpou=body.get("edrpou") or None,
            placeholder=bool(body.get("placeholder", False)),
        )
    return debtors


def debtor_for(program_id: str, debtors: dict[str, Debtor] | None = None) -> Debtor:
    debtors = debtors if debtors is not None else load_debtors()
    city = program_id.split(".", 1)[0]
    for key in (program_id, city, "default"):
        if key in debtors:
            return debtors[key]
    raise DebtorError(f"no debtor configured for program {program_id!r}")
