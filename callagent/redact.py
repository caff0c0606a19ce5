"""What may be shown: phone numbers masked, credentials hidden, in every log line and message.

One place for it, used by both processes:

- `redact_url` hides every credential form of a database URL (the password after the user
  name, and `password=`/`sslpassword=`/... in the query string);
- `install` makes every log record of the process pass through `redact_text` before any
  handler sees it, whoever logged it (our code, the MCP SDK, LiveKit, uvicorn): numbers masked,
  known secrets replaced, so that a refusal quoting a client's input, or an exception quoting
  a connection string, never writes a full number or a password to a log.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl, urlencode

from callagent.numbers import mask_numbers_in_text

__all__ = ["SECRET_QUERY_KEYS", "add_secrets", "install", "redact_text", "redact_url", "secrets_of"]

# Query parameters of a database URL (libpq, psycopg, SQLAlchemy drivers) that carry secrets.
SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pass", "pwd", "sslpassword", "secret", "token", "sslkey"})
_HIDDEN = "***"

_secrets: set[str] = set()
_lock = threading.Lock()
_installed = False


def redact_url(url: str) -> str:
    """`url` with its password and secret query parameters replaced by ***.

    Works on anything URL-shaped, also when it does not parse as an SQLAlchemy URL."""
    text = re.sub(r"(://[^:/@?#]*:)[^@/?#]*@", rf"\1{_HIDDEN}@", url)
    base, sep, query = text.partition("?")
    if not sep:
        return text
    pairs = parse_qsl(query, keep_blank_values=True)
    shown = [(k, _HIDDEN if k.lower() in SECRET_QUERY_KEYS else v) for k, v in pairs]
    return f"{base}?{urlencode(shown, safe='/*:')}"


def add_secrets(values: Iterable[str | None]) -> None:
    """Values that must never appear in a log line (API secrets, tokens, DB passwords)."""
    with _lock:
        _secrets.update(v for v in values if v and len(v) >= 4)


def redact_text(text: str) -> str:
    """`text` with known secrets replaced and phone numbers masked."""
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, _HIDDEN)
    return mask_numbers_in_text(text)


def _redacting_factory(base: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = base(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: leave it to the handler to report
            return record
        record.msg, record.args = redact_text(message), None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set: the traceback is redacted once, here.
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        return record

    factory._callagent_redacting = True  # type: ignore[attr-defined]  # a marker on the function object
    return factory


def install(secrets: Iterable[str | None] = ()) -> None:
    """Redact every log record this process creates from now on (idempotent)."""
    global _installed
    add_secrets(secrets)
    with _lock:
        if _installed or getattr(logging.getLogRecordFactory(), "_callagent_redacting", False):
            _installed = True
            return
        logging.setLogRecordFactory(_redacting_factory(logging.getLogRecordFactory()))
        _installed = True


def secrets_of(settings: object) -> list[str]:
    """The secret values in a Settings object: API secrets, tokens, the database password.

    The URL is taken apart by hand: importing SQLAlchemy here would slow the server's start."""
    from urllib.parse import unquote

    from pydantic import SecretStr

    found: list[str] = [v.get_secret_value() for v in vars(settings).values() if isinstance(v, SecretStr)]
    db_url = getattr(settings, "db_url", None)
    if isinstance(db_url, str):
        m = re.search(r"://[^:/@?#]*:([^@/?#]*)@", db_url)
        if m:
            found += [m.group(1), unquote(m.group(1))]
        _, _, query = db_url.partition("?")
        found += [v for k, v in parse_qsl(query) if k.lower() in SECRET_QUERY_KEYS]
    return [v for v in found if v]
