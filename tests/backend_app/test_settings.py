from __future__ import annotations

from pathlib import Path

import pytest

from backend_app.settings import ConfigError, load_app_settings
from gateway.proof import HeaderNames


def test_defaults_need_only_the_proof_key() -> None:
    settings = load_app_settings({"MICROBLOG_PROOF_KEY": "k" * 40, "PATH": "/bin"})
    assert str(settings.proof_key) == "k" * 40
    assert settings.state_dir == Path("state")
    assert settings.sqlite_path == Path("state/microblog.sqlite3")
    assert settings.proof_max_age == 30
    assert settings.header_names().all() == HeaderNames().all()


def test_proof_key_is_masked_in_repr() -> None:
    settings = load_app_settings({"MICROBLOG_PROOF_KEY": "very-secret-value"})
    assert "very-secret-value" not in repr(settings)


def test_every_variable_is_read() -> None:
    settings = load_app_settings(
        {
            "MICROBLOG_PROOF_KEY": "key",
            "MICROBLOG_STATE_DIR": "/var/lib/microblog",
            "MICROBLOG_PROOF_MAX_AGE": "5",
            "MICROBLOG_HEADER_USER": "X-User",
            "MICROBLOG_HEADER_NICKNAME": "X-Nick",
            "MICROBLOG_HEADER_EMAIL": "X-Mail",
            "MICROBLOG_HEADER_PROOF": "X-Proof",
            "MICROBLOG_HEADER_GROUPS": "X-Groups",
            "MICROBLOG_HEADER_AUTH_TIME": "X-Auth-Time",
            "MICROBLOG_HEADER_ACR": "X-Acr",
        }
    )
    assert settings.state_dir == Path("/var/lib/microblog")
    assert settings.proof_max_age == 5
    assert settings.header_names().all() == ("X-User", "X-Nick", "X-Mail", "X-Groups", "X-Auth-Time", "X-Acr",
                                             "X-Proof")


def test_missing_proof_key_is_refused_with_a_hint() -> None:
    with pytest.raises(ConfigError) as info:
        load_app_settings({})
    assert info.value.problems == ["MICROBLOG_PROOF_KEY is not set: use the gateway's proof_key"]


def test_empty_proof_key_counts_as_missing() -> None:
    with pytest.raises(ConfigError, match="MICROBLOG_PROOF_KEY is not set"):
        load_app_settings({"MICROBLOG_PROOF_KEY": ""})


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        load_app_settings(
            {
                "MICROBLOG_PROOF_MAX_AGE": "0",
                "MICROBLOG_HEADER_USER": "X Bad",
                "MICROBLOG_HEADER_PROOF": "x-gateway-email",
                "MICROBLOG_PROOFKEY": "typo",
            }
        )
    problems = info.value.problems
    assert len(problems) == 5
    assert "unknown environment variable MICROBLOG_PROOFKEY" in problems
    assert any("MICROBLOG_PROOF_KEY" in p for p in problems)
    assert any("MICROBLOG_PROOF_MAX_AGE" in p for p in problems)
    assert any("MICROBLOG_HEADER_USER" in p for p in problems)
    assert any("must differ" in p for p in problems)


@pytest.mark.parametrize("value", ["-1", "soon", ""])
def test_proof_max_age_must_be_a_positive_number(value: str) -> None:
    with pytest.raises(ConfigError, match="MICROBLOG_PROOF_MAX_AGE must be a positive number"):
        load_app_settings({"MICROBLOG_PROOF_KEY": "key", "MICROBLOG_PROOF_MAX_AGE": value})
