"""Container health check of the Dopomoga image: GET a URL, exit 0 on 2xx, 1 otherwise.

The image is python:3.11-slim (no curl, no wget); compose runs
``python /app/deploy/healthcheck.py http://127.0.0.1:9101/metrics`` for a stream service and
``.../healthz`` for the gateway. Standard library only, so a check costs one interpreter start.

Usage: python deploy/healthcheck.py URL [timeout_seconds]
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def check(url: str, timeout: float = 3.0) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            ok = 200 <= response.status < 300
            return ok, f"{url}: HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: {type(exc).__name__}: {getattr(exc, 'reason', exc)}"


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: healthcheck.py URL [timeout_seconds]", file=sys.stderr)
        sys.exit(2)
    healthy, message = check(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 3.0)
    print(message)
    sys.exit(0 if healthy else 1)
