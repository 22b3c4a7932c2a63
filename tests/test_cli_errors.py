"""The `dopomoga` command never shows a traceback: an unexpected error is one line and exit status 1."""

from __future__ import annotations

import pytest

from services.platform.cli_errors import explain, run


def test_errors_are_one_plain_line(capsys, monkeypatch):
    monkeypatch.delenv("DOPOMOGA_DEBUG", raising=False)

    def broken():
        raise ValueError("period 2023-13 is not a month\nsecond line")

    with pytest.raises(SystemExit) as exit_:
        run(broken)
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ValueError: period 2023-13 is not a month") and "Traceback" not in err
    assert "second line" not in err


def test_known_failures_are_explained():
    from kafka.errors import KafkaTimeoutError

    assert "broker is not reachable" in explain(KafkaTimeoutError())
    assert explain(FileNotFoundError(2, "No such file", "x.jsonl")) == "file not found: x.jsonl"


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("DOPOMOGA_DEBUG", "1")
    with pytest.raises(RuntimeError):
        run(lambda: (_ for _ in ()).throw(RuntimeError("boom")))
