// Type definitions for psyne (Node.js binding). See docs/NODE.md.

/// <reference types="node" />

/** `PsyneError.code`: the C result code's name without `PSYNE_ERROR_`. */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'OUT_OF_MEMORY'
  | 'CHANNEL_FULL'
  | 'NO_MESSAGE'
  | 'CHANNEL_STOPPED'
  | 'UNSUPPORTED'
  | 'IO'
  | 'TIMEOUT'
  | 'CANCELLED'
  | 'UNKNOWN';

/** The C values of the codes (`PsyneError.errno`). */
export declare const codes: Readonly<Record<ErrorCode, number>>;

/** Every failure of this package. */
export declare class PsyneError extends Error {
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown });
  readonly name: 'PsyneError';
  /** `'CHANNEL_FULL'`, `'TIMEOUT'`, ... */
  code: ErrorCode;
  /** The C value (`PSYNE_ERROR_*`), e.g. -3 for CHANNEL_FULL. */
  errno: number;
}

export type Mode = 'spsc' | 'spmc' | 'mpsc' | 'mpmc';
export type ChannelType = 'single' | 'multi';
export type CompressionType = 'none' | 'lz4' | 'zstd' | 'snappy';

export interface CompressionConfig {
  type?: CompressionType;
  level?: number;
  minSizeThreshold?: number;
  /** CRC32C of every message (tcp://, unix://). */
  enableChecksum?: boolean;
}

export interface ChannelOptions {
  /** Ring size in bytes, rounded up to a power of two (default 1 MiB; 0 attaches to an existing memory/ipc channel). */
  bufferSize?: number;
  /** Default 'spsc'. */
  mode?: Mode;
  /** Default 'multi' ('single' carries no type: receivers see 0, a non-zero type is refused). */
  type?: ChannelType;
  compression?: CompressionConfig | CompressionType;
  /** Microseconds a wait polls before it sleeps (default 20). */
  spin?: number;
  /** Count metrics (default true). */
  metrics?: boolean;
}

export interface WaitOptions {
  /** Milliseconds (default: no limit; 0: do not wait). Ends the wait with TIMEOUT (NO_MESSAGE / CHANNEL_FULL for 0). */
  timeout?: number;
  /** Aborting ends the wait with a PsyneError whose code is 'CANCELLED' and whose `cause` is the signal's reason. */
  signal?: AbortSignal;
}

/** Anything whose bytes can be sent (strings are sent as UTF-8). */
export type Bytes = Buffer | ArrayBufferView | ArrayBuffer | SharedArrayBuffer | string;

/** A received message whose data is its own copy. */
export interface Message {
  data: Buffer;
  type: number;
}

/** A received message that is a view of the ring memory. */
export declare class View implements Disposable {
  private constructor();
  /** The bytes inside the ring, valid until `release()` (then detached: length 0). Treat as read-only. */
  readonly data: Buffer;
  readonly type: number;
  readonly length: number;
  readonly released: boolean;
  /** Frees the message's space. Idempotent. */
  release(): void;
  [Symbol.dispose](): void;
}

/** Writable bytes inside the ring. */
export declare class Reservation implements Disposable {
  private constructor();
  /** Valid until `send` or `cancel` (then detached). */
  readonly data: Buffer;
  readonly length: number;
  readonly done: boolean;
  /** Publishes the bytes as one message. */
  send(msgType?: number): void;
  /** Gives the space back. Idempotent. */
  cancel(): void;
  [Symbol.dispose](): void;
}

export interface Metrics {
  messagesSent: number;
  bytesSent: number;
  messagesReceived: number;
  bytesReceived: number;
  sendBlocks: number;
  receiveBlocks: number;
  wireBytesSent: number;
  wireBytesReceived: number;
  messagesCompressed: number;
  checksumFailures: number;
  framesRefused: number;
  connects: number;
  reconnects: number;
  peers: number;
  queuedBytes: number;
  highWaterBytes: number;
}

export declare class Channel implements AsyncIterable<Message>, Disposable {
  /** Opens `memory://NAME`, `ipc://NAME`, `tcp://HOST:PORT`, `unix://PATH` (throws PsyneError). */
  constructor(uri: string, options?: ChannelOptions);
  /** Sends a copy; never waits (CHANNEL_FULL when there is no room). */
  send(data: Bytes, msgType?: number): void;
  /** Sends a copy, waiting for room. */
  sendAsync(data: Bytes, msgType?: number, options?: WaitOptions): Promise<void>;
  /** The next message, or null when none is queued. */
  tryRecv(): Message | null;
  /** Waits for the next message (the event loop keeps running). */
  recv(options?: WaitOptions): Promise<Message>;
  /** The next message as a zero-copy view, or null. */
  tryRecvView(): View | null;
  /** Waits for the next message as a zero-copy view. */
  recvView(options?: WaitOptions): Promise<View>;
  /** `size` writable bytes inside the ring; never waits (CHANNEL_FULL). */
  reserve(size: number): Reservation;
  /** Stops the channel for every handle: waits wake, sends fail, receivers drain then CHANNEL_STOPPED. */
  stop(): void;
  /** Closes this handle; waits in flight end with CHANNEL_STOPPED. Idempotent. */
  close(): void;
  readonly closed: boolean;
  readonly stopped: boolean;
  readonly uri: string;
  readonly bufferSize: number;
  readonly maxMessageSize: number;
  readonly localAddress: string | null;
  readonly lastPeerError: string | null;
  metrics(): Metrics;
  resetMetrics(): void;
  /** Every message until the channel is stopped and drained. */
  [Symbol.asyncIterator](): AsyncIterator<Message>;
  [Symbol.dispose](): void;
}
