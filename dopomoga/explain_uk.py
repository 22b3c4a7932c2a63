"""Every Ukrainian sentence Dopomoga writes, in one module.

Decisions explain themselves to a citizen in plain Ukrainian that cites the law and shows
the calculation; the words and sentence shapes live here so they can be read, reviewed and
corrected in one place. Values (titles, acts, clauses, refusal reasons) come from the program
files; this module only assembles them.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from dopomoga.money import format_uah, fraction_str, round_half_up
from dopomoga.periods import int_to_date

FREQUENCY_UK = {"one_off": "одноразово", "monthly": "щомісячно", "yearly": "щорічно", "per_claim": "за розрахунком"}
MONTHS_UK = (
    "січень лютий березень квітень травень червень липень серпень вересень жовтень листопад грудень"
).split()
MONTHS_UK_LOCATIVE = (
    "січні лютому березні квітні травні червні липні серпні вересні жовтні листопаді грудні"
).split()


@functools.lru_cache(maxsize=4096)
def period_uk(period: str) -> str:
    """``2023-04`` -> «квітень 2023 р.»"""
    year, month = period.split("-")
    return f"{MONTHS_UK[int(month) - 1]} {year} р."


# -- eligibility and amount (rules engine) ------------------------------------------------------

CALCULATION_FORMATS = ("uah", "x100", "date", "")
Calculation = tuple[tuple[str, str | None, str], ...]  # (literal text, name or None, format)


def parse_calculation(template: str) -> Calculation:
    """A program's ``calculation_uk`` template, parsed by ``string.Formatter`` (no home-made parser).

    ``{name}`` is a value the rules read; ``{name:uah}`` kopiyky as hryvnias, ``{name:x100}`` an
    integer in hundredths (an area of 1400 is «14,00»), ``{name:date}`` a YYYYMMDD date. Raises
    ``ValueError`` on a malformed template or an unknown format.
    """
    parts = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        if conversion:
            raise ValueError(f"no conversions (!{conversion}) in a calculation")
        if name is not None and (not name.isidentifier() or spec not in CALCULATION_FORMATS):
            raise ValueError(f"{{{name}:{spec}}}: a name the rules read, with format uah, x100 or date")
        parts.append((literal, name, spec or ""))
    return tuple(parts)


def render_calculation(parts: Calculation, scope: Mapping[str, Any]) -> str:
    out = []
    for literal, name, spec in parts:
        out.append(literal)
        if name is None:
            continue
        value = scope.get(name)
        if spec == "uah" and type(value) is int:
            out.append(format_uah(value))
        elif spec == "x100" and type(value) is int:
            out.append(f"{value // 100},{value % 100:02d}")
        elif spec == "date" and type(value) is int and value > 0:
            out.append(date_uk(int_to_date(value)))
        else:
            out.append(str(value))
    return "".join(out)


def eligible_sentence(title_uk: str, act_uk: str, clause_uk: str) -> str:
    return f"Право на «{title_uk}» підтверджено: виконано всі умови ({act_uk}, {clause_uk})."


def granted_tail(title_uk: str, act_uk: str, amount_clause_uk: str, explanation_uk: str | None) -> str:
    """The constant end of a granted-amount sentence of one rule version (built once per version)."""
    tail = f") — «{title_uk}». Підстава: {act_uk}, {amount_clause_uk}."
    if explanation_uk:
        tail += " " + explanation_uk
    return tail


@functools.lru_cache(maxsize=65536)
def granted_sentence(amount_kop: int, frequency: str, period: str, tail: str, calculation: str | None = None) -> str:
    """«Призначено 26 666,67 грн (одноразово; 40 000,00 грн × 14,00 м² ∕ 21 м² = 26 666,67 грн) — «…». Підстава: …»

    Cached: a rule version's amounts repeat (a fixed payment, a month's rate), and so does the sentence."""
    return (
        f"Призначено {format_uah(amount_kop)} ({FREQUENCY_UK[frequency]}"
        + (f", за {period_uk(period)}" if frequency == "monthly" or frequency == "per_claim" else "")
        + (f"; {calculation} = {format_uah(amount_kop)}" if calculation else "")
        + tail
    )


def excluded_rows_sentence(rows: Iterable[tuple[int, str]]) -> str:
    """«Не враховано: рядок 2 — причина (пункт); рядок 5 — …»: the rows of a register or list that
    a granted amount does not count, each with its reason and clause, so a provider sees which."""
    return "Не враховано: " + "; ".join(f"рядок {number} — {reasons}" for number, reasons in rows) + "."


def date_uk(value: Any) -> str:
    """A date as Ukrainian documents write it: 12.05.2021."""
    return f"{value.day:02d}.{value.month:02d}.{value.year}"


def term_ended(effective_to: Any) -> str:
    """The default reason when an application falls after the programme's term."""
    end = date_uk(effective_to) if effective_to else ""
    return f"строк дії програми закінчився {end}; після цієї дати виплата за нею не призначається"


def refusal_reason(refusal_uk: str | None, clause: str) -> str:
    """One failed condition's part of a refusal: «reason (clause)»."""
    return f"{refusal_uk} ({clause})"


def refusal_sentence(title_uk: str, act_uk: str, conditions: Iterable[Mapping[str, Any] | Any]) -> str:
    """«Відмовлено у призначенні …»: every failed condition's reason with its clause."""
    return refusal_sentence_of(title_uk, act_uk, (
        refusal_reason(c["refusal_uk"], c["clause"]) if isinstance(c, dict) else refusal_reason(c.refusal_uk, c.clause)
        for c in conditions
        if not (c["passed"] if isinstance(c, dict) else c.passed)
    ))


def refusal_sentence_of(title_uk: str, act_uk: str, reasons: Iterable[str]) -> str:
    """``refusal_sentence`` from the failed conditions' ``refusal_reason``s (in the conditions' order)."""
    return f"Відмовлено у призначенні «{title_uk}»: {'; '.join(reasons)}. Підстава: {act_uk}."


# -- budget (ledger) ---------------------------------------------------------------------------

def percent_uk(value: Fraction) -> str:
    """'66,67 %' from an exact fraction (integers only, half up)."""
    hundredths = round_half_up(value.numerator * 10000, value.denominator)
    return f"{hundredths // 100},{hundredths % 100:02d} %"


def budget_refusal(reason: str, *, claimed_kop: int, year: int, period: str, available_kop: int, clause: str) -> str:
    when = period_uk(period)
    claimed = format_uah(claimed_kop)
    if reason == "no_appropriation":
        return (f"Відмовлено у виплаті {claimed}: на {year} рік бюджетні призначення на цю програму відсутні "
                f"(річний обсяг 0). Підстава: {clause}.")
    if reason == "budget_exhausted":
        return (f"Відмовлено у виплаті {claimed} за {when}: кошти в межах асигнувань вичерпано (доступно "
                f"{format_uah(available_kop)} з урахуванням невикористаних асигнувань з початку року). "
                f"Підстава: {clause}.")
    if reason == "budget_year_ended":
        return (f"Відмовлено у виплаті {claimed}: бюджетний рік {year} закрито, а коштів для цієї заявки не "
                f"вистачило; невикористані асигнування на наступний рік не переходять. Підстава: {clause}.")
    if reason == "period_closed":
        return (f"Відмовлено у виплаті {claimed}: розрахунковий період {when} уже закрито, а програма не приймає "
                f"запізнілих заявок. Підстава: {clause}.")
    raise KeyError(reason)


def budget_deferral(reason: str, *, claimed_kop: int, year: int, period: str, available_kop: int, clause: str,
                    planned_period: str | None = None, carried_from: int = 0) -> str:
    if reason == "no_appropriation":
        why = f"на {year} рік бюджетні призначення на цю програму ще не встановлено (або вони нульові)"
    elif reason == "payable":
        why = (f"це кредиторська заборгованість {carried_from} року; її буде оплачено першою, щойно надійдуть "
               f"асигнування {year} року (доступно {format_uah(available_kop)})")
    else:
        why = (
            f"доступно {format_uah(available_kop)} з урахуванням невикористаних асигнувань з початку року, "
            f"а потрібно {format_uah(claimed_kop)}"
        )
    when = (f" За помісячним розписом кошти на неї заплановано у {MONTHS_UK_LOCATIVE[int(planned_period[5:7]) - 1]} "
            f"{planned_period[:4]} р." if planned_period is not None and planned_period != period else "")
    return (f"Виплату {format_uah(claimed_kop)} за {period_uk(period)} відкладено: {why}. Заявка стоїть у "
            f"черзі за часом надходження й буде оплачена повністю, щойно дозволять асигнування.{when} "
            f"Не виплачене на 31 грудня стає кредиторською заборгованістю й переходить на наступний рік. "
            f"Підстава: {clause}.")


def budget_held(*, claimed_kop: int, period: str, clause: str) -> str:
    return (f"Виплату {format_uah(claimed_kop)} за {period_uk(period)} буде проведено після того, як "
            f"департамент підтвердить розмір виплати рішенням, що його встановлює; до того заява очікує "
            f"в черзі й не відхиляється. Підстава: {clause}.")


def budget_paid(*, amount_kop: int, period: str, clause: str, carried_from: int = 0) -> str:
    if carried_from:
        return (f"Кредиторську заборгованість {carried_from} року — {format_uah(amount_kop)} — погашено за "
                f"{period_uk(period)} першочергово з асигнувань нового року. Підстава: {clause}.")
    return (f"Виплату {format_uah(amount_kop)} за {period_uk(period)} проведено в повному обсязі в межах "
            f"асигнувань. Підстава: {clause}.")


def budget_payable(*, claimed_kop: int, year: int, period: str, clause: str) -> str:
    """A claim still owed on 31 December, carried into the next year as a payable."""
    return (f"На 31 грудня {year} р. виплату {format_uah(claimed_kop)} не проведено: її обліковано як "
            f"кредиторську заборгованість і перенесено на {period_uk(period)}; її буде оплачено першою, до нових "
            f"заявок, щойно надійдуть асигнування наступного року. Підстава: {clause}.")


def budget_zero(*, period: str, clause: str) -> str:
    return (f"Розмір виплати за {period_uk(period)} становить {format_uah(0)}; асигнування не використовуються. "
            f"Підстава: {clause}.")


def budget_reserved(*, claimed_kop: int, period: str, clause: str) -> str:
    return (f"Заявку на {format_uah(claimed_kop)} за {period_uk(period)} зарезервовано. Остаточну суму буде "
            f"визначено після закриття періоду: якщо заявки перевищать асигнування, фінансування проводиться "
            f"пропорційно до заявлених сум усіх заявників у межах помісячних асигнувань. Підстава: {clause}.")


def budget_paid_in_full_at_close(*, award_kop: int, period: str, claimed_total_kop: int, pool_kop: int,
                                 by_priority: bool, clause: str) -> str:
    return (f"Виплату {format_uah(award_kop)} за {period_uk(period)} проведено в повному обсязі: заявки "
            f"({format_uah(claimed_total_kop)}) не перевищили доступних асигнувань ({format_uah(pool_kop)})"
            + (" для черговості цієї заявки" if by_priority else "")
            + f". Підстава: {clause}.")


def budget_prorated(*, period: str, claims: int, claimed_total_kop: int, pool_kop: int, share: Fraction,
                    award_kop: int, claimed_kop: int, priority_class: int | None, clause: str) -> str:
    exact = Fraction(award_kop, claimed_kop)
    return (f"Заявки за {period_uk(period)} ({claims} на {format_uah(claimed_total_kop)}) перевищили доступні "
            f"асигнування ({format_uah(pool_kop)}), тому фінансування проведено пропорційно: "
            f"коефіцієнт {fraction_str(share)} (≈ {percent_uk(share)}). До виплати {format_uah(award_kop)} "
            f"із заявлених {format_uah(claimed_kop)}"
            + f" (фактично {percent_uk(exact)} після округлення до копійки методом найбільших залишків)"
            + (f"; черговість (клас {priority_class}) — пропорційно в межах класу" if priority_class is not None else "")
            + f". Підстава: {clause}.")


NO_BUDGET_CLAUSE_UK = "бюджетні призначення програми"


# -- what a citizen's sentence must never contain ----------------------------------------------

#: Internal pointers that belong in a program file's ``source`` and the decision's operator section,
#: never in a sentence a citizen or carrier receives: seed line pointers (004:L731, L28), spec ids
#: (BR-01, T13, A5-02, §7.2), working notes (INFERRED, «обране прочитання», spec), and ASCII field
#: names (snake_case identifiers such as total_area_m2_x100).
INTERNAL_MARKERS = re.compile(
    r"\b\d{3}\s?:\s?L\d+|\bL\d{2,4}\b|\b[A-Z]{1,2}\d?-\d{2}\b|\bT\d{1,2}\b|§|\bspec\b|INFERRED"
    r"|обране прочитання|\b[a-z][a-z0-9]*_[a-z0-9_]+\b"
)


def internal_markers(text: str) -> list[str]:
    """The internal pointers a citizen-facing text contains (empty when it is fit to be signed)."""
    return [m.group(0) for m in INTERNAL_MARKERS.finditer(text)]


# -- budget documents (issue 13): execution report, funding request, payables -----------------

_ROMAN = ("I", "II", "III", "IV")


def report_period_uk(code: str) -> str:
    """``2023-H1`` -> «I півріччя 2023 р.»; ``2023-Q3`` -> «III квартал 2023 р.»; ``2023`` -> «2023 рік»."""
    year, _, part = code.partition("-")
    if not part:
        return f"{year} рік"
    if part[0] == "H":
        return f"{_ROMAN[int(part[1]) - 1]} півріччя {year} р."
    if part[0] == "Q":
        return f"{_ROMAN[int(part[1]) - 1]} квартал {year} р."
    return period_uk(code)


def plural_uk(n: int, forms: tuple[str, str, str]) -> str:
    """«1 особа», «2 особи», «5 осіб»."""
    if n % 10 == 1 and n % 100 != 11:
        return forms[0]
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return forms[1]
    return forms[2]


def percent_executed_uk(financed_kop: int, annual_kop: int) -> str:
    """Financed of the annual volume, one decimal, half up («72,6»); «—» without a volume."""
    if annual_kop <= 0:
        return "—"
    tenths = round_half_up(financed_kop * 1000, annual_kop)
    return f"{tenths // 10},{tenths % 10}"


def execution_info_uk(recipients: int, payments: int, owed_kop: int, amendments: int) -> str:
    """The «Інформація про виконання» column of the execution report."""
    parts = []
    if recipients:
        parts.append(f"Допомогу отримали {recipients} {plural_uk(recipients, ('особа', 'особи', 'осіб'))}"
                     + (f" ({payments} {plural_uk(payments, ('виплата', 'виплати', 'виплат'))})"
                        if payments != recipients else ""))
    else:
        parts.append("Виплат у звітному періоді не було")
    if owed_kop:
        parts.append(f"очікують фінансування заявки на {format_uah(owed_kop)}")
    if amendments:
        parts.append(f"річний обсяг змінено {amendments} {plural_uk(amendments, ('раз', 'рази', 'разів'))}")
    return "; ".join(parts) + "."


FUNDING_STATES_UK = {"requested": "подано", "approved": "погоджено", "received": "надійшло"}


def execution_title_uk(programme_uk: str, period_label_uk: str) -> str:
    return (f"Інформація про виконання заходів Програми за {period_label_uk}"
            + (f" — {programme_uk}" if programme_uk else ""))


def funding_title_uk(year: int) -> str:
    return f"Заявки на фінансування, {year} рік: подано → погоджено → надійшло"


def payables_title_uk(year: int) -> str:
    return f"Кредиторська заборгованість, перенесена на {year} рік"


def amendments_title_uk(year: int) -> str:
    return f"Річні обсяги фінансування та зміни до них, {year} рік"


PLAN_KINDS_UK = {"even": "рівними частками", "december": "у грудні", "explicit": "помісячний розпис"}
