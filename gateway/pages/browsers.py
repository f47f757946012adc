"""Short names for user-agent strings ("Chrome 156 on Linux"), for the account page's list of sessions.

The first 60 characters of a user-agent ("Mozilla/5.0 (X11; Linux x86_64)…") are the
same for nearly every browser, so a person could not tell their sessions apart.
ua-parser keeps the browser and OS rules of the uap-core project up to date; we only
format its answer.
"""

from __future__ import annotations

import ua_parser

UNKNOWN = "Unknown browser"
# A user-agent can be as long as the header limit allows; the rules need only its start,
# and a bounded input keeps the regular expressions' work bounded.
MAX_PARSED = 512


def browser_name(user_agent: str | None) -> str:
    """"<browser> <major version> on <OS>", leaving out what the parser does not know."""
    text = (user_agent or "")[:MAX_PARSED]
    agent = ua_parser.parse_user_agent(text) if text else None
    system = ua_parser.parse_os(text) if text else None
    if agent is None:
        return UNKNOWN if system is None else f"{UNKNOWN} on {system.family}"
    name = f"{agent.family} {agent.major}" if agent.major else agent.family
    return name if system is None else f"{name} on {system.family}"
