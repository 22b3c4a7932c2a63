"""Where the ledger lives; the PostgreSQL password comes from a secret file, never the URL's text."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from dopomoga.budget.location import ledger_url


def test_the_password_file_is_read_into_the_url_and_survives_any_character(tmp_path, monkeypatch):
    secret = tmp_path / "postgres_password"
    secret.write_text("p@ss:w/rd %41#?&=+ їжак\n", encoding="utf-8")
    monkeypatch.setenv("DOPOMOGA_DB", "postgresql+psycopg://dopomoga@postgres:5432/dopomoga")
    monkeypatch.setenv("DOPOMOGA_DB_PASSWORD_FILE", str(secret))
    url = ledger_url()
    assert make_url(url).password == "p@ss:w/rd %41#?&=+ їжак"
    assert make_url(url).host == "postgres" and make_url(url).database == "dopomoga"


def test_a_url_with_a_password_and_a_password_file_is_refused(tmp_path, monkeypatch):
    secret = tmp_path / "pw"
    secret.write_text("x")
    monkeypatch.setenv("DOPOMOGA_DB", "postgresql+psycopg://dopomoga:inline@postgres/dopomoga")
    monkeypatch.setenv("DOPOMOGA_DB_PASSWORD_FILE", str(secret))
    with pytest.raises(ValueError, match="use one"):
        ledger_url()


def test_an_empty_password_file_is_refused(tmp_path, monkeypatch):
    secret = tmp_path / "pw"
    secret.write_text("\n")
    monkeypatch.setenv("DOPOMOGA_DB", "postgresql+psycopg://dopomoga@postgres/dopomoga")
    monkeypatch.setenv("DOPOMOGA_DB_PASSWORD_FILE", str(secret))
    with pytest.raises(ValueError, match="empty"):
        ledger_url()


def test_without_a_password_file_the_url_is_used_as_given(monkeypatch):
    monkeypatch.setenv("DOPOMOGA_DB", "sqlite:///var/x.sqlite")
    monkeypatch.delenv("DOPOMOGA_DB_PASSWORD_FILE", raising=False)
    assert ledger_url() == "sqlite:///var/x.sqlite"
