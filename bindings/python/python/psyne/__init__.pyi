"""Type stubs of the ``psyne`` package."""

import enum
from typing import Any, Optional, Tuple

from typing_extensions import Buffer

from . import _psyne
from ._errors import (
    Cancelled as Cancelled,
    ChannelFull as ChannelFull,
    ChannelStopped as ChannelStopped,
    Error as Error,
    InvalidArgument as InvalidArgument,
    IoError as IoError,
    NoMessage as NoMessage,
    OutOfMemory as OutOfMemory,
    Timeout as Timeout,
    Unsupported as Unsupported,
)
from ._psyne import MessageView as MessageView, Metrics as Metrics, Reservation as Reservation

VERSION: str
__version__: str

class Mode(enum.IntEnum):
    SPSC = 0
    SPMC = 1
    MPSC = 2
    MPMC = 3

class ChannelType(enum.IntEnum):
    SINGLE = 0
    MULTI = 1

class Compression(enum.IntEnum):
    NONE = 0
    LZ4 = 1
    ZSTD = 2
    SNAPPY = 3

class CompressionConfig:
    type: Compression
    level: int
    min_size_threshold: int
    enable_checksum: bool
    def __init__(
        self,
        type: Compression,
        level: int = 0,
        min_size_threshold: int = 0,
        enable_checksum: bool = False,
    ) -> None: ...

class Channel(_psyne.Channel):
    def __new__(
        cls,
        uri: str,
        buffer_size: int = 1 << 20,
        mode: Mode = Mode.SPSC,
        channel_type: ChannelType = ChannelType.MULTI,
        compression: Optional[CompressionConfig] = None,
    ) -> "Channel": ...
    @property
    def mode(self) -> Mode: ...
    @property
    def channel_type(self) -> ChannelType: ...
    async def recv_async(self, timeout: Optional[float] = None) -> Tuple[bytes, int]: ...
    async def send_async(self, data: Buffer, msg_type: int = 0, timeout: Optional[float] = None) -> None: ...
