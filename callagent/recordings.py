"""Call recordings: where a call's audio file lives, what is in it, what its record says of it,
and when it is deleted.

A recording is one Ogg/Opus file per call, `<call_id>.ogg` in the operator's recordings folder
(`callagent.settings.recordings_dir`): stereo, channel 1 the callee, channel 2 the agent, on
one timeline from the answer to the hang-up (LiveKit's RecorderIO writes it; see
callagent.agent.recording). Both processes use this module: the worker when it starts and
ends a recording, the server when it reads one, reaps a call whose worker died, or applies
the retention period.

The core is pure (file names, Ogg pages, the record's states, what has expired); the few
file operations at the end are the edges, each one call deep.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from callagent.calls import Recording

if TYPE_CHECKING:
    from callagent.store import Database

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "MIME_TYPE",
    "FileFacts",
    "available",
    "call_id_of",
    "completed",
    "create_private_file",
    "deleted",
    "due",
    "expire",
    "expired",
    "file_name",
    "inspect",
    "lost_with_worker",
    "ogg_facts",
    "private_dir",
    "started",
]

log = logging.getLogger("callagent.recordings")

MIME_TYPE = "audio/ogg"
SUFFIX = ".ogg"
FILE_MODE = 0o600
DIR_MODE = 0o700
OPUS_RATE = 48_000  # an Opus stream's granule positions count 48 kHz samples, whatever it was encoded at
DAY_S = 86_400

# Only files named like this are callagent's (a call id from callagent.calls.new_call_id: 12
# lowercase hex digits, then .ogg): retention never touches anything else in the folder.
_NAME = re.compile(r"^([0-9a-f]{12})\.ogg$")


def file_name(call_id: str) -> str:
    """The recording's file name in the recordings folder."""
    return f"{call_id}{SUFFIX}"


def call_id_of(name: str) -> str | None:
    """The call a file in the recordings folder belongs to; None for a file that is not a recording."""
    m = _NAME.match(name)
    return m[1] if m else None


# -- what a file holds (pure: bytes in) -------------------------------------------------------------


@dataclass(frozen=True)
class FileFacts:
    """What a recording file holds, as its record states it."""

    size: int
    sha256: str
    channels: int | None  # from the Opus header; None when the file has none
    duration_s: float | None  # of the complete Ogg pages; None when none holds audio


_PAGE = struct.Struct("<4sBBqIIIB")  # capture pattern, version, flags, granule, serial, sequence, CRC, segments


def ogg_facts(data: bytes) -> tuple[int | None, float | None]:
    """(channels, seconds of audio) of an Ogg/Opus file, reading only its complete pages.

    A file cut short (the worker was killed while writing) ends in a partial page, which is
    ignored: what is reported is what a player can play. Seconds are the last granule
    position less the Opus pre-skip, at 48 kHz (RFC 7845)."""
    channels: int | None = None
    pre_skip = 0
    last_granule: int | None = None
    pos = 0
    while pos + _PAGE.size <= len(data):
        magic, _, _, granule, _, _, _, segments = _PAGE.unpack_from(data, pos)
        if magic != b"OggS":
            break
        table_end = pos + _PAGE.size + segments
        if table_end > len(data):
            break
        body_end = table_end + sum(data[pos + _PAGE.size : table_end])
        if body_end > len(data):
            break  # a page the writer never finished
        body = data[table_end:body_end]
        if channels is None and body.startswith(b"OpusHead") and len(body) >= 12:
            channels, pre_skip = body[9], int.from_bytes(body[10:12], "little")
        elif granule >= 0:  # -1: no packet ends on this page
            last_granule = granule
        pos = body_end
    if channels is None or last_granule is None:
        return channels, None
    return channels, max(0.0, (last_granule - pre_skip) / OPUS_RATE)


# -- what the record says (pure) ----------------------------------------------------------------


def started(call_id: str, at: datetime) -> Recording:
    """The record of a recording just started at the answer: visible while it runs, so a
    worker that dies mid-call leaves a record that says so."""
    return Recording(file=file_name(call_id), started_at=at, state="recording")


def completed(rec: Recording, facts: FileFacts | None, *, problem: str | None = None) -> Recording:
    """The record once the worker closed the file: complete with its size, length and hash
    (incomplete when closing it went wrong: `problem`); lost when no audio was written."""
    if facts is None or not facts.duration_s:
        why = problem or ("the file is missing" if facts is None else "the recorder wrote no audio to it")
        return _lost(rec, f"no audio was kept: {why}")
    return _with(rec, facts, "incomplete" if problem else "complete", problem)


def lost_with_worker(rec: Recording, facts: FileFacts | None) -> Recording:
    """The record of a recording whose worker died mid-call (the reaper's verdict): incomplete
    when the file holds audio, which stays playable, else lost."""
    if facts is None or not facts.duration_s:
        what = "no file was left" if facts is None else "the file holds no audio"
        return _lost(rec, f"the worker was lost mid-recording and {what}")
    return _with(
        rec,
        facts,
        "incomplete",
        "the worker was lost mid-recording: the file holds the call up to then (its last seconds may be missing)",
    )


def deleted(rec: Recording, days: int) -> Recording:
    """The record once the file was deleted at the end of the retention period."""
    return rec.model_copy(
        update={
            "state": "deleted",
            "note": f"deleted after {days} day(s), the retention period (CALLAGENT_RECORDING_RETENTION_DAYS={days})",
        }
    )


def available(rec: Recording | None) -> bool:
    """Whether the record says there is a file to read."""
    return rec is not None and rec.state in ("complete", "incomplete") and rec.bytes is not None


def expired(files: Iterable[tuple[str, float]], *, now: float, days: int) -> list[str]:
    """The recording files (name, modification time) past the retention period; other files
    in the folder are never listed."""
    cutoff = now - days * DAY_S
    return sorted(name for name, mtime in files if call_id_of(name) is not None and mtime < cutoff)


def _with(rec: Recording, facts: FileFacts, state: str, note: str | None) -> Recording:
    return rec.model_copy(
        update={
            "state": state,
            "duration_s": round(facts.duration_s or 0.0, 2),
            "bytes": facts.size,
            "sha256": facts.sha256,
            "note": note,
        }
    )


def _lost(rec: Recording, note: str) -> Recording:
    return rec.model_copy(update={"state": "lost", "duration_s": None, "bytes": None, "sha256": None, "note": note})


# -- the files (the edges) ----------------------------------------------------------------------


def private_dir(directory: Path) -> Path:
    """The recordings folder, created 0700 (tightened, with a log line, if it is looser)."""
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    mode = stat.S_IMODE(directory.stat().st_mode)
    if mode & 0o077:
        log.warning("recordings folder %s was mode %o; tightened to %o", directory, mode, DIR_MODE)
        directory.chmod(DIR_MODE)
    return directory


def create_private_file(path: Path) -> None:
    """Create (or empty) `path` with mode 0600 before the recorder opens it: its writer opens
    an existing file without touching the mode, so the audio is never readable by others."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def inspect(path: Path) -> FileFacts | None:
    """Size, hash, channels and length of a recording file; None when there is no file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    channels, duration_s = ogg_facts(data)
    return FileFacts(len(data), hashlib.sha256(data).hexdigest(), channels, duration_s)


def due(directory: Path, days: int, *, now: float | None = None) -> list[str]:
    """The recording files in `directory` past the retention period: one directory listing,
    cheap enough to run often."""
    try:
        with os.scandir(directory) as it:
            entries = [(e.name, e.stat().st_mtime) for e in it if e.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    return expired(entries, now=time.time() if now is None else now, days=days)


def expire(directory: Path, names: Iterable[str], db: Database, days: int) -> list[str]:
    """Delete the recording files `names` (from `due`) and mark their records deleted; the
    call ids.

    The record is marked before the file goes, so an interrupted run is finished by the next
    one (the file is still there to find) and a record never offers a file that is gone."""
    done: list[str] = []
    for name in names:
        call_id = call_id_of(name)
        if call_id is None:
            continue
        record = db.calls.get(call_id)
        if record is not None and record.recording is not None and record.recording.state != "deleted":
            db.calls.update(call_id, recording=deleted(record.recording, days))
        (directory / name).unlink(missing_ok=True)  # missing: another process got there first
        done.append(call_id)
    if done:
        log.info("deleted %d recording(s) older than %d day(s) from %s", len(done), days, directory)
    return done
