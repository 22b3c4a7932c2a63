"""Errors a person at the `dopomoga` command sees: one plain sentence and an exit code, never a traceback.

``DOPOMOGA_DEBUG=1`` shows the traceback (for developers).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def explain(exc: BaseException) -> str:
    name = type(exc).__name__
    module = type(exc).__module__
    if module.startswith("kafka") or name in ("NoBrokersAvailable", "KafkaTimeoutError", "KafkaConnectionError"):
        return (f"the Kafka broker is not reachable ({name}); is it running? `dopomoga up` starts one; "
                "--broker or DOPOMOGA_BROKER chooses another")
    if module.startswith("sqlalchemy"):
        return f"the database is not available ({name}); check DOPOMOGA_DB or --db"
    if isinstance(exc, FileNotFoundError):
        return f"file not found: {exc.filename or exc}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}"
    if isinstance(exc, ConnectionError | TimeoutError):
        return f"a connection failed ({name}): {str(exc)[:300]}"
    text = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else ""
    return f"{name}: {text}" if text else name


def run(app: Callable[[], object]) -> None:
    """Run a Typer app; an unexpected error becomes one line on stderr and exit status 1."""
    try:
        app()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except SystemExit:
        raise
    except Exception as exc:
        if os.environ.get("DOPOMOGA_DEBUG") == "1":
            raise
        print(f"error: {explain(exc)}", file=sys.stderr)
        print("(set DOPOMOGA_DEBUG=1 to see the traceback)", file=sys.stderr)
        raise SystemExit(1) from None
