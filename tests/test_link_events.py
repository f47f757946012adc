"""Linked sign-ins in the audit log and the metrics: link, unlink, refusals and the OpenID 2.0 migration.

Real providers and a real gateway (tests/migration_servers.py). Each action
is one audit line, as the gateway's JSON formatter writes it (test_audit's
handler), naming who (``user``, ``client``) and what (``identity``,
``provider``, ``reason``), the request it belongs to, and nothing secret.
"""

from __future__ import annotations

import json

import httpx

from gateway.observe import metrics
from tests.conftest import leaked_secret
from tests.devtools.oidc_relying_party import decide
from tests.migration_servers import OIDC_NAME, Servers, servers_fixture, unvouched_stack_fixture  # noqa: F401
from tests.observe.test_audit import JsonLines, audit_lines  # noqa: F401
from tests.pages.test_account import account, token
from tests.pages.test_account_links import ACCOUNT, link, oidc_key, sign_out, start_link
from tests.pages.test_login_callback import whoami
from tests.signin_steps import sign_in as openid2_sign_in

CLIENT = "127.0.0.1"
LINK_EVENTS = ("identity_linked", "identity_unlinked", "identity_migrated", "identity_link_refused")


def counted(action: str) -> float:
    return metrics.REGISTRY.get_sample_value("gateway_identity_links_total", {"action": action}) or 0.0


def link_lines(lines: JsonLines) -> list[dict[str, object]]:
    return [line for name in LINK_EVENTS for line in lines.events(name)]


def without_meta(line: dict[str, object]) -> dict[str, object]:
    """An audit line's event fields (time, level, logger and request id checked apart)."""
    assert line["logger"] == "gateway.audit" and line["level"] == "info"
    assert isinstance(line["request_id"], str) and line["request_id"] != "-", line  # names its request
    return {k: v for k, v in line.items() if k not in ("time", "level", "logger", "request_id")}


def nothing_secret(lines: JsonLines, *browsers: httpx.Client) -> None:
    cookies = [value for browser in browsers for value in browser.cookies.values() if len(value) >= 16]
    for line in lines.lines:
        assert leaked_secret(line) is None, line
        assert not any(value in line for value in cookies), line


def test_a_link_and_an_unlink_are_one_audit_line_each(stack: Servers, audit_lines: JsonLines) -> None:  # noqa: F811
    own = oidc_key(stack, "ada-oidc")
    linked, unlinked = counted("linked"), counted("unlinked")
    with httpx.Client(follow_redirects=True, timeout=15) as laptop:
        openid2_sign_in(laptop, stack.gateway.url, stack.op2_id("ada"), "ada")
        assert link(laptop, stack, "ada-oidc").url.params["m"] == "linked"
        [line] = link_lines(audit_lines)
        assert without_meta(line) == {"event": "identity_linked", "user": stack.op2_id("ada"), "identity": own,
                                      "provider": OIDC_NAME, "client": CLIENT}
        page = account(laptop, stack.gateway)
        final = laptop.post(stack.gateway.url + ACCOUNT + "/unlink", data={"csrf_token": token(page),
                                                                          "identity_key": own})
        assert final.url.params["m"] == "unlinked"
        assert [without_meta(line) for line in link_lines(audit_lines)][1:] == [
            {"event": "identity_unlinked", "user": stack.op2_id("ada"), "identity": own, "client": CLIENT,
             "sessions": 0}]
        nothing_secret(audit_lines, laptop)
    assert (counted("linked"), counted("unlinked")) == (linked + 1, unlinked + 1)


def test_refused_links_and_unlinks_are_one_audit_line_each(stack: Servers, audit_lines: JsonLines) -> None:  # noqa: F811
    own = oidc_key(stack, "ben-oidc")
    with httpx.Client(follow_redirects=True, timeout=15) as owner:
        openid2_sign_in(owner, stack.gateway.url, stack.op2_id("ben"), "ben")
        link(owner, stack, "ben-oidc")
    refused = counted("refused")
    audit_lines.lines.clear()
    with httpx.Client(follow_redirects=True, timeout=15) as other:
        openid2_sign_in(other, stack.gateway.url, stack.op2_id("cleo"), "cleo")
        assert link(other, stack, "ben-oidc").url.params["m"] == "link-taken"  # someone else's: no takeover
        page = account(other, stack.gateway)
        forged = own + "\n" + "x" * 1000  # a form field: any text, any length
        for key in (own, forged):
            final = other.post(stack.gateway.url + ACCOUNT + "/unlink", data={"csrf_token": token(page),
                                                                             "identity_key": key})
            assert final.url.params["m"] == "not-yours"
        # A link started by cleo, finished after ben signed in in this browser: refused in the callback.
        consent = start_link(other, stack)
        sign_out(other, stack)
        openid2_sign_in(other, stack.gateway.url, stack.op2_id("ben"), "ben")
        assert decide(other, consent, username="cleo-oidc").status_code == 400
        nothing_secret(audit_lines, other)
    lines = [without_meta(line) for line in link_lines(audit_lines)]
    cleo = {"event": "identity_link_refused", "user": stack.op2_id("cleo"), "client": CLIENT}
    assert lines[:3] == [{**cleo, "identity": own, "reason": "link-taken"},
                         {**cleo, "identity": own, "reason": "not-yours"},
                         {**cleo, "identity": forged[:300], "reason": "not-yours"}]
    assert lines[3]["reason"] == "other-session" and lines[3]["user"] == stack.op2_id("cleo")
    assert len(lines) == 4 and counted("refused") == refused + 4
    assert sum(json.loads(line).get("event") == "identity_linked" for line in audit_lines.lines) == 0


def test_a_migration_is_one_audit_line_and_later_sign_ins_none(stack: Servers, audit_lines: JsonLines) -> None:  # noqa: F811
    stack.vouch_for(stack.op2_url)
    migrated = counted("migrated")
    with httpx.Client(follow_redirects=True, timeout=15) as first:
        stack.oidc_sign_in(first, "dora")
        assert whoami(first, stack.gateway)["user"] == stack.op2_id("dora")
        [link_record] = stack.store.list_links(stack.op2_id("dora"))
        [line] = link_lines(audit_lines)
        assert without_meta(line) == {"event": "identity_migrated", "user": stack.op2_id("dora"),
                                      "identity": link_record.identity_key, "openid2_id": stack.op2_id("dora"),
                                      "provider": OIDC_NAME, "client": CLIENT}
        [signed_in] = audit_lines.events("signed_in")
        assert signed_in["request_id"] == line["request_id"]  # the callback's request, from the sign-in thread
    with httpx.Client(follow_redirects=True, timeout=15) as again:
        stack.oidc_sign_in(again, "dora")  # the link exists now: nothing is migrated again
        assert whoami(again, stack.gateway)["user"] == stack.op2_id("dora")
        nothing_secret(audit_lines, first, again)
    assert len(link_lines(audit_lines)) == 1 and counted("migrated") == migrated + 1
