"""One-time confirmation tokens, each bound to one call's arguments (DIAL_CONFIRM)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from callagent.calls import utcnow
from callagent.store import schema
from callagent.store.schema import aware

if TYPE_CHECKING:
    from callagent.store.db import Database

__all__ = ["Confirmations"]

_t = schema.confirmations


class Confirmations:
    """The confirmation tokens table; only a hash of each token is stored."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def issue(self, call_args_hash: str, ttl_s: float, *, now: datetime | None = None) -> str:
        """A fresh one-time token confirming the call whose arguments hash to `call_args_hash`,
        valid for `ttl_s` seconds. Expired tokens are swept on the way."""
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        at = aware(now) if now is not None else utcnow()
        token = secrets.token_urlsafe(18)
        with self._db.engine.begin() as conn:
            conn.execute(sa.delete(_t).where(_t.c.expires_at <= at))
            conn.execute(
                sa.insert(_t).values(
                    token_hash=_hash(token),
                    args_hash=call_args_hash,
                    created_at=at,
                    expires_at=at + timedelta(seconds=ttl_s),
                )
            )
        return token

    def consume(self, token: str, call_args_hash: str, *, now: datetime | None = None) -> bool:
        """True once for a valid token presented with the arguments it was issued for.

        The token is spent by any attempt, also a failed one (other arguments): a client
        cannot try a confirmed token on variations of a call. Delete-and-check is one
        statement, so two racing uses cannot both succeed.
        """
        if not isinstance(token, str) or not token or len(token) > 200:
            return False
        at = aware(now) if now is not None else utcnow()
        stmt = sa.delete(_t).where(_t.c.token_hash == _hash(token)).returning(_t.c.args_hash, _t.c.expires_at)
        with self._db.engine.begin() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return False
        return hmac.compare_digest(row.args_hash, call_args_hash) and at < row.expires_at


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
