"""An operator's templates and branding: they replace ours, and the security headers stay (real uvicorn)."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from gateway.errors import ConfigError
from gateway.pages.render import Branding, on_color
from gateway.settings import load_settings
from tests.conftest import GatewayFactory

OVERRIDE = """{% extends "gateway/login.html" %}
{% block title %}Welcome to Example Corp{% endblock %}
{% block content %}<p class="custom-banner">Example Corp staff only.</p>{{ super() }}
<script>document.title = "inline script ran";</script>{% endblock %}
"""


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    directory = tmp_path / "templates"
    directory.mkdir()
    (directory / "login.html").write_text(OVERRIDE)
    (directory / "error.html").write_text('{% extends "base.html" %}{% block content %}'
                                          '<h1 class="custom-error">{{ title }}</h1>{% endblock %}')
    return directory


def test_a_template_of_the_operator_replaces_ours_and_can_extend_it(
        gateway_factory: GatewayFactory, templates: Path) -> None:
    gateway = gateway_factory(templates_dir=str(templates))
    page = httpx.get(gateway.url + "/login")
    assert page.status_code == 200
    assert "Example Corp staff only." in page.text and "Welcome to Example Corp" in page.text
    assert 'name="csrf_token"' in page.text  # ours, through {{ super() }}
    missing = httpx.get(gateway.url + "/_gateway/nowhere")
    assert missing.status_code == 404 and 'class="custom-error"' in missing.text


def test_an_override_keeps_the_security_headers_so_its_inline_script_cannot_run(
        gateway_factory: GatewayFactory, templates: Path) -> None:
    """The CSP is added outside any template: no 'unsafe-inline', no nonce an override could copy."""
    page = httpx.get(gateway_factory(templates_dir=str(templates)).url + "/login")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "nonce-" not in csp
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"


def test_brand_colours_come_as_a_stylesheet_never_inline(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(brand_color="#ffcc00", brand_color_dark="#123456", logo_url="/static/logo.svg",
                              site_name="Example Corp")
    page = httpx.get(gateway.url + "/login").text
    assert '<link rel="stylesheet" href="/_gateway/theme.css">' in page
    assert 'src="/static/logo.svg"' in page and "Example Corp" in page
    assert "style=" not in page and "<style" not in page
    css = httpx.get(gateway.url + "/_gateway/theme.css")
    assert css.headers["content-type"].startswith("text/css")
    assert "--accent: #ffcc00; --on-accent: #000;" in css.text and "--accent: #123456; --on-accent: #fff;" in css.text


def test_without_brand_colours_there_is_no_theme_stylesheet(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory()
    assert "theme.css" not in httpx.get(gateway.url + "/login").text
    assert httpx.get(gateway.url + "/_gateway/theme.css").status_code == 404


def test_text_on_the_accent_colour_is_the_one_that_contrasts_more() -> None:
    assert on_color("#ffffff") == "#000" and on_color("#000") == "#fff" and on_color("#2f5fd0") == "#fff"
    assert Branding().stylesheet() == ""


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("GATEWAY_LOGO_URL", "https://cdn.example/logo.png", "logo_url must be a path on this site"),
    ("GATEWAY_LOGO_URL", "//cdn.example/logo.png", "logo_url must be a path on this site"),
    ("GATEWAY_LOGO_URL", "/x\"onerror=alert(1)", "logo_url must be a path on this site"),
    ("GATEWAY_BRAND_COLOR", "red; } body { display: none", "brand_color must be a colour such as #2f5fd0"),
    ("GATEWAY_BRAND_COLOR_DARK", "#12345", "brand_color_dark must be a colour"),
    ("GATEWAY_TEMPLATES_DIR", "/nonexistent/templates", "templates_dir '/nonexistent/templates' is not a directory"),
])
def test_branding_settings_that_would_break_the_page_or_its_csp_stop_start_up(
        key: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_settings(None, {"GATEWAY_DEV_MODE": "true", key: value})


def test_mode_2s_page_for_an_app_that_does_not_answer_is_the_operators_and_in_the_visitors_language(
        gateway_factory: GatewayFactory, templates: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        gateway = gateway_factory(templates_dir=str(templates), upstream_url=f"http://127.0.0.1:{unused.getsockname()[1]}",
                                  public_paths=("/",))
        english = httpx.get(gateway.url + "/anything")
        french = httpx.get(gateway.url + "/anything", headers={"Accept-Language": "fr"})
    assert english.status_code == french.status_code == 502
    assert 'class="custom-error"' in english.text and "Temporarily unavailable" in english.text
    assert "script-src 'self';" in english.headers["content-security-policy"]
    assert "Temporairement indisponible" in french.text and 'lang="fr"' in french.text
