'use strict';
// Node <-> Rust across real processes: the engine of examples/node
// (examples/node/engine, a Rust program on the psyne crate) over ipc:// and
// unix://, MessagePack control messages, large payloads, and a peer killed
// with SIGKILL.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { pack, unpack } = require('msgpackr');
const { Channel } = require('..');
const { unique, startEngine, removeSegment } = require('./helpers');

const CONTROL = 1;
const DATA = 2;
const ECHO = 3;
const RING = 8 << 20;
const WAIT = { timeout: 20000 }; // generous: the machine may be loaded

let nextId = 1;
async function call(tx, rx, request) {
  const id = nextId++;
  tx.send(pack({ id, ...request }), CONTROL);
  const m = await rx.recv(WAIT);
  assert.equal(m.type, CONTROL);
  const reply = unpack(m.data);
  assert.equal(reply.id, id);
  return reply;
}

async function exchange(tx, rx) {
  // Control messages.
  const pong = await call(tx, rx, { op: 'ping', pad: 'x'.repeat(64) });
  assert.deepEqual(pong, { id: pong.id, op: 'pong', pad: 'x'.repeat(64) });
  const bad = await call(tx, rx, { op: 'no-such-op' });
  assert.equal(bad.op, 'error');
  // Echo of every size up to 1 MiB, bytes checked.
  for (const size of [0, 1, 100, 4096, 65536, 1 << 20]) {
    const out = Buffer.alloc(size);
    for (let i = 0; i < size; i++) out[i] = (i * 31 + size) & 0xff;
    await tx.sendAsync(out, ECHO, WAIT);
    const back = await rx.recv(WAIT);
    assert.equal(back.type, ECHO);
    assert.ok(back.data.equals(out), `echo of ${size} bytes differs`);
  }
  // A 3 MiB "file" up and down again, zero-copy both ways on the Node side.
  const size = 3 << 20;
  assert.equal((await (async () => {
    tx.send(pack({ id: nextId++, op: 'put', name: 'f', size }), CONTROL);
    const r = tx.reserve(size);
    for (let i = 0; i < size; i += 512) r.data[i] = (i >> 9) & 0xff;
    r.send(DATA);
    return unpack((await rx.recv(WAIT)).data);
  })()).size, size);
  const file = await call(tx, rx, { op: 'get', name: 'f' });
  assert.deepEqual([file.op, file.size], ['file', size]);
  const v = await rx.recvView(WAIT);
  assert.equal(v.type, DATA);
  assert.equal(v.length, size);
  for (let i = 0; i < size; i += 512) assert.equal(v.data[i], (i >> 9) & 0xff);
  v.release();
}

test('Node <-> Rust over ipc:// (two shared-memory rings)', async () => {
  const name = unique('xp-ipc');
  const req = `ipc://${name}.req`;
  const rep = `ipc://${name}.rep`;
  const engine = startEngine(['psyne', req, rep, String(RING)]);
  const tx = new Channel(req, { bufferSize: RING });
  const rx = new Channel(rep, { bufferSize: RING });
  try {
    await engine.ready;
    // The shared memory is the owner's alone.
    for (const n of [`${name}.req`, `${name}.rep`]) {
      assert.equal(fs.statSync(`/dev/shm/psyne-${n}`).mode & 0o777, 0o600);
    }
    await exchange(tx, rx);
    assert.equal((await call(tx, rx, { op: 'shutdown' })).op, 'bye');
    assert.deepEqual(await engine.exited, { code: 0, sig: null });
  } finally {
    engine.child.kill('SIGKILL');
    tx.close();
    rx.close();
  }
  // The last process to detach removed the segments.
  assert.equal(fs.existsSync(`/dev/shm/psyne-${name}.req`), false);
  assert.equal(fs.existsSync(`/dev/shm/psyne-${name}.rep`), false);
});

test('Node <-> Rust over unix:// (one socket channel, both directions)', async () => {
  const sock = path.join(os.tmpdir(), `${unique('xp')}.sock`);
  const engine = startEngine(['psyne', `unix://${sock}?role=listen`, `unix://${sock}?role=listen`, String(RING)]);
  await engine.ready;
  const ch = new Channel(`unix://${sock}`, { bufferSize: RING });
  try {
    await exchange(ch, ch);
    const m = ch.metrics();
    assert.equal(m.connects, 1);
    assert.equal(m.peers, 1);
    assert.ok(m.wireBytesSent > m.bytesSent, 'frames carry headers');
    assert.equal((await call(ch, ch, { op: 'shutdown' })).op, 'bye');
    assert.deepEqual(await engine.exited, { code: 0, sig: null });
  } finally {
    engine.child.kill('SIGKILL');
    ch.close();
  }
});

test('ipc:// peer killed with SIGKILL: Node gets TIMEOUT, not a hang; a new engine takes over', async () => {
  const name = unique('xp-kill');
  const req = `ipc://${name}.req`;
  const rep = `ipc://${name}.rep`;
  const first = startEngine(['psyne', req, rep, String(RING)]);
  const tx = new Channel(req, { bufferSize: RING });
  const rx = new Channel(rep, { bufferSize: RING });
  try {
    await first.ready;
    assert.equal((await call(tx, rx, { op: 'ping' })).op, 'pong');
    const waiting = rx.recv({ timeout: 1500 });
    first.child.kill('SIGKILL');
    assert.equal((await first.exited).sig, 'SIGKILL');
    const t0 = Date.now();
    await assert.rejects(waiting, (e) => e.code === 'TIMEOUT');
    assert.ok(Date.now() - t0 < 10000);
    // Requests sent meanwhile wait in the ring for the next engine...
    tx.send(pack({ id: 777, op: 'ping' }), CONTROL);
    const second = startEngine(['psyne', req, rep, String(RING)]);
    try {
      await second.ready;
      // ... which attaches (the dead process's slot is reclaimed) and answers.
      const m = await rx.recv(WAIT);
      assert.equal(unpack(m.data).id, 777);
      assert.equal((await call(tx, rx, { op: 'shutdown' })).op, 'bye');
      assert.equal((await second.exited).code, 0);
    } finally {
      second.child.kill('SIGKILL');
    }
  } finally {
    first.child.kill('SIGKILL');
    tx.close();
    rx.close();
    removeSegment(`${name}.req`);
    removeSegment(`${name}.rep`);
  }
});

test('unix:// peer killed with SIGKILL: the connection drops, waits time out, Node reconnects to a new engine', async () => {
  const sock = path.join(os.tmpdir(), `${unique('xp-kill')}.sock`);
  const listen = `unix://${sock}?role=listen`;
  const first = startEngine(['psyne', listen, listen, String(RING)]);
  await first.ready;
  const ch = new Channel(`unix://${sock}?reconnect_max=50`, { bufferSize: RING });
  try {
    assert.equal((await call(ch, ch, { op: 'ping' })).op, 'pong');
    const waiting = ch.recv({ timeout: 1500 });
    first.child.kill('SIGKILL');
    await first.exited;
    await assert.rejects(waiting, (e) => e.code === 'TIMEOUT');
    // The drop is visible: no peer any more.
    const deadline = Date.now() + 10000;
    while (ch.metrics().peers !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(ch.metrics().peers, 0);
    const second = startEngine(['psyne', listen, listen, String(RING)]);
    try {
      await second.ready;
      assert.equal((await call(ch, ch, { op: 'ping' })).op, 'pong');
      assert.ok(ch.metrics().reconnects >= 1);
      assert.equal((await call(ch, ch, { op: 'shutdown' })).op, 'bye');
    } finally {
      second.child.kill('SIGKILL');
    }
  } finally {
    first.child.kill('SIGKILL');
    ch.close();
  }
});
