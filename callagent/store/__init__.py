"""The call store: the one channel between the MCP server, the worker and the operator's tools.

`Database(url)` is the database; its repositories hold the queries: `calls`, `do_not_call`,
`refusals`, `confirmations`. The store gathers facts and keeps records; it never decides a
policy question (callagent.policy does) nor words a refusal.
"""

from callagent.store.calls import StaleCall
from callagent.store.db import Database
from callagent.store.do_not_call import DoNotCallEntry
from callagent.store.errors import CallNotFound, DuplicateKey, StoreError
from callagent.store.refusals import REFUSAL_ROWS_PER_WINDOW, REFUSAL_WINDOW_S, RefusalEntry

__all__ = [
    "REFUSAL_ROWS_PER_WINDOW",
    "REFUSAL_WINDOW_S",
    "CallNotFound",
    "Database",
    "DoNotCallEntry",
    "DuplicateKey",
    "RefusalEntry",
    "StaleCall",
    "StoreError",
]
