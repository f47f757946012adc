"""Nicknames: what the provider said, made into a unique, URL-safe handle.

As in the Flask Mega-Tutorial's ``after_login``: the nickname comes from the
provider (SReg/AX), falls back to the e-mail's local part, is reduced to
characters that are safe in ``/user/<nickname>``, and gets a number appended
(``bob2``, ``bob3``...) when another account already uses it. The claimed
identifier, not the nickname, identifies the account.
"""

from __future__ import annotations

import re
from collections.abc import Callable

MAX_LENGTH = 32
FALLBACK = "user"
_INVALID = re.compile(r"[^A-Za-z0-9_.-]+")


def make_valid_nickname(nickname: str, email: str = "") -> str:
    """The base nickname for an identity: never empty, ``[A-Za-z0-9_.-]`` only."""
    for candidate in (nickname, email.partition("@")[0]):
        valid = _INVALID.sub("", candidate)[:MAX_LENGTH].strip(".")
        if valid:
            return valid
    return FALLBACK


def nickname_fits(current: str, base: str) -> bool:
    """Whether ``current`` is ``base`` or a numbered variant of it (``base2``...).

    A user keeps the nickname they were given as long as the provider keeps
    sending the same one, even when the unnumbered one becomes free.
    """
    return current == base or (current.startswith(base) and current[len(base) :].isdigit())


def make_unique_nickname(base: str, taken: Callable[[str], bool]) -> str:
    """``base`` if free, else ``base2``, ``base3``... the first one not ``taken``."""
    if not taken(base):
        return base
    number = 2
    while taken(f"{base}{number}"):
        number += 1
    return f"{base}{number}"


__all__ = ["make_unique_nickname", "make_valid_nickname", "nickname_fits"]
