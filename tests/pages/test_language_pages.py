"""Pages in the visitor's language, served by a real gateway (uvicorn on loopback)."""

from __future__ import annotations

import httpx

from tests.conftest import GatewayFactory


def test_pages_answer_in_the_visitors_language(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory()
    french = httpx.get(gateway.url + "/login", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert '<html lang="fr">' in french.text and "Se souvenir de moi" in french.text
    assert french.headers["content-language"] == "fr" and "Accept-Language" in french.headers["vary"]
    english = httpx.get(gateway.url + "/login", headers={"Accept-Language": "de"})
    assert '<html lang="en">' in english.text and "Remember me" in english.text


def test_messages_and_error_pages_are_translated_too(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory()
    french = {"Accept-Language": "fr"}
    signed_out = httpx.get(gateway.url + "/login?m=signed-out", headers=french)
    assert "Vous avez été déconnecté." in signed_out.text
    missing = httpx.get(gateway.url + "/_gateway/nowhere", headers=french)
    assert missing.status_code == 404 and "Page introuvable" in missing.text and 'lang="fr"' in missing.text
