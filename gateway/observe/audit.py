"""The audit log: every security event (:mod:`gateway.observe.events`) as one log line, and the gateway's log format.

An auditor or a SIEM reads the ``gateway.observe.audit`` logger: with
``log_format = "json"`` (or ``audit_log`` naming a file, always JSON) each line
is one JSON object: ``time``, ``level``, ``logger``, ``request_id``, ``event``
and the event's fields. The console format (the default) says the same in one
readable line. Every line, audit or not, names the request it belongs to.

The request id comes from a trusted proxy's ``X-Request-ID`` (nginx's
``$request_id``; Caddy and Traefik can set one) or is made here, and is
passed to the app in the same header, so one id follows a request through
nginx, the gateway and the app.

Nothing secret reaches these lines: events carry no cookie, token, proof or
key (see :mod:`gateway.observe.events`), and the request id is checked to be a short
plain token before it is believed.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import secrets
import sys
import time
from typing import Any

from gateway.observe.events import Event, request_id

AUDIT_LOGGER = "gateway.audit"
REQUEST_ID_HEADER = b"x-request-id"
# What a request id from a trusted proxy may look like (nginx: 32 hex digits; a UUID; a Traefik/Caddy plugin's).
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_CONSOLE = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def new_request_id() -> str:
    """A fresh request id, shaped like nginx's ``$request_id`` (32 hex digits)."""
    return secrets.token_hex(16)


def accept_request_id(value: bytes | None) -> str:
    """The id a trusted proxy sent, if it is a plain short token; otherwise a new one (no log injection)."""
    if value is not None and _REQUEST_ID.fullmatch(value):
        return value.decode("ascii")
    return new_request_id()


def request_id_from(headers: list[tuple[bytes, bytes]], trusted: bool) -> str:
    """The request id for a request: a trusted peer's ``X-Request-ID``, else a new one."""
    if trusted:
        for name, value in headers:
            if name == REQUEST_ID_HEADER:
                return accept_request_id(value)
    return new_request_id()


def _console_value(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


class AuditLog:
    """The listener that writes each event to the ``gateway.observe.audit`` logger."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(AUDIT_LOGGER)

    def __call__(self, event: Event) -> None:
        fields = event.fields()
        text = " ".join(f"{key}={_console_value(value)}" for key, value in fields.items())
        self.logger.info("%s %s", event.name, text, extra={"audit_event": event.name, "audit_fields": fields})


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; audit records carry ``event`` and their fields instead of a message."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": getattr(record, "request_id", request_id.get()),
        }
        event = getattr(record, "audit_event", None)
        if event is not None:
            line["event"] = event
            line.update(getattr(record, "audit_fields", {}))
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _handler(handler: logging.Handler, json_format: bool) -> logging.Handler:
    handler.setFormatter(JsonFormatter() if json_format else logging.Formatter(_CONSOLE))
    handler.addFilter(RequestIdFilter())
    handler.set_name("openid-gateway")  # found again (and replaced) on a second call
    return handler


def _replace(logger: logging.Logger, handler: logging.Handler | None) -> None:
    for old in [h for h in logger.handlers if h.get_name() == "openid-gateway"]:
        logger.removeHandler(old)
        old.close()
    if handler is not None:
        logger.addHandler(handler)


def configure_logging(log_format: str = "console", log_level: str = "info", audit_log: str = "stderr") -> None:
    """Install the gateway's log handlers (once per process: each uvicorn worker calls it again).

    The audit logger logs at INFO whatever ``log_level`` says: an audit trail
    that a quieter log level silenced would not be one.
    """
    root = logging.getLogger()
    _replace(root, _handler(logging.StreamHandler(sys.stderr), log_format == "json"))
    root.setLevel(log_level.upper())
    if log_format == "json":  # uvicorn's own lines too, from here on (its start-up lines came before)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True
    audit = logging.getLogger(AUDIT_LOGGER)
    audit.setLevel(logging.INFO)
    if audit_log == "stderr":
        _replace(audit, None)
        audit.propagate = True
    else:  # WatchedFileHandler: logrotate may move the file away
        _replace(audit, _handler(logging.handlers.WatchedFileHandler(audit_log, encoding="utf-8"), True))
        audit.propagate = False
