"""Registers from final payout decisions: totals, XSD, determinism, cp1251, reconciliation."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dopomoga.money import kop_to_decimal_str
from dopomoga.treasury.debtors import DEFAULT_DEBTORS, Debtor, debtor_for, load_debtors
from dopomoga.treasury.export import export_period, reconcile_with_ledger
from dopomoga.treasury.reconcile import reconcile_dir
from dopomoga.treasury.registers import (
    PAIN_NS,
    ExportError,
    build_registers,
    end_to_end_id,
    to_cp1251_text,
    write_registers,
)
from tests.treasury.fakes import PERIOD, PROGRAM, FakeLedger, payout, payouts

DEBTOR = DEFAULT_DEBTORS["zhytomyr"]


@pytest.fixture(scope="module")
def thousand():
    return payouts(1000)


@pytest.fixture(scope="module")
def exported(thousand, tmp_path_factory):
    root = tmp_path_factory.mktemp("registers")
    ledger = FakeLedger(thousand)
    result = export_period(ledger, PROGRAM, PERIOD, root)
    return ledger, result, root


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_thousand_payouts_reconcile_to_the_kopiyka(thousand, exported):
    ledger, result, _ = exported
    expected_sum = sum(p.payout_kop for p in thousand)
    summary = json.loads((result.directory / "control.json").read_text(encoding="utf-8"))
    assert summary["count"] == 1000
    assert summary["sum_kop"] == expected_sum
    assert summary["sum_uah"] == kop_to_decimal_str(expected_sum)
    assert set(summary["channels"]) == {"bank", "treasury", "post", "my_transfer"}
    per_channel = 0
    for channel, totals in summary["channels"].items():
        sidecar = json.loads((result.directory / f"{channel}.control.json").read_text(encoding="utf-8"))
        want = [p.payout_kop for p in thousand if p.payment.channel == channel]
        assert (sidecar["count"], sidecar["sum_kop"]) == (len(want), sum(want)) == (totals["count"], totals["sum_kop"])
        assert isinstance(sidecar["sum_kop"], int)
        for name, meta in sidecar["files"].items():
            assert hashlib.sha256((result.directory / name).read_bytes()).hexdigest() == meta["sha256"]
        per_channel += sidecar["sum_kop"]
    assert per_channel == expected_sum
    report = reconcile_with_ledger(ledger, result.directory)
    assert report.ok, report.differences[:5]
    assert (report.register_count, report.register_sum_kop) == (1000, expected_sum)
    assert (report.ledger_count, report.ledger_sum_kop) == (1000, expected_sum)


def test_csv_lines_add_up_to_the_sidecar(exported):
    _, result, _ = exported
    for name in ("bank.utf-8.csv", "post.vidomist.utf-8.csv", "my_transfer.utf-8.csv", "treasury.utf-8.csv"):
        rows = list(csv.reader(io.StringIO((result.directory / name).read_text(encoding="utf-8")), delimiter=";"))
        amount_col = rows[0].index("сума")
        total = sum(int(row[amount_col].replace(".", "")) for row in rows[1:])
        sidecar = json.loads((result.directory / f"{name.split('.')[0]}.control.json").read_text(encoding="utf-8"))
        assert total == sidecar["sum_kop"] and len(rows) - 1 == sidecar["count"]
    header = (result.directory / "bank.utf-8.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "РНОКПП/ЄДРПОУ;IBAN;сума;ПІБ/назва"


def test_pain001_validates_against_its_xsd_and_keeps_cyrillic(exported, pain_xsd, thousand):
    _, result, _ = exported
    for channel in ("bank", "treasury"):
        data = (result.directory / f"{channel}.pain.001.xml").read_bytes()
        pain_xsd.validate(data.decode("utf-8"))  # raises on any violation
        root = ET.fromstring(data)
        ns = {"p": PAIN_NS}
        header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", ns)
        want = [p for p in thousand if p.payment.channel == channel]
        assert header.findtext("p:NbOfTxs", namespaces=ns) == str(len(want))
        assert header.findtext("p:CtrlSum", namespaces=ns) == kop_to_decimal_str(sum(p.payout_kop for p in want))
        currencies = {a.get("Ccy") for a in root.iterfind(".//p:InstdAmt", ns)}
        assert currencies == {"UAH"}
        names = {n.text for n in root.iterfind(".//p:Cdtr/p:Nm", ns)}
        assert names <= {p.payee.name for p in want}
        debtor = root.findtext("p:CstmrCdtTrfInitn/p:PmtInf/p:Dbtr/p:Nm", namespaces=ns)
        assert debtor == DEBTOR.name  # Cyrillic, not transliterated (clean=False)
    assert "Ґудзь Євген Ярославович" in (result.directory / "bank.pain.001.xml").read_text(encoding="utf-8")


def test_reexport_is_byte_identical_whatever_the_order(thousand, exported, tmp_path):
    ledger, result, root = exported
    before = _files(result.directory)
    again = export_period(ledger, PROGRAM, PERIOD, root)
    assert again.changed == []
    assert _files(result.directory) == before
    shuffled = list(thousand)
    random.Random(7).shuffle(shuffled)
    elsewhere = export_period(FakeLedger(shuffled), PROGRAM, PERIOD, tmp_path)
    assert _files(elsewhere.directory) == before


def test_cp1251_round_trip_keeps_ukrainian_names(tmp_path):
    names = ["Ґудзь Євген Ярославович", "Їжакевич Ірина Олексіївна", "Д\u2019яченко Марія", "Мар\u02bcяна Соловйова",
             "Щербак Ольга; «Дочка»", 'Лук"яненко Ігор']
    decisions = [payout(10 * n + k, name=name, channel=ch) for n, name in enumerate(names, start=1)
                 for k, ch in enumerate(("bank", "post", "my_transfer"))]
    registers = build_registers(decisions, PROGRAM, PERIOD, DEBTOR)
    directory, _ = write_registers(registers, tmp_path)
    for stem, name_col in (("bank", 3), ("post.vidomist", 2), ("my_transfer", 2)):
        cp = list(csv.reader(io.StringIO((directory / f"{stem}.cp1251.csv").read_bytes().decode("cp1251")), delimiter=";"))
        utf = list(csv.reader(io.StringIO((directory / f"{stem}.utf-8.csv").read_text(encoding="utf-8")), delimiter=";"))
        assert cp[0] == utf[0]
        got = sorted(row[name_col] for row in cp[1:])
        want = sorted(n.replace("\u02bc", "\u2019") for n in names)
        assert got == want
        assert sorted(row[name_col] for row in utf[1:]) == sorted(names)
    assert to_cp1251_text("Ґґ Єє Іі Її")[0] == "Ґґ Єє Іі Її"
    assert to_cp1251_text("Zoë")[0] == "Zoe"
    assert reconcile_dir(directory, decisions).ok


def test_only_final_positive_payouts_are_paid_and_replays_count_once(tmp_path):
    decisions = payouts(20, channel="bank")
    provisional = payout(21, final=False, channel="bank")
    refused = payout(22, amount=0, status="refused", channel="bank")
    replayed = decisions[3]
    registers = build_registers([*decisions, provisional, refused, replayed], PROGRAM, PERIOD, DEBTOR)
    assert registers.summary["count"] == 20
    assert registers.summary["sum_kop"] == sum(p.payout_kop for p in decisions)
    assert registers.summary["excluded"] == {"not_final": 1, "zero_amount": 1, "other_program_or_period": 0}
    conflicting = payout(4, amount=decisions[3].payout_kop + 1, channel="bank").model_copy(
        update={"decision_id": "another-decision"})
    with pytest.raises(ExportError, match="two different final decisions"):
        build_registers([*decisions, conflicting], PROGRAM, PERIOD, DEBTOR)


def test_messy_names_and_long_ids_still_validate(tmp_path, pain_xsd):
    long_id = "app-" + "x" * 90
    decisions = [
        payout(1, name="Дуже-Довге-Прізвище " * 8, channel="bank"),
        payout(2, name="Рядок\nз\tрозривом\x00", channel="bank").model_copy(update={"application_id": long_id}),
    ]
    registers = build_registers(decisions, PROGRAM, PERIOD, DEBTOR)
    xml = registers.registers["bank"].files["bank.pain.001.xml"]
    pain_xsd.validate(xml.decode("utf-8"))
    assert len(end_to_end_id(long_id)) <= 35
    assert b"\x00" not in xml and "Рядок з розривом".encode() in xml
    directory, _ = write_registers(registers, tmp_path)
    assert reconcile_dir(directory, decisions).ok


def test_stale_channel_files_are_removed(tmp_path):
    both = [payout(1, channel="bank"), payout(2, channel="post")]
    directory, _ = write_registers(build_registers(both, PROGRAM, PERIOD, DEBTOR), tmp_path)
    assert (directory / "post.control.json").exists()
    _, changed = write_registers(build_registers(both[:1], PROGRAM, PERIOD, DEBTOR), tmp_path)
    assert not (directory / "post.control.json").exists() and "post.vidomist.cp1251.csv" in changed
    assert reconcile_dir(directory, both[:1]).ok


def test_debtor_configuration(tmp_path):
    # the city's paying department, from programs/zaporizhzhia/city.yaml (seed 004 L500)
    assert debtor_for("zaporizhzhia.anything").name == "Управління соціального захисту населення Запорізької міської ради"
    config = tmp_path / "debtors.json"
    config.write_text(json.dumps({"zhytomyr.centenarians": {"name": "Тест", "iban": "UA21 3223 1300 0002 6007 2335 6600 1"}}),
                      encoding="utf-8")
    debtors = load_debtors(config)
    assert debtor_for(PROGRAM, debtors) == Debtor("Тест", "UA213223130000026007233566001")
    assert debtor_for("zhytomyr.other", debtors) == DEFAULT_DEBTORS["zhytomyr"]
    config.write_text(json.dumps({"x": {"name": "Тест", "iban": "UA00"}}), encoding="utf-8")
    with pytest.raises(ValueError, match="IBAN"):
        load_debtors(config)
