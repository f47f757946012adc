"""OpenID 2.0 as a :class:`~gateway.signin.methods.SignInMethod`: any identifier a visitor types in.

It is the registry's catch-all (last in line): a configured OpenID 2.0 button's value is an OP
identifier like any typed one. The login state id travels in ``return_to``'s query (python3-openid
requires its query to come back unchanged), which is how the callback finds the state again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

from gateway.signin.loginstate import STATE_FIELD
from gateway.signin.methods import Started
from gateway.signin.openid2.consumer import OpenIDExchange
from gateway.signin.openid2.providers import provider_label
from gateway.store.base import LoginStateRecord, SignInProtocol
from gateway.types import Identity, StepUp


class OpenID2Method:
    """:class:`OpenIDExchange` behind the sign-in interface."""

    protocol: SignInProtocol = "openid2"

    def __init__(self, exchange: OpenIDExchange, callback_url: str) -> None:
        self.exchange = exchange
        self.callback_url = callback_url

    def handles(self, choice: str) -> bool:
        return True

    def name_of(self, choice: str) -> str:
        return ""  # a typed-in identifier fails the visitor's way (400), as a button of this protocol does

    def begin(self, choice: str, state_id: str, step_up: StepUp | None = None) -> Started:
        request = self.exchange.begin(choice, self.callback_url + "?" + urlencode({STATE_FIELD: state_id}), step_up)
        return Started(request.url, request.form_fields, request.provider, self._label(request.provider),
                       request.pending)

    def complete(self, query: Mapping[str, str], current_url: str, data: Mapping[str, object]) -> Identity:
        return self.exchange.complete(query, current_url, data)

    def label(self, record: LoginStateRecord) -> str:
        return self._label(record.provider)

    def _label(self, endpoint: str) -> str:
        named: Sequence[tuple[str, str]] = self.exchange.named_providers
        return provider_label(endpoint, named)
