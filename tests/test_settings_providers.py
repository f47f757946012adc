"""The ``providers`` setting's OpenID Connect tables: presets, secrets from files, one-line problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.settings import load_settings
from tests.test_settings import GOOD, problems

SECRET = "do-not-print-me"


def oidc(**keys: str) -> str:
    fields = ", ".join(f'{k} = "{v}"' for k, v in {"type": "oidc", **keys}.items())
    return f"providers = [{{ {fields} }}]\n"


@pytest.mark.parametrize(("toml", "message"), [
    (oidc(name="SSO", issuer="https://sso.example", client_id="gw"),
     "name (or preset), client_id and client_secret (or client_secret_file) are required"),
    (oidc(name="SSO", issuer="ftp://sso.example", client_id="gw", client_secret=SECRET),
     "issuer must be an http(s) URL without query or fragment"),
    (oidc(name="SSO", issuer="https://sso.example/?realm=x", client_id="gw", client_secret=SECRET),
     "issuer must be an http(s) URL without query or fragment"),
    (oidc(preset="okta", client_id="gw", client_secret=SECRET), "preset must be one of google, microsoft, gitlab"),
    (oidc(preset="microsoft", client_id="gw", client_secret=SECRET), "preset microsoft needs tenant"),
    (oidc(preset="microsoft", tenant="common", client_id="gw", client_secret=SECRET), "not common/organizations"),
    (oidc(preset="google", tenant="x", client_id="gw", client_secret=SECRET), "tenant goes with preset"),
    (oidc(name="SSO", issuer="https://sso.example", client_id="gw", client_secret=SECRET, scope="openid"),
     "unknown key(s) scope"),
    (oidc(name="SSO", issuer="https://sso.example", client_id="gw", client_secret=SECRET, scopes="email profile"),
     "scopes must include openid"),
    (oidc(name="SSO", issuer="https://sso.example", client_id="gw", client_secret=SECRET,
          client_secret_file="/nonexistent"), "give client_secret or client_secret_file, not both"),
    (oidc(name="SSO", issuer="https://sso.example", client_id="gw", client_secret_file="/nonexistent/secret"),
     "client_secret_file '/nonexistent/secret' cannot be read"),
    ('providers = [{ type = "oauth3", name = "X" }]\n', 'provider type must be "openid2", "oidc" or "oauth2"'),
])
def test_a_bad_oidc_provider_is_one_line_naming_the_problem_and_never_the_secret(
        tmp_path: Path, toml: str, message: str) -> None:
    [problem] = problems(toml, GOOD, tmp_path)
    assert problem.startswith("providers") and message in problem and "\n" not in problem, problem
    assert SECRET not in problem


def test_presets_fill_in_the_issuer_and_the_name(tmp_path: Path) -> None:
    from gateway.settings import load_settings
    config = tmp_path / "g.toml"
    config.write_text("providers = [\n"
                      '  { type = "oidc", preset = "google", client_id = "g", client_secret = "s" },\n'
                      '  { type = "oidc", preset = "gitlab", name = "Our GitLab", issuer = "https://git.example",'
                      ' client_id = "g", client_secret = "s" },\n'
                      ']\n')
    loaded = load_settings(config, GOOD).providers
    assert [(p.name, p.issuer, p.scopes) for p in loaded] == [
        ("Google", "https://accounts.google.com", "openid email profile"),
        ("Our GitLab", "https://git.example", "openid email profile")]
    assert SECRET not in repr(loaded) and "'s'" not in repr(loaded)


def test_two_buttons_with_one_name_are_refused(tmp_path: Path) -> None:
    toml = ('providers = [{ name = "X", identifier = "https://x.example/" },'
            ' { type = "oidc", name = "X", issuer = "https://sso.example", client_id = "g", client_secret = "s" }]\n')
    [problem] = problems(toml, GOOD, tmp_path)
    assert "provider names must differ" in problem


def test_bearer_audiences_and_clients_are_lists_on_an_oidc_provider(tmp_path: Path) -> None:
    config = tmp_path / "g.toml"
    config.write_text('[[providers]]\ntype = "oidc"\nname = "SSO"\nissuer = "https://sso.example"\nclient_id = "gw"\n'
                      f'client_secret = "{SECRET}"\nbearer_audiences = ["https://api.example", "reports"]\n'
                      'bearer_clients = ["cli"]\n[[rules]]\npaths = ["/api"]\npolicy = "signed_in"\nbearer = true\n')
    provider = load_settings(config, GOOD).providers[0]
    assert provider.bearer_audiences == ("https://api.example", "reports") and provider.bearer_clients == ("cli",)


def test_a_bearer_rule_without_a_provider_that_accepts_tokens_stops_start_up(tmp_path: Path) -> None:
    config = tmp_path / "g.toml"
    config.write_text('[[rules]]\nname = "api"\npaths = ["/api"]\npolicy = "signed_in"\nbearer = true\n')
    with pytest.raises(ConfigError, match="'api' has bearer = true, but no oidc provider sets bearer_audiences"):
        load_settings(config, GOOD)


def _introspecting(name: str, audiences: str = '["https://api.example"]', more: str = "") -> str:
    return (f'[[providers]]\ntype = "oidc"\nname = "{name}"\nissuer = "https://{name.lower()}.example"\n'
            f'client_id = "gw"\nclient_secret = "{SECRET}"\nbearer_audiences = {audiences}\n'
            f'bearer_introspection = true\n{more}')


def test_bearer_introspection_is_a_boolean_of_an_oidc_provider_with_a_short_cache(tmp_path: Path) -> None:
    config = tmp_path / "g.toml"
    config.write_text(_introspecting("SSO", more="bearer_introspection_cache = 30\n"))
    provider = load_settings(config, GOOD).providers[0]
    assert provider.bearer_introspection is True and provider.bearer_introspection_cache == 30


@pytest.mark.parametrize(("toml", "message"), [
    (_introspecting("SSO", "[]"), "'SSO' has bearer_introspection = true without bearer_audiences"),
    (_introspecting("One") + _introspecting("Two"), "bearer_introspection is set on 'One', 'Two': an opaque token"
                                                    " names no issuer"),
    (_introspecting("SSO", more="bearer_introspection_cache = 3600\n"), "bearer_introspection_cache must be 1 to 300"),
    (_introspecting("SSO", more="bearer_introspection_cache = 0\n"), "bearer_introspection_cache must be 1 to 300"),
])
def test_a_doubtful_introspection_setting_is_one_line_naming_it(tmp_path: Path, toml: str, message: str) -> None:
    [problem] = problems(toml, GOOD, tmp_path)
    assert message in problem and SECRET not in problem
