"""Eligibility service: ``applications`` -> ``eligibility-decisions`` (key application_id).

Thin adapter around ``Engine.check_eligibility_encoded(record=True)``. Grant history lives in
SQLite and is fed back from ``payout-decisions``: a final decision that pays confirms
the grant, a final refusal forgets the provisional one.

Run: ``python -m services.eligibility`` (or ``faust -A services.eligibility.app worker --without-web``).
"""

from __future__ import annotations

from dopomoga.rules.engine import Engine
from dopomoga.rules.history import Grant
from dopomoga.rules.programs import Catalog
from dopomoga.rules.windows import counted_keys
from schemas.events import PayoutDecided
from services.eligibility.adapters.history import SqliteGrantHistory
from services.eligibility.adapters.sql_history import SqlGrantHistory, history_url
from services.eligibility.boundary import admit, conflict_reason, content_fingerprint
from services.platform.config import settings
from services.platform.observability import decision_counter
from services.platform.rejections import Rejection, Source, decode
from services.platform.runtime import Output, StreamService
from services.platform.topology import APPLICATIONS, ELIGIBILITY_DECISIONS, PAYOUT_DECISIONS

cfg = settings("eligibility")
service = StreamService(cfg, outputs=[ELIGIBILITY_DECISIONS])
# On PostgreSQL (DOPOMOGA_HISTORY_DB, else the ledger's DOPOMOGA_DB when it is PostgreSQL): one history
# shared by every replica, per-person checks atomic across them (adapters/sql_history.py); else a
# local SQLite file (one replica only).
_history_url = history_url()
history = (SqlGrantHistory(_history_url) if _history_url
           else SqliteGrantHistory(cfg.var_dir / f"{cfg.app_id}-history.sqlite"))
catalog = Catalog.load()
engine = Engine(catalog, history)
app = service.app


def decide(raw: bytes | None, source: Source, application=None):
    if application is None:
        application = admit(raw, source, catalog)
    # an id seen before with other content is a conflict, never decided (so never granted)
    # (an application refused as invalid does not take its id: the registry may correct and re-send it)
    mark = content_fingerprint(application)
    first = history.known_application(application.application_id)
    if first is not None and first[0] != mark:
        raise Rejection("application_id_conflict", conflict_reason(first, mark))
    if first is not None:  # a replay: the bytes decided the first time, whatever the history says now
        stored = history.decision_of(application.application_id)
        if stored is not None:
            yield ELIGIBILITY_DECISIONS, application.application_id, stored
            return
    decision = engine.check_eligibility_encoded(application, record=True)  # the event's bytes, no model
    if first is None:
        history.remember_application(application.application_id, mark,
                                     f"{source.topic}/{source.partition}/{source.offset}", decision.json)
    decision_counter(cfg.service, decision.program_id, "eligible" if decision.eligible else "ineligible").inc()
    yield ELIGIBILITY_DECISIONS, decision.application_id, decision.json


def decide_batch(messages: list[tuple[bytes | None, Source]]) -> list[list[Output]]:
    """Each message's outputs, in order, as ``decide`` one by one; but first the batch's subjects are
    locked and their grants and the batch's known ids read in one go (``history.prefetch``: two round
    trips per batch instead of three per application on PostgreSQL). A message that is not admitted
    goes through ``decide`` alone, which dead-letters it."""
    admitted: list = []
    for raw, source in messages:
        try:
            admitted.append(admit(raw, source, catalog))
        except Exception:  # classified by decide, one by one, as before
            admitted.append(None)
    prefetch = getattr(history, "prefetch", None)
    if prefetch is not None:
        keys: list[str] = []
        for application in admitted:
            if application is not None and application.program_id in catalog.programs:
                keys.extend(counted_keys(catalog.programs[application.program_id], application))
        try:
            prefetch([a.application_id for a in admitted if a is not None], keys)
        except Exception as exc:  # the store failed: one by one, where its error takes the usual path (exit, replay)
            service.log.warning("prefetch_failed", error_type=type(exc).__name__)
    return [service._handle(decide, raw, source) if application is None
            else service._handle(lambda r, s, a=application: decide(r, s, a), raw, source)
            for (raw, source), application in zip(messages, admitted, strict=True)]


def _paid(payout: PayoutDecided) -> Grant:
    """The grant of the person a final payout paid (recorded final if it was never seen)."""
    return Grant(keys=(payout.payee.subject_key,), program_id=payout.program_id,
                 application_id=payout.application_id, on=payout.occurred_at.date(), period=payout.period)


def feed_history(raw: bytes | None, source: Source):
    payout = decode(PayoutDecided, raw, trusted=True)
    if not payout.final:
        return
    if payout.payout_kop > 0:
        history.confirm(payout.application_id, _paid(payout))
    elif payout.status == "refused":
        history.forget(payout.application_id)
    yield from ()


def feed_history_batch(messages: list[tuple[bytes | None, Source]]) -> list[list[Output]]:
    """``feed_history`` for a batch, in order; on the SQL history the runs of payouts that confirm
    (distinct applications, no refusal between them) are confirmed together (``confirm_many``)."""
    confirm_many = getattr(history, "confirm_many", None)
    if confirm_many is None:
        return [service._handle(feed_history, raw, source) for raw, source in messages]
    outputs: list[list[Output]] = []
    run: list[tuple[str, Grant]] = []
    run_messages: list[tuple[bytes | None, Source]] = []

    def flush() -> None:
        if run:
            try:
                confirm_many(list(run))
            except Exception:  # the store failed: one by one, where its error takes the usual path (exit, replay)
                for raw, source in run_messages:
                    service._handle(feed_history, raw, source)
            run.clear()
            run_messages.clear()

    for raw, source in messages:
        try:
            payout = decode(PayoutDecided, raw, trusted=True)
        except Exception:  # classified (dead-lettered) as one by one, after what came before
            flush()
            outputs.append(service._handle(feed_history, raw, source))
            continue
        if payout.final and payout.payout_kop > 0 and all(i != payout.application_id for i, _ in run):
            run.append((payout.application_id, _paid(payout)))
            run_messages.append((raw, source))
            outputs.append([])
            continue
        flush()
        outputs.append(service._handle(feed_history, raw, source))
    flush()
    return outputs


service.agent(APPLICATIONS, batch_handler=decide_batch, after_batch=history.commit)
service.agent(PAYOUT_DECISIONS, batch_handler=feed_history_batch, after_batch=history.commit)


def main() -> None:
    service.run()


if __name__ == "__main__":
    main()
