"""Reconcile a register directory against the ledger's final payout decisions.

Reads what is actually on disk (the pain.001 XML, both CSV encodings, the sidecars) and
reports every difference, never stopping at the first one:

- a file is missing, or its SHA-256 differs from its sidecar;
- a header or sidecar control total (count, sum) differs from the lines of the file;
- a payment the ledger has and the register lacks, or the other way round;
- a line whose amount, IBAN, payee identifier or name differs from the ledger;
- the cp1251 CSV says something other than the UTF-8 one;
- the pain.001 file does not validate against its XSD;
- a channel the ledger pays through has no register at all.

Differences name the application (or the line) and amounts, never a name or an IBAN.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from dopomoga.money import kop_to_decimal_str, uah_to_kop
from dopomoga.treasury.registers import (
    CHANNELS,
    PAIN_NS,
    XML_CHANNELS,
    Line,
    control_file,
    cp1251_rows,
    csv_rows,
    end_to_end_id,
    payable_lines,
    register_files,
    validate_pain001,
)
from dopomoga.treasury.schedule import restore_cell
from schemas.events import PayoutDecided


@dataclass(frozen=True)
class Difference:
    channel: str
    file: str
    kind: str
    ref: str
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Report:
    program_id: str
    period: str
    register_count: int
    register_sum_kop: int
    ledger_count: int
    ledger_sum_kop: int
    differences: list[Difference]

    @property
    def ok(self) -> bool:
        return not self.differences

    def as_dict(self) -> dict:
        return {
            "program_id": self.program_id,
            "period": self.period,
            "ok": self.ok,
            "register": {"count": self.register_count, "sum_kop": self.register_sum_kop,
                         "sum_uah": kop_to_decimal_str(self.register_sum_kop)},
            "ledger": {"count": self.ledger_count, "sum_kop": self.ledger_sum_kop,
                       "sum_uah": kop_to_decimal_str(self.ledger_sum_kop)},
            "differences": [d.as_dict() for d in self.differences],
        }


class RegisterFormatError(ValueError):
    pass


def _amount(text: str) -> int:
    return uah_to_kop(text.strip())


def read_control(directory: Path) -> dict:
    path = Path(directory) / "control.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegisterFormatError(f"{path} not found: not a register directory") from None
    except ValueError as exc:
        raise RegisterFormatError(f"{path} is not valid JSON: {exc}") from None


@dataclass(frozen=True)
class ParsedLine:
    key: str  # EndToEndId, заява, or "" (bank CSV: no application column)
    payee_id: str
    iban: str
    name: str
    amount_kop: int


def parse_pain001(data: bytes) -> tuple[dict, list[ParsedLine]]:
    """Header totals and lines of a pain.001.001.03 document."""
    ns = {"p": PAIN_NS}
    root = ET.fromstring(data)
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", ns)
    if header is None:
        raise RegisterFormatError("no CstmrCdtTrfInitn/GrpHdr: not a pain.001.001.03 document")
    totals = {
        "count": int(header.findtext("p:NbOfTxs", "0", ns)),
        "sum_kop": _amount(header.findtext("p:CtrlSum", "0", ns)),
        "batches": [
            (int(b.findtext("p:NbOfTxs", "0", ns)), _amount(b.findtext("p:CtrlSum", "0", ns)),
             len(b.findall("p:CdtTrfTxInf", ns)), sum(_amount(a.text or "0") for a in b.iterfind(".//p:InstdAmt", ns)))
            for b in root.iterfind("p:CstmrCdtTrfInitn/p:PmtInf", ns)
        ],
        "currencies": sorted({a.get("Ccy", "") for a in root.iterfind(".//p:InstdAmt", ns)}),
    }
    lines = [
        ParsedLine(
            key=tx.findtext("p:PmtId/p:EndToEndId", "", ns),
            payee_id="",
            iban=tx.findtext("p:CdtrAcct/p:Id/p:IBAN", "", ns),
            name=tx.findtext("p:Cdtr/p:Nm", "", ns),
            amount_kop=_amount(tx.findtext("p:Amt/p:InstdAmt", "0", ns)),
        )
        for tx in root.iterfind(".//p:CdtTrfTxInf", ns)
    ]
    return totals, lines


def parse_csv(channel: str, text: str) -> tuple[list[str], list[list[str]]]:
    rows = [[restore_cell(cell) for cell in row] for row in csv.reader(io.StringIO(text, newline=""), delimiter=";")]
    if not rows:
        raise RegisterFormatError("empty CSV")
    return rows[0], rows[1:]


def _csv_lines(channel: str, rows: list[list[str]]) -> list[ParsedLine]:
    out = []
    for row in rows:
        if channel in XML_CHANNELS:
            payee_id, iban, amount, name = ([*row, "", "", "", ""])[:4]
            out.append(ParsedLine("", payee_id, iban, name, _amount(amount)))
        elif channel == "post":
            _, payee_id, name, _, amount, ref = (row + [""] * 6)[:6]
            out.append(ParsedLine(ref, payee_id, "", name, _amount(amount)))
        else:
            _, payee_id, name, amount, ref = (row + [""] * 5)[:5]
            out.append(ParsedLine(ref, payee_id, "", name, _amount(amount)))
    return out


class _Collector:
    def __init__(self) -> None:
        self.differences: list[Difference] = []

    def add(self, channel: str, file: str, kind: str, ref: str, detail: str) -> None:
        self.differences.append(Difference(channel, file, kind, ref, detail))


def _uah(kop: int) -> str:
    return kop_to_decimal_str(kop)


def _compare_keyed(out: _Collector, channel: str, file: str, expected: list[Line], parsed: list[ParsedLine],
                   *, key_of, check_iban: bool, check_payee: bool) -> None:
    by_key: dict[str, Line] = {key_of(line): line for line in expected}
    seen: Counter[str] = Counter()
    for number, line in enumerate(parsed, start=1):
        ref = line.key
        seen[ref] += 1
        if seen[ref] == 2:
            out.add(channel, file, "duplicate_line", ref, f"line {number}: the payment appears more than once")
        want = by_key.get(ref)
        if want is None:
            out.add(channel, file, "not_in_ledger", ref or f"line {number}",
                    f"line {number}: {_uah(line.amount_kop)} UAH has no final payout in the ledger")
            continue
        if line.amount_kop != want.amount_kop:
            out.add(channel, file, "amount_differs", want.ref,
                    f"register {_uah(line.amount_kop)} UAH, ledger {_uah(want.amount_kop)} UAH")
        if check_iban and line.iban != (want.iban or ""):
            out.add(channel, file, "iban_differs", want.ref, "the creditor IBAN differs from the ledger's")
        if check_payee and line.payee_id != want.payee_id:
            out.add(channel, file, "payee_id_differs", want.ref, "the payee identifier differs from the ledger's")
        if line.name != want.name[:70] and line.name != want.name:
            out.add(channel, file, "name_differs", want.ref, "the payee name differs from the ledger's")
    for key, want in by_key.items():
        if key not in seen:
            out.add(channel, file, "missing_in_register", want.ref,
                    f"ledger pays {_uah(want.amount_kop)} UAH; the register has no line")


def _compare_unkeyed(out: _Collector, channel: str, file: str, expected: list[Line], parsed: list[ParsedLine]) -> None:
    """Bank CSV (no application column): compare as multisets of (payee, IBAN, amount, name)."""
    want = Counter((ln.payee_id, ln.iban or "", ln.amount_kop, ln.name) for ln in expected)
    have = Counter((ln.payee_id, ln.iban, ln.amount_kop, ln.name) for ln in parsed)
    missing = want - have
    extra = have - want
    refs: dict[tuple, list[str]] = {}
    for ln in expected:
        refs.setdefault((ln.payee_id, ln.iban or "", ln.amount_kop, ln.name), []).append(ln.ref)
    extra_by_payee: dict[tuple[str, str], list[tuple]] = {}
    for item, count in extra.items():
        extra_by_payee.setdefault(item[:2], []).extend([item] * count)
    for item, count in sorted(missing.items()):
        for ref in refs[item][:count]:
            candidates = extra_by_payee.get(item[:2])
            if candidates:
                other = candidates.pop(0)
                if other[2] != item[2]:
                    out.add(channel, file, "amount_differs", ref,
                            f"register {_uah(other[2])} UAH, ledger {_uah(item[2])} UAH")
                if other[3] != item[3]:
                    out.add(channel, file, "name_differs", ref, "the payee name differs from the ledger's")
            else:
                out.add(channel, file, "missing_in_register", ref,
                        f"ledger pays {_uah(item[2])} UAH; the register has no matching line")
    for items in extra_by_payee.values():
        for item in items:
            out.add(channel, file, "not_in_ledger", "(bank CSV line)",
                    f"{_uah(item[2])} UAH to a payee/IBAN with no such final payout in the ledger")


def _check_totals(out: _Collector, channel: str, file: str, what: str, count: int, total: int,
                  lines: list[ParsedLine]) -> None:
    actual_sum = sum(ln.amount_kop for ln in lines)
    if count != len(lines):
        out.add(channel, file, "control_count", "", f"{what} count {count}, lines {len(lines)}")
    if total != actual_sum:
        out.add(channel, file, "control_sum", "", f"{what} sum {_uah(total)} UAH, lines {_uah(actual_sum)} UAH")


def reconcile_dir(directory: Path, payouts: Iterable[PayoutDecided], ledger_status=None) -> Report:
    """Compare the registers in ``directory`` with the ledger's final payouts."""
    directory = Path(directory)
    summary = read_control(directory)
    program_id, period = summary.get("program_id", ""), summary.get("period", "")
    expected_lines, _ = payable_lines(payouts, program_id, period)
    expected: dict[str, list[Line]] = {}
    for line in expected_lines:
        expected.setdefault(line.channel, []).append(line)
    out = _Collector()
    register_count = 0
    register_sum = 0
    channels_on_disk = set(summary.get("channels", {}))
    for channel in CHANNELS:
        want = expected.get(channel, [])
        sidecar_path = directory / control_file(channel)
        if channel not in channels_on_disk and not sidecar_path.exists():
            if want:
                out.add(channel, "", "missing_channel", "",
                        f"ledger pays {len(want)} payments, {_uah(sum(w.amount_kop for w in want))} UAH, "
                        "through this channel; there is no register")
            continue
        try:
            sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            out.add(channel, sidecar_path.name, "missing_file", "", "the control sidecar is missing or unreadable")
            sidecar = {"count": -1, "sum_kop": -1, "files": {}}
        register_count += max(sidecar.get("count", 0), 0)
        register_sum += max(sidecar.get("sum_kop", 0), 0)
        stated = summary.get("channels", {}).get(channel, {})
        if stated and (stated.get("count"), stated.get("sum_kop")) != (sidecar.get("count"), sidecar.get("sum_kop")):
            out.add(channel, "control.json", "control_sum", "", "period summary and channel sidecar disagree")
        ledger_sum = sum(w.amount_kop for w in want)
        if sidecar.get("count") != len(want):
            out.add(channel, sidecar_path.name, "control_count", "",
                    f"sidecar count {sidecar.get('count')}, ledger {len(want)}")
        if sidecar.get("sum_kop") != ledger_sum:
            out.add(channel, sidecar_path.name, "control_sum", "",
                    f"sidecar sum {_uah(sidecar.get('sum_kop', 0))} UAH, ledger {_uah(ledger_sum)} UAH")
        contents: dict[str, bytes] = {}
        for name in register_files(channel):
            path = directory / name
            if not path.exists():
                out.add(channel, name, "missing_file", "", "the register file is missing")
                continue
            data = path.read_bytes()
            contents[name] = data
            recorded = sidecar.get("files", {}).get(name, {}).get("sha256")
            if recorded != hashlib.sha256(data).hexdigest():
                out.add(channel, name, "file_hash", "", "SHA-256 differs from the sidecar: the file was changed")
        for name, data in contents.items():
            try:
                if name.endswith(".xml"):
                    problem = validate_pain001(data)
                    if problem:
                        out.add(channel, name, "xsd_invalid", "", problem)
                    totals, parsed = parse_pain001(data)
                    _check_totals(out, channel, name, "GrpHdr", totals["count"], totals["sum_kop"], parsed)
                    for number, (n, s, lines_n, lines_s) in enumerate(totals["batches"], start=1):
                        if n != lines_n or s != lines_s:
                            out.add(channel, name, "control_sum", "", f"PmtInf {number}: header {n}/{_uah(s)}, "
                                    f"lines {lines_n}/{_uah(lines_s)}")
                    if totals["currencies"] not in ([], ["UAH"]):
                        out.add(channel, name, "currency", "", f"currencies {totals['currencies']}, expected UAH")
                    _check_totals(out, channel, name, "sidecar", sidecar.get("count", -1),
                                  sidecar.get("sum_kop", -1), parsed)
                    _compare_keyed(out, channel, name, want, parsed, key_of=lambda w: end_to_end_id(w.ref),
                                   check_iban=True, check_payee=False)
                    continue
                encoding = "cp1251" if ".cp1251." in name else "utf-8"
                header, rows = parse_csv(channel, data.decode(encoding))
                parsed = _csv_lines(channel, rows)
                _check_totals(out, channel, name, "sidecar", sidecar.get("count", -1),
                              sidecar.get("sum_kop", -1), parsed)
                expected_header, expected_rows = csv_rows(channel, want)
                if encoding == "cp1251":
                    expected_rows, _ = cp1251_rows(expected_rows)
                    translated = [_line_with_name(w, row) for w, row in zip(want, expected_rows, strict=True)]
                else:
                    translated = want
                if tuple(header) != tuple(expected_header if encoding == "utf-8" else cp1251_rows([expected_header])[0][0]):
                    out.add(channel, name, "header_differs", "", "the column header is not the expected one")
                if channel in XML_CHANNELS:
                    _compare_unkeyed(out, channel, name, translated, parsed)
                else:
                    _compare_keyed(out, channel, name, translated, parsed, key_of=lambda w: w.ref,
                                   check_iban=False, check_payee=True)
            except (RegisterFormatError, ValueError, ET.ParseError, UnicodeDecodeError) as exc:
                out.add(channel, name, "unreadable", "", f"cannot read the register: {str(exc)[:200]}")
    ledger_sum = sum(ln.amount_kop for ln in expected_lines)
    if summary.get("sum_kop") != ledger_sum or summary.get("count") != len(expected_lines):
        out.add("", "control.json", "control_sum", "",
                f"period total {summary.get('count')} / {_uah(summary.get('sum_kop') or 0)} UAH, "
                f"ledger {len(expected_lines)} / {_uah(ledger_sum)} UAH")
    if ledger_status is not None and getattr(ledger_status, "closed", False):
        paid = getattr(ledger_status, "paid_kop", None)
        if isinstance(paid, int) and paid != ledger_sum:
            out.add("", "", "ledger_status", "",
                    f"ledger status paid {_uah(paid)} UAH, its final payouts {_uah(ledger_sum)} UAH")
    return Report(program_id, period, register_count, register_sum, len(expected_lines), ledger_sum, out.differences)


def _line_with_name(line: Line, row: tuple[str, ...]) -> Line:
    """The expected line as the cp1251 file must show it (name after substitution)."""
    from dataclasses import replace

    if line.channel in XML_CHANNELS:
        return replace(line, name=row[3])
    return replace(line, name=row[2])
