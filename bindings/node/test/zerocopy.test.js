'use strict';
// Zero-copy views and reservations: the Buffers are the ring memory, and
// once released / sent / cancelled they are detached (length 0), so no
// JavaScript code can read or write ring memory that was handed back.
const test = require('node:test');
const assert = require('node:assert/strict');
const { Channel, View, Reservation, PsyneError } = require('..');
const { unique } = require('./helpers');

const mem = (opts = {}) => new Channel(`memory://${unique('zc')}`, { bufferSize: 4096, ...opts });

function throwsCode(fn, code, pattern) {
  assert.throws(fn, (e) => e instanceof PsyneError && e.code === code && (!pattern || pattern.test(e.message)));
}

test('reserve: fill in place, send, received as a view of the same bytes', async () => {
  const ch = mem();
  const r = ch.reserve(11);
  assert.ok(r instanceof Reservation);
  assert.equal(r.length, 11);
  assert.equal(r.done, false);
  const data = r.data;
  data.write('hello world');
  r.send(42);
  assert.equal(r.done, true);
  assert.equal(data.length, 0, 'a sent reservation is detached');
  assert.equal(data.buffer.byteLength, 0);
  throwsCode(() => r.send(1), 'INVALID_ARGUMENT', /already sent or cancelled/);
  r.cancel(); // idempotent, no effect after send

  const v = await ch.recvView();
  assert.ok(v instanceof View);
  assert.equal(v.type, 42);
  assert.equal(v.length, 11);
  assert.equal(v.data.toString(), 'hello world');
  // The Buffer is external memory of exactly the message (no pool slice).
  assert.equal(v.data.byteOffset, 0);
  assert.equal(v.data.buffer.byteLength, 11);
  const view = v.data;
  const part = view.subarray(2, 6);
  const dv = new DataView(view.buffer, view.byteOffset, view.length);
  assert.equal(part.toString(), 'llo ');
  v.release();
  assert.equal(part.length, 0, 'a subarray made before release is detached too');
  assert.throws(() => dv.getUint8(0), TypeError);
  assert.equal(v.released, true);
  assert.equal(view.length, 0, 'a released view is detached');
  assert.equal(view.buffer.byteLength, 0);
  assert.equal(view[0], undefined);
  assert.throws(() => view.readUInt8(0), RangeError);
  v.release(); // idempotent
  ch.close();
});

test('a view keeps its message until release: the ring reuses the space only after it', () => {
  const ch = mem({ bufferSize: 256 }); // max message 112 bytes
  ch.send(Buffer.alloc(80, 0xaa), 1);
  const v = ch.tryRecvView();
  // SPSC: a held view is a receive in progress.
  throwsCode(() => ch.tryRecv(), 'INVALID_ARGUMENT', /received message is still held/);
  ch.send(Buffer.alloc(80, 0xbb), 2);
  throwsCode(() => ch.send(Buffer.alloc(80, 0xcc), 3), 'CHANNEL_FULL');
  assert.ok(v.data.every((b) => b === 0xaa), 'the view is intact while held');
  const old = v.data;
  v.release();
  assert.equal(old.length, 0);
  assert.equal(ch.tryRecv().type, 2);
  ch.send(Buffer.alloc(80, 0xcc), 3); // the ring reuses the released space
  assert.ok(ch.tryRecv().data.every((b) => b === 0xcc));
  assert.equal(old[0], undefined, 'the old Buffer cannot see the reused ring bytes');
  ch.close();
});

test('reservation cancel gives the space back; Symbol.dispose cancels', () => {
  const ch = mem({ bufferSize: 256 });
  const r = ch.reserve(100);
  r.data.fill(7);
  throwsCode(() => ch.send('x'), 'INVALID_ARGUMENT', /another send or reservation is in progress/);
  r.cancel();
  assert.equal(r.done, true);
  assert.equal(r.data.length, 0);
  assert.equal(ch.tryRecv(), null, 'nothing was sent');
  ch.reserve(10)[Symbol.dispose]();
  assert.equal(ch.tryRecv(), null);
  ch.send('works again');
  assert.equal(ch.tryRecv().data.toString(), 'works again');
  ch.close();
});

test('reserve refusals: too large, full, bad sizes, SINGLE type', () => {
  const ch = mem({ bufferSize: 256 });
  throwsCode(() => ch.reserve(ch.maxMessageSize + 1), 'INVALID_ARGUMENT', /larger/);
  throwsCode(() => ch.reserve(-1), 'INVALID_ARGUMENT', /size/);
  throwsCode(() => ch.reserve(2.5), 'INVALID_ARGUMENT', /size/);
  ch.send(Buffer.alloc(80));
  ch.send(Buffer.alloc(80));
  throwsCode(() => ch.reserve(80), 'CHANNEL_FULL');
  ch.close();
  const single = mem({ type: 'single' });
  const r = single.reserve(4);
  throwsCode(() => r.send(5), 'INVALID_ARGUMENT');
  single.close();
});

test('empty reservations and empty views', async () => {
  const ch = mem();
  const r = ch.reserve(0);
  assert.equal(r.data.length, 0);
  r.send(3);
  const v = await ch.recvView({ timeout: 1000 });
  assert.equal(v.length, 0);
  assert.equal(v.type, 3);
  v.release();
  assert.equal(ch.tryRecvView(), null);
  ch.close();
});

test('views over ipc://: a 1 MiB message read in place', async () => {
  const name = `ipc://${unique('zc-ipc')}`;
  const tx = new Channel(name, { bufferSize: 4 << 20 });
  const rx = new Channel(name, { bufferSize: 0 });
  const r = tx.reserve(1 << 20);
  for (let i = 0; i < r.length; i += 4096) r.data[i] = (i >> 12) & 0xff;
  r.send(9);
  const v = await rx.recvView({ timeout: 5000 });
  assert.equal(v.length, 1 << 20);
  for (let i = 0; i < v.length; i += 4096) assert.equal(v.data[i], (i >> 12) & 0xff);
  v.release();
  tx.close();
  rx.close();
});

test('a view or reservation dropped without release is released by the garbage collector', { skip: !global.gc && 'needs --expose-gc' }, async () => {
  const ch = mem({ bufferSize: 256 });
  ch.send(Buffer.alloc(100), 1);
  (() => {
    ch.tryRecvView(); // dropped at once, never released
  })();
  (() => {
    ch.reserve(50); // dropped at once, never sent
  })();
  for (let i = 0; i < 50; i++) {
    global.gc();
    await new Promise((r) => setImmediate(r));
    try {
      ch.send(Buffer.alloc(100), 2);
      break;
    } catch (e) {
      if (!/still held|in progress|CHANNEL_FULL|channel full/.test(`${e.code} ${e.message}`)) throw e;
    }
  }
  assert.equal(ch.tryRecv().type, 2);
  ch.close();
});

test('closing the channel while a view is held keeps its bytes valid until release', () => {
  const ch = mem();
  ch.send('outlives close', 1);
  const v = ch.tryRecvView();
  ch.close();
  assert.equal(v.data.toString(), 'outlives close');
  v.release();
  assert.equal(v.data.length, 0);
});
