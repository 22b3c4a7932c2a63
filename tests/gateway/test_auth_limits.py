"""Development keys only with DOPOMOGA_DEV=1; lockout after repeated authentication failures."""

from __future__ import annotations

from services.gateway.auth import FailureLimiter, KeyStore
from tests.gateway.conftest import headers


def test_development_keys_need_the_flag():
    assert not KeyStore.from_env({}).development
    assert KeyStore.from_env({"DOPOMOGA_API_KEYS": "k=viewer"}).lookup("dev-viewer") is None
    assert KeyStore.from_env({"DOPOMOGA_DEV": "0"}).lookup("dev-budget-admin") is None
    flagged = KeyStore.from_env({"DOPOMOGA_DEV": "1", "DOPOMOGA_API_KEYS": "k=registry"})
    assert flagged.development and flagged.lookup("dev-budget-admin") and flagged.lookup("k")


def test_limiter_locks_out_and_expires():
    now = [0.0]
    limiter = FailureLimiter(max_failures=3, window_s=10, lockout_s=60, clock=lambda: now[0])
    for _ in range(2):
        limiter.failure("1.2.3.4")
    assert limiter.retry_after("1.2.3.4") is None
    limiter.failure("1.2.3.4")
    assert limiter.retry_after("1.2.3.4") == 60
    assert limiter.retry_after("5.6.7.8") is None
    now[0] = 61
    assert limiter.retry_after("1.2.3.4") is None


def test_wrong_keys_lock_the_client_out(make_client):
    client = make_client()
    for _ in range(10):
        assert client.get("/programs", headers={"X-API-Key": "guess"}).status_code == 401
    locked = client.get("/programs", headers=headers("viewer"))
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert locked.json()["error"] == "too_many_requests"
