"""Translations: Babel catalogs under market/locale, the request's language in a context variable."""

from __future__ import annotations

import io
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from market.settings import LANGUAGES

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGE_COOKIE = "market_lang"
LANGUAGE_NAMES = {"ko": "한국어", "en": "English"}

current_language: ContextVar[str] = ContextVar("current_language", default="ko")


@cache
def translations(language: str) -> NullTranslations:
    """Compiled in memory from the .po file, so no build step is needed and no .mo file is kept."""
    po = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def template_gettext(message: str) -> str:
    """For Jinja's newstyle gettext, which fills in the values itself."""
    return translations(current_language.get()).gettext(message)


def template_ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_language.get()).ngettext(singular, plural, n)


def gettext(message: str, **values: object) -> str:
    text = translations(current_language.get()).gettext(message)
    return text % values if values else text


def ngettext(singular: str, plural: str, n: int, **values: object) -> str:
    text = translations(current_language.get()).ngettext(singular, plural, n)
    return text % {"num": n, **values}


_ = gettext


def N_(message: str) -> str:
    """Marks a string for extraction where it is defined; it is translated where it is shown."""
    return message


def choose_language(cookie: str | None, user_language: str | None, accept_language: str | None, default: str) -> str:
    """Cookie (the switch) first, then the user's saved choice, then the browser's, then the default."""
    for candidate in (cookie, user_language):
        if candidate in LANGUAGES:
            return candidate
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return default
