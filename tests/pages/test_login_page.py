"""The login page for today's providers: buttons first, the OpenID address second, and only when accepted."""

from __future__ import annotations

import httpx
from starlette.datastructures import Secret

from gateway.signin.provider import Provider
from tests.conftest import GatewayFactory
from tests.htmlforms import forms, submit
from tests.servers import UvicornThread

OIDC_ONLY = (Provider("Example OIDC", "https://issuer.example", "oidc", "client", Secret("secret")),)


def test_the_provider_buttons_come_first_the_openid_field_second_and_remember_me_last(
        gateway_factory: GatewayFactory) -> None:
    page = httpx.get(gateway_factory().url + "/login").text
    first_button = page.index('name="provider"')
    field = page.index('name="identifier"')
    remember = page.index('name="remember"')
    assert first_button < field < remember


def test_enter_in_the_openid_field_submits_the_typed_address_not_the_first_button(
        gateway_factory: GatewayFactory) -> None:
    """The form's first submit button (what Enter uses) carries no provider."""
    page = httpx.get(gateway_factory().url + "/login").text
    first_submit = page.index('type="submit"')
    assert 'name="provider"' not in page[first_submit:page.index(">", first_submit)]
    assert 'aria-hidden="true"' in page[first_submit:page.index(">", first_submit)]


def test_with_only_openid_connect_buttons_there_is_no_openid_field(gateway_factory: GatewayFactory) -> None:
    page = httpx.get(gateway_factory(providers=OIDC_ONLY).url + "/login").text
    assert 'name="identifier"' not in page
    assert "Example OIDC" in page and 'name="remember"' in page


def test_a_typed_openid_is_refused_where_the_field_is_not_offered(
        gateway_factory: GatewayFactory, provider: UvicornThread) -> None:
    """Hiding the field is not enough: a hand-made POST with an OpenID address must not start a sign-in."""
    gateway = gateway_factory(providers=OIDC_ONLY)
    with httpx.Client(timeout=15) as client:
        page = client.get(gateway.url + "/login")
        for field in ("identifier", "provider"):
            response = submit(client, page, {field: f"{provider.url}/id/alice"})
            assert response.status_code == 400, response.text[:300]
            assert "location" not in response.headers
            assert "not allowed here" in response.text


def test_openid_field_hide_refuses_typed_addresses_but_keeps_the_buttons(
        gateway_factory: GatewayFactory, provider: UvicornThread) -> None:
    button = Provider("Local", f"{provider.url}/openid")
    gateway = gateway_factory(providers=(button,), openid_field="hide")
    with httpx.Client(timeout=15) as client:
        page = client.get(gateway.url + "/login")
        assert 'name="identifier"' not in page.text
        typed = submit(client, page, {"identifier": f"{provider.url}/id/alice"})
        assert typed.status_code == 400
        page = client.get(gateway.url + "/login")
        started = submit(client, page, button=("provider", button.identifier))
        assert started.status_code in (200, 303), started.text[:300]  # on its way to the provider


def test_openid_field_show_offers_the_field_beside_openid_connect_buttons(gateway_factory: GatewayFactory) -> None:
    page = httpx.get(gateway_factory(providers=OIDC_ONLY, openid_field="show").url + "/login").text
    assert page.index('name="provider"') < page.index('name="identifier"')


def test_the_login_form_keeps_csrf_and_next(gateway_factory: GatewayFactory) -> None:
    page = httpx.get(gateway_factory().url + "/login", params={"next": "/echo"})
    (form,) = forms(page.text)
    fields = dict(form.fields)
    assert fields["next"] == "/echo" and fields["csrf_token"]
