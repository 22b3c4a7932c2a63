"""Assemble ``examples/applications.jsonl``: every city's synthetic applications plus invalid lines.

    .venv/bin/python examples/build_applications.py

The city files (``zaporizhzhia.jsonl``, ``zhytomyr.jsonl``, ``kamianske.jsonl``) come from
their generators. The invalid lines each break one rule a registry can break, so the
batch CLI and the pipeline demo show a clear per-line error / dead-letter reason for each.
All people are synthetic.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
CITIES = ("zaporizhzhia", "zhytomyr", "kamianske")


def invalid_lines(template: dict) -> list[str]:
    def variant(application_id: str, **changes) -> str:
        data = json.loads(json.dumps(template))
        data["application_id"] = application_id
        data["event_id"] = f"ev-{application_id}"
        for path, value in changes.items():
            node = data
            *parents, leaf = path.split("__")
            for parent in parents:
                node = node[parent]
            node[leaf] = value
        return json.dumps(data, ensure_ascii=False)

    return [
        '{"event_id": "broken-1", "application_id": "broken-1", "program_id": ',  # malformed JSON
        variant("invalid-rnokpp", applicant__id="1234567890"),  # wrong check digit
        variant("invalid-iban", payment={"channel": "bank", "iban": "UA213223130000026007233566002"}),
        variant("unknown-program", program_id="odesa.free-money"),
        variant("schema-v2", schema_version=2),
        variant("float-money-fact", facts={**template["facts"], **{k: 1.5 for k in list(template["facts"])[:1]}}),
        variant("missing-facts", facts={}),
        variant("naive-timestamp", occurred_at="2023-04-01T09:00:00"),
    ]


def main() -> None:
    lines: list[str] = []
    for city in CITIES:
        path = HERE / f"{city}.jsonl"
        if path.exists():
            lines += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise SystemExit("no city example files yet")
    lines += invalid_lines(json.loads(lines[0]))
    (HERE / "applications.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} lines to examples/applications.jsonl")


if __name__ == "__main__":
    main()
