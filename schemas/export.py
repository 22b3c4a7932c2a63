"""Export the JSON Schema of every event to ``schemas/json/<Event>.json``.

``python -m schemas.export`` writes them; ``python -m schemas.export --check`` fails
when a committed file differs from the models (the test suite runs the check).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from schemas.events import ALL_EVENTS

JSON_DIR = Path(__file__).resolve().parent / "json"


def rendered() -> dict[str, str]:
    return {
        f"{model.__name__}.json": json.dumps(model.model_json_schema(), ensure_ascii=False, indent=2, sort_keys=True)
        + "\n"
        for model in ALL_EVENTS
    }


def main(argv: list[str]) -> int:
    files = rendered()
    if "--check" in argv:
        stale = [name for name, text in files.items() if not (JSON_DIR / name).exists() or (JSON_DIR / name).read_text() != text]
        if stale:
            print(f"schemas/json out of date: {', '.join(stale)}; run `make schemas`", file=sys.stderr)
            return 1
        return 0
    JSON_DIR.mkdir(exist_ok=True)
    for name, text in files.items():
        (JSON_DIR / name).write_text(text)
    print(f"wrote {len(files)} schemas to {JSON_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
