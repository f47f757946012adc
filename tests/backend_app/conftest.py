from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.exceptions import StarletteDeprecationWarning

# Starlette 1.10's TestClient prefers httpx2 and warns once, at import, when it
# finds only httpx (a project dependency). Until httpx2 is a test dependency,
# import it here, before any test module does, with that one warning ignored.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from backend_app import AppSettings, create_app, load_app_settings
from tests.backend_app.support import KEY


@pytest.fixture
def settings(tmp_path: Path) -> AppSettings:
    return load_app_settings({"MICROBLOG_PROOF_KEY": KEY, "MICROBLOG_STATE_DIR": str(tmp_path / "state")})


@pytest.fixture
def client(settings: AppSettings) -> Iterator[TestClient]:
    """The app with its lifespan running (the database is open)."""
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client
