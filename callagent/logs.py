"""Logging for callagent's processes: to stderr (stdout of the stdio MCP server is the
protocol), numbers masked and secrets hidden in every record (callagent.redact), as text for
people or as JSON lines for tools (CALLAGENT_LOG_FORMAT=json), with each record's extra fields
(e.g. a call's `agent_joined_ms`) kept as fields."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from callagent import redact

if TYPE_CHECKING:
    from callagent.settings import Settings

__all__ = ["JsonLines", "configure"]

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
    """Log to stderr at CALLAGENT_LOG_LEVEL in CALLAGENT_LOG_FORMAT, redacted."""
    redact.install(redact.secrets_of(settings))
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
