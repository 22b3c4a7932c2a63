"""Benchmark: prorate one million claims (``python bench/budget.py``).

Prints a markdown table (claims, seconds, claims/s). Asserts nothing; the target is
under 2 s on 2 cores for 1 000 000 claims.
"""

from __future__ import annotations

import random
import sys
import time

from dopomoga.budget.rationing import Claim, pro_rata


def run(n: int, seed: int = 2023, equal: bool = False) -> tuple[int, float, int]:
    rng = random.Random(seed)
    claims = [Claim(f"app-{i:07d}", 141_650 if equal else rng.randint(50_000, 5_000_000)) for i in range(n)]
    available = sum(c.amount for c in claims) * 2 // 3 + 7
    start = time.perf_counter()
    result = pro_rata(available, claims)
    seconds = time.perf_counter() - start
    if result.paid != available:  # pragma: no cover - a bug, not a benchmark outcome
        print("warning: pro_rata did not spend the whole pool", file=sys.stderr)
    return n, seconds, int(n // seconds) if seconds > 0 else 0


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [10_000, 100_000, 1_000_000]
    print("| claims | amounts | seconds | claims/s |")
    print("|---:|---|---:|---:|")
    for n in sizes:
        claims, seconds, rate = run(n)
        print(f"| {claims:,} | varied | {seconds:.3f} | {rate:,} |")
    # Worst case for the tie-break: every claim equal, so all remainders tie.
    claims, seconds, rate = run(max(sizes), equal=True)
    print(f"| {claims:,} | all equal (one tie bucket) | {seconds:.3f} | {rate:,} |")


if __name__ == "__main__":
    main()
