"""Who may use the console: the operator's secret, a signed session cookie, CSRF tokens.

- Sign-in compares CALLAGENT_CONSOLE_TOKEN in constant time (both sides hashed first, so
  neither its content nor its length leaks through timing); failures are throttled.
- The session is a cookie signed with a key derived from that token (HMAC-SHA256): several
  console processes share sessions, and changing the token signs everyone out. It holds the
  operator's name, a CSRF token and an expiry; nothing secret.
- The cookie is HttpOnly, SameSite=Strict, and Secure whenever the request came over https
  (directly, or through a reverse proxy with --proxy-headers).
- Every state-changing request is a POST carrying the session's CSRF token in a form field,
  from this origin (Origin and Sec-Fetch-Site are checked when the browser sends them). The
  sign-in form has one too, from an anonymous session, so a login cannot be forged either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "COOKIE",
    "MIN_TOKEN_CHARS",
    "Session",
    "SignInThrottle",
    "Signer",
    "check_token",
    "operator_name",
    "same_origin",
]

COOKIE = "callagent_console"
MIN_TOKEN_CHARS = 16
SIGNED_IN_S = 12 * 3600  # an operator signs in again after this long
ANONYMOUS_S = 3600  # the sign-in form's session (its CSRF token)
MAX_NAME = 40
_MAX_COOKIE = 2048


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def check_token(given: str, expected: str) -> bool:
    """Whether `given` is the operator's secret, in time independent of both."""
    return hmac.compare_digest(_digest(given), _digest(expected))


def operator_name(raw: str) -> str:
    """The name an operator signs in as, for the record ("approved by …"): printable, short."""
    name = " ".join("".join(c for c in raw if c.isprintable()).split())[:MAX_NAME]
    return name or "operator"


@dataclass(frozen=True)
class Session:
    """A console session: anonymous (only a CSRF token, for the sign-in form) or an operator's."""

    csrf: str
    expires: int
    operator: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.operator is not None and self.expires > time.time()

    @classmethod
    def anonymous(cls) -> Session:
        return cls(secrets.token_urlsafe(24), int(time.time()) + ANONYMOUS_S)

    @classmethod
    def for_operator(cls, name: str) -> Session:
        # A fresh CSRF token at sign-in: nothing from before it carries over.
        return cls(secrets.token_urlsafe(24), int(time.time()) + SIGNED_IN_S, name)


class Signer:
    """Signs sessions into cookie values and reads them back (None when forged or expired)."""

    def __init__(self, token: str) -> None:
        self._key = hmac.new(token.encode(), b"callagent console session v1", hashlib.sha256).digest()

    def _mac(self, body: bytes) -> str:
        return _b64(hmac.new(self._key, body, hashlib.sha256).digest())

    def dumps(self, session: Session) -> str:
        payload = {"c": session.csrf, "e": session.expires, "o": session.operator}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode()).encode()
        return f"{body.decode()}.{self._mac(body)}"

    def loads(self, value: str | None) -> Session | None:
        if not value or len(value) > _MAX_COOKIE or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(self._mac(body.encode()), mac):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            session = Session(str(data["c"]), int(data["e"]), None if data["o"] is None else str(data["o"]))
        except (binascii.Error, ValueError, KeyError, TypeError):
            return None
        return session if session.expires > time.time() else None

    def set_cookie(self, response: Response, request: Request, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            self.dumps(session),
            max_age=max(0, session.expires - int(time.time())),
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    @staticmethod
    def clear_cookie(response: Response, request: Request) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from another site. Browsers send
    Sec-Fetch-Site on everything and Origin on POSTs ("null" under Referrer-Policy
    no-referrer, which says nothing); a client that sends neither is judged by the CSRF token
    alone."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    return origin.lower() == own.lower()


class SignInThrottle:
    """At most `limit` failed sign-ins per `window_s` in this process: a guessed secret is
    no quicker to find than a random one, and a script trying is slowed to a crawl."""

    def __init__(self, limit: int = 10, window_s: float = 60.0) -> None:
        self.limit, self.window_s = limit, window_s
        self._failures: list[float] = []
        self._lock = threading.Lock()

    def _recent(self, now: float) -> list[float]:
        self._failures = [t for t in self._failures if now - t < self.window_s]
        return self._failures

    def blocked(self) -> bool:
        with self._lock:
            return len(self._recent(time.monotonic())) >= self.limit

    def failed(self) -> None:
        with self._lock:
            self._recent(time.monotonic()).append(time.monotonic())
