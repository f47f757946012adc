"""The visitor's language: Accept-Language, the catalogs, every text translated (in-process, `make check`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from gateway.pages.languages import LOCALE_DIR, Languages, preferred

GATEWAY = Path(__file__).parents[2] / "gateway"
METHODS = [("pages/templates/**.html", "jinja2"), ("**.py", "python")]


@pytest.mark.parametrize(("header", "expected"), [
    ("fr", "fr"), ("fr-CA,fr;q=0.9,en;q=0.8", "fr"), ("FR-ca", "fr"), ("de, fr;q=0.5", "fr"),
    ("en-US,en;q=0.9,fr;q=0.8", "en"), ("fr;q=0, en", "en"), ("de, ja", "en"), ("*", "en"), ("", "en"),
    ("fr;q=abc, en;q=0.5", "en"), ("x" * 600, "en"),
])
def test_the_language_is_the_best_match_of_accept_language(header: str, expected: str) -> None:
    assert Languages().choose(header) == expected


def test_preferred_orders_by_quality_then_by_position() -> None:
    assert preferred("a;q=0.5, b, c;q=0.5, d;q=1") == ["b", "d", "a", "c"]


def sources() -> set[str]:
    """Every msgid of the pages' sources (what `make messages` extracts)."""
    return {message for _, _, message, *_ in extract_from_dir(str(GATEWAY), METHODS) if isinstance(message, str)}


@pytest.mark.parametrize("catalog", sorted(LOCALE_DIR.glob("*/LC_MESSAGES/messages.po")), ids=lambda p: p.parts[-3])
def test_every_text_of_every_page_is_translated(catalog: Path) -> None:
    """A complete language: every text in the sources has a translation, none fuzzy, none left over."""
    with catalog.open("rb") as fh:
        po = read_po(fh)
    translated = {m.id for m in po if m.id and m.string and not m.fuzzy}
    assert sorted(sources() - translated) == []
    assert sorted({m.id for m in po if m.id} - sources()) == []


def test_there_is_a_second_complete_language() -> None:
    assert "fr" in Languages().available and len(Languages().available) >= 2
