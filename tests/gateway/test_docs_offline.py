"""/docs and /redoc load only what the gateway itself serves (no CDN, no web fonts)."""

from __future__ import annotations

import re

import pytest

from tests.gateway.conftest import headers  # noqa: F401  (fixtures come from conftest)

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_no_other_host(make_client, page):
    client = make_client()
    html = client.get(page)
    assert html.status_code == 200
    assert not EXTERNAL.search(html.text), html.text
    assert "http://" not in html.text and "https://" not in html.text
    for asset in re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text):
        assert asset.startswith("/"), asset
        assert client.get(asset).status_code == 200, asset
    assert client.get("/openapi.json").status_code == 200
