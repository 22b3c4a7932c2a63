"""Write the secret files docker compose mounts (random values; never overwrites a file).

    python3 deploy/generate_secrets.py [DIRECTORY]     (default: deploy/secrets beside this script)

Creates ``postgres_password``, ``grafana_admin_password`` and ``api_keys.json`` (one key per role:
viewer ``ops``, budget_admin ``chief``, registry ``eissss``). The directory is made 0700 and the
files 0444: containers run as non-root users (dopomoga 10001, grafana 472) and read the
bind-mounted files, while other users of the host cannot reach the directory. Standard library
only; prints the file names, never a value. Point compose at another directory with
``DOPOMOGA_SECRETS=/path``.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

ROLES = (("viewer", "ops"), ("budget_admin", "chief"), ("registry", "eissss"))


def contents() -> dict[str, str]:
    keys = {secrets.token_urlsafe(32): {"name": name, "roles": [role]} for role, name in ROLES}
    return {
        "postgres_password": secrets.token_urlsafe(32) + "\n",
        "grafana_admin_password": secrets.token_urlsafe(24) + "\n",
        "api_keys.json": json.dumps(keys, indent=2) + "\n",
    }


def generate(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    written = []
    for name, value in contents().items():
        path = directory / name
        if path.exists():
            print(f"kept {path} (exists)")
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value)
        os.chmod(path, 0o444)
        written.append(path)
        print(f"wrote {path}")
    return written


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "secrets")
