"""Fixtures of the development provider's tests.

The provider itself is ``tests/conftest.py``'s shared ``provider`` (all profiles on one
loopback port); here are the relying party's fetcher and the person's HTTP client.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import httpx
import pytest
from openid import fetchers

from tests.servers import UvicornThread


class LoopbackFetcher(fetchers.Urllib2Fetcher):  # type: ignore[misc]
    """python3-openid's urllib fetcher without proxies: the provider listens on loopback."""

    urlopen = staticmethod(urllib.request.build_opener(urllib.request.ProxyHandler({})).open)


@pytest.fixture(scope="module", autouse=True)
def loopback_fetcher() -> Iterator[None]:
    """python3-openid's fetcher is process-wide: set ours for these tests, then put the previous one back."""
    previous = fetchers.getDefaultFetcher()
    fetchers.setDefaultFetcher(LoopbackFetcher())
    yield
    fetchers.setDefaultFetcher(previous, wrap_exceptions=False)


@pytest.fixture(scope="session")
def op(provider: UvicornThread) -> str:
    """The provider's base URL."""
    return provider.url


@pytest.fixture
def person() -> Iterator[httpx.Client]:
    """The person at the consent page: no redirects followed, so each answer can be inspected."""
    with httpx.Client(trust_env=False, follow_redirects=False, timeout=10) as client:
        yield client
