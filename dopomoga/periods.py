"""Periods: a payment month is ``YYYY-MM``; budget years run January to December.

The one home of month arithmetic (bounds, next month of a budget year, the last day that
closes a month). Month names in Ukrainian are in ``dopomoga.explain_uk``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from typing import NamedTuple


def period_of(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def split_period(period: str) -> tuple[int, int]:
    year, month = period.split("-")
    return int(year), int(month)


def next_period(period: str) -> str | None:
    """The next month of the same budget year, or ``None`` after December."""
    year, month = split_period(period)
    return None if month == 12 else period_of(year, month + 1)


def last_day(period: str) -> dt.date:
    """The last calendar day of a month."""
    year, month = split_period(period)
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def date_to_int(value: dt.date) -> int:
    """A date as the integer YYYYMMDD (how rules compare dates in CEL)."""
    return value.year * 10000 + value.month * 100 + value.day


def int_to_date(value: int) -> dt.date:
    return dt.date(value // 10000, value // 100 % 100, value % 100)


class Bounds(NamedTuple):
    """A month's bounds as the rules read them."""

    start: dt.date
    start_int: int  # YYYYMMDD
    end_int: int  # YYYYMMDD
    month_int: int  # YYYYMM
    year_start: dt.date


@functools.lru_cache(maxsize=4096)
def bounds(period: str) -> Bounds:
    year, month = int(period[:4]), int(period[5:])
    start = dt.date(year, month, 1)
    end = dt.date(year, month, calendar.monthrange(year, month)[1])
    return Bounds(start, date_to_int(start), date_to_int(end), year * 100 + month, dt.date(year, 1, 1))
