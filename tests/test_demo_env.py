"""``make demo`` takes the ``GATEWAY_*`` variables of its environment over its own settings.

The demo's stack is built by the same function ``make demo`` uses
(:func:`devtools.demo.demo_stack`), with free ports instead of the fixed ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from devtools.demo import banner, demo_stack, user_gateway_env
from devtools.stack import LOCAL_OIDC_NAME, Ports

SITE_NAME = "Demo With My Own Name"


def test_the_demo_gateway_uses_the_gateway_settings_of_the_environment(tmp_path: Path) -> None:
    providers = [{"type": "oauth2", "preset": "github", "name": "My GitHub", "client_id": "id",
                  "client_secret": "a-secret-value"}]
    environ = {"GATEWAY_SITE_NAME": SITE_NAME, "GATEWAY_PROVIDERS": json.dumps(providers), "HOME": "/nowhere",
               "MICROBLOG_TITLE": "not a gateway setting"}
    with demo_stack("auth_request", Ports.free(), tmp_path / "demo", environ) as stack:
        page = httpx.get(stack.url + "/login", timeout=10)
        text = banner(stack)
    assert page.status_code == 200
    assert SITE_NAME in page.text
    assert "My GitHub" in page.text and LOCAL_OIDC_NAME not in page.text  # the person's providers, not the demo's
    assert "GATEWAY_PROVIDERS, GATEWAY_SITE_NAME" in text
    assert "a-secret-value" not in text  # the banner names the variables, never their values


def test_only_gateway_variables_are_taken() -> None:
    assert user_gateway_env({"GATEWAY_MODE": "proxy", "PATH": "/bin", "MICROBLOG_X": "1"}) == {"GATEWAY_MODE": "proxy"}


def test_the_banner_says_nothing_was_taken_when_nothing_was(tmp_path: Path) -> None:
    stack = demo_stack("proxy", Ports.free(), tmp_path / "demo", {"PATH": "/bin"})
    assert stack.gateway_env == {} and "Taken from your environment" not in banner(stack)
