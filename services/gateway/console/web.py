"""The console's plumbing: templates, the signed-in user, CSRF, language, formatting."""

from __future__ import annotations

import hmac
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from dopomoga.explain_uk import percent_uk, period_uk
from dopomoga.money import format_uah
from services.gateway.console.i18n import LANGS, translate
from services.gateway.masking import mask_iban, mask_id, mask_name
from services.gateway.users import User

HERE = Path(__file__).resolve().parent
COOKIE = "dopomoga_session"
LANG_COOKIE = "dopomoga_lang"


def uah(kop: Any) -> str:
    return format_uah(kop) if isinstance(kop, int) else "—"


def percent(coefficient: Any) -> str:
    """'p/q' or '1' -> '87,50 %' (Ukrainian format); anything else as it is."""
    if coefficient in (None, ""):
        return "—"
    try:
        return percent_uk(Fraction(str(coefficient)))
    except (ValueError, ZeroDivisionError):
        return str(coefficient)


def share(part: int, whole: int) -> str:
    return percent_uk(Fraction(part, whole)) if whole else "—"


def month(period: str | None) -> str:
    try:
        return period_uk(period) if period else "—"
    except (ValueError, IndexError):
        return str(period)


env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)
env.filters.update(uah=uah, percent=percent, month=month, mask_id=mask_id, mask_iban=mask_iban,
                   mask_name=mask_name, urlq=lambda s: quote(str(s), safe=""))


class Redirect(Exception):
    def __init__(self, to: str):
        self.to = to


def lang_of(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "uk"
    return lang if lang in LANGS else "uk"


def current_user(request: Request, g: Any) -> User:
    user = g.users.session_user(request.cookies.get(COOKIE))
    if user is None:
        raise Redirect("/login?next=" + quote(str(request.url.path), safe="/"))
    return user


def need(user: User, *roles: str) -> None:
    if not user.has(*roles):
        raise HTTPException(403, "forbidden")


def check_csrf(user: User, token: str | None) -> None:
    if not token or not hmac.compare_digest(token, user.csrf):
        raise HTTPException(403, "forbidden: the form is stale; reload the page")


def render(request: Request, g: Any, template: str, user: User | None, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    lang = lang_of(request)

    def t(key: str, **values: Any) -> str:
        return translate(key, lang, **values)

    html = env.get_template(template).render(
        t=t, lang=lang, user=user, development=bool(getattr(g.users, "development", False)),
        path=request.url.path, query=str(request.url.query), **context)
    response = HTMLResponse(html, status_code=status_code)
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict", httponly=True)
    return response


def redirect(to: str) -> RedirectResponse:
    return RedirectResponse(to, status_code=303)
