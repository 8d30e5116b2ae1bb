"""The psyne exception hierarchy: one class per C result code.

Every exception psyne raises is a :class:`Error` whose ``code`` is the C
value (``PSYNE_ERROR_*``) and whose message carries the library's detail
text. Where a builtin exception means the same thing, the class derives from
it too, so ``except ValueError`` or ``except TimeoutError`` also catch it.
"""

from __future__ import annotations

__all__ = [
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


class Error(Exception):
    """Base class of every psyne error. ``code`` is the C result code."""

    #: The C result code (``PSYNE_ERROR_UNKNOWN`` for the base class).
    code: int = -99

    def __init__(self, message: str = "", code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidArgument(Error, ValueError):
    """A bad argument: malformed URI, unknown option, out-of-range value,
    message too large, or use beyond the channel's mode (code -1)."""

    code = -1


class OutOfMemory(Error, MemoryError):
    """A ring could not be allocated (code -2)."""

    code = -2


class ChannelFull(Error):
    """A send or reservation that may not wait found no room (code -3)."""

    code = -3


class NoMessage(Error):
    """A receive that may not wait found nothing queued (code -4)."""

    code = -4


class ChannelStopped(Error):
    """The channel was stopped, or this handle closed (code -5). Receivers
    get it once they have drained what was queued."""

    code = -5


class Unsupported(Error):
    """The feature is not available in this build (code -6)."""

    code = -6


class IoError(Error, OSError):
    """An operating-system error (code -7)."""

    code = -7


class Timeout(Error, TimeoutError):
    """A waiting call ran out of time (code -8)."""

    code = -8


class Cancelled(Error):
    """A waiting call was cancelled: its handle was closed meanwhile, or its
    asyncio task was cancelled (code -9)."""

    code = -9
