"""Payment registers from final payout decisions (pure: decisions in, bytes out).

One register set per program and month, one register per payment channel:

============  ===============================================================  ===========
channel       files                                                            lines keyed
============  ===============================================================  ===========
bank          ``bank.pain.001.xml`` (ISO 20022 pain.001.001.03, UAH),          EndToEndId /
              ``bank.utf-8.csv``, ``bank.cp1251.csv``                          payee+IBAN
              (``РНОКПП/ЄДРПОУ;IBAN;сума;ПІБ/назва``, CMU 1596 «список на
              зарахування»)
treasury      the same three files with the prefix ``treasury.``
post          ``post.vidomist.utf-8.csv``, ``post.vidomist.cp1251.csv``        заява
              (Ukrposhta «відомість», CMU 1279)
my_transfer   ``my_transfer.utf-8.csv``, ``my_transfer.cp1251.csv``            заява
============  ===============================================================  ===========

Every register has a sidecar ``<channel>.control.json`` with its control totals (count,
sum in kopiyky and in UAH, SHA-256 of every file) and the period has ``control.json``
with the totals of all channels. Nothing is read from the clock: the message id is a
hash of the content and the creation time is the latest decision time, so exporting the
same decisions again gives byte-identical files.

Only ``final`` decisions with a positive payout are paid; refused and deferred finals
(payout 0) are counted in ``control.json`` under ``excluded`` and written nowhere else.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import json
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dopomoga.money import format_uah, kop_to_decimal_str
from dopomoga.treasury.debtors import Debtor
from dopomoga.treasury.schedule import execution_date as schedule_date
from dopomoga.treasury.schedule import neutralise_cell
from schemas.events import PayoutDecided

CHANNELS = ("bank", "treasury", "post", "my_transfer")
XML_CHANNELS = ("bank", "treasury")
PAIN_SCHEMA = "pain.001.001.03"
PAIN_NS = f"urn:iso:std:iso:20022:tech:xsd:{PAIN_SCHEMA}"
CONTROL_FORMAT = "dopomoga.register.control/1"
CSV_ENCODINGS = ("utf-8", "cp1251")

BANK_HEADER = ("РНОКПП/ЄДРПОУ", "IBAN", "сума", "ПІБ/назва")
POST_HEADER = ("№", "РНОКПП/паспорт", "ПІБ", "район", "сума", "заява")
MY_TRANSFER_HEADER = ("№", "РНОКПП/паспорт", "ПІБ", "сума", "заява")

#: Apostrophes of Ukrainian names that cp1251 lacks, mapped to the one it has (0x92).
_CP1251_APOSTROPHES = str.maketrans({"\u02bc": "\u2019", "\u02b9": "\u2019", "\u0060": "\u2019", "\u00b4": "\u2019"})
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_E2E_SAFE = re.compile(r"^[A-Za-z0-9.:_\-]{1,35}$")


class ExportError(ValueError):
    """The decisions cannot be written as registers (message names no person)."""


def register_files(channel: str) -> tuple[str, ...]:
    """The file names of a channel's register (without the sidecar)."""
    if channel in XML_CHANNELS:
        return (f"{channel}.pain.001.xml", f"{channel}.utf-8.csv", f"{channel}.cp1251.csv")
    if channel == "post":
        return ("post.vidomist.utf-8.csv", "post.vidomist.cp1251.csv")
    if channel == "my_transfer":
        return ("my_transfer.utf-8.csv", "my_transfer.cp1251.csv")
    raise ExportError(f"unknown payment channel {channel!r}")


def control_file(channel: str) -> str:
    return f"{channel}.control.json"


def clean_text(text: str) -> str:
    """One line of printable text: control characters and line breaks become a space."""
    return " ".join(_CONTROL_CHARS.sub(" ", unicodedata.normalize("NFC", text)).split())


def to_cp1251_text(text: str) -> tuple[str, bool]:
    """Text that cp1251 can hold, and whether anything had to be substituted.

    Ukrainian letters (і ї є ґ) are in cp1251; the modifier apostrophe ʼ (U+02BC) is not
    and becomes ’ (0x92). Anything else cp1251 lacks is decomposed (é -> e) or becomes '?'.
    """
    mapped = text.translate(_CP1251_APOSTROPHES)
    try:
        mapped.encode("cp1251")
        return mapped, mapped != text
    except UnicodeEncodeError:
        pass
    out = []
    for char in mapped:
        try:
            char.encode("cp1251")
            out.append(char)
        except UnicodeEncodeError:
            base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
            try:
                base.encode("cp1251")
                out.append(base or "?")
            except UnicodeEncodeError:
                out.append("?")
    return "".join(out), True


def end_to_end_id(application_id: str) -> str:
    """pain.001 EndToEndId (Max35Text): the application id, or a hash of a longer one."""
    if _E2E_SAFE.match(application_id):
        return application_id
    return "H" + hashlib.sha256(application_id.encode()).hexdigest()[:34]


@dataclass(frozen=True)
class Line:
    """One payment of a register, already cleaned for output."""

    ref: str  # application id
    decision_id: str
    channel: str
    id_kind: str
    payee_id: str
    name: str
    iban: str | None
    district: str
    amount_kop: int
    occurred_at: dt.datetime

    @property
    def e2e(self) -> str:
        return end_to_end_id(self.ref)


@dataclass
class Register:
    program_id: str
    period: str
    channel: str
    lines: list[Line]
    files: dict[str, bytes] = field(default_factory=dict)
    control: dict = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.lines)

    @property
    def sum_kop(self) -> int:
        return sum(line.amount_kop for line in self.lines)


@dataclass
class RegisterSet:
    program_id: str
    period: str
    registers: dict[str, Register]
    summary: dict

    def all_files(self) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        for register in self.registers.values():
            files.update(register.files)
            files[control_file(register.channel)] = _json_bytes(register.control)
        files["control.json"] = _json_bytes(self.summary)
        return files


def _json_bytes(data: dict) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def payable_lines(
    payouts: Iterable[PayoutDecided], program_id: str, period: str
) -> tuple[list[Line], dict[str, int]]:
    """Final, positive payouts of one program and month as sorted lines, and what was excluded.

    A decision repeated verbatim (a replayed event) counts once; two different final
    decisions for one application are an error - the ledger must say which one holds.
    """
    chosen: dict[str, PayoutDecided] = {}
    excluded = {"not_final": 0, "zero_amount": 0, "other_program_or_period": 0}
    for payout in payouts:
        if payout.program_id != program_id or payout.period != period:
            excluded["other_program_or_period"] += 1
            continue
        if not payout.final:
            excluded["not_final"] += 1
            continue
        previous = chosen.get(payout.application_id)
        if previous is not None and previous != payout:
            raise ExportError(
                f"two different final decisions ({previous.decision_id}, {payout.decision_id}) for one application "
                f"in {program_id} {period}"
            )
        chosen[payout.application_id] = payout
    lines: list[Line] = []
    for ref in sorted(chosen):
        payout = chosen[ref]
        if payout.payout_kop <= 0:
            excluded["zero_amount"] += 1
            continue
        if type(payout.payout_kop) is not int:  # pragma: no cover - the schema forbids it
            raise ExportError("payout amount is not an integer number of kopiyky")
        lines.append(
            Line(
                ref=ref,
                decision_id=payout.decision_id,
                channel=payout.payment.channel,
                id_kind=payout.payee.id_kind,
                payee_id=payout.payee.id,
                name=clean_text(payout.payee.name),
                iban=payout.payment.iban,
                district=clean_text(payout.payee.district or payout.district or ""),
                amount_kop=payout.payout_kop,
                occurred_at=payout.occurred_at.astimezone(dt.UTC),
            )
        )
    e2e = [line.e2e for line in lines]
    if len(set(e2e)) != len(e2e):  # pragma: no cover - a 136-bit hash collision
        raise ExportError("two applications map to one EndToEndId")
    return lines, excluded


def _csv_text(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows([neutralise_cell(cell) for cell in row] for row in rows)  # no formulas (schedule.py)
    return buffer.getvalue()


def csv_rows(channel: str, lines: list[Line]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Header and rows of a channel's CSV register (UTF-8 text; see :func:`encode_cp1251_csv`)."""
    if channel in XML_CHANNELS:
        rows = [(ln.payee_id, ln.iban or "", kop_to_decimal_str(ln.amount_kop), ln.name) for ln in lines]
        return BANK_HEADER, rows
    if channel == "post":
        rows = [
            (str(n), ln.payee_id, ln.name, ln.district, kop_to_decimal_str(ln.amount_kop), ln.ref)
            for n, ln in enumerate(lines, start=1)
        ]
        return POST_HEADER, rows
    if channel == "my_transfer":
        rows = [
            (str(n), ln.payee_id, ln.name, kop_to_decimal_str(ln.amount_kop), ln.ref)
            for n, ln in enumerate(lines, start=1)
        ]
        return MY_TRANSFER_HEADER, rows
    raise ExportError(f"unknown payment channel {channel!r}")


def cp1251_rows(rows: list[tuple[str, ...]]) -> tuple[list[tuple[str, ...]], int]:
    """Rows with every field made cp1251-safe, and how many rows needed a substitution."""
    out: list[tuple[str, ...]] = []
    substituted = 0
    for row in rows:
        fields = [to_cp1251_text(value) for value in row]
        substituted += any(changed for _, changed in fields)
        out.append(tuple(text for text, _ in fields))
    return out, substituted


def _pain001(lines: list[Line], debtor: Debtor, *, msg_id: str, created: str, execution: dt.date,
             purpose: str, period: str) -> bytes:
    from sepaxml import SepaTransfer

    class DeterministicTransfer(SepaTransfer):
        """sepaxml with the message id, creation time and PmtInfId taken from the data."""

        def _finalize_batch(self) -> None:
            super()._finalize_batch()
            for number, node in enumerate(self._xml.iter("PmtInfId"), start=1):
                node.text = f"{msg_id[:31]}-{number:03d}"

    config = {
        "name": clean_text(debtor.name)[:70],
        "IBAN": debtor.iban,
        "batch": True,
        "currency": "UAH",
        "domestic": True,  # no SEPA service level: a domestic UAH transfer
    }
    if debtor.bic:
        config["BIC"] = debtor.bic
    transfer = DeterministicTransfer(config, schema=PAIN_SCHEMA, clean=False)
    transfer.msg_id = msg_id
    header = transfer._xml.find("CstmrCdtTrfInitn/GrpHdr")
    header.find("MsgId").text = msg_id
    header.find("CreDtTm").text = created
    for line in lines:
        transfer.add_payment(
            {
                "name": line.name[:70],
                "IBAN": line.iban,
                "amount": line.amount_kop,
                "execution_date": execution,
                "description": f"{clean_text(purpose)[:90]}; {period}; {line.e2e}"[:140],
                "endtoend_id": line.e2e,
            }
        )
    # sepaxml's own check (export(validate=True)) loads the XSD again on every call (~1.3 s);
    # the same XSD, loaded once, is applied here instead.
    document = transfer.export(validate=False, pretty_print=True)
    problem = validate_pain001(document)
    if problem:
        raise ExportError(f"the pain.001 document does not validate against {PAIN_SCHEMA}.xsd: {problem}")
    return document


@functools.cache
def pain_schema():
    """sepaxml's bundled pain.001.001.03 XSD, loaded once (xmlschema)."""
    import sepaxml
    import xmlschema

    return xmlschema.XMLSchema(str(Path(sepaxml.__file__).parent / "schemas" / f"{PAIN_SCHEMA}.xsd"))


def validate_pain001(data: bytes) -> str | None:
    """None if the document validates against the XSD, else the first error."""
    error = next(iter(pain_schema().iter_errors(data.decode("utf-8"))), None)
    return None if error is None else str(error.reason or error.message)[:300]


def content_digest(program_id: str, period: str, channel: str, lines: list[Line], debtor: Debtor | None) -> str:
    digest = hashlib.sha256(f"{program_id}|{period}|{channel}".encode())
    if debtor is not None:
        digest.update(f"|{debtor.name}|{debtor.iban}|{debtor.bic}".encode())
    for ln in lines:
        digest.update(f"\n{ln.ref}|{ln.decision_id}|{ln.payee_id}|{ln.iban}|{ln.amount_kop}|{ln.name}".encode())
    return digest.hexdigest()


def build_register(program_id: str, period: str, channel: str, lines: list[Line], debtor: Debtor,
                   purpose: str, execution_date: dt.date | None = None) -> Register:
    register = Register(program_id, period, channel, lines)
    created_at = max(ln.occurred_at for ln in lines).replace(microsecond=0, tzinfo=None)
    execution = execution_date or schedule_date(created_at.date(), period)  # not the event time (schedule.py)
    header, rows = csv_rows(channel, lines)
    names = register_files(channel)
    uses_debtor = channel in XML_CHANNELS
    digest = content_digest(program_id, period, channel, lines, debtor if uses_debtor else None)
    msg_id = f"DPM{digest[:32]}"
    files: dict[str, bytes] = {}
    if uses_debtor:
        files[names[0]] = _pain001(lines, debtor, msg_id=msg_id, created=created_at.isoformat(),
                                   execution=execution, purpose=purpose, period=period)
    utf8_name, cp_name = names[-2], names[-1]
    files[utf8_name] = _csv_text(header, rows).encode("utf-8")
    safe_rows, substituted = cp1251_rows(rows)
    files[cp_name] = _csv_text(header, safe_rows).encode("cp1251")
    register.files = files
    total = register.sum_kop
    register.control = {
        "format": CONTROL_FORMAT,
        "program_id": program_id,
        "period": period,
        "channel": channel,
        "count": register.count,
        "sum_kop": total,
        "sum_uah": kop_to_decimal_str(total),
        "sum_uah_text": format_uah(total),
        "message_id": msg_id,
        "created": created_at.isoformat(),
        "execution_date": execution.isoformat(),
        "cp1251_substituted_lines": substituted,
        "debtor": debtor.as_dict() if uses_debtor else None,
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "lines": register.count}
            for name, data in sorted(files.items())
        },
    }
    if uses_debtor:
        register.control["pain001_schema"] = PAIN_SCHEMA
    return register


def build_registers(payouts: Iterable[PayoutDecided], program_id: str, period: str, debtor: Debtor,
                    purpose: str | None = None, execution_date: dt.date | None = None) -> RegisterSet:
    """Every register of one program and month, in memory (no I/O)."""
    lines, excluded = payable_lines(payouts, program_id, period)
    by_channel: dict[str, list[Line]] = {}
    for line in lines:
        by_channel.setdefault(line.channel, []).append(line)
    registers = {
        channel: build_register(program_id, period, channel, by_channel[channel], debtor,
                                purpose or program_id, execution_date)
        for channel in CHANNELS
        if by_channel.get(channel)
    }
    total = sum(r.sum_kop for r in registers.values())
    summary = {
        "format": CONTROL_FORMAT,
        "program_id": program_id,
        "period": period,
        "count": sum(r.count for r in registers.values()),
        "sum_kop": total,
        "sum_uah": kop_to_decimal_str(total),
        "sum_uah_text": format_uah(total),
        "excluded": excluded,
        "channels": {
            ch: {"count": r.count, "sum_kop": r.sum_kop, "sum_uah": kop_to_decimal_str(r.sum_kop),
                 "control": control_file(ch)}
            for ch, r in registers.items()
        },
    }
    return RegisterSet(program_id, period, registers, summary)


_OUR_FILES = re.compile(r"^(control\.json|[a-z_]+\.control\.json|[a-z_]+(\.vidomist)?\.(utf-8|cp1251)\.csv|[a-z_]+\.pain\.001\.xml)$")


def register_dir(root: Path, program_id: str, period: str) -> Path:
    return Path(root) / program_id / period


def write_registers(register_set: RegisterSet, root: Path) -> tuple[Path, list[str]]:
    """Write under ``root/<program>/<period>/``; returns the directory and the files changed.

    Files are replaced atomically and only when their bytes change; register files left
    from an earlier export of a channel that no longer has payments are removed.
    """
    directory = register_dir(root, register_set.program_id, register_set.period)
    directory.mkdir(parents=True, exist_ok=True)
    files = register_set.all_files()
    changed: list[str] = []
    for name, data in sorted(files.items()):
        path = directory / name
        if path.exists() and path.read_bytes() == data:
            continue
        tmp = directory / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, path)
        changed.append(name)
    for stale in sorted(directory.iterdir()):
        if stale.is_file() and _OUR_FILES.match(stale.name) and stale.name not in files:
            stale.unlink()
            changed.append(stale.name)
    return directory, changed
