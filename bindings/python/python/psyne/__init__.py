"""psyne: zero-copy byte-message channels between threads, processes and hosts.

A :class:`Channel` moves byte messages, each with a 32-bit message type,
through a bounded ring opened by URI:

- ``memory://NAME``: threads of one process;
- ``ipc://NAME``: processes on one host, through shared memory (Python, C,
  Go and Rust processes can share one channel);
- ``tcp://HOST:PORT`` and ``unix://PATH``: stream sockets.

>>> import psyne
>>> with psyne.Channel("memory://doc-example", 1 << 16) as ch:
...     ch.send(b"hello", msg_type=7)
...     ch.recv()
(b'hello', 7)

Zero-copy: :meth:`Channel.reserve` hands out writable bytes inside the ring
and :meth:`Channel.recv_view` a read-only view of them; both support the
buffer protocol, so ``numpy.frombuffer(view, dtype)`` reads the ring itself.
See docs/PYTHON.md for the guide.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Any, Optional, Tuple

from . import _psyne
from ._errors import (
    Cancelled,
    ChannelFull,
    ChannelStopped,
    Error,
    InvalidArgument,
    IoError,
    NoMessage,
    OutOfMemory,
    Timeout,
    Unsupported,
)
from ._psyne import MessageView, Metrics, Reservation

__all__ = [
    "Channel",
    "ChannelType",
    "Compression",
    "CompressionConfig",
    "MessageView",
    "Metrics",
    "Mode",
    "Reservation",
    "VERSION",
    "Error",
    "InvalidArgument",
    "OutOfMemory",
    "ChannelFull",
    "NoMessage",
    "ChannelStopped",
    "Unsupported",
    "IoError",
    "Timeout",
    "Cancelled",
]

#: The version of the psyne core this package was built with.
VERSION: str = _psyne.VERSION
__version__ = VERSION


class Mode(enum.IntEnum):
    """How many threads or processes may send and receive at once
    (``psyne_channel_mode_t``)."""

    SPSC = 0
    SPMC = 1
    MPSC = 2
    MPMC = 3


class ChannelType(enum.IntEnum):
    """Whether each message carries a type (``psyne_channel_type_t``):
    SINGLE channels accept only type 0."""

    SINGLE = 0
    MULTI = 1


class Compression(enum.IntEnum):
    """Compression algorithm (``psyne_compression_type_t``)."""

    NONE = 0
    LZ4 = 1
    ZSTD = 2
    SNAPPY = 3


@dataclass(frozen=True)
class CompressionConfig:
    """Compression and integrity settings for a channel.

    A message is compressed only when it is at least ``min_size_threshold``
    bytes and the result is smaller. ``enable_checksum`` puts a CRC32C of
    every message in its frame (socket transports).
    """

    type: Compression
    level: int = 0
    min_size_threshold: int = 0
    enable_checksum: bool = False


class Channel(_psyne.Channel):
    """A handle on a channel, opened from a URI.

    ``Channel(uri, buffer_size=1 << 20, mode=Mode.SPSC,
    channel_type=ChannelType.MULTI, compression=None)``. A ``buffer_size``
    of 0 attaches to an existing ``memory://`` or ``ipc://`` channel with its
    size. Use it as a context manager, or call :meth:`close` (idempotent).

    Timeouts are in seconds: ``None`` waits without limit, ``0`` does not
    wait. Every wait releases the GIL and can be interrupted with Ctrl-C.
    """

    __slots__ = ()

    @property
    def mode(self) -> Mode:
        """The channel's mode."""
        return Mode(self._mode)

    @property
    def channel_type(self) -> ChannelType:
        """The channel's type."""
        return ChannelType(self._channel_type)

    async def recv_async(self, timeout: Optional[float] = None) -> Tuple[bytes, int]:
        """Receives the next message as ``(bytes, msg_type)`` without blocking
        the event loop.

        The wait runs in the loop's default executor (a worker thread that
        sleeps in the core until a message arrives; no polling). Cancelling
        the task wakes that thread at once. If a message was taken at the
        moment of cancellation, it is returned rather than lost.
        """
        try:
            return self.try_recv()
        except NoMessage:
            if timeout == 0:
                raise
        return await _in_worker(self._recv_wait, timeout)

    async def send_async(self, data: Any, msg_type: int = 0, timeout: Optional[float] = None) -> None:
        """Sends a copy of ``data``, waiting for room without blocking the
        event loop (in a worker thread, like :meth:`recv_async`). A send that
        completed at the moment of cancellation counts as done."""
        try:
            return self.try_send(data, msg_type)
        except ChannelFull:
            if timeout == 0:
                raise
        return await _in_worker(self._send_wait, data, msg_type, timeout)


async def _in_worker(call: Any, *args: Any) -> Any:
    """Runs ``call(*args, token)`` in the default executor. On cancellation,
    fires the token, waits for the worker to return, and re-raises unless
    the call had already succeeded."""
    loop = asyncio.get_running_loop()
    token = _psyne.WaitToken()
    work = loop.run_in_executor(None, call, *args, token)
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        token.cancel()
        try:
            return await work
        except Cancelled:
            raise asyncio.CancelledError() from None


for _cls in (Error, InvalidArgument, OutOfMemory, ChannelFull, NoMessage, ChannelStopped,
             Unsupported, IoError, Timeout, Cancelled):
    _cls.__module__ = "psyne"
del _cls
