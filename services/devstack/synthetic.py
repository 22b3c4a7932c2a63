"""Synthetic applications (never real people) for the registry emulator and the benchmark.

Programs are drawn in proportion to the number of recipients the Zhytomyr report
gives for their measure (``000-zhytomyr-measures.csv``, "захід N.N.N" in the program's
legal basis); facts are drawn from the program's declared inputs and kept so that
about ``eligible_share`` of the applications qualify (checked offline with the engine).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import random
import re
from collections.abc import Iterator
from pathlib import Path

from schwifty import IBAN
from stdnum.ua import rntrc

from dopomoga.errors import ApplicationError
from dopomoga.rules.engine import Engine
from dopomoga.rules.programs import Catalog, Program
from schemas.events import Applicant, ApplicationSubmitted, Payment

# The shared spec folder sits beside the repository (../shared), in CI as on a developer's machine.
MEASURES_CSV = Path(__file__).resolve().parents[3] / "shared" / "spec" / "000-zhytomyr-measures.csv"
UTC = dt.UTC
FIRST = "Олена Іван Марія Петро Оксана Андрій Наталія Василь Галина Микола Тетяна Сергій Ганна Юрій Ірина Богдан".split()
LAST = "Коваленко Шевчук Бондаренко Ткаченко Кравченко Мельник Олійник Поліщук Савчук Руденко Марченко Лисенко".split()
PATRONYMIC = "Іванович Петрівна Миколайович Василівна Андрійович Олександрівна".split()
# A valid UA IBAN bank prefix (check digits are computed per account below).
BANK_CODE = "322313"


def ua_iban(seed: int) -> str:
    """A synthetic UA IBAN with correct check digits (schwifty computes them)."""
    return IBAN.generate("UA", bank_code=BANK_CODE, account_code=f"{seed:019d}"[-19:]).compact


def rnokpp(seed: int) -> str:
    """A synthetic РНОКПП with a correct check digit (python-stdnum computes it).

    The nine digits come from a hash of ``seed``: an affine formula modulo 10^9 made people of
    registries with seeds 100 apart identical (seed·10^7 + n aliases), so "one-off" history
    refused applications of an unrelated run.
    """
    digits = str(int(hashlib.sha256(f"person:{seed}".encode()).hexdigest(), 16) % 10**9).rjust(9, "0")
    return digits + rntrc.calc_check_digit(digits)


def recipient_weights(catalog: Catalog, csv_path: Path = MEASURES_CSV) -> dict[str, float]:
    recipients: dict[str, int] = {}
    if csv_path.exists():
        with csv_path.open(encoding="utf-8") as source:
            for row in csv.DictReader(source):
                if row.get("recipients", "").strip().isdigit():
                    recipients.setdefault(row["code"], int(row["recipients"]))
    weights: dict[str, float] = {}
    for program in catalog.programs.values():
        match = re.search(r"(\d+\.\d+\.\d+)", program.spec.legal_basis.clause_uk)
        weights[program.id] = float(recipients.get(match.group(1), 50) if match else 50)
    return weights


def _in_force(program: Program, on: dt.date) -> bool:
    try:
        program.version_on(on)
    except ValueError:
        return False
    return True


class SyntheticRegistry:
    def __init__(self, catalog: Catalog, seed: int = 1, submitted_on: dt.date | str = "2023-04-03",
                 eligible_share: float = 0.8, programs: list[str] | None = None, shared_households: bool = False):
        self.catalog = catalog
        self.rng = random.Random(seed)
        self.seed = seed
        self.submitted_on = dt.date.fromisoformat(submitted_on) if isinstance(submitted_on, str) else submitted_on
        self.eligible_share = eligible_share
        # Shared households make household-scoped limits depend on processing order
        # (applications are partitioned by id), so they are opt-in.
        self.shared_households = shared_households
        weights = recipient_weights(catalog)
        # By default, only programs whose rules are in force on the submission date.
        self.programs = programs or sorted(p for p in weights if _in_force(catalog.get(p), self.submitted_on))
        self.weights = [max(weights.get(p, 50), 1.0) for p in self.programs]
        self._number = 0
        self.engine = Engine(catalog)  # offline check only; its history is never recorded

    def _fact(self, program: Program, name: str):
        spec = program.spec.inputs[name]
        rng = self.rng
        if spec.type == "bool":
            return rng.random() < 0.85
        if spec.type == "int":
            return rng.randint(0, 5)
        if spec.type == "money":
            return rng.randint(0, 2_000_000)
        if spec.type == "enum":
            return rng.choice(spec.values or ["x"])
        if spec.type == "date":
            return (self.submitted_on - dt.timedelta(days=rng.randint(0, 3650))).isoformat()
        if spec.type == "list":
            return []
        if spec.type == "items":
            return [
                {f: self._scalar(t) for f, t in (spec.fields or {}).items()} for _ in range(rng.randint(1, 3))
            ]
        return f"{name}-{self.seed}-{self._number}"  # unique ids (e.g. of a deceased person)

    def _scalar(self, kind: str):
        if kind == "date":
            return (self.submitted_on - dt.timedelta(days=self.rng.randint(0, 9000))).isoformat()
        return {"bool": self.rng.random() < 0.85, "int": self.rng.randint(1, 5),
                "money": self.rng.randint(1, 500_000)}.get(kind, "x")

    def _candidate(self, number: int, program: Program) -> ApplicationSubmitted:
        rng = self.rng
        self._number = number
        age = rng.choice([rng.randint(18, 99), rng.randint(60, 104), rng.randint(99, 106)])
        birth = self.submitted_on - dt.timedelta(days=int(age * 365.25) + rng.randint(0, 300))
        person = self.seed * 10_000_000 + number
        facts = {
            name: self._fact(program, name)
            for name, spec in program.spec.inputs.items()
            if spec.required or rng.random() < 0.5
        }
        channel = rng.choice(program.spec.payment_channels)
        application_id = f"syn-{self.seed}-{number:07d}"
        return ApplicationSubmitted(
            event_id=f"ev-{application_id}",
            occurred_at=dt.datetime.combine(self.submitted_on, dt.time(9, 0), tzinfo=UTC)
            + dt.timedelta(milliseconds=number),
            application_id=application_id,
            program_id=program.id,
            registry="synthetic-registry",
            submitted_on=self.submitted_on,
            applicant=Applicant(
                id_kind="rnokpp" if program.spec.payee == "person" else "edrpou",
                id=rnokpp(person) if program.spec.payee == "person" else _edrpou(person),
                name=f"{rng.choice(LAST)} {rng.choice(FIRST)} {rng.choice(PATRONYMIC)}",
                birth_date=birth,
                household_id=f"hh-{self.seed}-{number // 2}" if self.shared_households else f"hh-{self.seed}-{number}",
            ),
            payment=Payment(channel=channel, iban=ua_iban(person) if channel in ("bank", "treasury") else None),
            facts=facts,
        )

    def generate(self, count: int) -> Iterator[ApplicationSubmitted]:
        for number in range(count):
            program = self.catalog.get(self.rng.choices(self.programs, self.weights)[0])
            want_eligible = self.rng.random() < self.eligible_share
            chosen = None
            for _ in range(40):
                candidate = self._candidate(number, program)
                try:
                    eligible = self.engine.check_eligibility(candidate).eligible
                except ApplicationError:
                    continue
                chosen = candidate
                if eligible == want_eligible:
                    break
            if chosen is not None:
                yield chosen


def _edrpou(seed: int) -> str:
    """A synthetic ЄДРПОУ code from a hash of ``seed`` (no aliasing between registries' seeds)."""
    from stdnum.ua import edrpou

    base = str(int(hashlib.sha256(f"organisation:{seed}".encode()).hexdigest(), 16) % 10**7).rjust(7, "1")
    return base + edrpou.calc_check_digit(base)
