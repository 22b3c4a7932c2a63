"""Cities are data: ``programs/<city>/city.yaml`` names the city, who pays, and its districts.

Adding a city is a folder with a ``city.yaml`` and program files (docs/extending.md); no code
changes. The catalog refuses a program whose city has no ``city.yaml``; the treasury takes its
default debtors (paying departments and their Treasury accounts) from here; districts declared
here are the only district values that may become metric labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas.identifiers import normalise_ua_iban

CITY_FILE = "city.yaml"
#: Data files of a city folder that are not program files (the catalog skips them).
CITY_DATA_FILES = frozenset({CITY_FILE, "budget-lines.yaml"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reference(_Strict):
    title: str
    href: str | None = None


class PayingDepartment(_Strict):
    name: Annotated[str, Field(min_length=3, max_length=140)]
    iban: str
    bic: str | None = None
    edrpou: str | None = None
    placeholder: bool = False

    @field_validator("iban")
    @classmethod
    def _iban(cls, value: str) -> str:
        return normalise_ua_iban(value)


class District(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    office_uk: str | None = None
    reference: str | None = None


class City(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9\-]*$")]
    name_uk: str
    council_uk: str
    programme_uk: str | None = None
    reference: Reference | None = None
    paying_departments: dict[str, PayingDepartment] = Field(
        description="'default' for the city; a program id for a program paid by another department"
    )
    districts: list[District] = Field(default_factory=list)

    @field_validator("paying_departments")
    @classmethod
    def _default(cls, value: dict[str, PayingDepartment]) -> dict[str, PayingDepartment]:
        if "default" not in value:
            raise ValueError("paying_departments needs a 'default' entry")
        return value

    @property
    def district_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.districts)


class CityError(ValueError):
    """A city.yaml that cannot be used (file and reason in the message)."""


def load_city(path: Path) -> City:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        city = City.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise CityError(f"{path}: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CityError(f"{path}: {problems}") from None
    if city.id != path.parent.name:
        raise CityError(f"{path}: city id {city.id!r} must match its folder {path.parent.name!r}")
    return city


def load_cities(root: Path) -> dict[str, City]:
    """Every ``<root>/<city>/city.yaml``, by city id."""
    return {path.parent.name: load_city(path) for path in sorted(root.glob(f"*/{CITY_FILE}"))}
