"""One-shot migration of the budget ledger (compose's ``migrate`` job; run before every service).

``alembic upgrade head`` on the ledger at ``$DOPOMOGA_DB`` (the entrypoint has put the password
in), then exit 0. Services still check the schema when they open the ledger, but with the job
done first they find it at head and never race each other's migrations (concurrent first
migrations failed with ``UniqueViolation``, issue 15).

Usage: python deploy/migrate.py [URL]    (default: $DOPOMOGA_DB)
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    url = argv[0] if argv else os.environ.get("DOPOMOGA_DB")
    if not url:
        print("migrate: set DOPOMOGA_DB (or pass the URL)", file=sys.stderr)
        return 78
    from services.migrate import report  # the same step as `dopomoga migrate` and `dopomoga up`

    print(report(url), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
