"""Who may reach which path: the one access decision of both modes.

The auth check (mode 1), the proxy (mode 2) and the ``check-access`` command
all ask :meth:`AccessPolicy.decide` and nothing else. Rules are an ordered
list; the first rule whose conditions (host, path, methods) all match
decides; ``default_policy`` decides the rest. Policies:

* ``public``: no sign-in; identity headers are stripped;
* ``signed_in``: anyone signed in;
* ``allow``: only people matching one of the rule's subjects;
* ``deny``: nobody.

A ``signed_in`` or ``allow`` rule may also ask for a recent or stronger sign-in (``max_age``,
``acr_values``: a :class:`~gateway.types.StepUp`). A person it admits whose sign-in falls short gets the
outcome ``step_up``, carrying what was asked: the browser is sent to its provider again, an API client
gets RFC 9470's challenge. It is judged under every reading like the rest: forbidden beats step-up, and
the step-ups of several readings are joined (the smaller ``max_age``, the common ``acr_values``; none
in common is forbidden, since no sign-in could pass). Rules that ask nothing cost one attribute test.

Rules match the *path only*, never the query string (oauth2-proxy's
GHSA-7rh7-c77v-6434 came from matching the whole URI). And the path the app
will serve is not always the path as written: apps and frameworks decode
``%2e%2e`` and ``%2f``, resolve ``..``, drop ``;params``, fold case, strip a
trailing dot or space, read ``\\`` as ``/``. A spelling must never reach a
stricter-ruled path through a looser rule, so an ambiguous path is judged
under *every* reading an app might give it, and the strictest decision wins
(:func:`path_readings`). Routers also serve one handler for several paths:
Rails routes ``/admin`` as ``/admin(.:format)`` (``/admin.json``), Express and
Rails ignore a trailing slash, so the reading without a format suffix and the
one without a trailing slash are judged too, by the rules that name them. Case-
insensitive apps (IIS, ASP.NET, Express) fold case: the path and the rules'
paths are compared case-folded too (``path_regex`` then ignores case). And
method override (Rack, Laravel, Symfony, Express's ``method-override``) turns
a POST into another method from ``_method`` in the body or query, which the
auth check cannot see: with ``method_override`` a POST is also judged as every
method the rules tell apart. A plain lower-case path - the common case - has
one reading, and costs one pass over the rules.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, NamedTuple
from urllib.parse import unquote

from gateway.types import Assurance, StepUp

Policy = Literal["public", "signed_in", "allow", "deny"]
POLICIES: tuple[Policy, ...] = ("public", "signed_in", "allow", "deny")
SUBJECT_KINDS = ("user", "email", "domain", "group", "provider")
DEFAULT_RULE = "default_policy"

# A path made of these, without dot segments or "//", means one thing to every app.
_PLAIN_PATH = re.compile(r"(/[A-Za-z0-9\-_~!$&'()*+,=:@]+(\.[A-Za-z0-9\-_~!$&'()*+,=:@]+)*)*/?")
_METHOD = re.compile(r"[A-Z]{1,20}")
# Stands for every method no rule names, when a POST is judged as what an override could make it
# (not a method a rule can name: _METHOD has no underscore).
_UNNAMED_METHOD = "_OTHER"
# An acr value travels space-separated in URLs and quoted in RFC 9470's challenge: printable, no space, " or \.
_ACR_VALUE = re.compile(r'[\x21\x23-\x5b\x5d-\x7e]{1,200}')
_HOST_PATTERN = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?")


class RuleError(ValueError):
    """A rule of the configuration cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class Person:
    """What the rules may know of a signed-in person.

    ``email`` is set only when the provider vouched for it (a signed field);
    ``groups`` come from the ``[groups]`` table (and, later, the provider).
    """

    user_id: str
    email: str = ""
    groups: frozenset[str] = frozenset()
    provider: str = ""


@dataclass(frozen=True, slots=True)
class Subject:
    """``user:<id>``, ``email:<address>``, ``domain:<d>`` (``.d`` with subdomains), ``group:<g>``, ``provider:<p>``."""

    kind: str
    value: str

    def matches(self, person: Person) -> bool:
        if self.kind == "user":
            return person.user_id == self.value
        if self.kind == "group":
            return self.value in person.groups
        if self.kind == "provider":
            return bool(person.provider) and person.provider.lower() == self.value
        email = person.email.lower()
        if not email or "@" not in email:
            return False
        if self.kind == "email":
            return email == self.value
        domain = email.rsplit("@", 1)[1]
        if self.value.startswith("."):  # ".example.com": the domain and its subdomains
            return domain == self.value[1:] or domain.endswith(self.value)
        return domain == self.value

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True, slots=True)
class Rule:
    """One entry of ``rules``: conditions (all must match) and a policy."""

    name: str
    policy: Policy
    hosts: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    path_regex: re.Pattern[str] | None = None
    methods: frozenset[str] = frozenset()
    subjects: tuple[Subject, ...] = ()
    # Requests here may authenticate with a provider's bearer token instead of the session cookie.
    bearer: bool = False
    step_up: StepUp | None = None  # max_age / acr_values: what the sign-in must also be

    def matches(self, method: str, host: str, path: str) -> bool:
        if self.methods and method not in self.methods:
            return False
        if self.hosts and not any(_host_matches(pattern, host) for pattern in self.hosts):
            return False
        if self.paths and not any(_prefix_matches(prefix, path) for prefix in self.paths):
            return False
        return self.path_regex is None or self.path_regex.search(path) is not None

    def folded(self) -> Rule:
        """This rule for case-folded paths: its paths in lower case, its ``path_regex`` ignoring case."""
        regex = self.path_regex
        if regex is not None:
            regex = re.compile(regex.pattern, regex.flags | re.IGNORECASE)
        return dataclasses.replace(self, paths=tuple(path.lower() for path in self.paths), path_regex=regex)

    def admits(self, person: Person | None) -> bool | None:
        """True/False for the person; None when the answer is "sign in first"."""
        if self.policy == "public":
            return True
        if self.policy == "deny":
            return False
        if person is None:
            return None
        return self.policy == "signed_in" or any(subject.matches(person) for subject in self.subjects)


Outcome = Literal["allow", "sign_in", "step_up", "forbidden"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer: ``allow`` (``public`` says whether identity headers are withheld), ``sign_in``, ``step_up``
    (signed in, but the sign-in is too old or too weak: ``step_up`` says what is asked) or ``forbidden``.

    ``rule`` names the rule that decided (for the 403 page, the logs and
    ``check-access``). "Unavailable" is not a decision: the callers raise
    :class:`~gateway.errors.StoreUnavailable` before asking.
    """

    outcome: Outcome
    rule: str
    public: bool = False
    step_up: StepUp | None = None


@dataclass(frozen=True)
class AccessPolicy:
    """The ordered rules, the default policy and the groups table, built once from the settings.

    ``method_override``: a POST is also judged as every method an app's method override could turn
    it into (the strictest answer wins); False for sites whose apps never override methods.
    """

    rules: tuple[Rule, ...] = ()
    default_policy: Policy = "signed_in"
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    method_override: bool = True
    _default: Rule = field(init=False, repr=False)
    _folded: tuple[Rule, ...] = field(init=False, repr=False)
    _fold_differs: bool = field(init=False, repr=False)
    _overrides: tuple[str, ...] = field(init=False, repr=False)
    _bearer_rules: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_default", Rule(DEFAULT_RULE, self.default_policy))
        folded = tuple(rule.folded() for rule in self.rules)
        # Whether a lower-case path can match a folded rule that the rule as written does not match.
        object.__setattr__(self, "_fold_differs", folded != self.rules)
        object.__setattr__(self, "_folded", folded if folded != self.rules else self.rules)
        object.__setattr__(self, "_overrides", _override_methods(self.rules) if self.method_override else ())
        object.__setattr__(self, "_bearer_rules", any(rule.bearer for rule in self.rules))

    @property
    def trivial(self) -> bool:
        """No rules and the default ``signed_in``: every protected request only needs a session."""
        return not self.rules and self.default_policy == "signed_in"

    def person(self, user_id: str, email: str = "", provider: str = "",
               provider_groups: Iterable[str] = ()) -> Person:
        """A :class:`Person` with the groups the ``[groups]`` table gives them.

        A member written as an e-mail address matches only a vouched e-mail,
        anything else only the user identifier: an identifier that happens to
        look like an address never stands in for one.
        """
        email_key = "email:" + email.lower() if email else None
        groups = {name for name, members in self.groups.items()
                  if "user:" + user_id in members or (email_key is not None and email_key in members)}
        return Person(user_id, email, frozenset(groups) | frozenset(provider_groups), provider)

    def rule_for(self, method: str, host: str, path: str) -> Rule:
        """The first rule matching ``method host path`` as written (``default_policy`` when none does)."""
        return _first(self.rules, method, host, path) or self._default

    def methods_judged(self, method: str) -> tuple[str, ...]:
        """The methods a request is judged as: a POST also as every method an override could make it."""
        method = method.upper()
        return (method, *self._overrides) if method == "POST" else (method,)

    def accepts_bearer(self, method: str, host: str, path: str, api_paths: Sequence[str] = ()) -> bool:
        """Whether every reading of the path is under ``api_paths`` or a rule with ``bearer = true``.

        Asked only of a request with a token. Every reading, as for the decision: ``/api/../admin``
        is ``/admin`` to some app, and there the cookie decides.
        """
        if not api_paths and not self._bearer_rules:
            return False
        method, host = method.upper(), normalise_host(host)
        readings = path_readings(path)
        return all(any(_prefix_matches(prefix, reading) for prefix in api_paths)
                   or self.rule_for(method, host, reading).bearer for reading in (*readings.paths, *readings.derived))

    def decide(self, person: Person | None, method: str, host: str, path: str,
               assurance: Assurance | None = None, now: float = 0.0) -> Decision:
        """Decide for ``method host path`` (path without the query string), under every reading of the path.

        ``assurance`` is how the person authenticated, judged at ``now`` by rules that ask for a step-up
        (None: unknown, which no such rule accepts).

        Each reading picks its rule; the strictest answer wins: forbidden by
        any reading beats "sign in" and "step up", which beat allow. Headers are withheld
        (``public``) only when every reading is public. A derived reading (no
        format suffix, no trailing slash) counts only where a rule names it:
        ``/robots.txt`` stays what a rule on it says when no rule names ``/robots``.
        """
        method = method.upper()
        host = normalise_host(host)
        if self.trivial:
            return Decision("allow" if person is not None else "sign_in", DEFAULT_RULE)
        methods = (method, *self._overrides) if method == "POST" else (method,)
        readings = path_readings(path)
        outcome: Outcome = "allow"
        decided_by = ""
        public = True
        asked: StepUp | None = None
        for rules, reading, derived in self._cases(readings):
            for judged in methods:
                rule = _first(rules, judged, host, reading)
                if rule is None:
                    if derived:
                        continue
                    rule = self._default
                admitted = rule.admits(person)
                public = public and rule.policy == "public"
                if admitted is False:
                    return Decision("forbidden", rule.name)
                if admitted is None and outcome == "allow":
                    outcome, decided_by = "sign_in", rule.name
                elif rule.step_up is not None and admitted and (
                        assurance is None or not rule.step_up.met_by(assurance, now)):
                    joined = rule.step_up if asked is None else asked.joined(rule.step_up)
                    if joined is None:  # acr values with nothing in common: no sign-in can pass
                        return Decision("forbidden", rule.name)
                    if asked is None:
                        outcome, decided_by = "step_up", rule.name
                    asked = joined
                elif not decided_by:
                    decided_by = rule.name
        if asked is not None:
            return Decision("step_up", decided_by, step_up=asked)
        return Decision(outcome, decided_by, public=public and outcome == "allow")

    def _cases(self, readings: Readings) -> list[tuple[tuple[Rule, ...], str, bool]]:
        """(rules, reading, derived): each reading against the rules as written, and case-folded against
        the folded rules (skipped where that changes nothing: a lower-case reading, rules without capitals
        or ``path_regex``)."""
        cases = []
        for group, derived in ((readings.paths, False), (readings.derived, True)):
            for reading in group:
                cases.append((self.rules, reading, derived))
                folded = reading.lower()
                if folded != reading or self._fold_differs:
                    cases.append((self._folded, folded, derived))
        return cases


def _first(rules: tuple[Rule, ...], method: str, host: str, path: str) -> Rule | None:
    for rule in rules:
        if rule.matches(method, host, path):
            return rule
    return None


def _override_methods(rules: tuple[Rule, ...]) -> tuple[str, ...]:
    """The methods besides POST a POST is judged as: each one a rule names, and one that no rule names.

    Rack::MethodOverride, Laravel and Symfony accept any method from ``_method`` or
    ``X-HTTP-Method-Override``; rules can only tell apart the methods they name, so
    one stand-in covers all the others. No rule names a method: nothing to add.
    """
    named: frozenset[str] = frozenset().union(*(rule.methods for rule in rules))
    if not named:
        return ()
    return (*sorted(named - {"POST"}), _UNNAMED_METHOD)


def normalise_host(host: str) -> str:
    """The Host header's name, lower case, without the port or a trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0].rstrip(".") if ":" in host else host.rstrip(".")


def _host_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _prefix_matches(prefix: str, path: str) -> bool:
    """``/admin`` matches ``/admin`` and ``/admin/...``, not ``/administrator``; ``/admin/`` only below it."""
    if prefix.endswith("/"):
        return path.startswith(prefix) or path == prefix[:-1]
    return path == prefix or path.startswith(prefix + "/")


class Readings(NamedTuple):
    """How apps may read a path: ``paths`` as they may serve it, ``derived`` what routers map it to.

    ``derived``: without a format suffix on the last segment (Rails' ``(.:format)``,
    Spring's suffix patterns: ``/admin.json`` is ``/admin``) and without a trailing
    slash (Express, Rails: ``/admin/`` is ``/admin``), where these differ from ``paths``.
    """

    paths: tuple[str, ...]
    derived: tuple[str, ...] = ()

    @property
    def every(self) -> tuple[str, ...]:
        """Every reading, as written first."""
        return self.paths + self.derived


def path_readings(path: str) -> Readings:
    """Every path an app might serve for ``path`` as written (query string already removed).

    A plain path (letters, digits, ``-._~`` and sub-delimiters, no dot
    segments, no ``//``) reads one way. Anything else is decoded up to three
    times and each decoding read with every combination of the normalisations
    apps apply: ``\\`` as ``/``, ``;params`` dropped, repeated ``/`` merged,
    trailing dots and whitespace of a segment dropped, dot segments resolved.
    Case is folded by :meth:`AccessPolicy.decide` (against case-folded rules).
    """
    if _PLAIN_PATH.fullmatch(path):
        derived = _derived(path)
        return Readings((path,), derived) if derived else Readings((path,))
    if len(path) <= _CACHED_PATH_LENGTH:
        return _ambiguous_readings(path)
    return _ambiguous_readings.__wrapped__(path)


def _derived(path: str) -> tuple[str, ...]:
    """``path`` without its format suffix(es) and without a trailing slash, when it has them."""
    if path.endswith("/"):
        return (path[:-1],) if len(path) > 1 else ()
    # The suffix starts after the last segment's leading dots (/.well-known and /..%2fx.json are no suffixes).
    stem = len(path) - len(path[path.rfind("/") + 1:].lstrip("."))
    dot = path.find(".", stem)
    if dot < 0:
        return ()
    last = path.rfind(".")
    return (path[:dot],) if last == dot else (path[:dot], path[:last])


_CACHED_PATH_LENGTH = 512


@lru_cache(maxsize=1024)  # bounded in entries and, through _CACHED_PATH_LENGTH, in bytes
def _ambiguous_readings(path: str) -> Readings:
    decodings = [path]
    for _ in range(3):
        decoded = unquote(decodings[-1])
        if decoded == decodings[-1]:
            break
        decodings.append(decoded)
    readings: dict[str, None] = {}
    steps = (_backslashes, _drop_params, _merge_slashes, _trim_segments)
    for text in decodings:
        for chosen in itertools.product((False, True), repeat=len(steps)):
            reading = text
            for step, apply in zip(steps, chosen, strict=True):
                if apply:
                    reading = step(reading)
            resolved = _resolve_dots(reading)
            for candidate in (reading, resolved, _merge_slashes(resolved)):
                readings.setdefault(candidate if candidate.startswith("/") else "/" + candidate)
    derived: dict[str, None] = {}
    for reading in readings:
        for candidate in _derived(reading):
            if candidate not in readings:
                derived.setdefault(candidate)
    return Readings(tuple(readings), tuple(derived))


def _backslashes(path: str) -> str:
    return path.replace("\\", "/")


def _drop_params(path: str) -> str:
    return "/".join(segment.split(";", 1)[0] for segment in path.split("/"))


def _merge_slashes(path: str) -> str:
    return re.sub(r"/{2,}", "/", path)


def _trim_segments(path: str) -> str:
    return "/".join(segment if segment in (".", "..") else segment.rstrip(". \t\r\n\x00") for segment in
                    path.split("/"))


def _resolve_dots(path: str) -> str:
    """RFC 3986 §5.2.4 remove_dot_segments, as most servers do it."""
    output: list[str] = []
    segments = path.split("/")
    for segment in segments[1:] if path.startswith("/") else segments:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    trailing = segments[-1] in (".", "..") and path != "/"
    return "/" + "/".join(output) + ("/" if trailing and output else "")


# --- building the policy from the configuration ---------------------------------------------------


def parse_subject(text: str) -> Subject:
    kind, sep, value = text.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in SUBJECT_KINDS or not value.strip():
        raise RuleError(f"subject {text!r} must be one of {', '.join(k + ':…' for k in SUBJECT_KINDS)}")
    value = value.strip()
    if kind in ("email", "domain", "provider"):
        value = value.lower()
    if kind == "email" and "@" not in value:
        raise RuleError(f"subject {text!r}: an e-mail address needs an @")
    if kind == "domain" and ("@" in value or not re.fullmatch(r"\.?[a-z0-9]([a-z0-9.-]*[a-z0-9])?", value)):
        raise RuleError(f"subject {text!r}: a domain is example.com, or .example.com for its subdomains too")
    return Subject(kind, value)


_RULE_KEYS = {"name", "hosts", "paths", "path_regex", "methods", "policy", "subjects", "bearer", "max_age",
              "acr_values"}


def parse_rule(index: int, raw: Mapping[str, Any]) -> Rule:
    """One ``[[rules]]`` table; raises :class:`RuleError` naming ``rules[index]``."""
    label = f"rules[{index}]"
    if not isinstance(raw, Mapping):
        raise RuleError(f"{label} must be a table")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise RuleError(f"{label}: unknown key(s) {', '.join(sorted(unknown))} "
                        f"(known: {', '.join(sorted(_RULE_KEYS))})")
    name = raw.get("name", label)
    if not isinstance(name, str) or not name:
        raise RuleError(f"{label}: name must be a string")
    label = f"{label} ({name})" if "name" in raw else label
    policy = raw.get("policy")
    if policy not in POLICIES:
        raise RuleError(f"{label}: policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    hosts = _strings(raw.get("hosts", []), label, "hosts")
    for host in hosts:
        if not _HOST_PATTERN.fullmatch(host.lower()):
            raise RuleError(f"{label}: host {host!r} must be a name such as app.example.com or *.example.com")
    paths = _strings(raw.get("paths", []), label, "paths")
    for path in paths:
        if not path.startswith("/") or "?" in path or not _PLAIN_PATH.fullmatch(path):
            raise RuleError(f"{label}: path {path!r} must be a plain path prefix such as /admin (no query, no dots)")
    regex = raw.get("path_regex")
    compiled = None
    if regex is not None:
        if not isinstance(regex, str):
            raise RuleError(f"{label}: path_regex must be a string")
        try:
            compiled = re.compile(regex)
        except re.error as exc:
            raise RuleError(f"{label}: path_regex {regex!r} is not a regular expression: {exc}") from exc
    methods = [m.upper() for m in _strings(raw.get("methods", []), label, "methods")]
    for method in methods:
        if not _METHOD.fullmatch(method):
            raise RuleError(f"{label}: method {method!r} is not an HTTP method")
    subjects = tuple(_subjects(raw.get("subjects", []), label))
    if policy == "allow" and not subjects:
        raise RuleError(f"{label}: policy 'allow' needs subjects (who is allowed)")
    if policy != "allow" and subjects:
        raise RuleError(f"{label}: subjects only apply to policy 'allow'")
    bearer = raw.get("bearer", False)
    if not isinstance(bearer, bool):
        raise RuleError(f"{label}: bearer must be true or false")
    if bearer and policy == "public":
        raise RuleError(f"{label}: bearer = true on a public rule means nothing (nobody needs to authenticate)")
    return Rule(name, policy, tuple(h.lower() for h in hosts), tuple(paths), compiled, frozenset(methods), subjects,
                bearer, _step_up(raw, label, policy))


def _step_up(raw: Mapping[str, Any], label: str, policy: str) -> StepUp | None:
    """``max_age`` (positive whole seconds) and ``acr_values`` (non-empty strings), on rules that admit someone."""
    if "max_age" not in raw and "acr_values" not in raw:
        return None
    if policy in ("public", "deny"):
        raise RuleError(f"{label}: max_age and acr_values ask more of a sign-in; a {policy} rule asks for none")
    max_age = raw.get("max_age")
    if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int) or max_age <= 0):
        raise RuleError(f"{label}: max_age must be a positive whole number of seconds, got {max_age!r}")
    acr_values = _strings(raw.get("acr_values", []), label, "acr_values")
    if "acr_values" in raw and (not acr_values or not all(_ACR_VALUE.fullmatch(value) for value in acr_values)):
        raise RuleError(f"{label}: acr_values must be a non-empty list of printable values without spaces, quotes "
                        "or backslashes, such as [\"urn:example:mfa\"]")
    return StepUp(max_age, tuple(acr_values))


def _strings(value: Any, label: str, key: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise RuleError(f"{label}: {key} must be a list of strings")
    return list(value)


def _subjects(value: Any, label: str) -> Iterable[Subject]:
    for text in _strings(value, label, "subjects"):
        try:
            yield parse_subject(text)
        except RuleError as exc:
            raise RuleError(f"{label}: {exc}") from None


def parse_groups(raw: Any) -> dict[str, frozenset[str]]:
    """``[groups]``: group name -> members (user identifiers or e-mail addresses)."""
    if not isinstance(raw, Mapping):
        raise RuleError("groups must be a table of name = [members]")
    groups = {}
    for name, members in raw.items():
        if not isinstance(members, list) or not all(isinstance(m, str) and m for m in members):
            raise RuleError(f"groups.{name} must be a list of user identifiers or e-mail addresses")
        groups[str(name)] = frozenset(_member_key(m) for m in members)
    return groups


def _member_key(member: str) -> str:
    """``email:<address>`` for an e-mail address (case-insensitive), ``user:<identifier>`` for the rest."""
    if "@" in member and "://" not in member and "/" not in member:
        return "email:" + member.lower()
    return "user:" + member


__all__ = [
    "AccessPolicy",
    "Decision",
    "Person",
    "Policy",
    "Readings",
    "Rule",
    "RuleError",
    "Subject",
    "normalise_host",
    "parse_groups",
    "parse_rule",
    "parse_subject",
    "path_readings",
]
