"""The visitor's language: gettext catalogs (Babel), chosen from ``Accept-Language``.

Every text the pages show is an English ``msgid``: in the templates ``{{ _("Sign in") }}``, in Python
marked with :func:`N_` where it is written (``MESSAGES``, the account page's notices, error titles) and
translated where it is shown. The catalogs are ``locale/<language>/LC_MESSAGES/messages.po``, read once
at start-up (no compiled ``.mo`` to build or to forget), so a language is one ``.po`` file: ``make
messages LANG=xx`` makes or updates it from the sources (docs: "Languages").

The language is the best match of the request's ``Accept-Language`` (RFC 9110 §12.5.4: q-values, the
first of equal ones, ``fr-CA`` falling back to ``fr``) among the catalogs, English when nothing matches.
It is chosen once per request (:meth:`Languages.use`) and kept in a context variable, so the renderer and
the error pages need no request to translate.
"""

from __future__ import annotations

import functools
import io
from contextvars import ContextVar
from gettext import NullTranslations
from pathlib import Path

from babel.core import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from gateway.gate.answers import weighted
from gateway.types import Scope

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_LANGUAGE = "en"
_MAX_TAGS = 16  # of one Accept-Language header: enough for any browser, bounded for a hostile one

_current: ContextVar[str] = ContextVar("gateway_language", default=DEFAULT_LANGUAGE)


def N_(message: str) -> str:
    """Mark ``message`` for the catalogs; it is translated where it is shown."""
    return message


def preferred(accept_language: str) -> list[str]:
    """The language tags of an ``Accept-Language`` value, best first (q=0 and ``*`` left out)."""
    ranked: list[tuple[float, int, str]] = []
    for index, (tag, quality) in enumerate(weighted(accept_language, _MAX_TAGS)):
        if tag and tag != "*" and quality > 0 and len(tag) <= 35:
            ranked.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(ranked)]


def _load(po_file: Path, language: str) -> Translations:
    """One ``.po`` catalog as gettext translations (compiled in memory)."""
    with po_file.open("rb") as fh:
        catalog = read_po(fh, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


class Languages:
    """The catalogs the gateway has, and the one a request asked for."""

    def __init__(self, directory: Path = LOCALE_DIR) -> None:
        self.translations: dict[str, NullTranslations] = {DEFAULT_LANGUAGE: NullTranslations()}
        for po_file in sorted(directory.glob("*/LC_MESSAGES/messages.po")):
            language = po_file.parent.parent.name
            if language != DEFAULT_LANGUAGE:
                self.translations[language] = _load(po_file, language)
        self.available = tuple(self.translations)

    @functools.lru_cache(maxsize=256)  # noqa: B019 (one Languages per process, a handful of distinct headers)
    def choose(self, accept_language: str) -> str:
        """The best of :attr:`available` for an ``Accept-Language`` value; English when none matches."""
        tags = [tag.replace("_", "-") for tag in preferred(accept_language)]
        found = negotiate_locale(tags, [a.replace("_", "-") for a in self.available], sep="-", aliases={})
        # Babel answers with the tag as the browser spelled it ("FR-ca" -> "FR"): ours, as we spell it.
        by_lower = {a.replace("_", "-").lower(): a for a in self.available}
        return by_lower.get(found.lower(), DEFAULT_LANGUAGE) if found else DEFAULT_LANGUAGE

    def use(self, scope: Scope) -> str:
        """Choose the language of this request (its ``Accept-Language``) for everything rendered after."""
        accept = ""
        for name, value in scope.get("headers", ()):
            if name == b"accept-language":
                accept = value.decode("latin-1")[:512]
                break
        language = self.choose(accept) if accept else DEFAULT_LANGUAGE
        _current.set(language)
        return language

    @staticmethod
    def current() -> str:
        return _current.get()

    def translations_now(self) -> NullTranslations:
        """The catalog of the current request's language."""
        return self.translations.get(_current.get(), self.translations[DEFAULT_LANGUAGE])


__all__ = ["DEFAULT_LANGUAGE", "LOCALE_DIR", "N_", "Languages", "preferred"]
