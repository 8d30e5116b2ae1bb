'use strict';
// Every method and every error of Channel on memory:// channels (one process).
const test = require('node:test');
const assert = require('node:assert/strict');
const { Channel, PsyneError, codes } = require('..');
const { unique } = require('./helpers');

const mem = (opts = {}) => new Channel(`memory://${unique('api')}`, { bufferSize: 4096, ...opts });

function rejectsWith(promise, code) {
  return assert.rejects(promise, (e) => {
    assert.ok(e instanceof PsyneError, `not a PsyneError: ${e}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.errno, codes[code]);
    return true;
  });
}

function throwsWith(fn, code, pattern) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof PsyneError, `not a PsyneError: ${e}`);
    assert.equal(e.code, code, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

test('PsyneError: one code per C code, errno the C value', () => {
  assert.deepEqual(codes, {
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
  for (const [code, errno] of Object.entries(codes)) {
    const e = new PsyneError(code, `detail for ${code}`);
    assert.ok(e instanceof Error);
    assert.equal(e.name, 'PsyneError');
    assert.equal(e.code, code);
    assert.equal(e.errno, errno);
    assert.equal(e.message, `detail for ${code}`);
  }
  assert.equal(new PsyneError('NOT_A_CODE').code, 'UNKNOWN');
});

test('open: options, getters, and every refusal', () => {
  const ch = new Channel(`memory://${unique('open')}`, { bufferSize: 1000, mode: 'mpmc', type: 'multi' });
  assert.equal(ch.bufferSize, 1024); // rounded up to a power of two
  assert.equal(ch.maxMessageSize, 1024 / 2 - 16);
  assert.match(ch.uri, /^memory:\/\/open-/);
  assert.equal(ch.localAddress, null);
  assert.equal(ch.lastPeerError, null);
  assert.equal(ch.stopped, false);
  assert.equal(ch.closed, false);
  ch.close();

  const defaults = new Channel(`memory://${unique('defaults')}`);
  assert.equal(defaults.bufferSize, 1 << 20);
  defaults.close();

  throwsWith(() => new Channel('nope://x'), 'INVALID_ARGUMENT', /scheme/);
  throwsWith(() => new Channel('memory://'), 'INVALID_ARGUMENT');
  throwsWith(() => new Channel('memory://x?bogus=1'), 'INVALID_ARGUMENT', /bogus/);
  throwsWith(() => new Channel(42), 'INVALID_ARGUMENT', /uri/);
  throwsWith(() => mem({ mode: 'spmcx' }), 'INVALID_ARGUMENT', /mode must be one of 'spsc'/);
  throwsWith(() => mem({ type: 'double' }), 'INVALID_ARGUMENT', /type/);
  throwsWith(() => mem({ bufferSize: -1 }), 'INVALID_ARGUMENT', /bufferSize/);
  throwsWith(() => mem({ bufferSize: 1.5 }), 'INVALID_ARGUMENT', /bufferSize/);
  throwsWith(() => mem({ spin: -3 }), 'INVALID_ARGUMENT', /spin/);
  throwsWith(() => new Channel(`memory://${unique('attach')}`, { bufferSize: 0 }), 'INVALID_ARGUMENT');
  throwsWith(() => new Channel('wss://127.0.0.1:1/feed'), 'UNSUPPORTED'); // TLS is not built; ws:// is
  throwsWith(() => new Channel('unix:///nonexistent-psyne-dir/x.sock?role=listen'), 'IO', /cannot listen/);
  throwsWith(() => new Channel(`memory://${unique('huge')}`, { bufferSize: 2 ** 40 }), 'OUT_OF_MEMORY', /could not allocate/);
  throwsWith(() => mem({ compression: { type: 'gzip' } }), 'INVALID_ARGUMENT', /compression.type/);
  // Compression NONE is accepted, as an object or a name.
  mem({ compression: 'none' }).close();
  mem({ compression: { type: 'none', level: 0, minSizeThreshold: 64 } }).close();
});

test('compression: every algorithm round-trips, and a plain handle reads it', () => {
  for (const type of ['lz4', 'zstd', 'snappy']) {
    const name = `memory://${unique('comp-' + type)}`;
    const tx = new Channel(name, {
      bufferSize: 1 << 16, mode: 'mpmc',
      compression: { type, level: 0, minSizeThreshold: 64, enableChecksum: true },
    });
    const rx = new Channel(name, { bufferSize: 0, mode: 'mpmc' });
    const big = Buffer.alloc(4096, 'abc');
    tx.send(big, 1);
    tx.send(Buffer.from('tiny'), 2);
    const m = rx.tryRecv();
    assert.equal(m.type, 1);
    assert.ok(m.data.equals(big), type);
    assert.equal(rx.tryRecv().data.toString(), 'tiny');
    assert.equal(tx.metrics().messagesCompressed, 1, type);
    tx.close();
    rx.close();
  }
});

test('attach with bufferSize 0 adopts the existing channel', () => {
  const name = `memory://${unique('adopt')}`;
  const a = new Channel(name, { bufferSize: 8192, mode: 'mpmc' });
  const b = new Channel(name, { bufferSize: 0, mode: 'mpmc' });
  assert.equal(b.bufferSize, 8192);
  a.send('from a', 1);
  assert.equal(b.tryRecv().data.toString(), 'from a');
  a.close();
  b.close();
});

test('send / tryRecv: bytes, types, every data kind, empty messages', () => {
  const ch = mem();
  ch.send(Buffer.from('buffer'), 1);
  ch.send(new Uint8Array([1, 2, 3]), 2);
  ch.send(new Uint16Array([0x0201]).buffer, 3);
  ch.send('text ✓', 4);
  ch.send(new DataView(new Uint8Array([9, 8]).buffer), 5);
  ch.send(Buffer.alloc(0));
  ch.send(Buffer.from('max type'), 0xffffffff);
  const got = [];
  for (let m = ch.tryRecv(); m !== null; m = ch.tryRecv()) got.push([m.data.toString('hex'), m.type]);
  assert.deepEqual(got, [
    [Buffer.from('buffer').toString('hex'), 1],
    ['010203', 2],
    ['0102', 3],
    [Buffer.from('text ✓').toString('hex'), 4],
    ['0908', 5],
    ['', 0],
    [Buffer.from('max type').toString('hex'), 0xffffffff],
  ]);
  assert.equal(ch.tryRecv(), null);
  // A received Buffer is the receiver's own copy.
  ch.send('abc');
  const m = ch.tryRecv();
  ch.send('xyz');
  assert.equal(m.data.toString(), 'abc');
  ch.close();
});

test('send: refusals (type, size, full, single-type channels)', () => {
  const ch = mem();
  throwsWith(() => ch.send('x', -1), 'INVALID_ARGUMENT', /message type/);
  throwsWith(() => ch.send('x', 2 ** 32), 'INVALID_ARGUMENT', /message type/);
  throwsWith(() => ch.send('x', 1.5), 'INVALID_ARGUMENT', /message type/);
  throwsWith(() => ch.send(12345), 'INVALID_ARGUMENT', /data must be/);
  throwsWith(() => ch.send(Buffer.alloc(ch.maxMessageSize + 1)), 'INVALID_ARGUMENT', /larger than the channel's maximum/);
  ch.send(Buffer.alloc(ch.maxMessageSize)); // the largest fits
  let sent = 0;
  assert.throws(
    () => {
      for (;;) {
        ch.send(Buffer.alloc(100));
        sent += 1;
      }
    },
    (e) => e instanceof PsyneError && e.code === 'CHANNEL_FULL' && e.errno === -3,
  );
  assert.ok(sent > 0);
  assert.ok(ch.metrics().sendBlocks >= 1);
  ch.close();

  const single = mem({ type: 'single' });
  single.send('typeless');
  throwsWith(() => single.send('typed', 7), 'INVALID_ARGUMENT', /SINGLE|single/);
  assert.deepEqual(single.tryRecv().type, 0);
  single.close();
});

test('recv: waits for a message, timeout, timeout 0, bad timeout', async () => {
  const ch = mem();
  const p = ch.recv();
  setTimeout(() => ch.send('later', 9), 30);
  const m = await p;
  assert.equal(m.data.toString(), 'later');
  assert.equal(m.type, 9);

  ch.send('ready');
  assert.equal((await ch.recv({ timeout: 0 })).data.toString(), 'ready'); // queued: no wait needed
  await rejectsWith(ch.recv({ timeout: 0 }), 'NO_MESSAGE');
  const t0 = Date.now();
  await rejectsWith(ch.recv({ timeout: 50 }), 'TIMEOUT');
  assert.ok(Date.now() - t0 >= 45, 'the timeout ended the wait early');
  await rejectsWith(ch.recv({ timeout: -1 }), 'INVALID_ARGUMENT');
  await rejectsWith(ch.recv({ timeout: 'soon' }), 'INVALID_ARGUMENT');
  ch.close();
});

test('recv: concurrent waits are served in call order', async () => {
  const ch = mem(); // SPSC: the binding queues the waits itself
  const waits = [ch.recv(), ch.recv(), ch.recv()];
  assert.equal(ch.tryRecv(), null, 'tryRecv does not overtake a waiting recv');
  for (const t of [1, 2, 3]) ch.send(`m${t}`, t);
  const got = await Promise.all(waits);
  assert.deepEqual(
    got.map((m) => [m.data.toString(), m.type]),
    [['m1', 1], ['m2', 2], ['m3', 3]],
  );
  ch.close();
});

test('sendAsync: sends at once, waits for room, keeps order, timeout, timeout 0', async () => {
  const ch = mem();
  await ch.sendAsync('now', 1);
  assert.equal(ch.tryRecv().data.toString(), 'now');

  const big = Buffer.alloc(1000, 1);
  let n = 0;
  try {
    for (;;) {
      ch.send(big, n);
      n += 1;
    }
  } catch (e) {
    assert.equal(e.code, 'CHANNEL_FULL');
  }
  await rejectsWith(ch.sendAsync(big, 0, { timeout: 0 }), 'CHANNEL_FULL');
  await rejectsWith(ch.sendAsync(big, 0, { timeout: 30 }), 'TIMEOUT');

  const tail = Buffer.alloc(1000);
  tail.write('after the wait');
  const waiting = ch.sendAsync(tail, 100);
  // While it waits, a plain send must not overtake it.
  await new Promise((r) => setTimeout(r, 20));
  throwsWith(() => ch.send('overtake'), 'CHANNEL_FULL');
  throwsWith(() => ch.reserve(1), 'CHANNEL_FULL');
  const types = [];
  const drain = (async () => {
    for (;;) {
      const m = await ch.recv();
      types.push(m.type);
      if (m.type === 100) return m;
    }
  })();
  await waiting;
  const last = await drain;
  assert.equal(last.data.subarray(0, 14).toString(), 'after the wait');
  assert.deepEqual(types, [...Array(n).keys(), 100]);
  ch.send('plain sends work again');
  assert.equal(ch.tryRecv().data.toString(), 'plain sends work again');
  await rejectsWith(ch.sendAsync('x', -5), 'INVALID_ARGUMENT');
  ch.close();
});

test('stop: wakes waiters, receivers drain first, then CHANNEL_STOPPED', async () => {
  const ch = mem();
  const waiting = ch.recv();
  ch.stop();
  await rejectsWith(waiting, 'CHANNEL_STOPPED');
  assert.equal(ch.stopped, true);
  throwsWith(() => ch.send('late'), 'CHANNEL_STOPPED');
  await rejectsWith(ch.sendAsync('late'), 'CHANNEL_STOPPED');
  ch.close();

  const ch2 = mem();
  ch2.send('a');
  ch2.send('b');
  ch2.stop();
  assert.equal((await ch2.recv()).data.toString(), 'a');
  assert.equal(ch2.tryRecv().data.toString(), 'b');
  await rejectsWith(ch2.recv(), 'CHANNEL_STOPPED');
  throwsWith(() => ch2.tryRecv(), 'CHANNEL_STOPPED');
  ch2.close();
});

test('stop wakes a sendAsync waiting for room', async () => {
  const ch = mem();
  try {
    for (;;) ch.send(Buffer.alloc(500));
  } catch (e) {
    assert.equal(e.code, 'CHANNEL_FULL');
  }
  const waiting = ch.sendAsync(Buffer.alloc(500));
  setTimeout(() => ch.stop(), 20);
  await rejectsWith(waiting, 'CHANNEL_STOPPED');
  ch.close();
});

test('close: idempotent, ends waits in flight, later calls fail', async () => {
  const ch = mem();
  const r = ch.recv();
  const full = mem();
  try {
    for (;;) full.send(Buffer.alloc(500));
  } catch (e) {
    assert.equal(e.code, 'CHANNEL_FULL');
  }
  const s = full.sendAsync(Buffer.alloc(500));
  const both = Promise.allSettled([r, s]);
  ch.close();
  full.close();
  for (const outcome of await both) {
    assert.equal(outcome.status, 'rejected');
    assert.equal(outcome.reason.code, 'CHANNEL_STOPPED');
    assert.match(outcome.reason.message, /channel is closed/);
  }
  ch.close();
  assert.equal(ch.closed, true);
  throwsWith(() => ch.send('x'), 'CHANNEL_STOPPED', /closed/);
  throwsWith(() => ch.tryRecv(), 'CHANNEL_STOPPED', /closed/);
  throwsWith(() => ch.metrics(), 'CHANNEL_STOPPED', /closed/);
  throwsWith(() => ch.stop(), 'CHANNEL_STOPPED', /closed/);
  await rejectsWith(ch.recv(), 'CHANNEL_STOPPED');
  // Closing one handle does not stop the channel for the others.
  const name = `memory://${unique('shared')}`;
  const a = new Channel(name, { bufferSize: 4096, mode: 'mpmc' });
  const b = new Channel(name, { bufferSize: 4096, mode: 'mpmc' });
  a.close();
  b.send('still open');
  assert.equal(b.tryRecv().data.toString(), 'still open');
  b.close();
});

test('Symbol.dispose closes', () => {
  const ch = mem();
  ch[Symbol.dispose]();
  assert.equal(ch.closed, true);
});

test('metrics: every counter, and resetMetrics', () => {
  const ch = mem();
  ch.send(Buffer.alloc(10), 1);
  ch.send(Buffer.alloc(20), 2);
  ch.tryRecv();
  assert.equal(ch.tryRecv().data.length, 20);
  assert.equal(ch.tryRecv(), null);
  const m = ch.metrics();
  assert.deepEqual(Object.keys(m), [
    'messagesSent', 'bytesSent', 'messagesReceived', 'bytesReceived', 'sendBlocks', 'receiveBlocks',
    'wireBytesSent', 'wireBytesReceived', 'messagesCompressed', 'checksumFailures', 'framesRefused',
    'connects', 'reconnects', 'peers', 'queuedBytes', 'highWaterBytes',
  ]);
  assert.equal(m.messagesSent, 2);
  assert.equal(m.bytesSent, 30);
  assert.equal(m.messagesReceived, 2);
  assert.equal(m.bytesReceived, 30);
  assert.ok(m.receiveBlocks >= 1);
  assert.equal(m.wireBytesSent, 30);
  assert.equal(m.queuedBytes, 0);
  ch.resetMetrics();
  assert.equal(ch.metrics().messagesSent, 0);
  const off = mem({ metrics: false });
  off.send('uncounted');
  assert.equal(off.metrics().messagesSent, 0);
  off.close();
  ch.close();
});

test('for await: every message until stopped and drained', async () => {
  const ch = mem();
  const got = [];
  const loop = (async () => {
    for await (const m of ch) got.push(`${m.data}:${m.type}`);
  })();
  ch.send('one', 1);
  await new Promise((r) => setTimeout(r, 10));
  ch.send('two', 2);
  ch.send('three', 3);
  ch.stop();
  await loop;
  assert.deepEqual(got, ['one:1', 'two:2', 'three:3']);
  ch.close();
});

test('for await ends when the handle is closed', async () => {
  const ch = mem();
  const loop = (async () => {
    let n = 0;
    for await (const _ of ch) n += 1; // eslint-disable-line no-unused-vars
    return n;
  })();
  ch.send('x');
  await new Promise((r) => setTimeout(r, 10));
  ch.close();
  assert.equal(await loop, 1);
});

test('MPMC: handles in worker threads of one process share the ring', async () => {
  const { Worker } = require('node:worker_threads');
  const name = `memory://${unique('workers')}`;
  const ch = new Channel(name, { bufferSize: 1 << 16, mode: 'mpmc' });
  const w = new Worker(
    `const { Channel } = require(${JSON.stringify(require.resolve('..'))});
     const { workerData } = require('node:worker_threads');
     (async () => {
       const ch = new Channel(workerData, { bufferSize: 0, mode: 'mpmc' });
       for (let i = 0; i < 100; i++) await ch.sendAsync(Buffer.from(String(i)), 1);
       ch.close();
     })();`,
    { eval: true, workerData: name },
  );
  const seen = [];
  while (seen.length < 100) seen.push(Number((await ch.recv({ timeout: 10000 })).data.toString()));
  assert.deepEqual(seen, [...Array(100).keys()]);
  await new Promise((r) => w.once('exit', r));
  ch.close();
});

test('received Buffers keep their bytes across many receives (pooled small copies, own large ones)', async () => {
  const ch = mem({ bufferSize: 1 << 20 });
  const sizes = [];
  for (let i = 0; i < 400; i++) sizes.push(i % 50 === 0 ? 9000 + i : (i * 37) % 700);
  const kept = [];
  for (let i = 0; i < sizes.length; i++) {
    ch.send(Buffer.alloc(sizes[i], i & 0xff), i);
    kept.push(i % 2 ? ch.tryRecv() : await ch.recv());
  }
  // Later receives never overwrite earlier messages' bytes.
  kept.forEach((m, i) => {
    assert.equal(m.type, i);
    assert.equal(m.data.length, sizes[i]);
    assert.ok(m.data.every((b) => b === (i & 0xff)), `message ${i} changed`);
  });
  ch.close();
});
