"""Parameters versioned by effective date, each value with its legal reference.

File format (``programs/parameters/*.yaml``, and the ``parameters:`` block of a program)::

    pm_children_under_6:
      description_uk: Прожитковий мінімум для дітей віком до 6 років
      unit: UAH                 # UAH (held as kopiyky) | count | bp (1/100 of a percent) | m | days
      values:
        2023-01-01: {value: "2272", reference: "Закон України № 2710-IX від 03.11.2022, ст. 7"}

A value applies from its date until the next one. Asking for a date before the first
value is an error, never a silent zero.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dopomoga.money import uah_to_kop

UNITS = {"UAH", "count", "bp", "m", "days", "years"}


class ParameterError(ValueError):
    """A parameter file is malformed, or a value is asked for before it exists."""


@dataclass(frozen=True, slots=True)
class ParameterValue:
    name: str
    value: int  # kopiyky for UAH, otherwise the unit's integer
    unit: str
    effective_from: dt.date
    reference: str  # the legal reference a citizen may read
    source: str | None = None  # internal pointer (seed lines, spec ids): operators only
    # A value the act does not state (worked out from the department's figures): a decision that
    # uses it is pending confirmation until an operator confirms it with a document reference.
    inferred: bool = False
    confirmed_by: str | None = None

    @property
    def pending_confirmation(self) -> bool:
        return self.inferred and not self.confirmed_by


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    unit: str
    description_uk: str
    dates: tuple[dt.date, ...]
    values: tuple[ParameterValue, ...]

    def at(self, on: dt.date) -> ParameterValue:
        index = bisect.bisect_right(self.dates, on) - 1
        if index < 0:
            raise ParameterError(
                f"parameter {self.name!r} has no value on {on.isoformat()}: "
                f"its first value takes effect on {self.dates[0].isoformat()}"
            )
        return self.values[index]


def _parse_date(raw: Any, where: str) -> dt.date:
    if isinstance(raw, dt.date):
        return raw
    try:
        return dt.date.fromisoformat(str(raw))
    except ValueError:
        raise ParameterError(f"{where}: {raw!r} is not a date (YYYY-MM-DD)") from None


def parse_parameters(raw: Any, source: str) -> dict[str, Parameter]:
    """Parse a mapping of parameter definitions; ``source`` names the file for errors."""
    if not isinstance(raw, dict):
        raise ParameterError(f"{source}: parameters must be a mapping of name to definition")
    result: dict[str, Parameter] = {}
    for name, body in raw.items():
        where = f"{source}: parameter {name!r}"
        if not isinstance(name, str) or not name.isidentifier() or not name.islower():
            raise ParameterError(f"{where}: name must be a lower-case identifier (used in CEL)")
        if not isinstance(body, dict):
            raise ParameterError(f"{where}: definition must be a mapping")
        unit = body.get("unit")
        if unit not in UNITS:
            raise ParameterError(f"{where}: unit must be one of {sorted(UNITS)}, got {unit!r}")
        description = body.get("description_uk")
        if not description:
            raise ParameterError(f"{where}: description_uk is required")
        entries = body.get("values")
        if not isinstance(entries, dict) or not entries:
            raise ParameterError(f"{where}: values must map effective dates to {{value, reference}}")
        dated: list[ParameterValue] = []
        for raw_date, entry in entries.items():
            on = _parse_date(raw_date, where)
            if not isinstance(entry, dict) or "value" not in entry or not entry.get("reference"):
                raise ParameterError(f"{where} at {on}: each value needs 'value' and a legal 'reference'")
            raw_value = entry["value"]
            if isinstance(raw_value, float):
                raise ParameterError(f"{where} at {on}: write the value as a string or integer, not a float")
            try:
                value = uah_to_kop(raw_value) if unit == "UAH" else int(str(raw_value))
            except ValueError as exc:
                raise ParameterError(f"{where} at {on}: {exc}") from None
            unknown = set(entry) - {"value", "reference", "source", "inferred", "confirmed_by"}
            if unknown:
                raise ParameterError(f"{where} at {on}: unknown key(s) {', '.join(sorted(unknown))}")
            if not isinstance(entry.get("inferred", False), bool):
                raise ParameterError(f"{where} at {on}: 'inferred' must be true or false")
            dated.append(ParameterValue(
                name, value, unit, on, str(entry["reference"]),
                source=str(entry["source"]) if entry.get("source") else None,
                inferred=bool(entry.get("inferred", False)),
                confirmed_by=str(entry["confirmed_by"]) if entry.get("confirmed_by") else None,
            ))
        dated.sort(key=lambda v: v.effective_from)
        result[name] = Parameter(
            name=name,
            unit=unit,
            description_uk=str(description),
            dates=tuple(v.effective_from for v in dated),
            values=tuple(dated),
        )
    return result


class ParameterSet:
    """All global parameters (``programs/parameters/``), looked up by name and date."""

    def __init__(self, parameters: dict[str, Parameter], sources: dict[str, bytes]):
        self._parameters = parameters
        self.sources = sources  # file name -> raw bytes, for the rules hash

    @classmethod
    def load(cls, directory: Path) -> ParameterSet:
        parameters: dict[str, Parameter] = {}
        sources: dict[str, bytes] = {}
        for path in sorted(directory.glob("*.yaml")):
            raw_bytes = path.read_bytes()
            sources[path.name] = raw_bytes
            for name, parameter in parse_parameters(yaml.safe_load(raw_bytes), str(path)).items():
                if name in parameters:
                    raise ParameterError(f"{path}: parameter {name!r} is defined twice")
                parameters[name] = parameter
        return cls(parameters, sources)

    def __contains__(self, name: str) -> bool:
        return name in self._parameters

    def __getitem__(self, name: str) -> Parameter:
        return self._parameters[name]

    def names(self) -> list[str]:
        return sorted(self._parameters)

    def at(self, name: str, on: dt.date) -> ParameterValue:
        try:
            parameter = self._parameters[name]
        except KeyError:
            raise ParameterError(f"unknown parameter {name!r}") from None
        return parameter.at(on)
