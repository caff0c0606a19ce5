"""What the simulated phone has said on each call, shared in-process with the offline STT.

The phone and the model server run in one process (devstack.fakes); the phone posts each line
as it starts playing it, the STT endpoint takes the oldest line not yet transcribed. The other
way, the model server notes the calls whose scripted agent took the error branch (said a
reply's after_tool_error), so the phone says those calls' if_tool_failed lines.
"""

from __future__ import annotations

import threading
from collections import deque


class Board:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._unheard: dict[str, deque[str]] = {}
        self._order: deque[str] = deque(maxlen=256)  # call keys, most recently spoken last
        self._error_branch: deque[str] = deque(maxlen=256)  # calls in the error branch, latest last

    def spoke(self, call_key: str, text: str) -> None:
        """The phone started saying `text` on the call `call_key`."""
        with self._lock:
            self._unheard.setdefault(call_key, deque()).append(text)
            self._order.append(call_key)

    def next_unheard(self, call_key: str | None) -> str | None:
        """The oldest line of `call_key` not transcribed yet; without a key, of the call that
        spoke most recently. None when there is nothing left to hear."""
        with self._lock:
            if call_key is None:
                for key in reversed(self._order):
                    if self._unheard.get(key):
                        call_key = key
                        break
            queue = self._unheard.get(call_key) if call_key else None
            return queue.popleft() if queue else None

    def forget(self, call_key: str) -> None:
        with self._lock:
            self._unheard.pop(call_key, None)

    def took_error_branch(self, call_key: str) -> None:
        """The scripted agent of call `call_key` said a reply's after_tool_error."""
        with self._lock:
            if call_key not in self._error_branch:
                self._error_branch.append(call_key)

    def in_error_branch(self, call_key: str) -> bool:
        """Whether the call's scripted agent has taken the error branch (for the rest of the call)."""
        with self._lock:
            return call_key in self._error_branch
