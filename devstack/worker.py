"""The calling worker (calling_agent.py) as a process of its own, for the demo, the tests and
the benchmarks: started in its own process group, logging to a file, stopped with its jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

__all__ = ["WorkerProcess"]

PROJECT_DIR = Path(__file__).resolve().parent.parent


class WorkerProcess:
    """`calling_agent.py start` with `env`, its output in `log_path`."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - the worker's log for its lifetime; stop() closes it
        self.proc = subprocess.Popen(
            [sys.executable, str(PROJECT_DIR / "calling_agent.py"), "start"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its job processes share the group: stop() ends them all
        )

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_registered(self, timeout: float = 120) -> float:
        """Seconds until the worker registered with LiveKit; RuntimeError if it exited or did not."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited ({self.proc.returncode}):\n{self.text()[-3000:]}")
            if "registered worker" in self.text():
                return time.monotonic() - started
            time.sleep(0.1)
        raise RuntimeError(f"the worker did not register within {timeout:.0f} s:\n{self.text()[-3000:]}")

    def relay_summaries(self) -> None:
        """Print what the worker shows the operator (its call summaries: piped into a file it
        writes JSON lines, a summary being the record with "event": "summary") as it comes, in a
        background thread."""

        def relay() -> None:
            with open(self.log_path, errors="replace") as f:
                while True:
                    line = f.readline()
                    if not line:
                        if self.proc.poll() is not None:
                            return
                        time.sleep(0.1)
                        continue
                    for text in _summary_lines(line):
                        print(f"worker │ {text}", flush=True)

        threading.Thread(target=relay, daemon=True).start()

    def kill(self) -> None:
        """SIGKILL, as a crash would: the worker and its jobs, with no chance to clean up."""
        self._signal(signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, a bounded wait for it to drain, then whatever of its group is left."""
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=15)
        self._signal(signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        self._log.close()

    def _signal(self, sig: int) -> None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


def _summary_lines(line: str) -> list[str]:
    """The lines of a call summary in one line of the worker's output, else none."""
    if not line.startswith("{"):
        return [line.rstrip()]  # printed as text (--log-format text)
    try:
        rec = json.loads(line)
    except ValueError:
        return []
    if not isinstance(rec, dict) or rec.get("event") != "summary":
        return []
    return str(rec.get("text", "")).splitlines()
