'use strict';
// psyne for Node.js: zero-copy byte-message channels over memory, shared
// memory (ipc://), tcp:// and unix://. This file is the public API; the
// native addon (psyne.node, built from src/lib.rs by `npm install`) does the
// work. Waiting calls return promises that a native waiter thread settles:
// the event loop never blocks.

const path = require('node:path');

let native;
try {
  native = require(path.join(__dirname, 'psyne.node'));
} catch (e) {
  throw new Error(
    `psyne: the native addon is not built (${e.message}); run \`npm install\` or \`npm run build\` in ${__dirname}`,
  );
}

/** The C result codes, by `PsyneError.code`. */
const codes = Object.freeze({
  INVALID_ARGUMENT: -1,
  OUT_OF_MEMORY: -2,
  CHANNEL_FULL: -3,
  NO_MESSAGE: -4,
  CHANNEL_STOPPED: -5,
  UNSUPPORTED: -6,
  IO: -7,
  TIMEOUT: -8,
  CANCELLED: -9,
  UNKNOWN: -99,
});

/**
 * Every failure of this package. `code` is the C name without its
 * `PSYNE_ERROR_` prefix (`'CHANNEL_FULL'`, `'TIMEOUT'`, ...), `errno` the C
 * value; the message carries the library's detail text.
 */
class PsyneError extends Error {
  constructor(code, message, options) {
    super(message ?? String(code).toLowerCase().replace(/_/g, ' '), options);
    this.code = code in codes ? code : 'UNKNOWN';
    this.errno = codes[this.code];
  }
}
Object.defineProperty(PsyneError.prototype, 'name', { value: 'PsyneError' });
native.init(PsyneError);

const MODES = { spsc: 0, spmc: 1, mpsc: 2, mpmc: 3 };
const TYPES = { single: 0, multi: 1 };
const COMPRESSIONS = { none: 0, lz4: 1, zstd: 2, snappy: 3 };

function invalid(message) {
  return new PsyneError('INVALID_ARGUMENT', `invalid argument: ${message}`);
}

function oneOf(table, value, what) {
  const v = table[typeof value === 'string' ? value.toLowerCase() : value];
  if (v === undefined) {
    throw invalid(`${what} must be one of ${Object.keys(table).map((k) => `'${k}'`).join(', ')} (got ${String(value)})`);
  }
  return v;
}

function bytes(data) {
  if (Buffer.isBuffer(data)) return data;
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer || data instanceof SharedArrayBuffer) return Buffer.from(data);
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  throw invalid(`data must be a Buffer, TypedArray, DataView, ArrayBuffer or string (got ${typeof data})`);
}

function msgTypeArg(t) {
  if (t === undefined) return 0;
  if (!Number.isInteger(t) || t < 0 || t > 0xffffffff) {
    throw invalid(`message type must be an integer in 0..=4294967295 (got ${String(t)})`);
  }
  return t;
}

function timeoutArg(opts) {
  const t = opts?.timeout;
  if (t === undefined || t === null || t === Infinity) return undefined;
  if (typeof t !== 'number' || !(t >= 0)) {
    throw invalid(`timeout must be a number of milliseconds >= 0 or Infinity (got ${String(t)})`);
  }
  return t;
}

function abortedError(signal) {
  return new PsyneError('CANCELLED', 'cancelled: the AbortSignal was aborted', { cause: signal.reason });
}

/**
 * Runs a native waiting call with the options' signal: the native result is
 * a value, a PsyneError (thrown), or a promise of either.
 */
async function waitWith(handle, opts, call, tryFirst) {
  const timeout = timeoutArg(opts);
  const signal = opts?.signal;
  if (signal?.aborted) throw abortedError(signal);
  if (tryFirst) {
    const r = tryFirst();
    if (r !== null) return r;
  }
  if (signal === undefined || signal === null) {
    let r = call(timeout, undefined);
    if (r instanceof Promise) r = await r;
    if (r instanceof PsyneError) throw r;
    return r;
  }
  const token = new native.NativeCancel();
  const onAbort = () => {
    token.cancel();
    native.channelWake(handle); // the wait may be queued behind another
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    let r = call(timeout, token);
    if (r instanceof Promise) r = await r;
    if (r instanceof PsyneError) {
      if (r.code === 'CANCELLED') throw abortedError(signal);
      throw r;
    }
    return r;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** Pool of the small messages `tryRecv`/`recv` copy out (see `Channel#tryRecv`). */
const POOL_SIZE = 64 * 1024;
/** Messages up to this size are copied into the pool; larger ones get a Buffer of their own. */
const POOLED_MAX = 8 * 1024;
const TWO_32 = 4294967296;

/**
 * A received message that is a view of the ring memory itself: `data` is a
 * Buffer over the bytes in the ring, valid until `release()`. Release frees
 * the space; afterwards `data` is detached (length 0), so it can never read
 * memory that the ring has reused.
 */
class View {
  #data;
  #native;
  constructor(raw) {
    this.#data = raw.data;
    this.type = raw.type;
    this.#native = raw.view;
  }
  /** The message bytes (inside the ring); treat them as read-only. */
  get data() {
    return this.#data;
  }
  get length() {
    return this.#data.length;
  }
  get released() {
    return native.viewReleased(this.#native);
  }
  /** Frees the message's space and detaches `data`. Idempotent. */
  release() {
    native.viewRelease(this.#native, this.#data);
  }
  [Symbol.dispose]() {
    this.release();
  }
}

/**
 * `size` writable bytes inside the ring: fill `data`, then `send(type)`, or
 * `cancel()`. Either detaches `data`. A reservation that is collected
 * unsent is cancelled.
 */
class Reservation {
  #data;
  #native;
  constructor(raw) {
    this.#data = raw.data;
    this.#native = raw.reservation;
  }
  get data() {
    return this.#data;
  }
  get length() {
    return this.#data.length;
  }
  /** Whether it was sent or cancelled. */
  get done() {
    return native.reservationDone(this.#native);
  }
  /** Publishes the bytes as one message of type `msgType`. */
  send(msgType = 0) {
    native.reservationSend(this.#native, this.#data, msgTypeArg(msgType));
  }
  /** Gives the space back. Idempotent. */
  cancel() {
    native.reservationCancel(this.#native, this.#data);
  }
  [Symbol.dispose]() {
    this.cancel();
  }
}

/**
 * A channel handle. `new Channel('ipc://frames', { bufferSize: 1 << 20, mode:
 * 'spsc', type: 'multi' })`. See docs/NODE.md.
 */
class Channel {
  #n; // the native channel (an External)
  #pool = null;
  #poolOffset = 0;
  constructor(uri, options = {}) {
    if (typeof uri !== 'string') throw invalid(`uri must be a string (got ${typeof uri})`);
    const o = options ?? {};
    const bufferSize = o.bufferSize ?? 1 << 20;
    if (!Number.isInteger(bufferSize) || bufferSize < 0) {
      throw invalid(`bufferSize must be a whole number of bytes >= 0 (got ${String(bufferSize)})`);
    }
    const mode = oneOf(MODES, o.mode ?? 'spsc', 'mode');
    const type = oneOf(TYPES, o.type ?? 'multi', 'type');
    let compression;
    if (o.compression !== undefined && o.compression !== null) {
      const c = typeof o.compression === 'string' ? { type: o.compression } : o.compression;
      const level = c.level ?? 0;
      const minSizeThreshold = c.minSizeThreshold ?? 0;
      if (!Number.isInteger(level)) throw invalid(`compression.level must be an integer (got ${String(level)})`);
      if (!Number.isInteger(minSizeThreshold) || minSizeThreshold < 0) {
        throw invalid(`compression.minSizeThreshold must be a whole number >= 0 (got ${String(minSizeThreshold)})`);
      }
      compression = {
        kind: oneOf(COMPRESSIONS, c.type ?? 'none', 'compression.type'),
        level,
        minSizeThreshold,
        enableChecksum: Boolean(c.enableChecksum),
      };
    }
    if (o.spin !== undefined && (!Number.isInteger(o.spin) || o.spin < 0)) {
      throw invalid(`spin must be a whole number of microseconds >= 0 (got ${String(o.spin)})`);
    }
    this.#n = native.channelOpen(uri, {
      bufferSize,
      mode,
      channelType: type,
      compression,
      spin: o.spin,
      metrics: o.metrics === undefined ? undefined : Boolean(o.metrics),
    });
  }

  /** Sends a copy of `data`; never waits: throws CHANNEL_FULL when there is no room. */
  send(data, msgType = 0) {
    native.channelSend(this.#n, bytes(data), msgTypeArg(msgType));
  }

  /** Sends a copy of `data`, waiting for room (until `timeout` ms, or `signal`). */
  sendAsync(data, msgType = 0, opts = undefined) {
    let buf;
    let t;
    try {
      buf = bytes(data);
      t = msgTypeArg(msgType);
    } catch (e) {
      return Promise.reject(e);
    }
    return waitWith(this.#n, opts, (timeout, token) => native.channelSendAsync(this.#n, buf, t, timeout, token));
  }

  /** The next message `{ data, type }` (data copied out of the ring), or null when none is queued. */
  tryRecv() {
    // Small messages are copied into a pool Buffer and handed out as slices
    // of it, as Buffer.allocUnsafe does (one ArrayBuffer per message would
    // cost more than the copy); a slice's `.buffer` is the shared pool.
    if (this.#pool === null || this.#pool.length - this.#poolOffset < POOLED_MAX) {
      this.#pool = Buffer.allocUnsafeSlow(POOL_SIZE);
      this.#poolOffset = 0;
    }
    const r = native.channelTryRecv(this.#n, this.#pool, this.#poolOffset);
    if (typeof r !== 'number') return r;
    const type = r % TWO_32;
    const len = (r - type) / TWO_32;
    const start = this.#poolOffset;
    this.#poolOffset = (start + len + 7) & ~7; // 8-byte aligned slices
    return { data: this.#pool.subarray(start, start + len), type };
  }

  /** Waits for the next message `{ data, type }` (until `timeout` ms, or `signal`). */
  recv(opts = undefined) {
    return waitWith(
      this.#n,
      opts,
      (timeout, token) => native.channelRecv(this.#n, false, timeout, token),
      () => this.tryRecv(),
    );
  }

  /** The next message as a zero-copy `View`, or null when none is queued. */
  tryRecvView() {
    const r = native.channelTryRecvView(this.#n);
    return r === null ? null : new View(r);
  }

  /** Waits for the next message as a zero-copy `View`. */
  async recvView(opts = undefined) {
    return new View(await waitWith(this.#n, opts, (timeout, token) => native.channelRecv(this.#n, true, timeout, token)));
  }

  /** Reserves `size` writable bytes in the ring; never waits (CHANNEL_FULL when full). */
  reserve(size) {
    if (!Number.isInteger(size) || size < 0) throw invalid(`size must be a whole number of bytes >= 0 (got ${String(size)})`);
    return new Reservation(native.channelReserve(this.#n, size));
  }

  /** Stops the channel, every handle on it: waits wake; sends fail; receivers drain, then CHANNEL_STOPPED. */
  stop() {
    native.channelStop(this.#n);
  }

  /** Closes this handle (not the channel: other handles and processes go on). Idempotent. */
  close() {
    native.channelClose(this.#n);
  }

  get closed() {
    return native.channelClosed(this.#n);
  }

  get stopped() {
    return native.channelStopped(this.#n);
  }

  get uri() {
    return native.channelUri(this.#n);
  }

  get bufferSize() {
    return native.channelBufferSize(this.#n);
  }

  get maxMessageSize() {
    return native.channelMaxMessageSize(this.#n);
  }

  /** A socket end's `HOST:PORT` or path (the real port of a `:0` listener); null on memory/ipc. */
  get localAddress() {
    return native.channelLocalAddress(this.#n);
  }

  /** The last protocol violation or close reason seen on a socket end, or null. */
  get lastPeerError() {
    return native.channelLastPeerError(this.#n);
  }

  /** The channel's counters (numbers). */
  metrics() {
    return native.channelMetrics(this.#n);
  }

  resetMetrics() {
    native.channelResetMetrics(this.#n);
  }

  /** `for await (const { data, type } of channel)`: every message until the channel is stopped and drained (or closed). */
  async *[Symbol.asyncIterator]() {
    for (;;) {
      let m;
      try {
        m = await this.recv();
      } catch (e) {
        if (e instanceof PsyneError && e.code === 'CHANNEL_STOPPED') return;
        throw e;
      }
      yield m;
    }
  }

  [Symbol.dispose]() {
    this.close();
  }
}

module.exports = { Channel, View, Reservation, PsyneError, codes };
