"""JSON logs: one object per line on stdout, with the trace id of the current span.

Contract: :func:`setup_logging` configures the root logger (level from settings) with
:class:`JsonFormatter`. Fields passed with ``extra=`` become top-level keys. The access log
(``app.access``) carries one line per request; see :func:`access_log`. The audit record
(``app.audit``, :func:`audit_log`) is a second line per request, for a longer-lived store.
Nothing here ever logs a prompt, a completion or a credential: callers pass ids and numbers only.

A record logged with ``exc_info`` carries ``exc_type`` and ``stack``: the frames (file, line,
function, source line) of the exception and of its causes, innermost last. Exception *messages*
are left out on purpose: they can quote the data being processed (a dict key from a tool input,
a value from a prompt), while the frames only quote the gateway's own code.

Hand-written (30 lines) rather than a dependency: the formatter must be orjson-fast and add the
OpenTelemetry trace id, which no small maintained library does for us.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from types import TracebackType
from typing import Any

import orjson
from opentelemetry import trace

_STD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            entry["trace_id"] = f"{ctx.trace_id:032x}"
            entry["span_id"] = f"{ctx.span_id:016x}"
        for key, value in record.__dict__.items():
            if key not in _STD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["stack"] = stack_of(record.exc_info[1])
        return orjson.dumps(entry, default=str).decode()


def stack_of(exc: BaseException | None, limit: int = 5) -> str:
    """The frames of ``exc`` and of up to ``limit`` causes/contexts, without their messages."""
    parts: list[str] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(parts) < limit:
        seen.add(id(exc))
        tb: TracebackType | None = exc.__traceback__
        parts.append(f"{type(exc).__name__} at:\n" + "".join(traceback.format_tb(tb)))
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    # the outermost exception is the one logged: show the chain the way Python does, root first
    return "\n".join(reversed(parts))


def setup_logging(level: str = "INFO") -> None:
    # Skip the caller lookup (a stack walk per record) and thread/process-name lookups: the
    # Python logging docs' own optimisation; ~5% of a request's CPU went to the access line.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "gunicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # uvicorn's own access log would duplicate ours, without the fields that matter
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("aiohttp.access").disabled = True


ACCESS = logging.getLogger("app.access")


def access_log(**fields: Any) -> None:
    if ACCESS.isEnabledFor(logging.INFO):
        ACCESS.info("request", extra=fields)


#: one audit record per request, on its own logger so a log pipeline can route it apart (README
#: "Observability": ship ``logger == "app.audit"`` to the audit store, keep it as long as the
#: organisation's audit policy says). Who, team, model, tokens, cost, status, session, tags:
#: never a prompt, a completion or a credential.
AUDIT = logging.getLogger("app.audit")


def audit_log(**fields: Any) -> None:
    if AUDIT.isEnabledFor(logging.INFO):
        AUDIT.info("audit", extra=fields)
