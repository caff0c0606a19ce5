"""The simulated phone: a SIP UAS callee with G.711 RTP, scripted by devstack/scenarios.json.

livekit-sip dials it like a real handset. It is written in plain asyncio (UDP) + numpy rather than
on top of a SIP stack so that we control every timestamp (when a line really starts playing, when
the agent's audio really arrived) and can log them for the end-to-end tests.

Per call it answers (or not) as the scenario says, plays the scenario's lines (pre-rendered with
espeak-ng, in the scenario's language) at the right turns, records what it hears, and writes a
JSON log to run_dir/phone/ (with the caller's number, the From URI's user part). A
scenario may ring with early media (183 + SDP and ringback tone before the 200) or put an
auto-attendant in front of its lines (a prompt, an extension collected as DTMF digits). Once the
model server notes on the Board that the call's scripted agent took its error branch (a tool that
did not work), a line with an if_tool_failed says that instead.
An answered call takes a cold transfer (an in-dialog REFER, RFC 3515): 202, then NOTIFYs with
the progress as message/sipfrag, the final status being what the Refer-To number's scenario would
answer; after a 200 the phone hangs up the leg (RFC 5589), after a failure the call goes on.
Only the addresses it is given are bound; it sends only to the peers that contacted it (IP literals,
never a name lookup).
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import json
import logging
import os
import random
import re
import struct
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from devstack.board import Board
from devstack.scenarios import (
    CALL_ID_HEADER,
    Attendant,
    Hold,
    Line,
    Menu,
    MenuOption,
    Scenario,
    espeak_voice,
    scenario_for,
    scenarios,
)

log = logging.getLogger("devstack.phone")

RATE = 8000  # G.711 sample rate
FRAME_S = 0.02  # RTP packetisation (ptime 20)
FRAME_SAMPLES = int(RATE * FRAME_S)
SILENCE_RMS = 300.0  # int16 RMS above which a received frame counts as speech (G.711 idle noise is far below)
AGENT_MIN_SPEECH_S = 0.2  # the agent "has spoken" after this much non-silent audio...
AGENT_QUIET_S = 0.7  # ...followed by this much silence: the phone's turn
AGENT_TIMEOUT_S = 15.0  # an agent that says nothing this long gets the next line anyway
SEGMENT_CLOSE_S = 0.3  # silence that closes an agent_speech segment
HANGUP_TAIL_S = 0.5  # pause after the last line before a "hangup" BYE, so the audio drains out
MAX_CALL_S = 600.0  # safety net: hang up any answered call after 10 minutes
BEEP_HZ, BEEP_S = 1000.0, 0.4  # voicemail tone
RINGBACK_HZ = (440.0, 480.0)  # North American ringback (ANSI T1.401): two tones, summed...
RINGBACK_ON_S, RINGBACK_OFF_S = 2.0, 4.0  # ...2 s on, 4 s off
RINGBACK_PEAK = 8000  # about -12 dBFS: a ringback is quieter than speech
# Special information tones before a carrier's "not in service" announcement (ANSI T1.401,
# "vacant code"): three rising tones, 274, 274 and 380 ms.
SIT_TONES = ((913.8, 0.274), (1370.6, 0.274), (1776.7, 0.380))
SPEECH_PEAK = 20000  # rendered lines are normalised to this peak
DEFAULT_VOICE = espeak_voice(None)  # espeak-ng's voice for a line in no particular language
T1, T2, TIMER_B = 0.5, 4.0, 32.0  # RFC 3261 UDP retransmission timers
USER_AGENT = "callagent-devstack-phone"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER"
# A cold transfer (REFER) to a number that rings and never answers fails after this long
# (480), and a successful one is followed by our BYE this long after the final NOTIFY was answered.
REFER_NO_ANSWER_S = 8.0
TRANSFER_BYE_S = 0.2
# The final status of a cold transfer to a number, by how its scenario answers.
TRANSFER_STATUS = {"answer": (200, "OK"), "busy": (486, "Busy Here"), "decline": (603, "Decline")}
PCMU, PCMA = 0, 8
DTMF_CHARS = "0123456789*#ABCD"

# ---------------------------------------------------------------------------------------------
# G.711 (ITU-T reference algorithm, as in Sun's g711.c), as lookup tables built once with numpy.


def _build_g711() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    pcm = np.arange(-32768, 32768, dtype=np.int32)
    # mu-law: 14-bit magnitude, bias 0x21, segment = position of the leading bit
    v = pcm >> 2
    mask = np.where(v < 0, 0x7F, 0xFF)
    v = np.minimum(np.abs(v), 8159) + 0x21
    seg = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), v)
    u = ((seg << 4) | ((v >> (seg + 1)) & 0xF)) ^ mask
    ulaw_enc = np.where(seg >= 8, 0x7F ^ mask, u).astype(np.uint8)
    # A-law: 13-bit magnitude, even bits inverted (0x55)
    a = pcm >> 3
    mask = np.where(a >= 0, 0xD5, 0x55)
    a = np.where(a >= 0, a, -a - 1)
    seg = np.searchsorted(np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]), a)
    quant = np.where(seg < 2, a >> 1, a >> np.maximum(seg, 1)) & 0xF
    alaw_enc = np.where(seg >= 8, 0x7F ^ mask, ((seg << 4) | quant) ^ mask).astype(np.uint8)
    b = np.arange(256, dtype=np.int32)
    ub = ~b & 0xFF
    t = (((ub & 0x0F) << 3) + 0x84) << ((ub & 0x70) >> 4)
    ulaw_dec = np.where(ub & 0x80, 0x84 - t, t - 0x84).astype(np.int16)
    ab = b ^ 0x55
    seg = (ab & 0x70) >> 4
    t = ((ab & 0x0F) << 4) + np.where(seg == 0, 8, 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    alaw_dec = np.where(ab & 0x80, t, -t).astype(np.int16)
    return ulaw_enc, alaw_enc, ulaw_dec, alaw_dec


_ULAW_ENC, _ALAW_ENC, _ULAW_DEC, _ALAW_DEC = _build_g711()


def g711_encode(pcm: np.ndarray, pt: int) -> bytes:
    """int16 samples -> PCMU (pt 0) or PCMA (pt 8) bytes."""
    table = _ULAW_ENC if pt == PCMU else _ALAW_ENC
    return table[pcm.astype(np.int32) + 32768].tobytes()


def g711_decode(payload: bytes, pt: int) -> np.ndarray:
    """PCMU (pt 0) or PCMA (pt 8) bytes -> int16 samples."""
    table = _ULAW_DEC if pt == PCMU else _ALAW_DEC
    return table[np.frombuffer(payload, dtype=np.uint8)]


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64)))) if len(pcm) else 0.0


# ---------------------------------------------------------------------------------------------
# Audio rendering: espeak-ng at 22.05 kHz -> 8 kHz, cached per voice and text for the life of the
# process.

_RENDERED: dict[tuple[str, str], np.ndarray] = {}  # (espeak-ng voice, text) -> 8 kHz audio


def parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV -> (mono int16 samples, rate). Tolerant of the bogus sizes espeak-ng writes
    to a pipe (it cannot seek back to patch them)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV file")
    pos, rate, channels = 12, 0, 1
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if cid == b"fmt ":
            _fmt, channels, rate, _br, _ba, bits = struct.unpack_from("<HHIIHH", data, pos + 8)
            if bits != 16:
                raise ValueError(f"need 16-bit WAV, got {bits}")
        elif cid == b"data":
            raw = data[pos + 8 : pos + 8 + min(size, len(data) - pos - 8)]
            pcm = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2")
            return pcm.reshape(-1, channels)[:, 0].astype(np.int16), rate
        pos += 8 + size + (size & 1)
    raise ValueError("WAV without data chunk")


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Windowed-sinc low-pass then linear interpolation: plenty for speech into a phone line."""
    if src == dst or not len(x):
        return x.astype(np.float64)
    fc = 0.45 * min(src, dst) / src  # cutoff in cycles per input sample
    n = np.arange(-64, 65)
    h = 2 * fc * np.sinc(2 * fc * n) * np.hamming(len(n))
    y = np.convolve(x.astype(np.float64), h / h.sum(), mode="same")
    t = np.arange(int(len(x) * dst / src)) * (src / dst)
    out: np.ndarray = np.interp(t, np.arange(len(x)), y)
    return out


def _finish(x: np.ndarray) -> np.ndarray:
    """Trim espeak's leading/trailing silence (so utterance timestamps are tight), normalise."""
    loud = np.flatnonzero(np.abs(x) > 500)
    if len(loud):
        margin = int(0.05 * RATE)
        x = x[max(0, loud[0] - margin) : loud[-1] + margin]
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak > 0:
        x = x * (SPEECH_PEAK / peak)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


async def render_speech(text: str, voice: str = DEFAULT_VOICE) -> np.ndarray:
    """The 8 kHz int16 audio of `text` spoken by espeak-ng with `voice` (cached)."""
    key = (voice, text)
    if key in _RENDERED:
        return _RENDERED[key]
    proc = await asyncio.create_subprocess_exec(
        "espeak-ng", "-v", voice, "--stdout", "--stdin",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate(text.encode())
    if proc.returncode != 0:
        raise RuntimeError(f"espeak-ng -v {voice} failed ({proc.returncode}): {err.decode(errors='replace')}")
    pcm, rate = parse_wav(out)
    _RENDERED[key] = _finish(resample(pcm, rate, RATE))
    return _RENDERED[key]


async def render_line(line: Line) -> np.ndarray:
    """A scenario line's audio in its language's voice (cached under the voice and its text):
    its pieces, with its pauses as silence between them."""
    key = (line.voice, line.text)
    if key not in _RENDERED:
        pieces = [await render_speech(seg, line.voice) for seg in line.segments or [line.text]]
        out = pieces[0]
        for pause, piece in zip(line.pauses, pieces[1:], strict=True):
            out = np.concatenate([out, np.zeros(int(pause * RATE), dtype=np.int16), piece])
        _RENDERED[key] = out
    return _RENDERED[key]


def rendered(line: Line) -> np.ndarray:
    """A line's audio, rendered at start-up (render_line)."""
    return _RENDERED[(line.voice, line.text)]


def beep() -> np.ndarray:
    t = np.arange(int(BEEP_S * RATE)) / RATE
    ramp = np.minimum(1.0, np.minimum(t, BEEP_S - t) / 0.005)  # 5 ms fades, no clicks
    return (np.sin(2 * np.pi * BEEP_HZ * t) * ramp * 16000).astype(np.int16)


def ringback(seconds: float) -> np.ndarray:
    """`seconds` of ringback tone: 440 + 480 Hz, 2 s on / 4 s off, starting with a burst."""
    t = np.arange(int(seconds * RATE)) / RATE
    phase = t % (RINGBACK_ON_S + RINGBACK_OFF_S)
    ramp = np.clip(np.minimum(phase, RINGBACK_ON_S - phase) / 0.005, 0.0, 1.0)  # 5 ms fades; 0 when off
    tone = sum(np.sin(2 * np.pi * hz * t) for hz in RINGBACK_HZ) / len(RINGBACK_HZ)
    return np.round(tone * ramp * RINGBACK_PEAK).astype(np.int16)


# Hold music: a simple arpeggio (C major, 0.25 s a note), quieter than speech.
HOLD_NOTES_HZ = (261.6, 329.6, 392.0, 523.3)
HOLD_NOTE_S = 0.25


def hold_music(seconds: float) -> np.ndarray:
    """`seconds` of hold music: notes, each with 10 ms fades, at ringback level."""
    per_note = int(HOLD_NOTE_S * RATE)
    t = np.arange(per_note) / RATE
    ramp = np.clip(np.minimum(t, HOLD_NOTE_S - t) / 0.01, 0.0, 1.0)
    notes = [np.round(np.sin(2 * np.pi * hz * t) * ramp * RINGBACK_PEAK).astype(np.int16) for hz in HOLD_NOTES_HZ]
    count = int(seconds * RATE) // per_note + 1
    return np.concatenate([notes[i % len(notes)] for i in range(count)])[: int(seconds * RATE)]


def sit_tones() -> np.ndarray:
    """The three special information tones, back to back, with 5 ms fades."""
    parts = []
    for hz, seconds in SIT_TONES:
        t = np.arange(int(seconds * RATE)) / RATE
        ramp = np.clip(np.minimum(t, seconds - t) / 0.005, 0.0, 1.0)
        parts.append(np.round(np.sin(2 * np.pi * hz * t) * ramp * RINGBACK_PEAK).astype(np.int16))
    return np.concatenate(parts)


# ---------------------------------------------------------------------------------------------
# The auto-attendant's digit collection: pure (times are given), so it is tested on its own.


@dataclass
class ExtensionCollector:
    """Collects an extension from digits as they come, from `started_at` on.

    The extension is complete after `max_digits` digits, or once `gap_s` passed without a new
    digit; with no digit at all within `wait_s` of the start it is over without one. Digits
    once it is over are not taken."""

    started_at: float
    max_digits: int = 3
    gap_s: float = 2.0
    wait_s: float = 10.0
    digits: str = ""
    last_at: float | None = None

    def deadline(self) -> float:
        """When the collection is (or was) over, given the digits so far."""
        if self.last_at is None:
            return self.started_at + self.wait_s
        return self.last_at if len(self.digits) >= self.max_digits else self.last_at + self.gap_s

    def done(self, now: float) -> bool:
        return now >= self.deadline()

    def press(self, digit: str, at: float) -> bool:
        """A digit keyed at `at`; False if it came too late to count."""
        if self.done(at):
            return False
        self.digits += digit
        self.last_at = at
        return True

    @property
    def extension(self) -> str | None:
        return self.digits or None


def collect_extension(
    presses: list[tuple[str, float]],
    started_at: float,
    *,
    max_digits: int = 3,
    gap_s: float = 2.0,
    wait_s: float = 10.0,
) -> tuple[str | None, float]:
    """(the extension, or None if no digit came in time; when the collection was over) for
    digits keyed at the given times."""
    collector = ExtensionCollector(started_at, max_digits=max_digits, gap_s=gap_s, wait_s=wait_s)
    for digit, at in sorted(presses, key=lambda p: p[1]):
        collector.press(digit, at)
    return collector.extension, collector.deadline()


# ---------------------------------------------------------------------------------------------
# SIP message parsing (liberal: compact names, folded lines, LF-only, comma-joined values).

_COMPACT = {
    "i": "call-id", "m": "contact", "f": "from", "t": "to", "v": "via", "l": "content-length",
    "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding", "o": "event",
    "r": "refer-to", "u": "allow-events", "x": "session-expires", "b": "referred-by",
}  # fmt: skip
_MULTI = {"via", "route", "record-route", "contact"}  # headers whose values may be comma-joined


@dataclass
class SipMessage:
    method: str | None  # requests
    uri: str | None
    status: int | None  # responses
    reason: str
    headers: list[tuple[str, str]]  # (lower-case long name, value), in order
    body: bytes

    def get(self, name: str) -> str | None:
        vals = self.all(name)
        return vals[0] if vals else None

    def all(self, name: str) -> list[str]:
        name = name.lower()
        out: list[str] = []
        for k, v in self.headers:
            if k == name:
                out.extend(split_commas(v) if name in _MULTI else [v])
        return out

    @property
    def call_id(self) -> str:
        return self.get("call-id") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        parts = (self.get("cseq") or "0 ?").split()
        try:
            return int(parts[0]), parts[-1].upper()
        except ValueError:
            return 0, parts[-1].upper()

    @property
    def branch(self) -> str:
        return header_param(self.get("via") or "", "branch") or ""


def split_commas(value: str) -> list[str]:
    """Split a header value on commas outside quotes and <>."""
    out: list[str]
    cur: list[str]
    out, cur, depth, quoted = [], [], 0, False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and not quoted and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def parse_sip(data: bytes) -> SipMessage | None:
    """Parse one SIP datagram; None for keep-alives and garbage."""
    m = re.search(rb"\r?\n\r?\n", data)
    head, rest = (data[: m.start()], data[m.end() :]) if m else (data, b"")
    lines = re.split(r"\r?\n", head.decode("utf-8", errors="replace"))
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return None
    first = lines[0].strip().split(" ", 2)
    if len(first) < 2:
        return None
    headers: list[tuple[str, str]] = []
    for ln in lines[1:]:
        if ln[:1] in (" ", "\t") and headers:  # folded continuation
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + ln.strip())
        elif ":" in ln:
            k, v = ln.split(":", 1)
            k = k.strip().lower()
            headers.append((_COMPACT.get(k, k), v.strip()))
    clen = next((v for k, v in headers if k == "content-length"), None)
    body = rest[: int(clen)] if clen and clen.isdigit() else rest
    if first[0].upper().startswith("SIP/"):
        try:
            status = int(first[1])
        except ValueError:
            return None
        return SipMessage(None, None, status, first[2] if len(first) > 2 else "", headers, body)
    return SipMessage(first[0].upper(), first[1], None, "", headers, body)


def header_param(value: str, name: str) -> str | None:
    """A ;param of a From/To/Via/Contact value (outside any <uri>)."""
    tail = value.rsplit(">", 1)[-1] if ">" in value else value
    for part in tail.split(";")[1:]:
        k, _, v = part.partition("=")
        if k.strip().lower() == name:
            return v.strip().strip('"')
    return None


def uri_of(value: str) -> str:
    """The URI in a name-addr (`"x" <sip:a@b>;tag=1`) or addr-spec (`sip:a@b;tag=1`)."""
    m = re.search(r"<([^>]*)>", value)
    return m.group(1).strip() if m else value.split(";")[0].strip()


def uri_user(uri: str) -> str:
    u = re.sub(r"^\w+:", "", uri.strip())
    return u.split("@")[0].split(";")[0] if "@" in u or uri.lower().startswith("tel:") else ""


def uri_hostport(uri: str) -> tuple[str, int]:
    hp = re.sub(r"^\w+:", "", uri.strip()).split("@")[-1].split(";")[0].split("?")[0]
    if hp.startswith("["):
        host, _, port = hp[1:].partition("]")
        return host, int(port[1:]) if port.startswith(":") and port[1:].isdigit() else 5060
    host, _, port = hp.partition(":")
    return host, int(port) if port.isdigit() else 5060


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _hp(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ---------------------------------------------------------------------------------------------
# SDP


@dataclass
class Sdp:
    addr: str | None  # connection address (media-level, else session-level)
    port: int
    proto: str
    pts: list[int]
    rtpmap: dict[int, str]  # pt -> "PCMU/8000"

    def pick(self) -> tuple[int | None, int | None]:
        """(audio pt, telephone-event pt): PCMU preferred, then PCMA."""
        static = {0: "PCMU/8000", 8: "PCMA/8000"}
        names = {pt: self.rtpmap.get(pt, static.get(pt, "")).upper() for pt in self.pts}
        audio = next((pt for want in ("PCMU/", "PCMA/") for pt in self.pts if names[pt].startswith(want)), None)
        dtmf = next((pt for pt in self.pts if names[pt].startswith("TELEPHONE-EVENT/8000")), None)
        return audio, dtmf


def parse_sdp(body: bytes) -> Sdp | None:
    """The first audio m= section of an SDP body, or None."""
    session_c: str | None = None
    media_c: str | None = None
    audio: Sdp | None = None
    in_audio = False
    for line in body.decode("utf-8", errors="replace").splitlines():
        line = line.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        k, v = line[0], line[2:].strip()
        if k == "m":
            if audio is not None:
                break  # only the first audio stream matters
            parts = v.split()
            in_audio = parts[0] == "audio" and len(parts) >= 3
            if in_audio:
                pts = [int(p) for p in parts[3:] if p.isdigit()]
                audio = Sdp(None, int(parts[1].split("/")[0]), parts[2], pts, {})
        elif k == "c":
            parts = v.split()
            addr = parts[2].split("/")[0] if len(parts) >= 3 else None
            if in_audio:
                media_c = addr
            elif audio is None:
                session_c = addr
        elif k == "a" and in_audio and audio is not None and v.startswith("rtpmap:"):
            pt, _, name = v[7:].partition(" ")
            if pt.isdigit():
                audio.rtpmap[int(pt)] = name.strip()
    if audio is not None:
        audio.addr = media_c or session_c
    return audio


def media_addr(sdp: Sdp | None) -> tuple[str, int] | None:
    """Where an SDP wants its audio sent; None for holds (0.0.0.0), names or port 0."""
    if sdp and sdp.addr and sdp.port and is_ip(sdp.addr) and not ipaddress.ip_address(sdp.addr).is_unspecified:
        return sdp.addr, sdp.port
    return None


# ---------------------------------------------------------------------------------------------
# Per-call state


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, on_packet: Callable[[bytes, tuple[Any, ...]], None]) -> None:
        self.on_packet = on_packet

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            self.on_packet(data, addr)
        except Exception:  # one bad packet must not kill the socket
            log.exception("error handling packet from %s", addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)  # ICMP unreachable from a peer that went away


class _Wav:
    """A 8 kHz 16-bit mono WAV written as it grows; the header is patched every second, so the
    file is valid even while the call is still going."""

    def __init__(self, path: Path) -> None:
        self.f = open(path, "wb")  # noqa: SIM115 - written as the call goes; close() closes it
        self.samples = 0
        self._patched = 0.0
        self.f.write(self._header())

    def _header(self) -> bytes:
        n = self.samples * 2
        return b"RIFF" + struct.pack("<I", 36 + n) + b"WAVEfmt " + struct.pack(
            "<IHHIIHH", 16, 1, 1, RATE, RATE * 2, 2, 16) + b"data" + struct.pack("<I", n)  # fmt: skip

    def write(self, pcm: np.ndarray) -> None:
        self.f.write(pcm.astype("<i2").tobytes())
        self.samples += len(pcm)
        if time.monotonic() - self._patched > 1.0:
            self.patch()

    def silence(self, n: int) -> None:
        while n > 0:
            k = min(n, RATE * 10)
            self.write(np.zeros(k, dtype=np.int16))
            n -= k

    def patch(self) -> None:
        if self.f.closed:
            return
        self.f.seek(0)
        self.f.write(self._header())
        self.f.seek(0, os.SEEK_END)
        self.f.flush()
        self._patched = time.monotonic()

    def close(self) -> None:
        self.patch()
        self.f.close()


@dataclass
class _Playout:
    text: str
    pcm: np.ndarray
    done: asyncio.Future[None]
    kind: str = "line"  # "line" (posted to the board, logged in utterances), "beep" or "ringback"
    pos: int = 0
    entry: dict[str, Any] | None = None


@dataclass
class _Call:
    seq: int
    invite: SipMessage
    addr: tuple[Any, ...]  # where the INVITE came from (responses go back there)
    scenario: Scenario | None
    key: str
    name: str  # "<seq>-<digits>", the log file stem
    log: dict[str, Any]
    local_tag: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    offer: Sdp | None = None
    pt: int = PCMU
    dtmf_pt: int | None = None
    answer_sdp: bytes = b""
    last_invite_response: bytes = b""
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    local_cseq: int = 0
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)  # ringing, media, script
    retransmit: asyncio.Task[None] | None = None  # the final response, until ACKed
    timer: asyncio.TimerHandle | None = None
    # media
    rtp: asyncio.DatagramTransport | None = None
    rtp_port: int = 0
    remote_rtp: tuple[Any, ...] | None = None
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    out_seq: int = field(default_factory=lambda: random.getrandbits(16))
    out_ts: int = field(default_factory=lambda: random.getrandbits(32))
    marker: bool = True
    queue: deque[_Playout] = field(default_factory=deque)
    wav: _Wav | None = None
    rec_ssrc: int | None = None
    rec_next_ts: int = 0
    voiced_s: float = 0.0  # non-silent audio heard since the phone last started waiting for a turn
    last_voiced: float = 0.0  # loop time of the last non-silent frame
    segment: dict[str, Any] | None = None  # the open agent_speech entry
    segment_end: float = 0.0
    dtmf_seen: set[tuple[int, int]] = field(default_factory=set)
    collector: ExtensionCollector | None = None  # the attendant's, while it collects an extension
    transferring: bool = False  # a REFER was accepted and its final status is not in yet
    transfers: int = 0  # REFERs accepted and transfers over (each a fresh start for the agent's turn)

    @property
    def ended(self) -> bool:
        return bool(self.log["ended"])

    def spawn(self, coro: Any) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(coro))


# ---------------------------------------------------------------------------------------------


class Phone:
    """The simulated callee. One instance serves any number of concurrent calls."""

    def __init__(self, *, board: Board, sip_host: str, sip_port: int, rtp_host: str, run_dir: Path) -> None:
        self._board = board
        self._sip_host = sip_host
        self._sip_port = sip_port
        self._rtp_host = rtp_host
        self._dir = Path(run_dir) / "phone"
        self._sip: asyncio.DatagramTransport | None = None
        self._calls: list[_Call] = []
        self._by_cid: dict[str, _Call] = {}
        self._responses: dict[tuple[str, str, int, str], bytes] = {}  # request key -> last response
        self._pending: dict[str, asyncio.Future[int]] = {}  # branch of our requests -> final status
        self._bg: set[asyncio.Task[Any]] = set()  # our client transactions
        self._seq = 0
        self._events: Any = None

    @property
    def sip_address(self) -> tuple[str, int]:
        """The bound SIP address (useful when constructed with sip_port=0)."""
        return self._sip_host, self._sip_port

    async def start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        lines = {(ln.voice, ln.text): ln for sc in scenarios().values() for ln in sc.spoken()}
        await asyncio.gather(*(render_line(ln) for _, ln in sorted(lines.items())))
        seqs = [p.name.split("-")[0] for p in self._dir.glob("*-*.json")]
        self._seq = max((int(n) for n in seqs if n.isdigit()), default=0)  # continue after a restart
        # Opened once at start-up, line-buffered, closed on stop.
        self._events = open(self._dir / "events.log", "a", buffering=1)  # noqa: ASYNC230, SIM115
        loop = asyncio.get_running_loop()
        self._sip, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(self._on_sip), local_addr=(self._sip_host, self._sip_port)
        )
        self._sip_port = self._sip.get_extra_info("sockname")[1]
        log.info("phone listening on SIP %s (RTP on %s), %d lines rendered",
                 _hp(self._sip_host, self._sip_port), self._rtp_host, len(lines))  # fmt: skip

    async def stop(self) -> None:
        for call in self._calls:
            if call.ended:
                continue
            if call.log["final_status"] is None:
                self._final(call, 480, "Temporarily Unavailable")
                self._end(call, "phone")
            else:
                self._end(call, "phone", bye=True)
        if self._bg:  # give our BYEs a moment to be answered
            await asyncio.wait(list(self._bg), timeout=1.0)
        leftovers = [*self._bg, *(t for c in self._calls for t in [*c.tasks, c.retransmit] if t)]
        for t in leftovers:
            t.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
        if self._sip:
            self._sip.close()
            self._sip = None
        if self._events:
            self._events.close()
            self._events = None

    def calls(self) -> list[dict[str, Any]]:
        """Snapshots of every call's log, oldest first."""
        return [copy.deepcopy(c.log) for c in self._calls]

    # -- logging ---------------------------------------------------------------------------------

    def _event(self, call: _Call, event: str, **fields: Any) -> None:
        now = time.time()
        if self._events:
            self._events.write(json.dumps({"at": now, "call": call.name, "event": event, **fields}) + "\n")
        log.info("%s %s %s", call.name, event, " ".join(f"{k}={v!r}" for k, v in fields.items()))
        path = self._dir / f"{call.name}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(call.log, indent=2))
        os.replace(tmp, path)

    # -- SIP transport -----------------------------------------------------------------------------

    def _send(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self._sip:
            self._sip.sendto(data, addr)

    def _response(self, req: SipMessage, addr: tuple[Any, ...], status: int, reason: str, *,
                  to_tag: str | None = None, body: bytes = b"", contact: bool = False) -> bytes:  # fmt: skip
        """Build, send and remember (for retransmitted requests) a response to `req`."""
        out = [f"SIP/2.0 {status} {reason}"]
        for i, via in enumerate(req.all("via")):
            if i == 0:  # RFC 3581: tell the client where its request really came from
                if header_param(via, "received") is None:
                    via += f";received={addr[0]}"
                via = re.sub(r";rport(?=;|$)", f";rport={addr[1]}", via)
            out.append(f"Via: {via}")
        to = req.get("to") or ""
        if to_tag and status > 100 and header_param(to, "tag") is None:
            to += f";tag={to_tag}"
        out += [f"From: {req.get('from') or ''}", f"To: {to}", f"Call-ID: {req.call_id}",
                f"CSeq: {req.get('cseq') or ''}"]  # fmt: skip
        if req.method == "INVITE" and 100 < status < 300:
            out += [f"Record-Route: {rr}" for rr in req.all("record-route")]
        if contact:
            out.append(f"Contact: <sip:phone@{_hp(self._sip_host, self._sip_port)}>")
        out += [f"Server: {USER_AGENT}", f"Allow: {ALLOW}"]
        if body:
            out.append("Content-Type: application/sdp")
        out.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(out) + "\r\n\r\n").encode() + body
        self._send(data, addr)
        self._responses[(req.call_id, req.branch, req.cseq[0], req.method or "")] = data
        return data

    def _on_sip(self, data: bytes, addr: tuple[Any, ...]) -> None:
        msg = parse_sip(data)
        if msg is None:
            return
        if msg.status is not None:
            answered = self._pending.get(msg.branch)
            if answered is not None and msg.status >= 200 and not answered.done():
                answered.set_result(msg.status)
            return
        if not (msg.call_id and msg.get("via") and msg.get("from") and msg.get("to") and msg.get("cseq")):
            log.warning("dropping malformed %s from %s", msg.method, addr)
            return
        cached = self._responses.get((msg.call_id, msg.branch, msg.cseq[0], msg.method or ""))
        if cached is not None and msg.method != "ACK":  # a retransmission: repeat ourselves
            self._send(cached, addr)
            return
        handler = getattr(self, f"_on_{(msg.method or '').lower()}", None)
        if handler is None:
            self._response(msg, addr, 405, "Method Not Allowed", to_tag=uuid.uuid4().hex[:12])
        else:
            handler(msg, addr)

    # -- SIP requests from the caller --------------------------------------------------------------

    def _on_invite(self, msg: SipMessage, addr: tuple[Any, ...]) -> None:
        call = self._by_cid.get(msg.call_id)
        to_tag = header_param(msg.get("to") or "", "tag")
        if call is not None and msg.cseq[0] == call.invite.cseq[0] and to_tag in (None, call.local_tag):
            self._send(call.last_invite_response, addr)  # retransmission on a new branch
            return
        if call is not None and to_tag == call.local_tag:
            self._on_reinvite(call, msg, addr)
            return
        if to_tag is not None:
            self._response(msg, addr, 481, "Call/Transaction Does Not Exist", to_tag=to_tag)
            return
        self._new_call(msg, addr)

    def _new_call(self, msg: SipMessage, addr: tuple[Any, ...]) -> None:
        user = uri_user(msg.uri or "")
        sc = scenario_for(user) if any(ch.isdigit() for ch in user) else None
        digits = "".join(ch for ch in user if ch.isdigit())
        number = sc.number if sc else ("+" + digits if digits else user)
        self._seq += 1
        name = f"{self._seq:04d}-{''.join(ch for ch in number if ch.isdigit()) or 'unknown'}"
        key = msg.get(CALL_ID_HEADER) or msg.call_id
        from_uri = uri_of(msg.get("from") or "")
        entry: dict[str, Any] = {
            "number": number, "call_key": key, "sip_call_id": msg.call_id,
            # who is calling, as the callee's caller id shows it: the From URI's user part
            # (livekit-sip puts the trunk's number there, or the request's sip_number)
            "from_number": uri_user(from_uri) or None, "from_uri": from_uri or None,
            "scenario": sc.name if sc else None, "invite_at": time.time(), "ringing_at": None,
            "answered_at": None, "first_audio_at": None, "utterances": [], "agent_speech": [],
            "dtmf": [], "hangup_at": None, "hangup_by": None, "final_status": None,
            "recording": None, "recording_at": None, "ended": False, "codec": None, "beep": None,
            "early_media_at": None, "ringback": None, "extension": None, "person_reached": None,
            "transfer": None,
            # the scripted agent took the error branch and the phone said an if_tool_failed line
            "error_branch": False,
        }  # fmt: skip
        call = _Call(self._seq, msg, addr, sc, key, name, entry)
        self._calls.append(call)
        self._by_cid[msg.call_id] = call
        call.last_invite_response = self._response(msg, addr, 100, "Trying")
        self._event(call, "invite", uri=msg.uri, source=_hp(str(addr[0]), addr[1]), from_number=entry["from_number"])
        if sc is None:
            self._final(call, 404, "Not Found")
            self._end(call, "phone")
            return
        if msg.body.strip():
            call.offer = parse_sdp(msg.body)
            audio, call.dtmf_pt = call.offer.pick() if call.offer else (None, None)
            if call.offer is None or audio is None or call.offer.port == 0 or "SAVP" in call.offer.proto:
                self._final(call, 488, "Not Acceptable Here")
                self._end(call, "phone")
                return
            call.pt = audio
        else:  # delayed offer: we offer in the 200, the answer comes in the ACK
            call.dtmf_pt = 101
        call.spawn(self._ring(call))

    async def _ring(self, call: _Call) -> None:
        sc = call.scenario
        assert sc is not None
        if sc.early_media:
            await self._early_media(call)
        else:
            ringing = self._response(call.invite, call.addr, 180, "Ringing", to_tag=call.local_tag)
            call.last_invite_response = ringing
            call.log["ringing_at"] = time.time()
            self._event(call, "ringing")
        if call.ended:
            return
        if sc.answer == "never":
            return  # ring until CANCEL
        await asyncio.sleep(sc.ring_s)
        if call.log["final_status"] is not None:
            return
        if sc.answer == "busy":
            self._final(call, 486, "Busy Here")
            self._end(call, "phone")
        elif sc.answer == "decline":
            self._final(call, 603, "Decline")
            self._end(call, "phone")
        else:
            await self._answer(call)

    def _final(self, call: _Call, status: int, reason: str, body: bytes = b"") -> None:
        """Send the INVITE's final response and retransmit it until the ACK (RFC 3261 13.3.1.4)."""
        data = self._response(call.invite, call.addr, status, reason, to_tag=call.local_tag,
                              body=body, contact=status < 300)  # fmt: skip
        call.last_invite_response = data
        call.log["final_status"] = status
        self._event(call, "final", status=status)
        if call.retransmit:
            call.retransmit.cancel()
        call.retransmit = asyncio.get_running_loop().create_task(self._retransmit_final(call, data))

    async def _retransmit_final(self, call: _Call, data: bytes) -> None:
        interval, waited = T1, 0.0
        while waited < TIMER_B:
            try:
                await asyncio.wait_for(call.acked.wait(), interval)
                return
            except TimeoutError:
                waited += interval
                self._send(data, call.addr)
                interval = min(interval * 2, T2)
        log.warning("%s: no ACK for final response", call.name)
        if call.log["final_status"] == 200 and not call.ended:
            self._end(call, "phone", bye=True)

    async def _early_media(self, call: _Call) -> None:
        """Ring in-band: 183 Session Progress with the SDP the 200 will carry, and ringback tone
        over RTP until the answer (which cuts it)."""
        await self._open_media(call)
        if call.ended:
            return
        progress = self._response(call.invite, call.addr, 183, "Session Progress", to_tag=call.local_tag,
                                  body=call.answer_sdp, contact=True)  # fmt: skip
        call.last_invite_response = progress
        call.log["early_media_at"] = call.log["ringing_at"] = time.time()
        self._event(call, "early_media")
        ring_s = call.scenario.ring_s if call.scenario and call.scenario.answer != "never" else MAX_CALL_S
        self._enqueue(call, "<ringback>", ringback(ring_s + 1.0), kind="ringback")

    async def _open_media(self, call: _Call) -> None:
        """Our RTP socket and SDP, the recording, and the media clock: at the answer, or at the
        183 when ringing with early media. The recording starts now (`recording_at`)."""
        loop = asyncio.get_running_loop()
        for _ in range(20):  # RTP convention: an even port (RTCP would be +1)
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(lambda d, a: self._on_rtp(call, d, a)), local_addr=(self._rtp_host, 0)
            )
            if call.ended:  # canceled meanwhile
                transport.close()
                return
            call.rtp, call.rtp_port = transport, transport.get_extra_info("sockname")[1]
            if call.rtp_port % 2 == 0:
                break
            transport.close()
        call.remote_rtp = media_addr(call.offer)  # else learnt from the first RTP packet
        call.answer_sdp = self._sdp(call)
        call.log["codec"] = "PCMU" if call.pt == PCMU else "PCMA"
        call.log["recording"] = f"{call.name}.wav"
        call.log["recording_at"] = time.time()
        call.wav = _Wav(self._dir / call.log["recording"])
        call.spawn(self._media(call))

    async def _answer(self, call: _Call) -> None:
        if call.rtp is None:
            await self._open_media(call)
            if call.ended:
                return
        for item in [p for p in call.queue if p.kind == "ringback"]:
            self._cut(call, item)
        call.log["answered_at"] = time.time()
        self._final(call, 200, "OK", call.answer_sdp)
        call.spawn(self._script(call))
        call.timer = asyncio.get_running_loop().call_later(MAX_CALL_S, lambda: self._end(call, "phone", bye=True))

    def _sdp(self, call: _Call) -> bytes:
        ip = "IP6" if ":" in self._rtp_host else "IP4"
        pts = [call.pt] + ([call.dtmf_pt] if call.dtmf_pt is not None else [])
        lines = ["v=0", f"o=phone {call.seq} {call.seq} IN {ip} {self._rtp_host}", "s=devstack phone",
                 f"c=IN {ip} {self._rtp_host}", "t=0 0",
                 f"m=audio {call.rtp_port} RTP/AVP {' '.join(map(str, pts))}",
                 f"a=rtpmap:{call.pt} {'PCMU' if call.pt == PCMU else 'PCMA'}/8000"]  # fmt: skip
        if call.dtmf_pt is not None:
            lines += [f"a=rtpmap:{call.dtmf_pt} telephone-event/8000", f"a=fmtp:{call.dtmf_pt} 0-16"]
        lines += ["a=ptime:20", "a=sendrecv"]
        return ("\r\n".join(lines) + "\r\n").encode()

    def _on_reinvite(self, call: _Call, msg: SipMessage, addr: tuple[Any, ...]) -> None:
        if call.ended or call.log["final_status"] != 200:
            self._response(msg, addr, 481, "Call/Transaction Does Not Exist", to_tag=call.local_tag)
            return
        self._update_remote(call, msg.body)
        self._response(msg, addr, 200, "OK", to_tag=call.local_tag, body=call.answer_sdp, contact=True)
        self._event(call, "reinvite")

    def _update_remote(self, call: _Call, body: bytes) -> None:
        remote = media_addr(parse_sdp(body)) if body.strip() else None
        if remote:
            call.remote_rtp = remote

    def _on_update(self, msg: SipMessage, addr: tuple[Any, ...]) -> None:
        call = self._by_cid.get(msg.call_id)
        if call is None or call.ended:
            self._response(msg, addr, 481, "Call/Transaction Does Not Exist", to_tag=uuid.uuid4().hex[:12])
            return
        self._update_remote(call, msg.body)
        body = call.answer_sdp if msg.body.strip() and call.answer_sdp else b""
        self._response(msg, addr, 200, "OK", to_tag=call.local_tag, body=body, contact=True)

    def _on_ack(self, msg: SipMessage, addr: tuple[Any, ...]) -> None:
        call = self._by_cid.get(msg.call_id)
        if call is None or msg.cseq[0] != call.invite.cseq[0] or call.acked.is_set():
            return
        call.acked.set()
        if call.offer is None:  # delayed offer: the ACK carries the answer
            self._update_remote(call, msg.body)
        self._event(call, "ack")

    def _on_cancel(self, msg: SipMessage, addr: tuple[Any, ...]) -> None:
        call = self._by_cid.get(msg.call_id)
        if call is None or msg.cseq[0] != call.invite.cseq[0]:
            self._response(msg, addr, 481, "Call/Transaction Does Not Exist", to_tag=uuid.uuid4().hex[:12])
            return
        self._response(msg, addr, 200, "OK", to_tag=call.local_tag)
        if call.log["final_status"] is None:  # too late once answered/rejected: CANCEL is a no-op
            self._final(call, 487, "Request Terminated")
            self._end(call, "canceled")

    def _on_bye(self, msg: SipMessage, addr: tuple[Any, ...]) -> None:
        call = self._by_cid.get(msg.call_id)
        if call is None:
            self._response(msg, addr, 481, "Call/Transaction Does Not Exist", to_tag=uuid.uuid4().hex[:12])
            return
        self._response(msg, addr, 200, "OK", to_tag=call.local_tag)
        if call.log["final_status"] is None:  # BYE while ringing (odd, but end the INVITE too)
            self._final(call, 487, "Request Terminated")
        call.acked.set()  # a BYE implies our final response arrived
        self._end(call, "remote")

    def _on_options(self, msg: SipMessage, addr: tuple[Any, ...]) -> None:
        call = self._by_cid.get(msg.call_id)
        tag = call.local_tag if call else uuid.uuid4().hex[:12]
        self._response(msg, addr, 200, "OK", to_tag=tag, contact=True)

    def _on_info(self, msg: SipMessage, addr: tuple[Any, ...]) -> None:
        """SIP INFO DTMF (application/dtmf-relay `Signal=5`), in case the caller uses it."""
        call = self._by_cid.get(msg.call_id)
        self._on_options(msg, addr)
        m = re.search(r"Signal\s*=\s*([0-9*#A-Da-d])", msg.body.decode(errors="replace"))
        if call is not None and m:
            self._dtmf(call, m.group(1).upper(), "info")

    def _on_refer(self, msg: SipMessage, addr: tuple[Any, ...]) -> None:
        """A cold transfer (RFC 3515) inside an answered call: 202, then the transfer's progress
        as NOTIFYs (see _transfer). Outside a live dialog 481; a second REFER while one is under
        way 491; no Refer-To 400."""
        call = self._by_cid.get(msg.call_id)
        to_tag = header_param(msg.get("to") or "", "tag")
        if call is None or call.ended or call.log["final_status"] != 200 or to_tag not in (None, call.local_tag):
            self._response(msg, addr, 481, "Call/Transaction Does Not Exist", to_tag=to_tag or uuid.uuid4().hex[:12])
            return
        refer_to = msg.get("refer-to")
        if not refer_to:
            self._response(msg, addr, 400, "Missing Refer-To", to_tag=call.local_tag)
            return
        if call.transferring:
            self._response(msg, addr, 491, "Request Pending", to_tag=call.local_tag)
            return
        self._response(msg, addr, 202, "Accepted", to_tag=call.local_tag, contact=True)
        uri = uri_of(refer_to)
        digits = "".join(ch for ch in uri_user(uri).split("?")[0] if ch.isdigit())
        target = scenario_for(digits) if digits else None
        call.acked.set()  # a request from the caller implies our 200 arrived
        call.transferring = True
        call.transfers += 1
        call.log["transfer"] = {
            "to": target.number if target else ("+" + digits if digits else uri), "refer_to": uri,
            "referred_at": time.time(), "status": None, "reason": None, "at": None,
        }  # fmt: skip
        self._event(call, "refer", to=call.log["transfer"]["to"], refer_to=uri)
        call.spawn(self._transfer(call, msg.cseq[0], target))

    async def _transfer(self, call: _Call, refer_cseq: int, target: Scenario | None) -> None:
        """The transfer's progress, as the transferee reports it (RFC 3515 2.4.4): "100 Trying",
        then the final status the target's scenario gives: 200 after it rang, 486 / 603, 480
        when it never answers (after REFER_NO_ANSWER_S), 404 for a number without a scenario.
        Each NOTIFY waits for the previous one's answer (RFC 6665 4.2.2). After a 200 the phone
        hangs up, as a transferee does once transferred (RFC 5589); otherwise the call goes on."""
        if target is None:
            (status, reason), wait = (404, "Not Found"), 0.0
        elif target.answer == "never":
            (status, reason), wait = (480, "Temporarily Unavailable"), REFER_NO_ANSWER_S
        else:
            (status, reason), wait = TRANSFER_STATUS[target.answer], target.ring_s
        event = f"refer;id={refer_cseq}"
        entry = call.log["transfer"]
        try:
            trying, _ = await asyncio.gather(self._notify(call, event, 100, "Trying", final=False), asyncio.sleep(wait))
            if call.ended:
                return
            if trying is not None and trying >= 300:  # the subscription is gone: nothing to report to
                self._event(call, "transfer_abandoned", notify_status=trying)
                return
            entry.update(status=status, reason=reason, at=time.time())
            final = self._notify(call, event, status, reason, final=True)
            self._event(call, "transfer", to=entry["to"], status=status)
            if status == 200:
                await final
                await asyncio.sleep(TRANSFER_BYE_S)
                self._end(call, "phone", bye=True)
        finally:
            call.transferring = False
            call.transfers += 1

    def _notify(self, call: _Call, event: str, status: int, reason: str, *, final: bool) -> asyncio.Task[int | None]:
        """A NOTIFY of a REFER's progress: `SIP/2.0 <status> <reason>` as message/sipfrag."""
        state = "terminated;reason=noresource" if final else "active;expires=60"
        headers = (f"Event: {event}", f"Subscription-State: {state}",
                   f"Contact: <sip:phone@{_hp(self._sip_host, self._sip_port)}>",
                   "Content-Type: message/sipfrag;version=2.0")  # fmt: skip
        return self._request(call, "NOTIFY", headers, f"SIP/2.0 {status} {reason}\r\n".encode())

    # -- our requests ------------------------------------------------------------------------------

    def _send_bye(self, call: _Call) -> None:
        self._request(call, "BYE")

    def _request(
        self, call: _Call, method: str, headers: tuple[str, ...] = (), body: bytes = b""
    ) -> asyncio.Task[int | None]:
        """Send an in-dialog request (RFC 3261 12.2.1): R-URI = the caller's Contact, Route = its
        Record-Route set, From/To = the INVITE's To/From with tags swapped in, our own CSeq. The
        task retransmits it until answered and gives the final status (None: no answer)."""
        inv = call.invite
        target = uri_of(inv.get("contact") or "") or (inv.uri or "")
        routes = inv.all("record-route")
        call.local_cseq += 1
        branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        lines = [f"{method} {target} SIP/2.0",
                 f"Via: SIP/2.0/UDP {_hp(self._sip_host, self._sip_port)};branch={branch};rport",
                 "Max-Forwards: 70"]  # fmt: skip
        lines += [f"Route: {r}" for r in routes]
        to = inv.get("to") or ""
        if header_param(to, "tag") is None:
            to += f";tag={call.local_tag}"
        lines += [f"From: {to}", f"To: {inv.get('from') or ''}", f"Call-ID: {inv.call_id}",
                  f"CSeq: {call.local_cseq} {method}", f"User-Agent: {USER_AGENT}", *headers,
                  f"Content-Length: {len(body)}"]  # fmt: skip
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        # Next hop: first route, else the remote target. Only IP literals (no lookups); anything
        # else goes back to where the INVITE came from.
        host, port = uri_hostport(uri_of(routes[0]) if routes else target)
        dest = (host, port) if is_ip(host) else call.addr
        answered: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[branch] = answered
        task = asyncio.get_running_loop().create_task(self._transact(data, dest, branch, answered, method))
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)
        return task

    async def _transact(
        self, data: bytes, dest: tuple[Any, ...], branch: str, answered: asyncio.Future[int], method: str
    ) -> int | None:
        """Non-INVITE client transaction over UDP: retransmit until a final response (timer E/F)."""
        interval, waited = T1, 0.0
        try:
            self._send(data, dest)
            while waited < TIMER_B:
                try:
                    return await asyncio.wait_for(asyncio.shield(answered), interval)
                except TimeoutError:
                    waited += interval
                    self._send(data, dest)
                    interval = min(interval * 2, T2)
            log.warning("no response to %s %s", method, branch)
            return None
        finally:
            self._pending.pop(branch, None)
            answered.cancel()  # (a no-op once answered)

    def _end(self, call: _Call, by: str, *, bye: bool = False) -> None:
        """Tear a call down (idempotent): stop media and scripts, close the recording, log."""
        if call.ended:
            return
        now = time.time()
        call.log.update(ended=True, hangup_at=now, hangup_by=by)
        if call.segment is not None:
            call.segment["end"] = call.segment_end
            call.segment = None
        for p in call.queue:
            if p.entry is not None and p.entry["end"] is None:
                p.entry["end"] = now
            if not p.done.done():
                p.done.cancel()
        call.queue.clear()
        me = asyncio.current_task()
        for t in call.tasks:  # (the final response's retransmission runs on until the ACK)
            if t is not me:
                t.cancel()
        if call.timer:
            call.timer.cancel()
        if call.rtp:
            call.rtp.close()
            call.rtp = None
        if call.wav:
            call.wav.close()
        if bye:
            self._send_bye(call)
        self._event(call, "hangup", by=by)

    # -- media ------------------------------------------------------------------------------------

    async def _media(self, call: _Call) -> None:
        """Send one 20 ms RTP frame per tick (speech or silence), on an absolute schedule."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not call.ended:
            self._send_frame(call)
            if call.segment is not None and loop.time() - call.last_voiced > SEGMENT_CLOSE_S:
                call.segment["end"] = call.segment_end
                call.segment = None
                self._event(call, "agent_speech_end")
            due += FRAME_S
            if due < loop.time() - 0.2:  # badly late (stalled loop): resync instead of bursting
                due = loop.time()
            await asyncio.sleep(max(0.0, due - loop.time()))

    def _send_frame(self, call: _Call) -> None:
        pcm = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        marker = call.marker
        item = call.queue[0] if call.queue else None
        if item is not None:
            if item.pos == 0:  # starts now: tell the board/log the moment it really plays
                marker = True
                start = time.time()
                if item.kind == "line":
                    self._board.spoke(call.key, item.text)
                    item.entry = {"text": item.text, "start": start, "end": None}
                    call.log["utterances"].append(item.entry)
                else:  # beep, ringback
                    item.entry = {"start": start, "end": None}
                    call.log[item.kind] = item.entry
                self._event(call, f"{item.kind}_start", text=item.text)
            chunk = item.pcm[item.pos : item.pos + FRAME_SAMPLES]
            pcm[: len(chunk)] = chunk
            item.pos += FRAME_SAMPLES
            if item.pos >= len(item.pcm):
                call.queue.popleft()
                assert item.entry is not None
                item.entry["end"] = time.time() + FRAME_S
                self._event(call, f"{item.kind}_end", text=item.text)
                if not item.done.done():
                    item.done.set_result(None)
        if call.rtp is not None and call.remote_rtp is not None:
            b1 = (0x80 if marker else 0) | call.pt
            hdr = struct.pack("!BBHII", 0x80, b1, call.out_seq, call.out_ts, call.ssrc)
            call.rtp.sendto(hdr + g711_encode(pcm, call.pt), call.remote_rtp)
            call.marker = False
        call.out_seq = (call.out_seq + 1) & 0xFFFF
        call.out_ts = (call.out_ts + FRAME_SAMPLES) & 0xFFFFFFFF

    def _on_rtp(self, call: _Call, data: bytes, addr: tuple[Any, ...]) -> None:
        if call.ended or len(data) < 12 or data[0] >> 6 != 2:
            return
        pt = data[1] & 0x7F
        if 72 <= pt <= 76:  # RTCP on the RTP port (rtcp-mux): not ours to care about
            return
        if call.remote_rtp != addr[:2]:  # symmetric RTP: answer where the audio comes from
            log.info("%s: RTP peer %s -> %s", call.name, call.remote_rtp, addr[:2])
            call.remote_rtp = addr[:2]
        _seq, ts, ssrc = struct.unpack_from("!HII", data, 2)
        off = 12 + 4 * (data[0] & 0x0F)
        if data[0] & 0x10 and len(data) >= off + 4:  # header extension
            off += 4 + 4 * struct.unpack_from("!H", data, off + 2)[0]
        end = len(data) - (data[-1] if data[0] & 0x20 else 0)
        payload = data[off:end]
        if pt == call.dtmf_pt or (call.dtmf_pt is None and pt == 101):
            if len(payload) >= 4 and (ssrc, ts) not in call.dtmf_seen:  # once per event, not per packet
                call.dtmf_seen.add((ssrc, ts))
                if payload[0] < len(DTMF_CHARS):
                    self._dtmf(call, DTMF_CHARS[payload[0]], "rfc2833")
            return
        if pt not in (PCMU, PCMA):
            return
        pcm = g711_decode(payload, pt)
        self._record(call, pcm, ts, ssrc)
        self._detect(call, pcm)

    def _record(self, call: _Call, pcm: np.ndarray, ts: int, ssrc: int) -> None:
        """Append to the WAV in arrival order; fill gaps with silence so durations are real. The
        file starts at recording_at (answered_at, or early_media_at when ringing with early
        media), padded by wall clock to the first packet, or a new SSRC."""
        if call.wav is None or call.wav.f.closed:
            return
        if ssrc != call.rec_ssrc:
            call.rec_ssrc = ssrc
            expected = int((time.time() - call.log["recording_at"]) * RATE)
            call.wav.silence(expected - call.wav.samples - len(pcm))
        else:
            gap = (ts - call.rec_next_ts) & 0xFFFFFFFF
            if 0 < gap < 60 * RATE:  # a forward jump (loss or DTX); huge = reordered/backwards
                call.wav.silence(gap)
        call.rec_next_ts = (ts + len(pcm)) & 0xFFFFFFFF
        call.wav.write(pcm)

    def _detect(self, call: _Call, pcm: np.ndarray) -> None:
        """Energy-based voice activity on received audio: first_audio_at, agent_speech, turns."""
        if rms(pcm) <= SILENCE_RMS:
            return
        now = time.time()
        call.voiced_s += len(pcm) / RATE
        call.last_voiced = asyncio.get_running_loop().time()
        call.segment_end = now
        if call.log["first_audio_at"] is None:  # (times are arrival times of the packets)
            call.log["first_audio_at"] = now
            self._event(call, "first_audio")
        if call.segment is None:
            call.segment = {"start": now, "end": None}
            call.log["agent_speech"].append(call.segment)
            self._event(call, "agent_speech_start")

    def _dtmf(self, call: _Call, digit: str, how: str) -> None:
        now = time.time()
        call.log["dtmf"].append({"digit": digit, "at": now})
        taken = call.collector.press(digit, now) if call.collector is not None else None
        self._event(call, "dtmf", digit=digit, via=how, **({} if taken is None else {"collected": taken}))

    # -- the script ---------------------------------------------------------------------------------

    async def _script(self, call: _Call) -> None:
        sc = call.scenario
        assert sc is not None
        if sc.attendant is not None and not await self._attendant(call, sc.attendant):
            return
        lines = sc.lines
        if sc.menu is not None:
            option = await self._menu(call, sc.menu)
            if option is None:
                return
            lines = option.lines
        for i, scripted in enumerate(lines):
            if sc.hold is not None and i == sc.hold.after + 1:
                await self._hold(call, sc.hold)
            if scripted.when == "after_agent":
                await self._agent_turn(call, quiet_s=scripted.min_quiet_s or AGENT_QUIET_S)
            line = scripted.said(self._board.in_error_branch(call.key))
            if line is not scripted and not call.log["error_branch"]:
                call.log["error_branch"] = True
                self._event(call, "error_branch", instead_of=scripted.text)
            if line.tones == "sit":
                await self._play(call, "<sit>", sit_tones(), kind="tones")
            await self._play(call, line.text, rendered(line))
        if sc.after_lines == "hangup":
            await asyncio.sleep(HANGUP_TAIL_S)
            self._end(call, "phone", bye=True)
        elif sc.after_lines == "record":
            await self._play(call, "<beep>", beep(), kind="beep")

    async def _attendant(self, call: _Call, att: Attendant) -> bool:
        """The auto-attendant: say the prompt while collecting an extension (speech on the line
        is ignored meanwhile; the first digit cuts the prompt short). True when the extension
        put the person on; else the `invalid` line is said and the phone hangs up (False)."""
        collector = ExtensionCollector(
            time.time(), max_digits=att.max_digits, gap_s=att.digit_gap_s, wait_s=att.no_digit_s
        )
        call.collector = collector
        call.voiced_s = 0.0  # the agent's speech from the answer on counts toward its opening
        prompt = self._enqueue(call, att.prompt.text, rendered(att.prompt))
        while not collector.done(time.time()):
            if collector.digits and not prompt.done.done():
                self._cut(call, prompt)
            await asyncio.sleep(FRAME_S)
        call.collector = None
        reached = collector.extension == att.extension
        call.log.update(extension=collector.extension, person_reached=reached)
        self._event(call, "extension", extension=collector.extension, reached=reached)
        if not reached:
            await prompt.done  # (with no digit at all, the prompt is said to its end)
            await self._play(call, att.invalid.text, rendered(att.invalid))
            await asyncio.sleep(HANGUP_TAIL_S)
            self._end(call, "phone", bye=True)
            return False
        # The person picks up once the agent has said its opening and gone quiet: the opening
        # starts at the answer, or (livekit-sip 1.8) only once the digits have been sent, and
        # an agent does not listen while it says its opening.
        await self._agent_turn(call, fresh=False)
        # Whatever of the attendant the agent's STT did not take in is gone: the next thing it
        # hears is the person.
        self._board.forget(call.key)
        return True

    async def _hold(self, call: _Call, hold: Hold) -> None:
        """The hold queue: music, the announcement every `every_s`, for `seconds` in all."""
        call.log["hold"] = {"start": time.time(), "end": None}
        self._event(call, "hold_start")
        left = hold.seconds
        while left > 0:
            music = min(hold.every_s, left)
            await self._play(call, "<hold music>", hold_music(music), kind="music")
            left -= music
            if left > 0:
                await self._play(call, hold.announcement.text, rendered(hold.announcement))
        call.log["hold"]["end"] = time.time()
        self._event(call, "hold_end")

    async def _menu(self, call: _Call, menu: Menu) -> MenuOption | None:
        """The phone menu: the prompt, then one digit; an option's digit puts its desk on (the
        option, returned), anything else repeats the prompt; after the last round the goodbye
        and a hang-up (None). Every digit is in the call's log with its time."""
        for round_ in range(1, menu.rounds + 1):
            # A digit counts from the prompt's start (and cuts it short), as on a real menu.
            pcm = rendered(menu.prompt)
            prompt = self._enqueue(call, menu.prompt.text, pcm)
            collector = ExtensionCollector(time.time(), max_digits=1, wait_s=len(pcm) / RATE + menu.no_digit_s)
            call.collector = collector
            while not collector.done(time.time()):
                if collector.digits and not prompt.done.done():
                    self._cut(call, prompt)
                await asyncio.sleep(FRAME_S)
            call.collector = None
            if not prompt.done.done():
                self._cut(call, prompt)
            choice = collector.extension
            self._event(call, "menu_choice", digit=choice, round=round_)
            if choice in menu.options:
                call.log.update(menu_choice=choice, person_reached=True)
                await self._agent_turn(call, fresh=False)  # the desk picks up once the agent is quiet
                self._board.forget(call.key)
                return menu.options[choice]
        call.log.update(menu_choice=None, person_reached=False)
        await self._play(call, menu.goodbye.text, rendered(menu.goodbye))
        await asyncio.sleep(HANGUP_TAIL_S)
        self._end(call, "phone", bye=True)
        return None

    async def _agent_turn(self, call: _Call, *, fresh: bool = True, quiet_s: float = AGENT_QUIET_S) -> None:
        """Wait until the agent has spoken (>= AGENT_MIN_SPEECH_S, from now on; with
        fresh=False, since the last turn or the answer) and gone quiet (`quiet_s`), or has
        been silent for AGENT_TIMEOUT_S. While a transfer is under way nothing counts: the
        wait starts afresh once it failed (the agent will tell the callee)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        if fresh:
            call.voiced_s = 0.0
        transfers = call.transfers
        while True:
            await asyncio.sleep(FRAME_S)
            now = loop.time()
            if call.transferring or call.transfers != transfers:
                start, call.voiced_s, transfers = now, 0.0, call.transfers
                continue
            quiet = now - max(start, call.last_voiced)
            if call.voiced_s >= AGENT_MIN_SPEECH_S and quiet >= quiet_s:
                return
            if quiet >= max(AGENT_TIMEOUT_S, quiet_s):
                self._event(call, "agent_timeout")
                return

    async def _play(self, call: _Call, text: str, pcm: np.ndarray, kind: str = "line") -> None:
        await self._enqueue(call, text, pcm, kind).done

    def _enqueue(self, call: _Call, text: str, pcm: np.ndarray, kind: str = "line") -> _Playout:
        """Queue audio to play after what is queued; its `done` resolves when it has played."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        item = _Playout(text, pcm, done, kind)
        call.queue.append(item)
        return item

    def _cut(self, call: _Call, item: _Playout) -> None:
        """Stop a playout now, played or not (a prompt cut short by a digit, ringback at the
        answer); its log entry, if it started, ends now and says so."""
        if item not in call.queue:
            return
        call.queue.remove(item)
        if item.entry is not None:
            item.entry.update(end=time.time(), cut=True)
            self._event(call, f"{item.kind}_end", text=item.text, cut=True)
        if not item.done.done():
            item.done.set_result(None)
