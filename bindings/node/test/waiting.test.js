'use strict';
// AbortSignal cancellation, and waits that never block the event loop.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs/promises');
const { Channel, PsyneError } = require('..');
const { unique } = require('./helpers');

const mem = (opts = {}) => new Channel(`memory://${unique('wait')}`, { bufferSize: 4096, ...opts });

function isCancelled(reason) {
  return (e) => {
    assert.ok(e instanceof PsyneError, String(e));
    assert.equal(e.code, 'CANCELLED');
    assert.equal(e.errno, -9);
    assert.equal(e.cause, reason);
    return true;
  };
}

test('AbortSignal cancels a waiting recv, recvView and sendAsync', async () => {
  const ch = mem();
  const ac = new AbortController();
  const reason = new Error('user gave up');
  const r = ch.recv({ signal: ac.signal });
  const rv = mem();
  const ac2 = new AbortController();
  const v = rv.recvView({ signal: ac2.signal });
  const full = mem();
  try {
    for (;;) full.send(Buffer.alloc(500));
  } catch (e) {
    assert.equal(e.code, 'CHANNEL_FULL');
  }
  const ac3 = new AbortController();
  const s = full.sendAsync(Buffer.alloc(500), 1, { signal: ac3.signal });
  const all = Promise.allSettled([r, v, s]);
  setTimeout(() => {
    ac.abort(reason);
    ac2.abort(reason);
    ac3.abort(reason);
  }, 20);
  for (const o of await all) {
    assert.equal(o.status, 'rejected');
    isCancelled(reason)(o.reason);
  }
  // The handles go on working after a cancelled wait.
  ch.send('after abort', 1);
  assert.equal((await ch.recv({ signal: new AbortController().signal })).data.toString(), 'after abort');
  full.tryRecv();
  await full.sendAsync(Buffer.alloc(10), 2, { signal: new AbortController().signal });
  for (const c of [ch, rv, full]) c.close();
});

test('an already aborted signal rejects at once, even with a message queued', async () => {
  const ch = mem();
  ch.send('queued');
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(ch.recv({ signal: ac.signal }), isCancelled(ac.signal.reason));
  await assert.rejects(ch.sendAsync('x', 0, { signal: ac.signal }), isCancelled(ac.signal.reason));
  assert.equal(ch.tryRecv().data.toString(), 'queued', 'nothing was taken');
  ch.close();
});

test('AbortSignal.timeout() and a timeout together: whichever ends first', async () => {
  const ch = mem();
  await assert.rejects(ch.recv({ signal: AbortSignal.timeout(20), timeout: 5000 }), (e) => e.code === 'CANCELLED' && e.cause?.name === 'TimeoutError');
  await assert.rejects(ch.recv({ signal: AbortSignal.timeout(5000), timeout: 20 }), (e) => e.code === 'TIMEOUT');
  ch.close();
});

test('an abort after the wait finished changes nothing; listeners are removed', async () => {
  const ch = mem();
  const ac = new AbortController();
  ch.send('x');
  const m = await ch.recv({ signal: ac.signal });
  ac.abort();
  assert.equal(m.data.toString(), 'x');
  // Many waits on one long-lived signal do not pile up listeners.
  const { getEventListeners } = require('node:events');
  for (let i = 0; i < 20; i++) {
    ch.send('y');
    await ch.recv({ signal: new AbortController().signal });
  }
  const keep = new AbortController();
  for (let i = 0; i < 20; i++) {
    const p = ch.recv({ signal: keep.signal, timeout: 1 });
    await p.catch(() => {});
  }
  assert.equal(getEventListeners(keep.signal, 'abort').length, 0);
  ch.close();
});

test('the event loop keeps running while recv waits (a timer keeps firing)', async () => {
  const ch = mem();
  let ticks = 0;
  const timer = setInterval(() => {
    ticks += 1;
  }, 5);
  const t0 = Date.now();
  setTimeout(() => ch.send('done', 1), 300);
  const m = await ch.recv();
  clearInterval(timer);
  assert.equal(m.data.toString(), 'done');
  assert.ok(Date.now() - t0 >= 250);
  // 300 ms of 5 ms ticks: about 60; a blocked loop would give 0 or 1.
  assert.ok(ticks >= 20, `only ${ticks} timer ticks while recv waited`);
  ch.close();
});

test('waits do not hold libuv pool threads: 8 idle waits, file I/O still runs', async () => {
  const chans = Array.from({ length: 8 }, () => mem());
  const waits = chans.map((c) => c.recv().catch((e) => e));
  // With UV_THREADPOOL_SIZE=4 a pool-based wait would starve fs.
  const t0 = Date.now();
  const text = await fs.readFile(__filename, 'utf8');
  assert.ok(text.includes('libuv pool'));
  assert.ok(Date.now() - t0 < 5000);
  for (const c of chans) c.stop();
  for (const e of await Promise.all(waits)) assert.equal(e.code, 'CHANNEL_STOPPED');
  for (const c of chans) c.close();
});

test('a pending recv keeps the process alive; a stopped channel lets it exit', async () => {
  const { spawnSync } = require('node:child_process');
  const script = `
    const { Channel } = require(${JSON.stringify(require.resolve('..'))});
    const ch = new Channel('memory://alive', { bufferSize: 4096 });
    ch.recv().then((m) => { console.log('got', m.data.toString()); ch.close(); });
    setTimeout(() => ch.send('late'), 200);`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'got late');
});

test('a queued wait honours its own timeout and signal while the one ahead still waits', async () => {
  const ch = mem();
  const first = ch.recv(); // waits without limit
  const t0 = Date.now();
  await assert.rejects(ch.recv({ timeout: 50 }), (e) => e.code === 'TIMEOUT');
  assert.ok(Date.now() - t0 < 5000, 'the queued timeout waited for the first recv');
  const ac = new AbortController();
  const aborted = ch.recvView({ signal: ac.signal });
  setTimeout(() => ac.abort(), 20);
  await assert.rejects(aborted, (e) => e.code === 'CANCELLED');
  await assert.rejects(ch.recv({ timeout: 0 }), (e) => e.code === 'NO_MESSAGE');
  // Nothing was taken by the waits that ended: the first gets the message.
  ch.send('for the first', 7);
  const m = await first;
  assert.equal(m.data.toString(), 'for the first');
  assert.equal(ch.tryRecv(), null);

  // The same on the sending side.
  try {
    for (;;) ch.send(Buffer.alloc(500));
  } catch (e) {
    assert.equal(e.code, 'CHANNEL_FULL');
  }
  const s1 = ch.sendAsync(Buffer.alloc(500), 1);
  await assert.rejects(ch.sendAsync(Buffer.alloc(10), 2, { timeout: 50 }), (e) => e.code === 'TIMEOUT');
  const ac2 = new AbortController();
  const s3 = ch.sendAsync(Buffer.alloc(10), 3, { signal: ac2.signal });
  ac2.abort();
  await assert.rejects(s3, (e) => e.code === 'CANCELLED');
  await assert.rejects(ch.sendAsync(Buffer.alloc(10), 4, { timeout: 0 }), (e) => e.code === 'CHANNEL_FULL');
  const types = [];
  const drained = (async () => {
    for (;;) {
      const r = await ch.recv();
      types.push(r.type);
      if (r.type === 1) return;
    }
  })();
  await s1;
  await drained;
  assert.ok(!types.includes(2) && !types.includes(3) && !types.includes(4), 'a send that ended was not sent');
  ch.close();
});
