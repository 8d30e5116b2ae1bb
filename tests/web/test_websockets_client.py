"""Python's `websockets` (a third-party WebSocket client, not psyne) talks to
a psyne ws:// listener (examples/ws_echo.rs) as docs/PROTOCOL.md says: it
sends well-formed frames and gets them echoed; malformed input gets the
documented close code, and the listener counts it and serves on.

Run by tests/suites/70-web.sh; PSYNE_WS_ECHO names the built example."""

import os
import queue
import struct
import subprocess
import threading

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

HEADER = 16


def hello(max_frame=1 << 20):
    # magic, version, hello_len, role (connector), mode (SPSC), type (MULTI),
    # reserved, flags, max_frame, decoders, reserved
    return struct.pack("<4sHHBBBBIII8x", b"PSYN", 1, 32, 0, 0, 1, 0, 0, max_frame, 0)


def frame(msg_type, payload, flags=0, checksum=0):
    return struct.pack("<IIHHI", len(payload), msg_type, flags, 0, checksum) + payload


@pytest.fixture(scope="module")
def server():
    p = subprocess.Popen(
        [os.environ["PSYNE_WS_ECHO"], "ws://127.0.0.1:0/echo?role=listen"],
        stdout=subprocess.PIPE,
        text=True,
    )
    first = p.stdout.readline().strip()
    assert first.startswith("listening on ws://"), first
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l.strip()) for l in p.stdout], daemon=True).start()
    yield first.split()[-1], lines
    p.kill()
    p.wait()


def open_peer(uri):
    return connect(uri, subprotocols=["psyne.v1"], max_size=None, open_timeout=20)


def handshake(ws):
    """Our HELLO out, the listener's in; its max_frame."""
    assert ws.subprotocol == "psyne.v1"
    ws.send(hello())
    theirs = ws.recv(timeout=20)
    assert theirs[:4] == b"PSYN" and len(theirs) == 32
    assert theirs[8] == 1  # the listener says it is the listener
    return struct.unpack_from("<I", theirs, 16)[0]


def test_frames_are_echoed(server):
    uri, _ = server
    with open_peer(uri) as ws:
        handshake(ws)
        echo_many(ws)


def echo_many(ws):
    for i in range(200):
        payload = b"x" * (i * 37 % 3000)
        ws.send(frame(i, payload))
        assert ws.recv(timeout=20) == frame(i, payload)
    # A checksummed frame (CRC32C of b"abc", PROTOCOL.md section 7).
    ws.send(frame(7, b"abc", flags=1, checksum=0x364B3FB7))
    back = ws.recv(timeout=20)
    assert struct.unpack_from("<II", back) == (3, 7) and back[16:] == b"abc"


def expect_close(uri, message, code, tag, lines):
    with open_peer(uri) as ws, pytest.raises(ConnectionClosed) as e:
        max_frame = handshake(ws)
        if callable(message):
            message = message(max_frame)
        ws.send(message)
        while True:
            ws.recv(timeout=20)
    assert e.value.rcvd is not None, "closed without a close frame"
    assert e.value.rcvd.code == code, e.value.rcvd
    assert e.value.rcvd.reason.startswith(tag), e.value.rcvd.reason
    line = lines.get(timeout=20)
    assert line.startswith("refused ") and tag in line, line


def test_text_frame_gets_1003(server):
    uri, lines = server
    expect_close(uri, "hello", 1003, "not-binary", lines)


def test_oversized_message_gets_1009(server):
    uri, lines = server
    expect_close(uri, lambda mf: b"\0" * (HEADER + mf + 1), 1009, "frame-too-long", lines)


def test_bad_header_gets_1008(server):
    uri, lines = server
    expect_close(uri, frame(1, b"x", flags=1 << 3), 1008, "bad-flags", lines)


def test_frame_and_message_lengths_differ_gets_1002(server):
    uri, lines = server
    expect_close(uri, frame(1, b"abcd")[:-1], 1002, "bad-message", lines)


def test_listener_still_serves(server):
    uri, _ = server
    with open_peer(uri) as ws:
        handshake(ws)
        ws.send(frame(1, b"still here"))
        assert ws.recv(timeout=20) == frame(1, b"still here")
