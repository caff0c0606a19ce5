"""The simulated phone, driven over 127.0.0.1 by a minimal SIP caller written here in raw UDP.

The caller plays livekit-sip's part: INVITE with an SDP offer, ACK, CANCEL, BYE, RTP both ways.
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
import time
import uuid
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devstack import phone as ph
from devstack.board import Board
from devstack.phone import Phone, SipMessage, g711_decode, g711_encode, parse_sdp, parse_sip, rms
from devstack.scenarios import CALL_ID_HEADER, scenario_for

HOST = "127.0.0.1"


class Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait((data, addr))


class Caller:
    """Just enough of a SIP UAC (and RTP endpoint) to drive one call."""

    def __init__(self, phone: Phone, number: str) -> None:
        self.phone_addr = phone.sip_address
        self.number = number
        self.call_id = uuid.uuid4().hex
        self.tag = uuid.uuid4().hex[:8]
        self.key = "ca-" + uuid.uuid4().hex[:8]
        self.branch = "z9hG4bK" + uuid.uuid4().hex[:12]
        self.cseq = 1
        self.to_tag: str | None = None
        self.rtp_seq, self.rtp_ts, self.ssrc = 1000, 5000, 0x1234
        self.received_rtp: list[tuple[float, bytes]] = []
        self.from_user = "caller"  # the From URI's user part: livekit-sip puts the caller id there

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.sip_t, self.sip = await loop.create_datagram_endpoint(Udp, local_addr=(HOST, 0))
        self.rtp_t, self.rtp = await loop.create_datagram_endpoint(Udp, local_addr=(HOST, 0))
        self.sip_port = self.sip_t.get_extra_info("sockname")[1]
        self.rtp_port = self.rtp_t.get_extra_info("sockname")[1]

    def close(self) -> None:
        self.sip_t.close()
        self.rtp_t.close()

    def request(
        self,
        method: str,
        *,
        cseq: int | None = None,
        branch: str | None = None,
        body: bytes = b"",
        extra: list[str] | None = None,
        compact: bool = False,
    ) -> bytes:
        to = f"<sip:{self.number}@{HOST}>"
        if self.to_tag and method != "CANCEL":  # (a CANCEL copies the INVITE's To)
            to += f";tag={self.to_tag}"
        names = ["Via", "From", "To", "Call-ID", "Contact", "Content-Length"]
        if compact:
            names = ["v", "f", "t", "i", "m", "l"]
        lines = [
            f"{method} sip:{self.number}@{HOST}:{self.phone_addr[1]} SIP/2.0",
            f"{names[0]}: SIP/2.0/UDP {HOST}:{self.sip_port};branch={branch or self.branch};rport",
            "Max-Forwards: 70",
            f'{names[1]}: "{self.from_user}" <sip:{self.from_user}@{HOST};transport=udp>;tag={self.tag}',
            f"{names[2]}: {to}",
            f"{names[3]}: {self.call_id}",
            f"CSeq: {cseq or self.cseq} {method}",
            f"{names[4]}: <sip:caller@{HOST}:{self.sip_port};transport=udp>",
            *(extra or []),
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"{names[5]}: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.sip_t.sendto(data, self.phone_addr)
        return data

    def offer(self) -> bytes:
        return (
            f"v=0\r\no=- 1 1 IN IP4 {HOST}\r\ns=LiveKit\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
            f"m=audio {self.rtp_port} RTP/AVP 9 0 8 101\r\na=rtpmap:9 G722/8000\r\n"
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            "a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
        ).encode()

    def invite(self, **kw: Any) -> bytes:
        return self.request("INVITE", body=self.offer(), extra=[f"{CALL_ID_HEADER}: {self.key}"], **kw)

    def ack(self) -> None:
        self.request("ACK", branch="z9hG4bK" + uuid.uuid4().hex[:12])

    async def next_sip(self, timeout: float = 5.0) -> SipMessage:
        data, _ = await asyncio.wait_for(self.sip.queue.get(), timeout)
        msg = parse_sip(data)
        assert msg is not None
        return msg

    async def response(self, method: str, status: int | None = None, timeout: float = 5.0) -> SipMessage:
        """The next response to `method` (skipping provisional ones unless asked for)."""
        while True:
            msg = await self.next_sip(timeout)
            if msg.status is None or msg.cseq[1] != method:
                continue
            if status is not None and msg.status != status and msg.status < 200:
                continue
            if msg.status > 100 and self.to_tag is None:
                self.to_tag = ph.header_param(msg.get("to") or "", "tag")
            return msg

    async def send_audio(self, pcm: np.ndarray, remote: tuple[str, int]) -> None:
        """Stream `pcm` as real-time 20 ms PCMU packets."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        for i in range(0, len(pcm), 160):
            frame = np.zeros(160, np.int16)
            chunk = pcm[i : i + 160]
            frame[: len(chunk)] = chunk
            self.send_rtp(0, g711_encode(frame, 0), remote)
            self.rtp_ts += 160
            due += 0.02
            await asyncio.sleep(max(0.0, due - loop.time()))

    def reply_ok(self, req: SipMessage) -> None:
        resp = f"SIP/2.0 200 OK\r\nVia: {req.get('via')}\r\n"
        resp += f"From: {req.get('from')}\r\nTo: {req.get('to')}\r\n"
        resp += f"Call-ID: {req.call_id}\r\nCSeq: {req.get('cseq')}\r\nContent-Length: 0\r\n\r\n"
        self.sip_t.sendto(resp.encode(), self.phone_addr)

    def send_rtp(
        self, pt: int, payload: bytes, remote: tuple[str, int], *, marker: bool = False, ts: int | None = None
    ) -> None:
        ts = self.rtp_ts if ts is None else ts
        hdr = struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), self.rtp_seq & 0xFFFF, ts, self.ssrc)
        self.rtp_seq += 1
        self.rtp_t.sendto(hdr + payload, remote)

    async def collect_rtp(self) -> None:
        while True:
            data, _ = await self.rtp.queue.get()
            self.received_rtp.append((time.time(), data))


def tone(seconds: float, hz: float = 440.0, amp: float = 12000.0) -> np.ndarray:
    t = np.arange(int(seconds * 8000)) / 8000
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def run(coro_fn: Any, tmp_path: Path, board: Board | None = None) -> Any:
    """Run `coro_fn(phone, board)` against a started Phone, with an overall timeout."""

    async def main() -> Any:
        b = board or Board()
        phone = Phone(board=b, sip_host=HOST, sip_port=0, rtp_host=HOST, run_dir=tmp_path)
        await phone.start()
        try:
            return await asyncio.wait_for(coro_fn(phone, b), 25)
        finally:
            await phone.stop()

    return asyncio.run(main())


def read_log(tmp_path: Path, number: str) -> dict[str, Any]:
    [path] = (tmp_path / "phone").glob(f"*-{number.lstrip('+')}.json")
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------------------------


def test_g711_matches_reference_properties() -> None:
    x = np.arange(-32768, 32768, dtype=np.int16)
    for pt, silence in ((0, 0xFF), (8, 0xD5)):
        assert g711_encode(np.zeros(3, np.int16), pt) == bytes([silence]) * 3
        dec = g711_decode(g711_encode(x, pt), pt).astype(np.int64)
        big = np.abs(x.astype(np.int64)) > 256
        assert np.all(np.abs(dec[big] - x[big]) / np.abs(x[big]) < 0.06)  # ~logarithmic quantisation
        assert np.all(np.diff(dec) >= 0)  # monotonic
        codes = bytes(range(256))
        again = g711_encode(g711_decode(codes, pt), pt)
        assert sum(a != b for a, b in zip(again, codes)) == (1 if pt == 0 else 0)  # mu-law has -0 (0x7f)
    assert g711_decode(b"\x00\x80", 0).tolist() == [-32124, 32124]
    assert g711_decode(b"\x2a\xaa", 8).tolist() == [-32256, 32256]
    tone_ = ph.beep()  # the voicemail beep: 0.4 s of 1 kHz
    assert len(tone_) == 3200 and abs(np.argmax(np.abs(np.fft.rfft(tone_))) * 8000 / 3200 - 1000) < 5


def test_parser_is_liberal() -> None:
    raw = (
        b"INVITE sip:+14155550100@10.0.0.1;user=phone SIP/2.0\n"
        b"v: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKa, SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKb\n"
        b"f: <sip:a@10.0.0.2>;tag=x\nt: <sip:+14155550100@10.0.0.1>\ni: abc\n"
        b"Record-Route: <sip:p1;lr>,<sip:p2;lr>\nCSeq: 7 INVITE\nSubject: a\n  folded\nl: 4\n\nbodyEXTRA"
    )
    msg = parse_sip(raw)
    assert msg is not None and msg.method == "INVITE" and msg.call_id == "abc" and msg.cseq == (7, "INVITE")
    assert len(msg.all("via")) == 2 and msg.branch == "z9hG4bKa"
    assert msg.all("record-route") == ["<sip:p1;lr>", "<sip:p2;lr>"]
    assert msg.get("subject") == "a folded" and msg.body == b"body"
    assert ph.uri_user(msg.uri or "") == "+14155550100" and scenario_for("+14155550100") is not None
    assert parse_sip(b"\r\n\r\n") is None
    sdp = parse_sdp(
        b"v=0\r\nc=IN IP4 10.1.1.1\r\nm=audio 4000 RTP/AVP 9 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    )  # no PCMU: PCMA
    assert sdp is not None and (sdp.addr, sdp.port) == ("10.1.1.1", 4000) and sdp.pick() == (8, 101)


def test_conversation_call(tmp_path: Path) -> None:
    """0100: rings ~1 s, answers with SDP; after our tone + silence it says its first line as RTP;
    INVITE retransmission, OPTIONS, re-INVITE and RFC 2833 are handled; our BYE ends the call."""

    async def scenario(phone: Phone, board: Board) -> dict[str, Any]:
        c = Caller(phone, "+14155550100")
        await c.open()
        t0 = time.time()
        first_invite = c.invite()
        assert (await c.next_sip()).status == 100
        ringing = await c.response("INVITE", 180)
        assert ringing.status == 180
        ok = await c.response("INVITE", 200)
        answered_after = time.time() - t0
        assert ok.status == 200 and 0.8 < answered_after < 2.0
        assert ok.get("content-type") == "application/sdp" and ok.get("contact")
        sdp = parse_sdp(ok.body)
        assert sdp is not None and sdp.addr == HOST and sdp.pick() == (0, 101)
        remote = (HOST, sdp.port)
        c.ack()

        c.sip_t.sendto(first_invite, phone.sip_address)  # a retransmission: same answer, no new call
        again = await c.response("INVITE")
        assert again.status == 200 and ph.header_param(again.get("to") or "", "tag") == c.to_tag
        assert len(phone.calls()) == 1

        c.request("OPTIONS", cseq=2, branch="z9hG4bKopt")
        assert (await c.response("OPTIONS")).status == 200
        c.request("INVITE", cseq=3, branch="z9hG4bKreinv", body=c.offer())
        re_ok = await c.response("INVITE")
        assert re_ok.status == 200 and re_ok.body == ok.body
        c.ack()

        collector = asyncio.create_task(c.collect_rtp())
        await c.send_audio(tone(1.0), remote)
        quiet_from = time.time()
        silence = asyncio.create_task(c.send_audio(np.zeros(8000 * 6, np.int16), remote))
        # The phone's first line should start ~0.7 s after we went quiet.
        while not any(rms(g711_decode(p[12:], 0)) > 1000 for t, p in c.received_rtp if t > quiet_from):
            await asyncio.sleep(0.05)
            assert time.time() - quiet_from < 4, "phone never spoke"
        spoke_at = next(t for t, p in c.received_rtp if t > quiet_from and rms(g711_decode(p[12:], 0)) > 1000)
        assert 0.5 < spoke_at - quiet_from < 1.5
        first_line = scenario_for("+14155550100").lines[0].text  # type: ignore[union-attr]
        assert board.next_unheard(c.key) == first_line  # posted when it started playing

        # RFC 2833 '5': three updates plus three end packets, all one event (same timestamp).
        for i, end in enumerate([0, 0, 0, 1, 1, 1]):
            event = struct.pack("!BBH", 5, (0x80 if end else 0) | 10, 160 * (i + 1))
            c.send_rtp(101, event, remote, marker=i == 0, ts=777000)
        await asyncio.sleep(0.3)
        silence.cancel()

        c.cseq = 4
        c.request("BYE", branch="z9hG4bKbye")
        assert (await c.response("BYE")).status == 200
        await asyncio.sleep(0.1)
        collector.cancel()

        # Outgoing RTP: one SSRC, PCMU, consecutive sequence numbers and 160-sample timestamps.
        pkts = [p for _, p in c.received_rtp]
        assert len(pkts) > 50
        hdrs = [struct.unpack_from("!BBHII", p) for p in pkts]
        assert {h[1] & 0x7F for h in hdrs} == {0} and len({h[4] for h in hdrs}) == 1
        assert all((b[2] - a[2]) & 0xFFFF == 1 for a, b in zip(hdrs, hdrs[1:]))
        assert all((b[3] - a[3]) & 0xFFFFFFFF == 160 for a, b in zip(hdrs, hdrs[1:]))
        assert hdrs[0][1] & 0x80  # marker on the first packet
        c.close()
        return phone.calls()[0]

    entry = run(scenario, tmp_path)
    on_disk = read_log(tmp_path, "+14155550100")
    assert on_disk == entry
    assert entry["scenario"] == "conversation" and entry["number"] == "+14155550100"
    assert entry["call_key"].startswith("ca-") and entry["sip_call_id"]
    assert entry["from_number"] == "caller" and entry["from_uri"] == f"sip:caller@{HOST};transport=udp"
    assert entry["final_status"] == 200 and entry["hangup_by"] == "remote" and entry["ended"] is True
    assert entry["invite_at"] < entry["ringing_at"] < entry["answered_at"] < entry["first_audio_at"]
    assert entry["answered_at"] - entry["invite_at"] > 0.9
    assert [d["digit"] for d in entry["dtmf"]] == ["5"]
    [utt] = entry["utterances"]
    assert utt["text"].startswith("Hello, this is Sam")
    assert entry["first_audio_at"] < utt["start"] < utt["end"]
    [seg] = entry["agent_speech"]  # our 1 s tone
    assert 0.8 < seg["end"] - seg["start"] < 1.3 and seg["end"] < utt["start"]
    assert entry["hangup_at"] >= utt["start"]

    with wave.open(str(tmp_path / "phone" / entry["recording"])) as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (8000, 2, 1)
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    # The file starts at answered_at, so the tone sits at first_audio_at - answered_at.
    start = int((entry["first_audio_at"] - entry["answered_at"]) * 8000)
    seg_pcm = pcm[max(0, start - 800) : start + 8800]
    assert rms(seg_pcm) > 3000
    spectrum = np.abs(np.fft.rfft(seg_pcm.astype(float)))
    assert abs(np.argmax(spectrum) * 8000 / len(seg_pcm) - 440) < 10
    assert rms(pcm[start + 10000 :]) < ph.SILENCE_RMS  # only silence after the tone
    assert abs(len(pcm) / 8000 - (entry["hangup_at"] - entry["answered_at"])) < 0.5


def test_phone_hangs_up_with_in_dialog_bye(tmp_path: Path) -> None:
    """0106 says two lines (each after we spoke), then sends a proper BYE through our route set."""

    async def scenario(phone: Phone, board: Board) -> dict[str, Any]:
        c = Caller(phone, "4155550106")
        await c.open()
        rr = f"<sip:{HOST}:{c.sip_port};lr>"
        c.request("INVITE", body=c.offer(), extra=[f"Record-Route: {rr}"])
        ok = await c.response("INVITE", 200)
        assert ok.get("record-route") == rr
        sdp = parse_sdp(ok.body)
        assert sdp is not None
        remote = (HOST, sdp.port)
        c.ack()
        collector = asyncio.create_task(c.collect_rtp())
        for turn in (1, 2):
            await c.send_audio(tone(0.4), remote)
            n = len(c.received_rtp)
            # keep the line "open" with silence until the phone has said its line
            while not (len(u := phone.calls()[0]["utterances"]) == turn and u[-1]["end"]):
                await c.send_audio(np.zeros(800, np.int16), remote)
            assert any(rms(g711_decode(p[12:], 0)) > 1000 for _, p in c.received_rtp[n:])
        bye = await c.next_sip(timeout=3)
        assert bye.method == "BYE"
        assert bye.uri == f"sip:caller@{HOST}:{c.sip_port};transport=udp"  # our Contact
        assert bye.get("route") == rr and bye.call_id == c.call_id and bye.cseq[1] == "BYE"
        assert ph.header_param(bye.get("to") or "", "tag") == c.tag
        assert ph.header_param(bye.get("from") or "", "tag") == c.to_tag
        c.reply_ok(bye)
        await asyncio.sleep(0.2)
        assert not phone._pending  # our 200 completed the BYE transaction
        collector.cancel()
        c.close()
        return phone.calls()[0]

    entry = run(scenario, tmp_path)
    assert entry["call_key"] == entry["sip_call_id"]  # no X-Callagent-Call-Id header: the SIP Call-ID
    assert entry["hangup_by"] == "phone" and entry["ended"]
    assert [u["text"] for u in entry["utterances"]] == ["Hello? Who is this?", "Sorry, I have to go."]
    assert len(entry["agent_speech"]) == 2
    assert entry["utterances"][1]["end"] <= entry["hangup_at"]


def _reject(number: str, status: int, min_s: float, max_s: float, tmp_path: Path) -> dict[str, Any]:
    async def scenario(phone: Phone, board: Board) -> dict[str, Any]:
        c = Caller(phone, number)
        await c.open()
        t0 = time.time()
        c.invite(compact=True)
        final = await c.response("INVITE", status)
        assert final.status == status and min_s <= time.time() - t0 < max_s
        assert ph.header_param(final.get("to") or "", "tag")
        # Unacknowledged, the final response is retransmitted (RFC 3261 17.2.1).
        again = await c.response("INVITE", status, timeout=1.5)
        assert again.status == status
        c.request("ACK")  # same branch as the INVITE, as for any non-2xx
        await asyncio.sleep(0.1)
        c.close()
        return phone.calls()[0]

    entry = run(scenario, tmp_path)
    assert entry["final_status"] == status and entry["ended"] and entry["answered_at"] is None
    assert entry["recording"] is None and read_log(tmp_path, number) == entry
    return entry


def test_busy(tmp_path: Path) -> None:
    entry = _reject("+14155550103", 486, 0.0, 0.5, tmp_path)
    assert entry["scenario"] == "busy" and entry["ringing_at"] is not None


def test_decline(tmp_path: Path) -> None:
    entry = _reject("+14155550104", 603, 0.9, 2.0, tmp_path)
    assert entry["scenario"] == "declined"


def test_unknown_number(tmp_path: Path) -> None:
    entry = _reject("+14155550199", 404, 0.0, 0.5, tmp_path)
    assert entry["scenario"] is None and entry["ringing_at"] is None


def test_no_answer_then_cancel(tmp_path: Path) -> None:
    async def scenario(phone: Phone, board: Board) -> dict[str, Any]:
        c = Caller(phone, "+14155550105")
        await c.open()
        c.invite()
        assert (await c.response("INVITE", 180)).status == 180
        with_timeout = asyncio.create_task(c.response("INVITE", 200, timeout=1.0))
        try:
            await with_timeout
            raise AssertionError("0105 must not answer")
        except TimeoutError:
            pass
        c.request("CANCEL")  # same branch and CSeq number as the INVITE
        got = {(m.cseq[1], m.status) for m in [await c.next_sip(), await c.next_sip()]}
        assert got == {("CANCEL", 200), ("INVITE", 487)}
        c.request("ACK")
        c.close()
        return phone.calls()[0]

    entry = run(scenario, tmp_path)
    assert entry["final_status"] == 487 and entry["hangup_by"] == "canceled" and entry["answered_at"] is None


def test_stop_hangs_up_live_calls(tmp_path: Path) -> None:
    async def main() -> dict[str, Any]:
        phone = Phone(board=Board(), sip_host=HOST, sip_port=0, rtp_host=HOST, run_dir=tmp_path)
        await phone.start()
        c = Caller(phone, "+14155550101")  # silent: answers and waits
        await c.open()
        c.invite()
        assert (await c.response("INVITE", 200)).status == 200
        c.ack()
        stopping = asyncio.create_task(phone.stop())
        bye = await c.next_sip(timeout=2)
        assert bye.method == "BYE" and bye.call_id == c.call_id
        c.reply_ok(bye)
        await asyncio.wait_for(stopping, 2)
        c.close()
        return phone.calls()[0]

    entry = asyncio.run(main())
    assert entry["hangup_by"] == "phone" and entry["ended"] and entry["final_status"] == 200
    assert entry["utterances"] == [] and entry["agent_speech"] == []


def test_events_log(tmp_path: Path) -> None:
    """One JSON line per event, for other processes to follow."""
    _reject("+14155550103", 486, 0.0, 0.5, tmp_path)
    events = [json.loads(ln) for ln in (tmp_path / "phone" / "events.log").read_text().splitlines()]
    assert [e["event"] for e in events][:4] == ["invite", "ringing", "final", "hangup"]
    assert all(e["call"] == "0001-14155550103" and e["at"] > 0 for e in events)


# -- the auto-attendant (0111) and early media (0113) ------------------------------------------

ATTENDANT = "+14155550111"
EARLY_MEDIA = "+14155550113"


def test_attendant_and_early_media_scenarios_load() -> None:
    att_sc, early, conversation = scenario_for(ATTENDANT), scenario_for("4155550113"), scenario_for("+14155550100")
    assert att_sc is not None and early is not None and conversation is not None
    att = att_sc.attendant
    assert att is not None and att_sc.name == "auto_attendant" and not att_sc.early_media
    assert att.prompt.text.startswith("Thank you for calling Harbor Dental.") and att.extension == "123"
    assert att.invalid.text == "That extension is not valid. Goodbye." and att.invalid.outcome
    assert (att.max_digits, att.digit_gap_s, att.no_digit_s) == (3, 2.0, 10.0)
    assert att_sc.lines[0].text.startswith("Front office, this is Jordan speaking.")
    assert att_sc.lines[0].when == "on_answer" and att_sc.lines[-1].reply.tool.name == "end_call"  # type: ignore[union-attr]
    assert [ln.text for ln in att_sc.spoken()] == [att.prompt.text, att.invalid.text, *(ln.text for ln in att_sc.lines)]
    assert early.name == "early_media" and early.early_media and early.ring_s == 4.0 and early.attendant is None
    assert early.lines == conversation.lines and early.outcome == conversation.outcome  # 0100's conversation


def test_extension_collection() -> None:
    collect = ph.collect_extension
    # digits as they come: complete at the third, later ones not taken
    assert collect([("1", 1.0), ("2", 1.5), ("3", 2.0), ("4", 2.2)], 0.0) == ("123", 2.0)
    # a gap of 2 s ends it: "12", over at 3.5; the 3 at 4.0 is too late
    assert collect([("1", 1.0), ("2", 1.5), ("3", 4.0)], 0.0) == ("12", 3.5)
    assert collect([("1", 1.0), ("2", 2.9), ("3", 4.8)], 0.0) == ("123", 4.8)  # gaps under 2 s
    assert collect([("9", 3.0)], 0.0) == ("9", 5.0)  # a wrong extension: routing is the phone's
    assert collect([], 100.0) == (None, 110.0)  # no digit in 10 s
    assert collect([("1", 110.5)], 100.0) == (None, 110.0)  # too late
    assert collect([("1", 109.9)], 100.0) == ("1", 111.9)  # just in time
    assert collect([("2", 1.5), ("1", 1.0)], 0.0, max_digits=2) == ("12", 1.5)  # in time order

    c = ph.ExtensionCollector(10.0, max_digits=3, gap_s=2.0, wait_s=10.0)
    assert not c.done(19.9) and c.done(20.0) and c.extension is None
    assert c.press("1", 11.0) and not c.done(12.9) and c.done(13.0)
    assert c.press("2", 12.0) and c.press("3", 12.5) and c.done(12.5) and not c.press("4", 12.6)
    assert c.extension == "123" and c.deadline() == 12.5


def test_ringback_is_440_plus_480_two_on_four_off() -> None:
    rb = ph.ringback(7.0)
    assert len(rb) == 7 * 8000
    on, off, again = rb[: 2 * 8000], rb[2 * 8000 + 80 : 6 * 8000 - 80], rb[6 * 8000 : 7 * 8000]
    assert rms(on) > 3000 and np.max(np.abs(off)) == 0 and rms(again) > 3000
    spectrum = np.abs(np.fft.rfft(on.astype(float)))
    peaks = sorted(np.argsort(spectrum)[-2:] * 8000 / len(on))
    assert abs(peaks[0] - 440) < 2 and abs(peaks[1] - 480) < 2
    assert abs(rb[0]) < 200 and abs(rb[2 * 8000 - 1]) < 200  # faded in and out: no clicks


def test_special_information_tones_rise_in_three_steps() -> None:
    sit = ph.sit_tones()
    bounds = np.cumsum([0] + [int(seconds * 8000) for _, seconds in ph.SIT_TONES])
    assert len(sit) == bounds[-1]
    for (hz, _), start, end in zip(ph.SIT_TONES, bounds[:-1], bounds[1:], strict=True):
        part = sit[start:end].astype(float)
        peak = np.argmax(np.abs(np.fft.rfft(part))) * 8000 / len(part)
        assert abs(peak - hz) < 5 and rms(sit[start:end]) > 3000
    assert ph.scenario_for("+14155550110").lines[0].tones == "sit"  # type: ignore[union-attr]


def dtmf_event(c: Caller, digit: int, remote: tuple[str, int], ts: int) -> None:
    """One RFC 4733 event as livekit-sip sends it: updates then three end packets, one timestamp."""
    for i, end in enumerate([0, 0, 1, 1, 1]):
        c.send_rtp(101, struct.pack("!BBH", digit, (0x80 if end else 0) | 10, 160 * (i + 1)), remote, ts=ts)


async def answered(c: Caller) -> tuple[str, int]:
    """INVITE, the 200 and our ACK: where to send our RTP."""
    c.invite()
    ok = await c.response("INVITE", 200)
    sdp = parse_sdp(ok.body)
    assert ok.status == 200 and sdp is not None
    c.ack()
    return HOST, sdp.port


def test_attendant_puts_the_person_on_for_123(tmp_path: Path) -> None:
    """The prompt plays from the answer; the agent "talks" over it (our tone) and keys 1 2 3:
    the first digit cuts the prompt, the third completes the extension, and Jordan picks up
    once our tone has stopped; the scenario's lines go on from there."""
    sc = scenario_for(ATTENDANT)
    assert sc is not None and sc.attendant is not None

    async def scenario(phone: Phone, board: Board) -> tuple[dict[str, Any], str | None]:
        c = Caller(phone, ATTENDANT)
        await c.open()
        remote = await answered(c)
        greeting = asyncio.create_task(c.send_audio(tone(2.5), remote))  # the agent's opening
        await asyncio.sleep(0.6)
        for i, digit in enumerate((1, 2, 3)):
            dtmf_event(c, digit, remote, ts=900000 + 1000 * i)
            await asyncio.sleep(0.3)
        await greeting
        tone_end = time.time()
        # silence until Jordan has started, then our turn and silence until the next line
        while not phone.calls()[0]["utterances"][1:]:
            await c.send_audio(np.zeros(800, np.int16), remote)
        heard = board.next_unheard(c.key)  # the prompt was forgotten: the STT hears Jordan
        assert phone.calls()[0]["utterances"][1]["start"] - tone_end > ph.AGENT_QUIET_S - 0.1
        while not phone.calls()[0]["utterances"][1]["end"]:  # Jordan's line played out: our turn
            await c.send_audio(np.zeros(800, np.int16), remote)
        await c.send_audio(tone(0.5), remote)
        while not phone.calls()[0]["utterances"][2:]:
            await c.send_audio(np.zeros(800, np.int16), remote)
        c.request("BYE", cseq=2, branch="z9hG4bKbye")
        assert (await c.response("BYE")).status == 200
        c.close()
        return phone.calls()[0], heard

    entry, heard = run(scenario, tmp_path)
    assert entry["scenario"] == "auto_attendant" and entry["hangup_by"] == "remote"
    assert [d["digit"] for d in entry["dtmf"]] == ["1", "2", "3"]
    assert entry["extension"] == "123" and entry["person_reached"] is True
    prompt, jordan, second = entry["utterances"]
    assert prompt["text"] == sc.attendant.prompt.text and prompt["cut"] is True
    assert abs(prompt["end"] - entry["dtmf"][0]["at"]) < 0.1  # cut by the first digit
    assert jordan["text"] == sc.lines[0].text == heard and jordan["start"] > entry["dtmf"][-1]["at"]
    assert second["text"] == sc.lines[1].text


def test_attendant_turns_away_a_wrong_extension_and_silence(tmp_path: Path, monkeypatch: Any) -> None:
    """A 9, then nothing for 2 s: "not valid", BYE. No digit at all (in 1 s here, 10 s in the
    scenario): the prompt to its end, then the same goodbye and BYE."""
    sc = scenario_for(ATTENDANT)
    assert sc is not None and sc.attendant is not None
    monkeypatch.setattr(sc.attendant, "no_digit_s", 1.0)

    async def one(phone: Phone, digits: list[int]) -> dict[str, Any]:
        c = Caller(phone, ATTENDANT)
        await c.open()
        remote = await answered(c)
        key = c.key
        await asyncio.sleep(0.5)
        for i, digit in enumerate(digits):
            dtmf_event(c, digit, remote, ts=500000 + 1000 * i)
        bye = await c.next_sip(timeout=15)
        assert bye.method == "BYE"
        c.reply_ok(bye)
        await asyncio.sleep(0.1)
        c.close()
        return next(e for e in phone.calls() if e["call_key"] == key)

    async def scenario(phone: Phone, board: Board) -> list[dict[str, Any]]:
        return list(await asyncio.gather(one(phone, [9]), one(phone, [])))

    wrong, silent = run(scenario, tmp_path)
    att = sc.attendant
    for entry in (wrong, silent):
        assert entry["hangup_by"] == "phone" and entry["person_reached"] is False
        assert [u["text"] for u in entry["utterances"]] == [att.prompt.text, att.invalid.text]
        assert entry["hangup_at"] >= entry["utterances"][-1]["end"]
    assert wrong["extension"] == "9" and wrong["utterances"][0]["cut"] is True
    # the goodbye follows the digit's 2 s gap
    assert 1.9 < wrong["utterances"][1]["start"] - wrong["dtmf"][0]["at"] < 2.3
    assert silent["extension"] is None and silent["dtmf"] == [] and "cut" not in silent["utterances"][0]


def test_early_media_rings_in_band_before_the_answer(tmp_path: Path) -> None:
    """0113: 183 with SDP at once (no 180), ringback over RTP (2 s of 440 + 480 Hz, then quiet),
    the 200 with the same SDP 4 s later. Audio reaching the phone before the answer is logged
    and recorded (the recording starts at the 183), so a test can tell it apart."""

    async def scenario(phone: Phone, board: Board) -> tuple[dict[str, Any], list[tuple[float, bytes]]]:
        c = Caller(phone, EARLY_MEDIA)
        await c.open()
        collector = asyncio.create_task(c.collect_rtp())
        c.invite()
        assert (await c.next_sip()).status == 100
        progress = await c.response("INVITE", 183)
        assert progress.status == 183 and progress.reason == "Session Progress" and progress.get("contact")
        assert progress.get("content-type") == "application/sdp"
        sdp = parse_sdp(progress.body)
        assert sdp is not None and sdp.pick() == (0, 101)
        remote = (HOST, sdp.port)
        await asyncio.sleep(2.5)
        await c.send_audio(tone(0.4), remote)  # something said into the early media
        ok = await c.response("INVITE", 200, timeout=5)
        assert ok.status == 200 and ok.body == progress.body  # one SDP, one media session
        assert ph.header_param(ok.get("to") or "", "tag") == c.to_tag
        c.ack()
        await asyncio.sleep(0.5)
        c.request("BYE", cseq=2, branch="z9hG4bKbye")
        assert (await c.response("BYE")).status == 200
        collector.cancel()
        c.close()
        return phone.calls()[0], c.received_rtp

    entry, received = run(scenario, tmp_path)
    assert entry["scenario"] == "early_media" and entry["final_status"] == 200
    assert entry["early_media_at"] == entry["ringing_at"]
    assert 0 <= entry["early_media_at"] - entry["recording_at"] < 0.05  # recorded from the 183 on
    assert 3.9 < entry["answered_at"] - entry["early_media_at"] < 4.5
    rb = entry["ringback"]
    assert rb["cut"] is True and abs(rb["start"] - entry["early_media_at"]) < 0.1
    assert abs(rb["end"] - entry["answered_at"]) < 0.1
    # What we received before the answer: a 2 s burst of 440 + 480 Hz, then silence.
    early = np.concatenate([g711_decode(p[12:], 0) for t, p in received if t < entry["answered_at"]])
    assert 3.8 < len(early) / 8000 < 4.6
    burst, gap = early[: 2 * 8000 - 400], early[2 * 8000 + 400 :]
    assert rms(burst) > 3000 and rms(gap) < ph.SILENCE_RMS
    spectrum = np.abs(np.fft.rfft(burst.astype(float)))
    peaks = sorted(np.argsort(spectrum)[-2:] * 8000 / len(burst))
    assert abs(peaks[0] - 440) < 3 and abs(peaks[1] - 480) < 3
    # Our tone before the answer is in agent_speech and in the recording, at its place.
    [seg] = entry["agent_speech"]
    assert entry["early_media_at"] < entry["first_audio_at"] == seg["start"] < entry["answered_at"]
    with wave.open(str(tmp_path / "phone" / entry["recording"])) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    at = int((seg["start"] - entry["recording_at"]) * 8000)
    assert rms(pcm[at : at + 3200]) > 3000 and rms(pcm[: max(0, at - 800)]) < ph.SILENCE_RMS


def test_the_phone_menu_scenario_loads() -> None:
    menu_sc = scenario_for("+14155550108")
    assert menu_sc is not None and menu_sc.menu is not None and menu_sc.name == "phone_menu"
    menu = menu_sc.menu
    assert "press 1" in menu.prompt.text and set(menu.options) == {"1", "2"}
    assert (menu.rounds, menu.no_digit_s) == (3, 10.0)
    assert menu.prompt.reply is not None and menu.prompt.reply.tool is not None
    assert menu.prompt.reply.tool.name == "send_dtmf_events" and menu.prompt.reply.tool.arguments == {"events": ["1"]}
    desk = menu.options["1"].lines
    assert desk[0].text.startswith("Appointments desk, this is Riley") and desk[0].when == "on_answer"
    spoken = [ln.text for ln in menu_sc.spoken()]
    assert spoken[:2] == [menu.prompt.text, menu.goodbye.text] and desk[0].text in spoken


# -- cold transfer (REFER) and the transfer scenarios (0112, 0114) -----------------------------

FRONT_DESK = "+14155550112"
ASKS_FOR_PERSON = "+14155550114"
REFER_EVENT = re.compile(r"^refer(;id=(\d+))?$")  # livekit-sip's referIdRegexp (on the lower-cased value)


async def next_request(c: Caller, method: str, timeout: float = 5.0) -> SipMessage:
    """The next request `method` the phone sends us (responses and other requests skipped)."""
    while True:
        msg = await c.next_sip(timeout)
        if msg.method == method:
            return msg


def refer(c: Caller, refer_to: str | None, cseq: int, branch: str) -> bytes:
    extra = [f"Referred-By: <sip:caller@{HOST}>"] + ([f"Refer-To: {refer_to}"] if refer_to else [])
    return c.request("REFER", cseq=cseq, branch=branch, extra=extra)


def assert_notify(c: Caller, notify: SipMessage, refer_cseq: int, body: bytes, state: str) -> None:
    """A NOTIFY as livekit-sip takes it: in our dialog, Event refer;id=<REFER's CSeq>, sipfrag."""
    assert notify.uri == f"sip:caller@{HOST}:{c.sip_port};transport=udp" and notify.call_id == c.call_id
    assert ph.header_param(notify.get("to") or "", "tag") == c.tag
    assert ph.header_param(notify.get("from") or "", "tag") == c.to_tag
    m = REFER_EVENT.match((notify.get("event") or "").lower())
    assert m and m.group(2) == str(refer_cseq)
    assert (notify.get("subscription-state") or "").startswith(state)
    assert notify.get("content-type") == "message/sipfrag;version=2.0" and notify.get("contact")
    assert notify.body == body and notify.cseq[1] == "NOTIFY"


def test_cold_transfer_to_the_front_desk(tmp_path: Path) -> None:
    """REFER to 0112 (answers after 1 s): 202 (again for a retransmitted REFER), NOTIFY 100
    (retransmitted until answered), NOTIFY 200 once the desk "answered", then the phone's BYE."""

    async def scenario(phone: Phone, board: Board) -> tuple[dict[str, Any], dict[str, float]]:
        c = Caller(phone, "+14155550100")
        await c.open()
        await answered(c)
        t: dict[str, float] = {"refer": time.time()}
        sent = refer(c, f"<sip:{FRONT_DESK}@{HOST}:5060>", 2, "z9hG4bKrefer")
        c.sip_t.sendto(sent, phone.sip_address)  # a retransmission: the same 202, no second transfer
        accepted: list[SipMessage] = []
        notifies: list[SipMessage] = []
        while len(accepted) < 2 or not notifies:
            msg = await c.next_sip()
            (notifies if msg.method == "NOTIFY" else accepted).append(msg)
        assert [(m.cseq, m.status) for m in accepted] == [((2, "REFER"), 202)] * 2
        assert accepted[0].get("contact") and ph.header_param(accepted[0].get("to") or "", "tag") == c.to_tag
        [trying] = notifies
        assert_notify(c, trying, 2, b"SIP/2.0 100 Trying\r\n", "active")
        again = await next_request(c, "NOTIFY", timeout=1.0)  # unanswered: retransmitted after T1
        assert again.branch == trying.branch and again.cseq == trying.cseq
        c.reply_ok(again)
        final = await next_request(c, "NOTIFY", timeout=3.0)
        t["final"] = time.time()
        assert_notify(c, final, 2, b"SIP/2.0 200 OK\r\n", "terminated")
        assert final.cseq[0] > trying.cseq[0] and final.branch != trying.branch
        c.reply_ok(final)
        bye = await next_request(c, "BYE", timeout=2.0)
        t["bye"] = time.time()
        assert bye.cseq[0] > final.cseq[0]
        c.reply_ok(bye)
        await asyncio.sleep(0.2)
        assert not phone._pending
        c.close()
        return phone.calls()[0], t

    entry, t = run(scenario, tmp_path)
    transfer = entry["transfer"]
    assert transfer["to"] == FRONT_DESK and transfer["refer_to"] == f"sip:{FRONT_DESK}@{HOST}:5060"
    assert (transfer["status"], transfer["reason"]) == (200, "OK")
    assert t["refer"] < transfer["referred_at"] < transfer["at"] <= t["final"]
    assert 0.95 < transfer["at"] - transfer["referred_at"] < 1.6  # the desk's ring_s
    assert 0.1 < t["bye"] - t["final"] < 1.0  # before livekit-sip's own hang-up (1 s)
    assert entry["hangup_by"] == "phone" and entry["ended"] and entry["hangup_at"] >= transfer["at"]
    assert read_log(tmp_path, "+14155550100")["transfer"] == transfer


def test_failed_cold_transfers_and_the_call_goes_on(tmp_path: Path, monkeypatch: Any) -> None:
    """Busy, declined, unknown and never-answering targets (Refer-To as tel: or sip:, with or
    without + and <>): 100 then the failure as the final NOTIFY, no BYE; while the transfer is
    under way the phone takes no turn, afterwards it waits for the agent to speak again."""
    monkeypatch.setattr(ph, "REFER_NO_ANSWER_S", 1.0)
    cases = [
        ("tel:+14155550103", "+14155550103", 486, "Busy Here"),
        (f"<sip:4155550104@{HOST}>", "+14155550104", 603, "Decline"),
        (f"<sip:+14155550199@{HOST};user=phone>", "+14155550199", 404, "Not Found"),
        (f"sip:14155550105@{HOST}", "+14155550105", 480, "Temporarily Unavailable"),
    ]

    async def one(phone: Phone, refer_to: str, status: int, reason: str) -> tuple[dict[str, Any], float]:
        c = Caller(phone, "+14155550100")
        await c.open()
        remote = await answered(c)
        await c.send_audio(tone(0.4), remote)  # the agent spoke: the phone's turn in 0.7 s...
        refer(c, refer_to, 2, "z9hG4bKrefer")  # ...but a transfer comes first
        assert (await c.response("REFER")).status == 202
        if status == 480:  # one REFER at a time
            refer(c, refer_to, 3, "z9hG4bKrefer2")
            assert (await c.response("REFER")).status == 491
        trying = await next_request(c, "NOTIFY")
        c.reply_ok(trying)
        final = await next_request(c, "NOTIFY", timeout=3.0)
        final_at = time.time()
        assert_notify(c, final, 2, f"SIP/2.0 {status} {reason}\r\n".encode(), "terminated")
        c.reply_ok(final)
        await c.send_audio(np.zeros(8000 * 2, np.int16), remote)  # no BYE, and no line: not its turn
        assert c.sip.queue.empty()

        def entry() -> dict[str, Any]:
            return next(e for e in phone.calls() if e["call_key"] == c.key)

        assert entry()["utterances"] == [] and not entry()["ended"]
        await c.send_audio(tone(0.4), remote)  # the agent tells the callee: now the phone answers
        while not entry()["utterances"]:
            await c.send_audio(np.zeros(800, np.int16), remote)
        c.request("BYE", cseq=4, branch="z9hG4bKbye")
        assert (await c.response("BYE")).status == 200
        c.close()
        return entry(), final_at

    async def scenario(phone: Phone, board: Board) -> list[tuple[dict[str, Any], float]]:
        return list(await asyncio.gather(*(one(phone, r, s, why) for r, _, s, why in cases)))

    results = run(scenario, tmp_path)
    for (entry, final_at), (refer_to, number, status, reason) in zip(results, cases, strict=True):
        transfer = entry["transfer"]
        assert transfer["to"] == number and transfer["refer_to"] == ph.uri_of(refer_to)
        assert (transfer["status"], transfer["reason"]) == (status, reason)
        assert transfer["at"] <= final_at
        assert entry["hangup_by"] == "remote" and len(entry["utterances"]) == 1
        assert entry["utterances"][0]["start"] > final_at + 2.0
    waited = {s: e["transfer"]["at"] - e["transfer"]["referred_at"] for (e, _), (_, _, s, _) in zip(results, cases)}
    assert waited[486] < 0.3 and waited[404] < 0.3 and 0.95 < waited[603] < 1.5 and 0.95 < waited[480] < 1.5


def test_refer_outside_a_dialog_or_without_refer_to(tmp_path: Path) -> None:
    async def scenario(phone: Phone, board: Board) -> dict[str, Any]:
        stranger = Caller(phone, "+14155550100")
        await stranger.open()
        refer(stranger, f"<sip:{FRONT_DESK}@{HOST}>", 1, "z9hG4bKstray")  # no such call
        assert (await stranger.response("REFER")).status == 481
        stranger.close()
        c = Caller(phone, "+14155550101")
        await c.open()
        await answered(c)
        refer(c, None, 2, "z9hG4bKnoreferto")
        assert (await c.response("REFER")).status == 400
        c.request("BYE", cseq=3, branch="z9hG4bKbye")
        assert (await c.response("BYE")).status == 200
        c.close()
        return phone.calls()[0]

    entry = run(scenario, tmp_path)
    assert entry["transfer"] is None and entry["hangup_by"] == "remote"


def test_transfer_scenarios_load() -> None:
    desk, asks, conversation = scenario_for(FRONT_DESK), scenario_for(ASKS_FOR_PERSON), scenario_for("+14155550100")
    assert desk is not None and asks is not None and conversation is not None
    assert (desk.name, desk.answer, desk.ring_s, desk.after_lines) == ("front_desk", "answer", 1.0, "wait")
    assert [ln.text for ln in desk.lines] == [
        "Front desk, this is Alex.",
        "Sure, put them through.",
        "There is free parking behind the building.",
    ]
    assert all(ln.when == "after_agent" and ln.min_quiet_s is None for ln in desk.lines)
    assert (asks.name, asks.answer, asks.after_lines) == ("asks_for_person", "answer", "hangup")
    assert len(asks.lines) == 4 and all(ln.when == "after_agent" for ln in asks.lines)
    assert [ln.min_quiet_s for ln in asks.lines] == [None, None, 6.5, None]  # waits out the hold music
    assert asks.outcome and asks.outcome["goal_achieved"] == "yes"
    # every line of theirs is theirs alone (0113 shares 0100's on purpose)
    everywhere = [ln.text for sc in ph.scenarios().values() for ln in sc.spoken()]
    for ln in [*desk.lines, *asks.lines]:
        assert everywhere.count(ln.text) == 1, ln.text
    assert not {ln.text for ln in asks.lines} & {ln.text for ln in conversation.lines}


def test_a_line_with_min_quiet_waits_out_pauses_in_hold_music(tmp_path: Path, monkeypatch: Any) -> None:
    """A line with `min_quiet_s` (0114's third, 6.5 s; 0100's first with 2 s here) is said only
    after that much quiet: the 1.2 s pauses of "hold music" don't give the phone its turn."""
    sc = scenario_for("+14155550100")
    assert sc is not None
    monkeypatch.setattr(sc.lines[0], "min_quiet_s", 2.0)

    async def scenario(phone: Phone, board: Board) -> tuple[dict[str, Any], float]:
        c = Caller(phone, "+14155550100")
        await c.open()
        remote = await answered(c)
        for _ in range(3):  # "please hold", then music with pauses
            await c.send_audio(tone(0.5), remote)
            await c.send_audio(np.zeros(int(8000 * 1.2), np.int16), remote)
            assert phone.calls()[0]["utterances"] == []
        quiet_from = time.time() - 1.2
        while not phone.calls()[0]["utterances"]:
            await c.send_audio(np.zeros(800, np.int16), remote)
        c.request("BYE", cseq=2, branch="z9hG4bKbye")
        assert (await c.response("BYE")).status == 200
        c.close()
        return phone.calls()[0], quiet_from

    entry, quiet_from = run(scenario, tmp_path)
    [line] = entry["utterances"]
    assert line["text"] == sc.lines[0].text and 1.9 < line["start"] - quiet_from < 2.5


def test_the_workers_hold_music_has_no_pause_as_long_as_0114s_min_quiet() -> None:
    """livekit-agents' hold music clip, as the phone hears it (volume 0.8, 48 kHz -> 8 kHz,
    G.711), looped: its longest stretch under the phone's speech threshold is shorter than the
    quiet 0114 waits for before asking about parking (it does have some: ~1.6 s fading in,
    ~4.3 s at its end)."""
    av = pytest.importorskip("av")
    from livekit.agents.voice.background_audio import BuiltinAudioClip

    sc = scenario_for(ASKS_FOR_PERSON)
    assert sc is not None and sc.lines[2].min_quiet_s is not None
    with av.open(BuiltinAudioClip.HOLD_MUSIC.path()) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
        frames = [f for fr in container.decode(audio=0) for f in resampler.resample(fr)]
        frames += resampler.resample(None)
    clip = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float64) * 0.8
    pcm = np.clip(np.round(ph.resample(clip, 48000, 8000)), -32768, 32767).astype(np.int16)
    looped = g711_decode(g711_encode(np.concatenate([pcm, pcm]), 0), 0).astype(np.float64)
    n = len(looped) // 160
    quiet = np.sqrt((looped[: n * 160].reshape(n, 160) ** 2).mean(axis=1)) <= ph.SILENCE_RMS
    longest = run_ = 0
    for q in quiet:
        run_ = run_ + 1 if q else 0
        longest = max(longest, run_)
    assert 1.0 < longest * ph.FRAME_S < sc.lines[2].min_quiet_s - 0.3


def test_a_line_with_pauses_is_heard_as_its_words_and_spoken_with_silences() -> None:
    from devstack.scenarios import Line

    line = Line.model_validate({"text": "Well, | um, |  I might be late.", "pauses": [0.45, 0.3]})
    # What the STT hears and the scripted LLM keys on: the words, without the marks.
    assert line.text == "Well, um, I might be late."
    assert (line.segments, line.pauses) == (["Well,", "um,", "I might be late."], [0.45, 0.3])

    pieces = [asyncio.run(ph.render_speech(seg)) for seg in line.segments]
    audio = asyncio.run(ph.render_line(line))
    assert len(audio) == sum(map(len, pieces)) + int(0.45 * ph.RATE) + int(0.3 * ph.RATE)
    gap = audio[len(pieces[0]) : len(pieces[0]) + int(0.45 * ph.RATE)]
    assert not gap.any()  # real silence: the callee stopped for breath
    assert asyncio.run(ph.render_line(Line(text="Yes."))) is ph._RENDERED[("en-us", "Yes.")]  # no marks: one piece


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"text": "Well, | um.", "pauses": []}, "one pause (seconds) per '|'"),
        ({"text": "Well, um.", "pauses": [0.4]}, "one pause (seconds) per '|'"),
        ({"text": "Well, | | um.", "pauses": [0.4, 0.4]}, "between non-empty pieces"),
        ({"text": "Well, | um.", "pauses": [0]}, "pauses are seconds in (0, 3]"),
        ({"text": "Well, | um.", "pauses": [4]}, "pauses are seconds in (0, 3]"),
    ],
)
def test_a_line_whose_pauses_do_not_fit_is_refused(data: dict[str, Any], fragment: str) -> None:
    from pydantic import ValidationError

    from devstack.scenarios import Line

    with pytest.raises(ValidationError, match=re.escape(fragment)):
        Line.model_validate(data)


def test_the_callee_who_pauses_mid_sentence() -> None:
    sc = scenario_for("+1 415 555 0116")
    assert sc is not None and sc.name == "pauses_mid_sentence" and sc.answer == "answer"
    assert len(sc.lines) == 4 and all(ln.pauses for ln in sc.lines)
    # 300-600 ms at commas and "um"s: what people do, and longer than a VAD-only agent waits.
    assert min(p for ln in sc.lines for p in ln.pauses) == 0.3
    assert max(p for ln in sc.lines for p in ln.pauses) == 0.6
    assert all(not seg.endswith((".", "?")) for ln in sc.lines for seg in ln.segments[:-1])  # mid-sentence
    assert sc.lines[-1].reply is not None and sc.lines[-1].reply.tool is not None
    assert sc.lines[-1].reply.tool.name == "end_call"


# -- languages: the Spanish-speaking callee (0115) and the caller id ----------------------------

SPANISH = "+14155550115"


def test_a_scenario_speaks_its_language_and_a_line_may_speak_another() -> None:
    from pydantic import ValidationError

    from devstack.scenarios import ESPEAK_VOICES, Scenario, espeak_voice

    sc = Scenario.model_validate(
        {
            "number": "+10000000000", "name": "x", "answer": "answer", "language": "fr",
            "lines": [{"text": "Allô ?"}, {"text": "Guten Tag.", "language": "de"}],
            "hold": {"announcement": {"text": "Veuillez patienter."}},
        }
    )  # fmt: skip
    assert [(ln.language, ln.voice) for ln in sc.spoken()] == [("fr", "fr-fr"), ("fr", "fr-fr"), ("de", "de")]
    plain = Scenario.model_validate(
        {"number": "+10000000001", "name": "y", "answer": "answer", "lines": [{"text": "Hi."}]}
    )
    assert plain.language == "en" and plain.lines[0].voice == "en-us"  # the default stays American English
    assert espeak_voice(None) == "en-us" and espeak_voice("es") == "es-419"
    assert set(ESPEAK_VOICES) == {"en", "es", "fr", "de", "hi", "ta"}
    with pytest.raises(ValidationError, match="language"):
        Scenario.model_validate({"number": "+1", "name": "z", "answer": "answer", "language": "xx"})


def test_every_language_has_an_espeak_voice_that_renders() -> None:
    from devstack.scenarios import ESPEAK_VOICES

    for voice in ESPEAK_VOICES.values():
        audio = asyncio.run(ph.render_speech("Uno, dos, tres.", voice))
        assert len(audio) / ph.RATE > 0.3 and rms(audio) > 1000, voice
    # one text, two voices: two renderings, each cached under its voice
    es = ph._RENDERED[("es-419", "Uno, dos, tres.")]
    assert not np.array_equal(es, ph._RENDERED[("en-us", "Uno, dos, tres.")])


def test_the_spanish_callee_scenario() -> None:
    sc = scenario_for("+1 415 555 0115")
    assert sc is not None and sc.name == "spanish" and sc.language == "es" and sc.answer == "answer"
    assert 3 <= len(sc.lines) <= 4 and sc.lines[0].text == "¿Bueno? ¿Quién habla?"
    assert all(ln.voice == "es-419" and ln.when == "after_agent" and ln.reply for ln in sc.lines)
    last = sc.lines[-1].reply
    assert last is not None and last.tool is not None and last.tool.name == "end_call" and last.after_tool
    assert all(ln.reply and ln.reply.text for ln in sc.lines[:-1])  # the agent answers in Spanish
    assert sc.outcome and sc.outcome["goal_achieved"] == "yes" and sc.outcome["data"]["confirmed"] is True


def test_the_phone_speaks_spanish_on_0115_and_logs_the_caller_id(tmp_path: Path) -> None:
    """The line the phone plays is its es-419 rendering, sample for sample (after G.711), not the
    en-us one; the log has the From URI's user part (the caller id livekit-sip presents)."""
    sc = scenario_for(SPANISH)
    assert sc is not None
    first = sc.lines[0]

    async def scenario(phone: Phone, board: Board) -> dict[str, Any]:
        c = Caller(phone, SPANISH)
        c.from_user = "+14155550190"
        await c.open()
        c.invite()
        ok = await c.response("INVITE", 200)
        sdp = parse_sdp(ok.body)
        assert sdp is not None
        remote = (HOST, sdp.port)
        c.ack()
        collector = asyncio.create_task(c.collect_rtp())
        await c.send_audio(tone(0.6), remote)
        quiet_from = time.time()
        silence = asyncio.create_task(c.send_audio(np.zeros(8000 * 8, np.int16), remote))
        while not any(u["end"] for u in phone.calls()[0]["utterances"]):
            await asyncio.sleep(0.05)
            assert time.time() - quiet_from < 6, "phone never finished its line"
        silence.cancel()
        collector.cancel()
        assert board.next_unheard(c.key) == first.text  # what the STT will hear: the Spanish words
        c.cseq = 2
        c.request("BYE", branch="z9hG4bKbye")
        assert (await c.response("BYE")).status == 200
        c.close()
        frames = [g711_decode(p[12:], 0) for _, p in c.received_rtp]
        expected = g711_decode(g711_encode(ph.rendered(first), 0), 0)
        n = len(expected) // 160
        start = next(i for i, f in enumerate(frames) if np.array_equal(f, expected[:160]))
        played = np.concatenate(frames[start : start + n])
        assert np.array_equal(played, expected[: n * 160])
        return phone.calls()[0]

    entry = run(scenario, tmp_path)
    assert entry["scenario"] == "spanish" and entry["from_number"] == "+14155550190"
    assert entry["from_uri"] == f"sip:+14155550190@{HOST};transport=udp"
    assert [u["text"] for u in entry["utterances"]] == [first.text]
    english = asyncio.run(ph.render_speech(first.text, "en-us"))  # (so the match above was the Spanish voice)
    assert not np.array_equal(english[:1600], ph.rendered(first)[:1600])


# -- tools during the call: the calendar callee (0117) and the error branch --------------------


def test_the_calendar_callee_scenario() -> None:
    sc = scenario_for("+1 415 555 0117")
    assert sc is not None and sc.name == "reschedules_by_calendar" and sc.answer == "answer"
    assert all(ln.when == "after_agent" and ln.reply for ln in sc.spoken())
    assert [ln.reply.tool.name for ln in sc.lines if ln.reply and ln.reply.tool] == [
        "find_slots",
        "book_slot",
        "end_call",
    ]
    # the lines said instead in the error branch end the call
    for line in sc.lines:
        if line.if_tool_failed is not None:
            reply = line.if_tool_failed.reply
            assert reply is not None and reply.tool is not None and reply.tool.name == "end_call"
            assert line.if_tool_failed.outcome and line.if_tool_failed.outcome["goal_achieved"] != "yes"


def test_the_phone_says_the_line_instead_once_the_call_took_its_error_branch(tmp_path: Path, monkeypatch: Any) -> None:
    """Before the model server notes the error branch on the Board, a line is said as it is;
    after, its if_tool_failed (heard by the STT, in the log, with an event)."""
    from devstack.scenarios import Scenario

    sc = Scenario.model_validate(
        {
            "number": "+14155550177", "name": "branchy", "answer": "answer", "ring_s": 0.0,
            "lines": [
                {"text": "One.", "if_tool_failed": {"text": "Uno."}},
                {"text": "Two.", "if_tool_failed": {"text": "Three."}},
            ],
            "after_lines": "hangup",
        }
    )  # fmt: skip
    monkeypatch.setattr(ph, "scenario_for", lambda number: sc if number.endswith("4155550177") else None)

    async def scenario(phone: Phone, board: Board) -> dict[str, Any]:
        for line in sc.spoken():
            await ph.render_line(line)
        c = Caller(phone, "+14155550177")
        await c.open()
        c.invite()
        ok = await c.response("INVITE", 200)
        sdp = parse_sdp(ok.body)
        assert sdp is not None
        remote = (HOST, sdp.port)
        c.ack()
        for turn in (1, 2):
            await c.send_audio(tone(0.4), remote)
            while not (len(u := phone.calls()[0]["utterances"]) == turn and u[-1]["end"]):
                await c.send_audio(np.zeros(800, np.int16), remote)
            if turn == 1:
                assert board.next_unheard(c.key) == "One." and not phone.calls()[0]["error_branch"]
                board.took_error_branch(c.key)  # the agent said an after_tool_error
        assert board.next_unheard(c.key) == "Three."
        bye = await c.next_sip(timeout=3)
        assert bye.method == "BYE"
        c.reply_ok(bye)
        await asyncio.sleep(0.1)
        c.close()
        return phone.calls()[0]

    entry = run(scenario, tmp_path)
    assert [u["text"] for u in entry["utterances"]] == ["One.", "Three."]
    assert entry["error_branch"] is True and read_log(tmp_path, "+14155550177") == entry
    events = [json.loads(ln) for ln in (tmp_path / "phone" / "events.log").read_text().splitlines()]
    [branch] = [e for e in events if e["event"] == "error_branch"]
    assert branch["instead_of"] == "Two."
