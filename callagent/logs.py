"""Logging for callagent's processes, numbers masked and secrets hidden in every record
(callagent.redact), as text for people or as JSON lines for tools, with each record's extra
fields (e.g. a call's `agent_joined_ms`) kept as fields.

- The MCP server and the console log to stderr (stdout of the stdio MCP server is the
  protocol): JSON lines with CALLAGENT_LOG_FORMAT=json, else text.
- The worker logs to stdout through LiveKit's logging (callagent.worker_main): `--log-format`,
  else CALLAGENT_LOG_FORMAT, else auto: readable lines (`TextLines`) and each call's summary
  block when stdout is a terminal, LiveKit's JSON lines when it is not (a service, a pipe).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TextIO

from callagent import redact
from callagent.numbers import printable

if TYPE_CHECKING:
    from callagent.settings import Settings

__all__ = ["JsonLines", "LogFormat", "TextLines", "configure", "resolve_format"]

LogFormat = Literal["text", "json"]

# Attributes every LogRecord has; anything else on a record came in as `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "name": record.name,
            "message": record.getMessage(),
        }
        data.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            data["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure(settings: Settings) -> None:
    """Log to stderr at CALLAGENT_LOG_LEVEL, redacted: JSON lines with CALLAGENT_LOG_FORMAT=json,
    else text (`auto` is text here: the server's stderr is read by people, in a client's log pane)."""
    redact.install(redact.secrets_of(settings))
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)


def resolve_format(flag: str | None, setting: str, stream: TextIO) -> LogFormat:
    """The worker's log format: the `--log-format` flag if given, else the setting
    (CALLAGENT_LOG_FORMAT); `auto` is text when `stream` is a terminal, JSON lines otherwise."""
    chosen = (flag or setting).strip().lower()
    if chosen == "auto":
        try:
            return "text" if stream.isatty() else "json"
        except (AttributeError, ValueError):  # no file behind it, or closed
            return "json"
    if chosen not in ("text", "json"):
        raise ValueError(f"log format must be auto, text or json, not {chosen!r}")
    return "text" if chosen == "text" else "json"


# Fields every record of a LiveKit job carries, which say nothing to someone watching calls.
# The call's own milestones say in words what their fields hold.
_QUIET_EXTRAS = frozenset(
    {"pid", "job_id", "room", "room_id", "agent_name", "call_id", "event", "answered_at", "status", "end_reason"}
)


class TextLines(logging.Formatter):
    """One readable line per record, for the operator at a terminal:

        19:04:11 INFO    [call 3f9c0a1b2c4d] joining a call to +*******0100
        19:04:12 INFO    livekit.agents: registered worker  id=AW_x url=ws://127.0.0.1:7880

    The call a record belongs to leads; callagent's own logger names are left out (the line
    says what happened), other libraries' are kept; other extra fields follow as key=value.
    Control characters are escaped: a record is one line and cannot drive the terminal."""

    def __init__(self) -> None:
        super().__init__(datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        parts = [self.formatTime(record, self.datefmt), f"{record.levelname:<7}"]
        call_id = getattr(record, "call_id", None)
        if call_id:
            parts.append(f"[call {call_id}]")
        message = record.getMessage()
        if record.name != "callagent" and not record.name.startswith("callagent."):
            message = f"{record.name}: {message}"
        parts.append(printable(message))  # one line, and nothing in it drives the terminal
        extras = [
            f"{key}={_short(value)}"
            for key, value in vars(record).items()
            if key not in _STANDARD and key not in _QUIET_EXTRAS and not key.startswith("_")
        ]
        line = " ".join(parts) + ("  " + " ".join(extras) if extras else "")
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _short(value: object, limit: int = 160) -> str:
    # Extra fields skip the redacting record factory (it sees the message only): redact here.
    text = printable(redact.redact_text(value if isinstance(value, str) else json.dumps(value, default=str)))
    return text if len(text) <= limit else text[: limit - 1] + "…"
