"""`reconcile` reports every difference between registers on disk and the ledger."""

from __future__ import annotations

import json
import shutil

import pytest

from dopomoga.treasury.export import export_period, reconcile_with_ledger
from dopomoga.treasury.reconcile import reconcile_dir
from tests.treasury.fakes import PERIOD, PROGRAM, FakeLedger, payout, payouts


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    decisions = payouts(60)
    root = tmp_path_factory.mktemp("base")
    result = export_period(FakeLedger(decisions), PROGRAM, PERIOD, root)
    return decisions, result.directory


@pytest.fixture
def copy(base, tmp_path):
    decisions, directory = base
    target = tmp_path / "copy"
    shutil.copytree(directory, target)
    return decisions, target


def kinds(report):
    return sorted({(d.channel, d.file, d.kind) for d in report.differences})


def test_clean_register_has_no_differences(copy):
    decisions, directory = copy
    assert reconcile_dir(directory, decisions).ok


def test_tampered_csv_amount_is_found(copy):
    decisions, directory = copy
    path = directory / "post.vidomist.utf-8.csv"
    lines = path.read_bytes().decode("utf-8").split("\r\n")
    fields = lines[1].split(";")
    fields[4] = "99999.99"
    lines[1] = ";".join(fields)
    path.write_bytes("\r\n".join(lines).encode("utf-8"))
    report = reconcile_dir(directory, decisions)
    found = kinds(report)
    assert ("post", "post.vidomist.utf-8.csv", "amount_differs") in found
    assert ("post", "post.vidomist.utf-8.csv", "file_hash") in found
    assert ("post", "post.vidomist.utf-8.csv", "control_sum") in found
    amount = next(d for d in report.differences if d.kind == "amount_differs")
    assert amount.ref == fields[5] and "99999.99" in amount.detail


def test_ledger_changes_are_found(copy):
    decisions, directory = copy
    changed = [*decisions[1:], payout(500, channel="bank")]
    first_bank = next(p for p in decisions[1:] if p.payment.channel == "bank")
    changed = [p if p is not first_bank else p.model_copy(update={"payout_kop": p.payout_kop - 1}) for p in changed]
    report = reconcile_dir(directory, changed)
    found = {(d.kind, d.ref) for d in report.differences}
    assert ("missing_in_register", payout(500, channel="bank").application_id) in found
    assert ("amount_differs", first_bank.application_id) in found
    assert any(k == "not_in_ledger" for k, _ in found)  # decisions[0] is in the register, not in the ledger
    assert any(d.kind == "control_sum" and d.file == "control.json" for d in report.differences)
    # Names and IBANs never appear in a report
    text = json.dumps(report.as_dict(), ensure_ascii=False)
    assert all(p.payee.name not in text for p in decisions) and "UA21" not in text


def test_deleted_xml_line_and_missing_files_are_found(copy):
    decisions, directory = copy
    xml = (directory / "bank.pain.001.xml").read_text(encoding="utf-8")
    start = xml.index("<CdtTrfTxInf>")
    end = xml.index("</CdtTrfTxInf>", start) + len("</CdtTrfTxInf>")
    (directory / "bank.pain.001.xml").write_text(xml[:start] + xml[end:], encoding="utf-8")
    (directory / "my_transfer.cp1251.csv").unlink()
    (directory / "treasury.control.json").unlink()
    report = reconcile_dir(directory, decisions)
    found = kinds(report)
    assert ("bank", "bank.pain.001.xml", "missing_in_register") in found
    assert ("bank", "bank.pain.001.xml", "control_sum") in found  # GrpHdr CtrlSum vs lines
    assert ("my_transfer", "my_transfer.cp1251.csv", "missing_file") in found
    assert ("treasury", "treasury.control.json", "missing_file") in found


def test_channel_without_register_is_found(copy):
    decisions, directory = copy
    extra = payout(900, channel="post", program_id=PROGRAM)
    for name in ("post.control.json", "post.vidomist.utf-8.csv", "post.vidomist.cp1251.csv"):
        (directory / name).unlink()
    summary = json.loads((directory / "control.json").read_text(encoding="utf-8"))
    del summary["channels"]["post"]
    (directory / "control.json").write_text(json.dumps(summary), encoding="utf-8")
    report = reconcile_dir(directory, [*decisions, extra])
    assert ("post", "", "missing_channel") in kinds(report)


def test_ledger_status_disagreeing_with_final_payouts_is_found(copy):
    decisions, directory = copy

    class Lying(FakeLedger):
        def status(self, program_id, period, district=None):
            status = super().status(program_id, period, district)
            status.paid_kop += 1
            return status

    report = reconcile_with_ledger(Lying(decisions), directory)
    assert [d.kind for d in report.differences] == ["ledger_status"]
