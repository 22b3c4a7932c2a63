"""No personal data where it does not belong (issue 12, item 5).

Bad IBANs and identifiers of every kind go through the topic path (the eligibility service's
handler: dead-letter record, logs, metrics) and the gateway (the answer, logs, /metrics); none of
their values may appear in any of those outputs (the dead letter's ``original_b64`` keeps the
message itself, which is what it is for). Metric label values come only from the catalog and the
districts its cities declare.
"""

from __future__ import annotations

import base64
import json
import logging
import re

import pytest
from prometheus_client import generate_latest

from services.devstack.synthetic import rnokpp
from tests.gateway.conftest import headers
from tests.streaming.test_boundary import _base
from tests.streaming.test_conflicts import _run

BAD_IBANS = [
    "UA213223130000026007233566009",  # checksum
    "UA21 3223 1300 0002 6007 2335 66!!",  # characters
    "UA2132231300000260072335660011111",  # length
    "XQ213223130000026007233566001",  # unknown country
    "DE89370400440532013000",  # valid, not Ukrainian
    "ua21-3223-1300-0002-6007-2335-6600",  # separators
    "Петренко Олена UA21",  # a name where the IBAN goes
]
BAD_IDS = [
    ("rnokpp", "1234567891"),  # check digit
    ("rnokpp", "12345678"),  # length
    ("rnokpp", "12345abcde"),  # letters
    ("rnokpp", "Петренко Олена Іванівна"),  # a name
    ("rnokpp", rnokpp(42)[:-1] + str((int(rnokpp(42)[-1]) + 1) % 10)),  # one digit off a real-looking one
    ("edrpou", "12345679"),  # check digit
    ("edrpou", "1234"),
    ("passport", "АБ12345"),
    ("passport", "ZZ123456"),
    ("passport", "12345678901"),
]


def _cases() -> list[tuple[str, dict, list[str]]]:
    cases = []
    for iban in BAD_IBANS:
        app = _base()
        app["payment"] = {"channel": "bank", "iban": iban}
        cases.append((f"iban {iban}", app, _needles(iban)))
    for kind, value in BAD_IDS:
        app = _base()
        app["applicant"]["id_kind"] = kind
        app["applicant"]["id"] = value
        cases.append((f"{kind} {value}", app, _needles(value)))
    return cases


def _needles(value: str) -> list[str]:
    """The value as given, compacted, and its longest digit run (if it could identify someone)."""
    compact = re.sub(r"[\s\-]", "", value).upper()
    digits = max(re.findall(r"\d+", value) or [""], key=len)
    return [v for v in {value, compact, value.upper(), digits} if len(v) >= 5]


CASES = _cases()


def _clean(text: str, needles: list[str]) -> list[str]:
    return [n for n in needles if n in text or n in text.upper()]


@pytest.mark.parametrize(("name", "app", "needles"), CASES, ids=[c[0] for c in CASES])
def test_topic_path_never_echoes_an_identifier(eligibility, capsys, caplog, name, app, needles):
    caplog.set_level(logging.DEBUG)
    out = _run(eligibility, json.dumps(app).encode(), 5)
    assert [o[0] for o in out] == ["dead-letter"], name
    record = json.loads(out[0][2])
    assert record["reason_code"] in ("invalid_iban", "invalid_identifier", "invalid_event"), record["reason_code"]
    assert base64.b64decode(record["original_b64"]) == json.dumps(app).encode()  # the message itself is kept
    del record["original_b64"]
    captured = capsys.readouterr()
    outputs = {
        "dead-letter record": json.dumps(record, ensure_ascii=False),
        "logs": captured.out + captured.err + caplog.text,
        "metrics": generate_latest().decode(),
    }
    for where, text in outputs.items():
        assert not _clean(text, needles), f"{where} carries {name!r}"


@pytest.mark.parametrize(("name", "app", "needles"), CASES, ids=[c[0] for c in CASES])
def test_gateway_never_echoes_an_identifier(make_client, producer, caplog, capsys, name, app, needles):
    caplog.set_level(logging.DEBUG)
    client = make_client()
    response = client.post("/applications", content=json.dumps(app).encode(),
                           headers={**headers("registry"), "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["reason_code"] in ("invalid_iban", "invalid_identifier", "invalid_event")
    captured = capsys.readouterr()
    metrics = client.get("/metrics").text
    answer = json.dumps(response.json(), ensure_ascii=False)  # escapes undone: Cyrillic compared as text
    for where, text in {"answer": answer, "logs": captured.out + captured.err + caplog.text,
                        "metrics": metrics}.items():
        assert not _clean(text, needles), f"{where} carries {name!r}"
    assert producer.sent == []


class FakeLedger:
    def status(self, program_id, period, district=None):
        return {"program_id": program_id, "period": period, "district": district, "allocation_kop": 1000,
                "paid_kop": 500, "reserved_kop": 0, "coefficient": "1/2"}


def test_metric_labels_come_only_from_the_catalog_and_declared_districts(make_client, catalog):
    client = make_client(ledger=FakeLedger())
    program = next(p for p in catalog.programs.values() if catalog.cities[p.spec.city].district_names)
    declared = catalog.cities[program.spec.city].district_names[0]
    for district in ["Петренко Олена Іванівна", "x" * 60, "UA213223130000026007233566001"] + [f"d{i}" for i in range(30)]:
        response = client.get(f"/budget/{program.id}/2023-04", params={"district": district}, headers=headers("viewer"))
        assert response.status_code == 200
    client.get(f"/budget/{program.id}/2023-04", params={"district": declared}, headers=headers("viewer"))
    metrics = client.get("/metrics").text
    assert "Петренко" not in metrics and "UA2132" not in metrics and 'd17"' not in metrics
    assert f"2023-04:{declared}" in metrics  # a declared district is labelled
    labelled = re.findall(r'dopomoga_budget_utilisation_ratio\{[^}]*\}', metrics)
    allowed = {f"2023-04:{d}" for c in catalog.cities.values() for d in c.district_names} | {"2023-04"}
    for series in labelled:
        period = re.search(r'period="([^"]*)"', series)
        assert period is None or period.group(1).split(":")[0] != "2023-04" or period.group(1) in allowed, series
