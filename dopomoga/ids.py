"""Deterministic ids: the same input always gets the same id (replays change nothing).

Every id Dopomoga derives is a UUIDv5 (RFC 4122, SHA-1 name-based) of ``stage:name`` in
Dopomoga's namespace: decisions (``eligibility``, ``entitlement``, ``payout`` of an
application id) and budget commands (``period-closed``, ``allocation-set`` of the budget and
the amendment; see ``dopomoga.budget.commands``).
"""

from __future__ import annotations

import hashlib
import uuid

NAMESPACE = uuid.UUID("6d1b3c7e-2f4a-5b8c-9d0e-1f2a3b4c5d6e")
_NAMESPACE_BYTES = NAMESPACE.bytes
_VARIANT = {c: "89ab"[int(c, 16) & 0x3] for c in "0123456789abcdef"}


def decision_id(stage: str, name: str) -> str:
    """UUIDv5 of ``stage:name`` in Dopomoga's namespace.

    Computed directly because ``uuid.uuid5`` costs more than a rule; equal to
    ``str(uuid.uuid5(NAMESPACE, f"{stage}:{name}"))`` (tests/core/test_ids.py).
    """
    h = hashlib.sha1(_NAMESPACE_BYTES + f"{stage}:{name}".encode()).hexdigest()
    # version 5 in the high nibble of octet 6, the RFC 4122 variant (10xx) in octet 8
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"
