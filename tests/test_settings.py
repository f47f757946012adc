"""Configuration: every problem reported at once, each naming its setting and what it must be."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.settings import Settings, load_settings, provider_address_warnings

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "deploy" / "gateway.example.toml"
GOOD = {"GATEWAY_SECRET_KEYS": "s" * 40, "GATEWAY_PROOF_KEY": "p" * 40, "GATEWAY_PUBLIC_URL": "https://a.example"}


def problems(toml: str = "", env: dict[str, str] | None = None, tmp_path: Path | None = None) -> list[str]:
    """The problems ``load_settings`` reports for this TOML text and environment."""
    assert tmp_path is not None
    config = tmp_path / "g.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(config, env or {})
    return info.value.problems


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "g.toml"
    config.write_text('public_url = "https://a.example"\nworkers = 2\n[[providers]]\nname = "X"\nidentifier = "https://x.example/"\n')
    settings = load_settings(config, {**GOOD, "GATEWAY_WORKERS": "3", "GATEWAY_PUBLIC_URL": "https://b.example"})
    assert settings.public_url == "https://b.example" and settings.workers == 3 and settings.https
    assert [p.name for p in settings.providers] == ["X"]
    assert "s" * 40 not in repr(settings)  # secrets are masked


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, {"GATEWAY_PUBLIC_URL": "ftp://x", "GATEWAY_SECRET_KEYS": "short", "GATEWAY_MODE": "proxy"})
    text = str(info.value)
    assert text.startswith("invalid configuration: ")
    for fragment in ("public_url", "secret_keys[0] is weak", "proof_key is missing", "upstream_url"):
        assert fragment in text


def test_an_unknown_key_does_not_hide_type_errors_or_invalid_values(tmp_path: Path) -> None:
    found = problems('secret_key = ["x"]\nport = "19000x"\npublic_url = "https://a.example"\n',
                     {"GATEWAY_SECRET_KEYS": "s" * 40}, tmp_path)
    assert found == [
        "unknown setting secret_key (did you mean secret_keys?)",
        "port must be a whole number, got '19000x'",
        "proof_key is missing: set GATEWAY_PROOF_KEY (shared with the protected app)",
    ]


def test_unknown_environment_variables_get_a_suggestion_too(tmp_path: Path) -> None:
    found = problems("", {**GOOD, "GATEWAY_SECRET_KEY": "x", "GATEWAY_TYPO": "1"}, tmp_path)
    assert found == ["unknown environment variable GATEWAY_SECRET_KEY (did you mean GATEWAY_SECRET_KEYS?)",
                     "unknown environment variable GATEWAY_TYPO"]


def test_public_url_is_required_outside_dev_mode(tmp_path: Path) -> None:
    env = {k: v for k, v in GOOD.items() if k != "GATEWAY_PUBLIC_URL"}
    assert problems("", env, tmp_path) == [
        "public_url is missing: set it to the address browsers use, e.g. https://example.com"]
    assert load_settings(None, {**env, "GATEWAY_DEV_MODE": "true"}).public_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize(("toml", "message"), [
    ('port = "19000x"', "port must be a whole number, got '19000x'"),
    ('workers = "2"', "workers must be a whole number, got '2' (a TOML string: write the number without quotes)"),
    ("workers = 2.5", "workers must be a whole number, got 2.5"),
    ("workers = true", "workers must be a whole number, got True"),
    ('revocation_refresh = "fast"', "revocation_refresh must be a number, got 'fast'"),
    ('dev_mode = "yes"', "dev_mode must be true or false, got 'yes'"),
    ("site_name = 5", "site_name must be a string, got 5"),
    ('mode = "proxi"', "mode must be one of 'auth_request', 'proxy', got 'proxi' (did you mean 'proxy'?)"),
    ('trusted_proxies = "127.0.0.1/32"', 'trusted_proxies must be a list of strings, e.g. ["a", "b"], got a string'),
    ("public_paths = [1]", 'public_paths must be a list of strings, e.g. ["a", "b"], got a list with a number in it'),
    ('providers = "Steam"', "providers must be a list of {name, identifier} tables"),
    ('providers = [{ name = "X" }]', "providers must be a list of {name, identifier} tables, each with exactly a"
                                     " 'name' and an 'identifier' string, got {'name': 'X'}"),
])
def test_a_value_of_the_wrong_type_gets_a_named_error(tmp_path: Path, toml: str, message: str) -> None:
    assert problems(toml + "\n", GOOD, tmp_path) == [message]


def test_a_toml_string_is_not_a_list_of_secret_keys(tmp_path: Path) -> None:
    """It used to become a one-key list silently; the value itself is never echoed."""
    found = problems(f'secret_keys = "{"k" * 40}"\n', {k: v for k, v in GOOD.items() if k != "GATEWAY_SECRET_KEYS"},
                     tmp_path)
    assert found == ['secret_keys must be a list of strings, e.g. ["key1", "key2"], got a string']
    assert "k" * 40 not in str(found)
    assert problems("proof_key = 12345678\n", GOOD, tmp_path) == ["proof_key must be a string, got a number"]


@pytest.mark.parametrize(("name", "value", "message"), [
    ("GATEWAY_PORT", "19000x", "GATEWAY_PORT must be a whole number, got '19000x'"),
    ("GATEWAY_REVOCATION_REFRESH", "nan", "GATEWAY_REVOCATION_REFRESH must be a number, got 'nan'"),
    ("GATEWAY_ACCESS_LOG", "maybe", "GATEWAY_ACCESS_LOG must be true or false, got 'maybe'"),
    ("GATEWAY_TRUSTED_PROXIES", "[1", 'GATEWAY_TRUSTED_PROXIES must be a list of strings, e.g. ["a", "b"]'
                                      " (the value starts with '[' but is not JSON)"),
    ("GATEWAY_PROVIDERS", "Steam", 'GATEWAY_PROVIDERS must be a JSON list of {"name": ..., "identifier": ...}'
                                   " objects"),
])
def test_an_environment_variable_of_the_wrong_type_is_named(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, {**GOOD, name: value})
    assert info.value.problems == [message]


def test_environment_lists_are_comma_separated_or_json() -> None:
    keys = ["a" * 40, "b" * 40]
    assert load_settings(None, {**GOOD, "GATEWAY_SECRET_KEYS": ",".join(keys)}).secret_key_values() == keys
    as_json = load_settings(None, {**GOOD, "GATEWAY_SECRET_KEYS": json.dumps(keys)})
    assert as_json.secret_key_values() == keys


def test_dev_mode_generates_missing_keys() -> None:
    settings = load_settings(None, {"GATEWAY_DEV_MODE": "1"})
    assert settings.secret_keys and settings.proof_key is not None


@pytest.mark.parametrize("upstream", ["http://app.internal/base", "http://app.internal/?x=1", "http://u@app.internal"])
def test_an_upstream_url_with_a_path_is_refused_in_proxy_mode(upstream: str) -> None:
    """The proof signs the URI the browser sent: the app must receive that URI, not one with a prefix added."""
    with pytest.raises(ConfigError, match=r"upstream_url must be an origin such as http://127\.0\.0\.1:8000"):
        load_settings(None, {**GOOD, "GATEWAY_MODE": "proxy", "GATEWAY_UPSTREAM_URL": upstream})


def test_an_upstream_origin_is_accepted() -> None:
    for upstream in ("http://127.0.0.1:8000", "https://app.internal/"):
        assert load_settings(None, {**GOOD, "GATEWAY_MODE": "proxy", "GATEWAY_UPSTREAM_URL": upstream})


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "gateway.example.com", ""])
def test_a_host_other_than_loopback_needs_behind_proxy(host: str) -> None:
    """uvicorn sets no header size or header read-time limit: only a proxy in front may reach the gateway."""
    with pytest.raises(ConfigError, match=r"is not a loopback address.*behind_proxy = true"):
        load_settings(None, {**GOOD, "GATEWAY_HOST": host})
    assert load_settings(None, {**GOOD, "GATEWAY_HOST": host, "GATEWAY_BEHIND_PROXY": "true"}).behind_proxy


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts_need_no_setting(host: str) -> None:
    assert load_settings(None, {**GOOD, "GATEWAY_HOST": host}).host == host


def test_a_unix_socket_is_an_absolute_path_in_an_existing_directory(tmp_path: Path) -> None:
    """``uds`` replaces host:port; a relative path, a missing directory or a file in the way stop start-up."""
    sock = tmp_path / "gateway.sock"
    assert load_settings(None, {**GOOD, "GATEWAY_UDS": str(sock)}).uds == str(sock)
    for uds, message in (("gateway.sock", "must be an absolute path"),
                         (str(tmp_path / "missing" / "g.sock"), "does not exist"),
                         ("/" + "x" * 120, "longer than 107 bytes")):
        with pytest.raises(ConfigError, match=message):
            load_settings(None, {**GOOD, "GATEWAY_UDS": uds})
    sock.write_text("not a socket")
    with pytest.raises(ConfigError, match="exists and is not a socket"):
        load_settings(None, {**GOOD, "GATEWAY_UDS": str(sock)})


def test_uds_group_names_a_group_of_this_machine_and_is_ignored_without_uds(tmp_path: Path) -> None:
    sock = str(tmp_path / "gateway.sock")
    assert load_settings(None, {**GOOD, "GATEWAY_UDS": sock, "GATEWAY_UDS_GROUP": "www-data"}).uds_group == "www-data"
    with pytest.raises(ConfigError, match="uds_group 'no-such-group-here' is not a group on this machine"):
        load_settings(None, {**GOOD, "GATEWAY_UDS": sock, "GATEWAY_UDS_GROUP": "no-such-group-here"})
    # The instance template's GATEWAY_UDS= (TCP) over a TOML that sets both.
    assert load_settings(None, {**GOOD, "GATEWAY_UDS_GROUP": "no-such-group-here"}).uds == ""


def with_providers(*identifiers: str, allow_private: bool = False) -> Settings:
    providers = [{"name": f"P{i}", "identifier": ident} for i, ident in enumerate(identifiers)]
    return load_settings(None, {**GOOD, "GATEWAY_PROVIDERS": json.dumps(providers),
                                "GATEWAY_ALLOW_PRIVATE_ADDRESSES": str(allow_private)})


def test_a_provider_on_a_private_address_is_warned_about() -> None:
    settings = with_providers("http://127.0.0.1:8001/openid", "http://localhost:8001/openid", "http://10.1.2.3/",
                              "http://[::ffff:192.168.0.1]/", "http://2130706433/", "https://steamcommunity.com/openid",
                              "https://93.184.215.14/openid")
    warnings = provider_address_warnings(settings)
    assert [w.split("'")[1] for w in warnings] == ["P0", "P1", "P2", "P3", "P4"]
    assert all("allow_private_addresses = false" in w for w in warnings)
    assert provider_address_warnings(dataclasses.replace(settings, allow_private_addresses=True)) == []


def example_environ(tmp_path: Path) -> dict[str, str]:
    """The keys, and the socket in a directory that exists here (on a server, tmpfiles.d makes /run/openid-gateway)."""
    return {**GOOD, "GATEWAY_UDS": str(tmp_path / "gateway.sock")}


def test_the_example_config_validates_once_its_keys_are_replaced(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="REPLACE-ME"):
        load_settings(EXAMPLE, {})
    settings = load_settings(EXAMPLE, example_environ(tmp_path))
    assert settings.mode == "auth_request"
    assert (settings.uds_group, Path(EXAMPLE.read_text().split('uds = "')[1].split('"')[0])) == (
        "www-data", Path("/run/openid-gateway/gateway.sock"))


# The example's site-specific values: what it says it shows instead of a default (its header names them).
EXAMPLE_VALUES = {"public_url", "secret_keys", "proof_key", "state_dir", "uds", "uds_group"}


def test_the_example_config_shows_every_default_but_the_site_values_its_header_names(tmp_path: Path) -> None:
    """``deploy/gateway.example.toml`` says it shows every default: read as the gateway reads it, it must."""
    settings = load_settings(EXAMPLE, example_environ(tmp_path))
    defaults = Settings()
    differ = {f.name for f in dataclasses.fields(Settings)
              if getattr(settings, f.name) != getattr(defaults, f.name)} - EXAMPLE_VALUES
    assert differ == set(), f"the example's values differ from the defaults: {sorted(differ)}"
    header = EXAMPLE.read_text().split("\n\n", 1)[0]
    assert all(name in header for name in EXAMPLE_VALUES)


def test_every_setting_is_in_the_configuration_reference_with_its_environment_name_and_in_the_example() -> None:
    reference = (ROOT / "docs" / "configuration.md").read_text()
    example = EXAMPLE.read_text()
    for field in dataclasses.fields(Settings):
        section = reference.split(f"### `{field.name}`", 1)
        assert len(section) == 2, f"docs/configuration.md has no section ### `{field.name}`"
        body = section[1].split("\n### ", 1)[0]
        assert f"`GATEWAY_{field.name.upper()}`" in body, f"{field.name}: its environment variable is not named"
        assert "Default:" in body, f"{field.name}: its default is not given"
        assert f"{field.name} =" in example or f"[{field.name}]" in example, f"example lacks {field.name}"


def test_the_configuration_reference_gives_each_simple_default_as_the_settings_have_it() -> None:
    """Numbers, booleans and strings: the reference's ``Default:`` line shows the value ``Settings()`` has."""
    reference = (ROOT / "docs" / "configuration.md").read_text()
    defaults = Settings()
    for field in dataclasses.fields(Settings):
        value = getattr(defaults, field.name)
        if isinstance(value, bool):
            shown = "true" if value else "false"
        elif isinstance(value, int | float):
            shown = repr(value)
        elif isinstance(value, str) and field.name != "public_url":
            shown = f'"{value}"'
        else:
            continue
        body = reference.split(f"### `{field.name}`", 1)[1].split("\n### ", 1)[0]
        default_line = next(line for line in body.splitlines() if line.startswith("Default:"))
        assert f"`{shown}`" in default_line, f"{field.name}: the reference's default is not {shown}"


def test_cookie_names_must_be_tokens() -> None:
    with pytest.raises(ConfigError, match="session_cookie"):
        load_settings(None, {**GOOD, "GATEWAY_SESSION_COOKIE": "my session"})


def test_method_override_reaches_the_access_policy() -> None:
    rules = json.dumps([{"name": "no-deletes", "methods": ["DELETE"], "policy": "deny"}])
    judged = load_settings(None, {**GOOD, "GATEWAY_RULES": rules}).access_policy().methods_judged("POST")
    assert judged[:2] == ("POST", "DELETE")  # the default: apps may override methods
    off = load_settings(None, {**GOOD, "GATEWAY_RULES": rules, "GATEWAY_METHOD_OVERRIDE": "false"})
    assert off.access_policy().methods_judged("POST") == ("POST",)
