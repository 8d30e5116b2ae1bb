#!/usr/bin/env python3
"""psyne_peer: an independent peer for the psyne wire protocol, version 1.

Written from docs/PROTOCOL.md alone, with Python's standard library only, so
that it checks the document as much as it checks psyne. It is a module (class
`Conn`) and a command-line tool:

    psyne_peer.py (--connect | --listen) ENDPOINT [options] MODE [N]

    ENDPOINT   tcp:HOST:PORT  or  unix:PATH   (listen on port 0 to get a free one)
    MODE       hello      handshake, print the peer's HELLO, close
               echo [N]   send every received message back with the same type
                          (until the peer closes, or N messages)
               send N     send N messages with known contents (see `payload`)
               recv N     receive N messages, print a JSON summary

Compression (PROTOCOL.md section 3.2) needs the reference libraries, imported
only when asked for: `lz4` (lz4.block), `zstandard` and `python-snappy`
(tests/requirements.txt). `--decoders lz4,zstd,snappy` announces them in the
HELLO and decodes compressed frames; `--compress ALGO` makes `send` and
`echo` compress every message that gets smaller, in an algorithm the peer
announced.

Everything the tool prints on stdout is one JSON object per line: a listener
first prints {"listening": ENDPOINT}; the last line is the summary.

Exit status: 0 done; 2 the peer violated the protocol (the summary's
"violation" holds the section-5 tag, stderr says what); 3 the peer closed
before N messages; 4 time-out or socket error; 5 a received message differs
from what was asked (--verify, or a missing checksum with recv --checksum);
2 is also argparse's status for bad usage.

`send` does not read until it has sent everything (then it drains what the
peer sent meanwhile), so the peer must not wait for us to read while we send.
"""

import argparse
import json
import os
import socket
import struct
import sys
import time

# ---------------------------------------------------------------------------
# CRC32C (Castagnoli), reflected polynomial 0x82F63B78, table-driven.
# ---------------------------------------------------------------------------


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


assert crc32c(b"abc") == 0x364B3FB7  # PROTOCOL.md section 7
assert crc32c(b"123456789") == 0xE3069283  # the standard check value

# ---------------------------------------------------------------------------
# Wire constants (PROTOCOL.md sections 2-4). Everything is little-endian.
# ---------------------------------------------------------------------------

MAGIC = b"PSYN"
VERSION = 1
HELLO_LEN = 32
# magic, version, hello_len, role, mode, channel_type, reserved, flags,
# max_frame, decoders, reserved[8]
HELLO = struct.Struct("<4sHHBBBBIII8s")
assert HELLO.size == HELLO_LEN

ROLE_CONNECTOR, ROLE_LISTENER = 0, 1
HELLO_FLAG_CHECKSUM = 1
MIN_MAX_FRAME = 64

# length, msg_type, flags, reserved, checksum
FRAME = struct.Struct("<IIHHI")
assert FRAME.size == 16

F_CHECKSUM = 0x0001
F_COMPRESSION = 0x0006  # bits 1-2
F_RESERVED = 0x7FF8  # bits 3-14
F_CONTROL = 0x8000
CONTROL_MAX = 1024
CTRL_CLOSE = 1


ALGOS = {"lz4": 1, "zstd": 2, "snappy": 3}


def snappy_raw_decode(body):
    """Snappy's raw format, decoded with the standard library only: a check
    of python-snappy, whose backend (cramjam) is built on the same Rust crate
    as psyne's. A varint length, then literals and back-references."""
    n = shift = i = 0
    while True:
        b = body[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    out = bytearray()
    while i < len(body):
        tag = body[i]
        i += 1
        kind = tag & 3
        if kind == 0:  # literal; lengths above 60 in 1-4 more bytes
            length = (tag >> 2) + 1
            if length > 60:
                extra = length - 60
                length = int.from_bytes(body[i:i + extra], "little") + 1
                i += extra
            out += body[i:i + length]
            i += length
            continue
        if kind == 1:
            length = ((tag >> 2) & 7) + 4
            offset = (tag >> 5) << 8 | body[i]
            i += 1
        else:
            length = (tag >> 2) + 1
            width = 2 if kind == 2 else 4
            offset = int.from_bytes(body[i:i + width], "little")
            i += width
        if offset == 0 or offset > len(out):
            raise ValueError("back-reference to offset %d of %d bytes" % (offset, len(out)))
        for _ in range(length):  # may overlap what it copies
            out.append(out[-offset])
    if len(out) != n:
        raise ValueError("decoded %d bytes, the preamble says %d" % (len(out), n))
    return bytes(out)


class Codec:
    """The reference implementations of section 3.2, imported on first use:
    LZ4 raw block without size prefix, Zstd frame, Snappy raw (unframed)."""

    def __init__(self, names):
        self.mods = {}
        for name in names:
            if name == "lz4":
                import lz4.block
                self.mods[1] = lz4.block
            elif name == "zstd":
                import zstandard
                self.mods[2] = zstandard
            elif name == "snappy":
                import snappy
                self.mods[3] = snappy
            else:
                raise ValueError("unknown algorithm %r" % name)

    @property
    def mask(self):
        return sum(1 << (a - 1) for a in self.mods)

    def compress(self, algo, data):
        m = self.mods[algo]
        if algo == 1:
            return m.compress(data, store_size=False)
        if algo == 2:
            return m.ZstdCompressor(level=3).compress(data)
        return m.compress(data)

    def decompress(self, algo, body, raw_len):
        m = self.mods[algo]
        if algo == 1:
            return m.decompress(body, uncompressed_size=raw_len)
        if algo == 2:
            return m.ZstdDecompressor().decompress(body, max_output_size=raw_len)
        out = m.uncompress(body)
        if out != snappy_raw_decode(body):
            raise ValueError("python-snappy and the stdlib decoder disagree")
        return out


class Violation(Exception):
    """The peer broke the protocol. `tag` is the section-5 tag."""

    def __init__(self, tag, detail, send_close=True):
        super().__init__("%s: %s" % (tag, detail))
        self.tag = tag
        self.send_close = send_close


class Mismatch(Exception):
    """A received message is not what the command line asked for."""


class PeerClosed(Exception):
    """The peer ended the connection at a frame boundary; `reason` is its
    CLOSE frame's reason, or None when the stream just ended."""

    def __init__(self, reason):
        super().__init__(reason or "end of stream")
        self.reason = reason


def encode_hello(role, mode=0, channel_type=1, checksum=False, max_frame=1 << 20, decoders=0):
    flags = HELLO_FLAG_CHECKSUM if checksum else 0
    return HELLO.pack(MAGIC, VERSION, HELLO_LEN, role, mode, channel_type, 0,
                      flags, max_frame, decoders, bytes(8))


def decode_hello(raw, my_role):
    """Check a HELLO in the order PROTOCOL.md section 2 gives; return its fields."""
    (magic, version, hello_len, role, mode, channel_type, reserved, flags,
     max_frame, decoders, reserved8) = HELLO.unpack(raw)
    if magic != MAGIC:
        raise Violation("bad-magic", "first bytes %r" % magic, send_close=False)
    if version != VERSION:
        raise Violation("bad-version", "version %d" % version)
    if hello_len != HELLO_LEN:
        raise Violation("bad-hello", "hello_len %d" % hello_len)
    if role != 1 - my_role:
        raise Violation("bad-hello", "role %d, and mine is %d" % (role, my_role))
    if mode > 3:
        raise Violation("bad-hello", "mode %d" % mode)
    if channel_type > 1:
        raise Violation("bad-hello", "channel_type %d" % channel_type)
    if reserved != 0 or reserved8 != bytes(8) or flags & ~HELLO_FLAG_CHECKSUM:
        raise Violation("bad-hello", "reserved byte or unknown flag set (flags 0x%x)" % flags)
    if max_frame < MIN_MAX_FRAME:
        raise Violation("bad-hello", "max_frame %d" % max_frame)
    if decoders > 7:
        raise Violation("bad-hello", "decoders %d" % decoders)
    return {"role": role, "mode": mode, "channel_type": channel_type,
            "checksum": bool(flags & HELLO_FLAG_CHECKSUM),
            "max_frame": max_frame, "decoders": decoders}


def encode_frame(data, msg_type, checksum=False, control=False, codec=None, algo=0):
    """A frame; with `algo`, compressed by `codec` if that makes it smaller
    (the checksum is always over the uncompressed message)."""
    flags = (F_CONTROL if control else 0) | (F_CHECKSUM if checksum else 0)
    crc = crc32c(data) if checksum else 0
    if algo and data:
        body = codec.compress(algo, bytes(data))
        if 4 + len(body) < len(data):
            payload = struct.pack("<I", len(data)) + body
            return FRAME.pack(len(payload), msg_type, flags | algo << 1, 0, crc) + payload
    return FRAME.pack(len(data), msg_type, flags, 0, crc) + bytes(data)


def payload(i, size):
    """The known contents of message i: byte j is (131*i + 1 + 7*j) mod 256."""
    seed = (131 * i + 1) & 0xFF
    unit = bytes((seed + 7 * j) & 0xFF for j in range(256))
    return (unit * (size // 256 + 1))[:size]


# ---------------------------------------------------------------------------
# A connection
# ---------------------------------------------------------------------------


class Conn:
    """One psyne protocol connection over a connected stream socket."""

    def __init__(self, sock, role, mode=0, channel_type=1, checksum=False,
                 max_frame=1 << 20, handshake_timeout=5.0, io_timeout=30.0,
                 codec=None, compress=0):
        self.codec = codec  # decoders we announce (and the compressor)
        self.compress = compress  # algorithm we send in, 0 for none
        self.compressed_received = 0
        self.sock = sock
        self.role = role
        self.mode = mode
        self.channel_type = channel_type
        self.checksum = checksum
        self.max_frame = max_frame
        self.handshake_timeout = handshake_timeout
        self.io_timeout = io_timeout
        self.peer = None  # the peer's HELLO fields, after handshake()

    def _read(self, n, deadline, what, eof_ok=False):
        """n bytes; None on end of stream before the first one if eof_ok."""
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self.sock.settimeout(left)
            chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                if eof_ok and not buf:
                    return None
                raise Violation("truncated", "stream ended %d bytes into a %d-byte %s"
                                % (len(buf), n, what), send_close=False)
            buf += chunk
        return bytes(buf)

    def handshake(self):
        """Send our HELLO at once, then read and check the peer's within the
        handshake timeout (the whole HELLO, not each read)."""
        deadline = time.monotonic() + self.handshake_timeout
        self.sock.sendall(encode_hello(self.role, self.mode, self.channel_type,
                                       self.checksum, self.max_frame,
                                       self.codec.mask if self.codec else 0))
        try:
            raw = self._read(HELLO_LEN, deadline, "HELLO")
        except socket.timeout:
            raise Violation("handshake-timeout", "no complete HELLO within %.3f s"
                            % self.handshake_timeout)
        self.peer = decode_hello(raw, self.role)
        return self.peer

    def send(self, data, msg_type, checksum=None):
        if checksum is None:
            checksum = self.checksum
        if len(data) > self.peer["max_frame"]:
            raise ValueError("%d bytes exceed the peer's max_frame %d"
                             % (len(data), self.peer["max_frame"]))
        algo = 0
        if self.compress and self.peer["decoders"] & (1 << (self.compress - 1)):
            algo = self.compress
        self.sock.settimeout(self.io_timeout)
        self.sock.sendall(encode_frame(data, msg_type, checksum, codec=self.codec, algo=algo))

    def send_close(self, reason):
        data = reason.encode("utf-8")[:CONTROL_MAX]
        self.sock.settimeout(self.io_timeout)
        self.sock.sendall(encode_frame(data, CTRL_CLOSE, control=True))

    def recv(self):
        """The next message as (bytes, msg_type, had_checksum). Raises
        PeerClosed at a clean end or on a CLOSE frame, Violation otherwise."""
        deadline = time.monotonic() + self.io_timeout
        header = self._read(FRAME.size, deadline, "frame header", eof_ok=True)
        if header is None:
            raise PeerClosed(None)
        length, msg_type, flags, reserved, checksum = FRAME.unpack(header)
        # Everything below is decided from the header alone, before reading
        # (or making room for) the payload.
        if flags & F_RESERVED or reserved:
            raise Violation("bad-flags", "flags 0x%04x, reserved 0x%04x" % (flags, reserved))
        if not flags & F_CHECKSUM and checksum:
            raise Violation("bad-flags", "checksum field 0x%08x without CHECKSUM" % checksum)
        if flags & F_CONTROL:
            if flags & (F_CHECKSUM | F_COMPRESSION):
                raise Violation("bad-flags", "control frame with flags 0x%04x" % flags)
            if length > CONTROL_MAX:
                raise Violation("frame-too-long", "control frame of %d bytes" % length)
            if msg_type != CTRL_CLOSE:
                raise Violation("bad-control", "control code %d" % msg_type)
        else:
            if length > self.max_frame:
                raise Violation("frame-too-long", "%d bytes, max_frame %d" % (length, self.max_frame))
            algo = (flags & F_COMPRESSION) >> 1
            mask = self.codec.mask if self.codec else 0
            if algo and not mask & (1 << (algo - 1)):
                raise Violation("bad-compression", "algorithm %d, we announced decoders %d"
                                % (algo, mask))
            if algo and length < 4:
                raise Violation("bad-compression", "compressed frame of %d bytes" % length)
        data = self._read(length, deadline, "frame payload") if length else b""
        if flags & F_CONTROL:
            raise PeerClosed(data.decode("utf-8", "replace"))
        algo = (flags & F_COMPRESSION) >> 1
        if algo:
            (raw_len,) = struct.unpack_from("<I", data)
            if raw_len > self.max_frame:
                raise Violation("bad-compression", "raw_length %d above max_frame %d"
                                % (raw_len, self.max_frame))
            try:
                data = self.codec.decompress(algo, data[4:], raw_len)
            except Exception as e:  # each library raises its own error type
                raise Violation("bad-compression", "algorithm %d: %s" % (algo, e))
            if len(data) != raw_len:
                raise Violation("bad-compression", "decompressed to %d bytes, raw_length %d"
                                % (len(data), raw_len))
            self.compressed_received += 1
        if flags & F_CHECKSUM and crc32c(data) != checksum:
            raise Violation("checksum-mismatch", "frame says 0x%08x, bytes give 0x%08x"
                            % (checksum, crc32c(data)))
        return data, msg_type, bool(flags & F_CHECKSUM)

    def finish(self, reason=None, linger=5.0):
        """Close gracefully: optional CLOSE frame, end our direction, then
        read (and drop) whatever the peer still sends until it closes, so that
        closing never resets the connection under data the peer has not read."""
        try:
            if reason is not None:
                self.send_close(reason)
            self.sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + linger
            while time.monotonic() < deadline:
                self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
                if not self.sock.recv(1 << 16):
                    break
        except OSError:
            pass
        finally:
            self.sock.close()


# ---------------------------------------------------------------------------
# Endpoints
# ---------------------------------------------------------------------------


def parse_endpoint(text):
    scheme, _, rest = text.partition(":")
    if scheme == "tcp":
        host, _, port = rest.rpartition(":")
        return socket.AF_INET6 if ":" in host else socket.AF_INET, (host.strip("[]"), int(port))
    if scheme == "unix" and rest:
        return socket.AF_UNIX, rest
    raise ValueError("endpoint %r: expected tcp:HOST:PORT or unix:PATH" % text)


def connect(endpoint, retry=5.0):
    family, addr = parse_endpoint(endpoint)
    deadline = time.monotonic() + retry
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.connect(addr)
            break
        except (ConnectionRefusedError, FileNotFoundError):
            sock.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.02)
    if family != socket.AF_UNIX:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def listen_and_accept(endpoint, accept_timeout):
    family, addr = parse_endpoint(endpoint)
    srv = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_UNIX:
        if os.path.exists(addr):
            os.unlink(addr)
        shown = "unix:" + addr
    else:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(addr)
    srv.listen(1)
    if family != socket.AF_UNIX:
        host, port = srv.getsockname()[:2]
        shown = "tcp:%s:%d" % (host, port)
    emit({"listening": shown})
    srv.settimeout(accept_timeout)
    try:
        sock, _ = srv.accept()
    finally:
        srv.close()  # one connection only: a reconnect attempt is refused
        if family == socket.AF_UNIX:
            os.unlink(addr)
    if family != socket.AF_UNIX:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    side = p.add_mutually_exclusive_group(required=True)
    side.add_argument("--connect", metavar="ENDPOINT")
    side.add_argument("--listen", metavar="ENDPOINT")
    p.add_argument("action", choices=["hello", "echo", "send", "recv"])
    p.add_argument("count", nargs="?", type=int)
    p.add_argument("--checksum", action="store_true",
                   help="send checksums; recv: also require them on every message")
    p.add_argument("--sizes", default="0,1,3,16,255,1000,4096",
                   help="send: message sizes, used in turn (default %(default)s)")
    p.add_argument("--type", type=int, dest="msg_type",
                   help="send: this msg_type for all (default: message i has type i+1)")
    p.add_argument("--verify", action="store_true",
                   help="recv: message i must be payload(i) with the type send uses")
    p.add_argument("--mode", type=int, default=0, help="HELLO mode (informative)")
    p.add_argument("--channel-type", type=int, default=1, help="HELLO channel_type: 0 SINGLE, 1 MULTI")
    p.add_argument("--max-frame", type=int, default=1 << 20, help="our max_frame (default %(default)s)")
    p.add_argument("--handshake-timeout", type=float, default=5.0, help="seconds")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for any one frame, connection or accept")
    p.add_argument("--no-close", action="store_true",
                   help="end without a CLOSE frame (send, recv, hello)")
    p.add_argument("--decoders", default="",
                   help="comma-separated algorithms to announce and decode: lz4,zstd,snappy")
    p.add_argument("--compress", choices=sorted(ALGOS),
                   help="send/echo: compress in this algorithm (when the peer decodes it)")
    a = p.parse_intermixed_args(argv)
    if a.action in ("send", "recv") and a.count is None:
        p.error("%s needs N" % a.action)
    sizes = [int(s) for s in a.sizes.split(",")]
    names = [n for n in a.decoders.split(",") if n]
    if a.compress and a.compress not in names:
        names.append(a.compress)
    codec = Codec(names) if names else None

    summary = {"action": a.action}
    status = 0
    conn = None
    try:
        if a.connect:
            sock, role = connect(a.connect, a.timeout), ROLE_CONNECTOR
        else:
            sock, role = listen_and_accept(a.listen, a.timeout), ROLE_LISTENER
        conn = Conn(sock, role, a.mode, a.channel_type, a.checksum, a.max_frame,
                    a.handshake_timeout, a.timeout, codec,
                    ALGOS[a.compress] if a.compress else 0)
        summary["peer_hello"] = conn.handshake()
        count = total = 0
        messages = []
        if a.action == "send":
            for i in range(a.count):
                data = payload(i, sizes[i % len(sizes)])
                conn.send(data, i + 1 if a.msg_type is None else a.msg_type)
                count, total = count + 1, total + len(data)
        elif a.action in ("recv", "echo"):
            if a.action == "recv" and a.checksum and not conn.peer["checksum"]:
                raise Mismatch("missing-checksum: the peer's HELLO does not announce checksums")
            while a.count is None or count < a.count:
                try:
                    data, msg_type, had_checksum = conn.recv()
                except PeerClosed as e:
                    summary["peer_close"] = e.reason
                    if a.count is not None:
                        status = 3
                    break
                if a.action == "echo":
                    conn.send(data, msg_type)
                else:
                    if a.checksum and not had_checksum:
                        raise Mismatch("missing-checksum: message %d has no checksum" % count)
                    messages.append([len(data), msg_type, crc32c(data)])
                    if a.verify:
                        want_type = count + 1 if a.msg_type is None else a.msg_type
                        if data != payload(count, len(data)) or msg_type != want_type:
                            raise Mismatch("pattern-mismatch at message %d (%d bytes, type %d)"
                                           % (count, len(data), msg_type))
                count, total = count + 1, total + len(data)
        summary.update(count=count, bytes=total)
        if codec is not None:
            summary["compressed_received"] = conn.compressed_received
        if a.action == "recv":
            summary["messages"] = messages
        if "peer_close" in summary:
            conn.sock.close()
        else:
            conn.finish(None if a.no_close or a.action == "echo" else "done")
    except Violation as v:
        summary["violation"] = v.tag
        summary["error"] = str(v)
        print("psyne_peer: violation %s" % v, file=sys.stderr)
        status = 2
        if conn is not None:
            conn.finish(str(v) if v.send_close else None, linger=1.0)
    except Mismatch as e:
        summary["error"] = str(e)
        print("psyne_peer: %s" % e, file=sys.stderr)
        status = 5
        conn.finish(str(e), linger=1.0)
    except (socket.timeout, OSError, ValueError) as e:
        summary["error"] = "%s: %s" % (type(e).__name__, e)
        print("psyne_peer: %s" % summary["error"], file=sys.stderr)
        status = 4
    emit(summary)
    return status


if __name__ == "__main__":
    sys.exit(main())
