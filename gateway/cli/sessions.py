"""``openid-gateway sessions ...``: see and end sessions without opening the store by hand.

The commands work on the store the configuration names, through the
:class:`~gateway.store.Store` protocol (SQLite today, any store tomorrow).
A revocation is written to the store's revocation log, which every running
gateway reads every ``revocation_refresh`` seconds (:mod:`gateway.state.revocation`):
that is how soon the browsers are refused, with no restart and no signal.

``revoke --session`` ends a remembered session with its remember-me series,
as the account page does, so the browser cannot sign itself back in.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from gateway.errors import StoreUnavailable
from gateway.runtime import open_store
from gateway.settings import Settings
from gateway.store import SessionRecord, Store

EXIT_NOT_FOUND = 1
EXIT_STORE = 3


def add_parser(sub: Any) -> list[argparse.ArgumentParser]:
    """The ``sessions`` command on the main parser's subparsers; returns the parsers that read a configuration."""
    sessions = sub.add_parser("sessions", help="list or end sign-in sessions (in the configured store)")
    steps = sessions.add_subparsers(dest="sessions_command", required=True)
    listing = steps.add_parser("list", help="the live sessions, newest first")
    listing.add_argument("--user", help="only this user identifier's")
    revoke = steps.add_parser("revoke", help="end sessions; running gateways refuse them within revocation_refresh")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--user", help="every session and remember-me series of this user identifier")
    which.add_argument("--session", help="one session (an id from `sessions list`), with its remember-me series")
    which.add_argument("--all", action="store_true", help="everyone's sessions and remember-me series")
    return [listing, revoke]


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(timestamp))


def print_sessions(records: list[SessionRecord]) -> None:
    """One line per session: id, user, created, expires, remembered, client, user agent."""
    for r in records:
        print("\t".join((r.session_id, r.user_id, _when(r.created), _when(r.expires),
                         "remembered" if r.series_id else "-", r.client_addr or "-", r.user_agent[:80] or "-")))
    print(f"{len(records)} live session{'s' if len(records) != 1 else ''}", file=sys.stderr)


def revoke(store: Store, args: argparse.Namespace, now: float) -> tuple[int, str]:
    """End what ``args`` names; returns (live sessions ended, what was ended).

    The store's revoke calls return every unexpired session they match, revoked now *or before* (what a
    gateway's in-memory revocation set needs). A script needs the other count: the sessions that were live,
    so that revoking someone already signed out says "revoked 0 sessions" (and exits 0 all the same: ``--user``
    and ``--all`` also log a bearer-token cutoff, see :func:`run`); only a ``--session`` that is not live exits 1.
    """
    if args.all:
        live = {r.session_id for r in store.list_all_sessions(now)}
        return len(live.intersection(store.revoke_all(now))), "every session"
    if args.user:
        live = {r.session_id for r in store.list_sessions(args.user, now)}
        return len(live.intersection(store.revoke_user(args.user, now))), f"the sessions of {args.user}"
    record = next((r for r in store.list_all_sessions(now) if r.session_id == args.session), None)
    if record is None:
        return 0, f"session {args.session}"
    store.revoke_session(record.session_id, now)
    ended = {record.session_id}
    if record.series_id:  # and every session restored from its remember-me series
        ended.update(store.revoke_series(record.series_id, now))
    return len(ended), f"session {args.session} of {record.user_id}"


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ``sessions`` step; 0, or an exit status with one line on stderr."""
    store = open_store(settings)
    now = time.time()
    try:
        if args.sessions_command == "list":
            records = store.list_sessions(args.user, now) if args.user else store.list_all_sessions(now)
            print_sessions(records)
            return 0
        count, what = revoke(store, args, now)
    except StoreUnavailable as exc:
        print(f"openid-gateway: sessions: the store is unavailable: {exc}", file=sys.stderr)
        return EXIT_STORE
    finally:
        store.close()
    if count == 0 and not args.all and not args.user:
        print(f"openid-gateway: sessions revoke: no live session: {what}", file=sys.stderr)
        return EXIT_NOT_FOUND
    tokens = ""
    if args.all or args.user:  # a cutoff was logged too, whether or not a session was live (gateway.gate.bearer)
        tokens = ", and everyone's bearer tokens issued until now" if args.all else \
            ", and their bearer tokens issued until now"
    print(f"openid-gateway: revoked {count} session{'s' if count != 1 else ''} ({what}){tokens}; running gateways "
          f"refuse {'them' if count != 1 or tokens else 'it'} within revocation_refresh "
          f"({settings.revocation_refresh:g}s)")
    return 0


__all__ = ["add_parser", "run"]
