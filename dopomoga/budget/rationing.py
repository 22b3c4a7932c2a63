"""Rationing a fixed budget among claims: pure functions on ``int`` kopiyky and ``Fraction``.

This is the *claims problem* (O'Neill 1982; Thomson 2003): an estate ``available`` and
claims ``c_i``; awards ``0 <= x_i <= c_i``. The rules here:

- :func:`pro_rata` - the proportional rule («пропорційно наданим розрахункам», BR-01):
  ``x_i = c_i * min(1, available / sum(c))``, rounded to whole kopiyky by the largest
  remainder (Hamilton) method, ties broken by claim key, so that
  ``sum(x) == min(available, sum(c))`` exactly and nobody gets more than they claimed;
- :func:`first_come` - first come, first served, all or nothing per claim (fixed
  one-off amounts are never paid in part);
- :func:`priority_then_pro_rata` - statutory classes in order, each paid in full while
  money lasts, pro rata inside the class where it runs out, nothing for later classes;
- :func:`district_split` - BR-06: the annual appropriation split among districts in
  proportion to their declared need, capped at need by default (A4-17).

No float is used anywhere: quotas are exact ``divmod`` on integers, the coefficient is
a ``Fraction``. Nothing here does I/O; the ledger (``dopomoga.budget.ledger``) calls these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from dopomoga.money import largest_remainder

__all__ = [
    "Claim",
    "DistrictSplit",
    "FirstCome",
    "Rationed",
    "district_split",
    "first_come",
    "priority_then_pro_rata",
    "pro_rata",
]


@dataclass(frozen=True, slots=True)
class Claim:
    """One claim: a unique ``key`` (tie-break and identity), kopiyky, and a priority class.

    ``priority`` matters only to :func:`priority_then_pro_rata`: lower classes are served first.
    """

    key: str
    amount: int
    priority: int = 0

    def __post_init__(self) -> None:
        if type(self.amount) is not int or self.amount < 0:
            raise ValueError(f"claim {self.key!r}: amount must be a non-negative int of kopiyky")
        if type(self.priority) is not int:
            raise ValueError(f"claim {self.key!r}: priority class must be an int")


@dataclass(frozen=True, slots=True)
class Rationed:
    """The result of a proportional rationing.

    ``awards`` is aligned with the claims as given. ``coefficient`` is the exact share
    ``min(1, available / claimed)`` (for :func:`priority_then_pro_rata`: the share of the
    class where money ran out, or 1 when nobody was cut). ``class_coefficients`` maps each
    priority class to its exact share (1, the rationed share, or 0).
    """

    awards: tuple[int, ...]
    coefficient: Fraction
    available: int
    claimed: int
    paid: int
    class_coefficients: Mapping[int, Fraction] = field(default_factory=dict)

    @property
    def unspent(self) -> int:
        """Kopiyky of ``available`` left over (recorded, never silently dropped)."""
        return self.available - self.paid

    def by_key(self, claims: Sequence[Claim]) -> dict[str, int]:
        return {claim.key: award for claim, award in zip(claims, self.awards, strict=True)}


def _amounts(claims: Sequence[Claim]) -> list[int]:
    return [claim.amount for claim in claims]


def _apportion(available: int, amounts: list[int], total: int, claims: Sequence[Claim]) -> list[int]:
    """Largest remainder of ``available`` in proportion to ``amounts`` (``available < total``).

    Same result as :func:`dopomoga.money.largest_remainder` (a property test checks it),
    arranged for a million claims. One pass computes ``floor(n * quota)`` for every claim,
    which gives both the floor of the quota and a small-integer bucket
    ``floor(n * fractional part)``; bucket order is remainder order (a monotone map).
    The leftover kopiyky go to the largest buckets (one sort of small integers); only
    the boundary bucket is resolved exactly, by (exact remainder desc, key asc).
    """
    n = len(amounts)
    scale = available * n
    scaled = [amount * scale // total for amount in amounts]
    parts = [value // n for value in scaled]
    leftover = available - sum(parts)  # 0 <= leftover < n
    if leftover == 0:
        return parts
    buckets = [value % n for value in scaled]
    threshold = sorted(buckets)[n - leftover]
    parts = [part + 1 if bucket > threshold else part for part, bucket in zip(parts, buckets, strict=True)]
    leftover = available - sum(parts)
    tied = [i for i, bucket in enumerate(buckets) if bucket == threshold]
    remainders = [amounts[i] * available % total for i in tied]
    keys = [claims[i].key for i in tied]
    if len(set(keys)) != len(keys):
        raise ValueError("claim keys must be unique (they break ties between equal remainders)")
    if len(set(remainders)) == 1:  # equal claims: order by key alone (a cheaper sort)
        order = sorted(range(len(tied)), key=keys.__getitem__)
    else:
        order = sorted(range(len(tied)), key=lambda j: (-remainders[j], keys[j]))
    for j in order[:leftover]:
        parts[tied[j]] += 1
    return parts


def pro_rata(available: int, claims: Sequence[Claim]) -> Rationed:
    """Each claim gets ``claim * min(1, available / sum(claims))``, by largest remainder.

    Guarantees: ``sum(awards) == min(available, sum(claims))``; every award is within one
    kopiyka of its exact share and never above its claim; equal claims differ by at most
    one kopiyka (the leftover kopiyky go to the lowest keys); the order of ``claims``
    does not change any award.
    """
    if type(available) is not int or available < 0:
        raise ValueError("available must be a non-negative int of kopiyky")
    amounts = _amounts(claims)
    total = sum(amounts)
    if total <= available:
        return Rationed(tuple(amounts), Fraction(1), available, total, total)
    parts = _apportion(available, amounts, total, claims)
    return Rationed(tuple(parts), Fraction(available, total), available, total, available)


@dataclass(frozen=True, slots=True)
class FirstCome:
    """Claims paid in full (``paid``) and those that did not fit (``not_fitting``), in order."""

    paid: tuple[Claim, ...]
    not_fitting: tuple[Claim, ...]
    available: int
    spent: int

    @property
    def left(self) -> int:
        return self.available - self.spent


def first_come(available: int, claims: Sequence[Claim], *, strict_queue: bool = False) -> FirstCome:
    """First come, first served, all or nothing per claim, in the order given.

    With ``strict_queue`` the first claim that does not fit blocks every later one (a
    queue that keeps its order, as for deferred claims); without it a later, smaller
    claim may still be paid from what is left (claims that do not fit are refused and
    leave the queue).
    """
    if type(available) is not int or available < 0:
        raise ValueError("available must be a non-negative int of kopiyky")
    left = available
    paid: list[Claim] = []
    not_fitting: list[Claim] = []
    blocked = False
    for claim in claims:
        if not blocked and claim.amount <= left:
            paid.append(claim)
            left -= claim.amount
        else:
            not_fitting.append(claim)
            blocked = strict_queue
    return FirstCome(tuple(paid), tuple(not_fitting), available, available - left)


def priority_then_pro_rata(available: int, claims: Sequence[Claim]) -> Rationed:
    """Priority classes in ascending order: paid in full while money lasts; the class
    where it runs out is prorated (:func:`pro_rata`); later classes get nothing."""
    if type(available) is not int or available < 0:
        raise ValueError("available must be a non-negative int of kopiyky")
    classes: dict[int, list[int]] = {}
    for index, claim in enumerate(claims):
        classes.setdefault(claim.priority, []).append(index)
    awards = [0] * len(claims)
    coefficients: dict[int, Fraction] = {}
    left = available
    rationed = Fraction(1)
    for klass in sorted(classes):
        members = classes[klass]
        need = sum(claims[i].amount for i in members)
        if need <= left:
            for i in members:
                awards[i] = claims[i].amount
            left -= need
            coefficients[klass] = Fraction(1)
        elif left > 0:
            inner = pro_rata(left, [claims[i] for i in members])
            for i, award in zip(members, inner.awards, strict=True):
                awards[i] = award
            coefficients[klass] = inner.coefficient
            rationed = inner.coefficient
            left = 0
        else:
            coefficients[klass] = Fraction(0)
            if rationed == 1 and need > 0:
                rationed = Fraction(0)
    paid = available - left
    return Rationed(tuple(awards), rationed, available, sum(_amounts(claims)), paid, coefficients)


@dataclass(frozen=True, slots=True)
class DistrictSplit:
    """BR-06 shares by district, the exact coefficient, and what was left unallocated."""

    shares: dict[str, int]
    coefficient: Fraction
    unallocated: int


def district_split(annual: int, needs: Mapping[str, int], cap_at_need: bool = True) -> DistrictSplit:
    """Split the annual appropriation among districts in proportion to declared need (BR-06).

    «…розподіляє планові призначення … між управліннями пропорційно до заявленої потреби»
    (004:L739). When the plan covers the whole need, the text is silent (A4-17):

    - ``cap_at_need=True`` (default reading): each district gets its need, and the rest
      is ``unallocated`` (kept by the head spender, never paid beyond declared need);
    - ``cap_at_need=False`` (literal reading): the whole plan is split proportionally,
      so districts may receive more than they declared.

    Shares are whole kopiyky by largest remainder, ties broken by district name.
    """
    if type(annual) is not int or annual < 0:
        raise ValueError("annual must be a non-negative int of kopiyky")
    names = sorted(needs)
    weights = [needs[name] for name in names]
    if any(type(w) is not int or w < 0 for w in weights):
        raise ValueError("declared needs must be non-negative ints of kopiyky")
    total = sum(weights)
    if total == 0:
        return DistrictSplit({name: 0 for name in names}, Fraction(0), annual)
    if cap_at_need and total <= annual:
        return DistrictSplit(dict(zip(names, weights, strict=True)), Fraction(1), annual - total)
    parts = largest_remainder(annual, weights, names)
    return DistrictSplit(dict(zip(names, parts, strict=True)), Fraction(annual, total), 0)
