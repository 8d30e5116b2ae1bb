'use strict';
// Node front end <-> Rust engine (examples/node/engine), three ways, in one run:
//
//   ndjson        JSON lines on the child's stdin/stdout, bytes as base64 (what the team has today)
//   msgpack-unix  MessagePack frames (u32 LE length + map, bytes as bin) on a Unix socket, node:net
//   psyne-ipc     psyne ipc:// (two shared-memory rings), MessagePack control messages, raw bytes
//
// Measures the round trip of a ~100 B control message (p50/p99), the transfer
// time of 1 KiB, 1 MiB and 10 MiB (sent, received whole by the engine, a small
// ack back; p50), small-message throughput (100 B messages, one ack at the
// end) and large-message throughput (1 MiB messages, one ack at the end).
//
//   node bench/ipc-vs-baselines.js [--quick] [--json FILE] [--spin MICROS]
//
// --spin sets the polling budget of the psyne channels on both sides (the
// `spin` option; default 20 µs).
//
// The engine binary: $PSYNE_NODE_ENGINE, else built with cargo into
// $CARGO_TARGET_DIR (default target/node).
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { pack, unpack } = require('msgpackr');
const { Channel } = require('..');
const { engineBinary, unique } = require('../test/helpers');

const quick = process.argv.includes('--quick');
const arg = (name) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : null);
const jsonOut = arg('--json');
const spin = arg('--spin') === null ? undefined : Number(arg('--spin'));

const N = quick
  ? { rt: 2000, kib: 1000, mib: 60, mib10: 12, small: 100000, large: 100, warm: 200 }
  : { rt: 20000, kib: 10000, mib: 300, mib10: 50, small: 1000000, large: 500, warm: 1000 };
// NDJSON is far slower on large payloads; fewer rounds keep the run short.
const NDJSON_LARGE = quick ? { mib: 20, mib10: 4, large: 20 } : { mib: 60, mib10: 10, large: 60 };

const PAD = 'p'.repeat(70); // a ~100 B control message with its id and op
const now = () => process.hrtime.bigint();
const ms = (ns) => Number(ns) / 1e6;

function pct(samples, p) {
  const s = [...samples].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return ms(s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]);
}

async function timeEach(n, warm, fn) {
  for (let i = 0; i < warm; i++) await fn(i);
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const t = now();
    await fn(i);
    out[i] = now() - t;
  }
  return out;
}

function payload(size) {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 4096) b[i] = i & 0xff;
  return b;
}

// ---- transports: each has request(obj) -> reply promise, sink(obj) (no reply)

/** Replies come back in order; each waiter takes the next one. */
class ReplyQueue {
  #waiters = [];
  #ready = [];
  push(v) {
    const w = this.#waiters.shift();
    if (w) w(v);
    else this.#ready.push(v);
  }
  next() {
    if (this.#ready.length) return Promise.resolve(this.#ready.shift());
    return new Promise((r) => this.#waiters.push(r));
  }
}

async function ndjson() {
  const child = spawn(engineBinary(), ['ndjson'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const replies = new ReplyQueue();
  let partial = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    partial += chunk;
    let nl;
    while ((nl = partial.indexOf('\n')) >= 0) {
      replies.push(JSON.parse(partial.slice(0, nl)));
      partial = partial.slice(nl + 1);
    }
  });
  let id = 0;
  const write = (obj) => {
    const line = `${JSON.stringify(obj)}\n`;
    if (!child.stdin.write(line)) return new Promise((r) => child.stdin.once('drain', r));
    return null;
  };
  return {
    name: 'ndjson',
    large: NDJSON_LARGE,
    async ping() {
      write({ id: ++id, op: 'ping', pad: PAD });
      return replies.next();
    },
    async transfer(buf) {
      await write({ id: ++id, op: 'sink_ack', data: buf.toString('base64') });
      const r = await replies.next();
      if (r.size !== buf.length) throw new Error(`ndjson: ack of ${r.size} bytes, sent ${buf.length}`);
    },
    async stream(buf, count) {
      const data = buf.toString('base64'); // encoded once: the per-message cost left is JSON and the pipe
      for (let i = 0; i < count - 1; i++) {
        const w = write({ id: ++id, op: 'sink', data });
        if (w) await w;
      }
      await this.transfer(buf);
    },
    close() {
      child.stdin.end();
      return new Promise((r) => child.once('exit', r));
    },
  };
}

async function msgpackUnix() {
  const sock = path.join(os.tmpdir(), `${unique('bench')}.sock`);
  const child = spawn(engineBinary(), ['msgpack-unix', sock], { stdio: ['ignore', 'inherit', 'pipe'] });
  await new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => (/listening/.test(String(d)) ? resolve() : process.stderr.write(d)));
    child.once('exit', () => reject(new Error('msgpack-unix engine exited')));
  });
  const conn = net.connect(sock);
  conn.setNoDelay?.(true);
  await new Promise((r) => conn.once('connect', r));
  const replies = new ReplyQueue();
  let pending = [];
  let pendingLen = 0;
  conn.on('data', (chunk) => {
    pending.push(chunk);
    pendingLen += chunk.length;
    if (pendingLen < 4) return;
    let buf = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingLen);
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32LE(off);
      if (buf.length - off - 4 < len) break;
      replies.push(unpack(buf.subarray(off + 4, off + 4 + len)));
      off += 4 + len;
    }
    buf = buf.subarray(off);
    pending = buf.length ? [buf] : [];
    pendingLen = buf.length;
  });
  let id = 0;
  const write = (obj) => {
    const body = pack(obj);
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32LE(body.length);
    conn.cork();
    conn.write(head);
    const ok = conn.write(body);
    conn.uncork();
    return ok ? null : new Promise((r) => conn.once('drain', r));
  };
  return {
    name: 'msgpack-unix',
    large: N,
    async ping() {
      write({ id: ++id, op: 'ping', pad: PAD });
      return replies.next();
    },
    async transfer(buf) {
      await write({ id: ++id, op: 'sink_ack', data: buf });
      const r = await replies.next();
      if (r.size !== buf.length) throw new Error(`msgpack: ack of ${r.size} bytes, sent ${buf.length}`);
    },
    async stream(buf, count) {
      for (let i = 0; i < count - 1; i++) {
        const w = write({ id: ++id, op: 'sink', data: buf });
        if (w) await w;
      }
      await this.transfer(buf);
    },
    async close() {
      conn.end();
      await new Promise((r) => child.once('exit', r));
      fs.rmSync(sock, { force: true });
    },
  };
}

const CONTROL = 1;
const SINK = 4;
const SINK_ACK = 5;
const RING = 64 << 20;

async function psyneIpc() {
  const name = unique('bench');
  const req = `ipc://${name}.req`;
  const rep = `ipc://${name}.rep`;
  const q = spin === undefined ? '' : `?spin=${spin}`;
  const child = spawn(engineBinary(), ['psyne', req + q, rep + q, String(RING)], { stdio: ['ignore', 'inherit', 'pipe'] });
  const tx = new Channel(req, { bufferSize: RING, spin });
  const rx = new Channel(rep, { bufferSize: RING, spin });
  await new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => (/serving/.test(String(d)) ? resolve() : process.stderr.write(d)));
    child.once('exit', () => reject(new Error('psyne engine exited')));
  });
  let id = 0;
  const send = (buf, type) => {
    try {
      tx.send(buf, type);
      return null;
    } catch (e) {
      if (e.code !== 'CHANNEL_FULL') throw e;
      return tx.sendAsync(buf, type);
    }
  };
  return {
    name: 'psyne-ipc',
    large: N,
    async ping() {
      tx.send(pack({ id: ++id, op: 'ping', pad: PAD }), CONTROL);
      return unpack((await rx.recv()).data);
    },
    async transfer(buf) {
      const w = send(buf, SINK_ACK);
      if (w) await w;
      const m = await rx.recv();
      if (m.type !== SINK_ACK) throw new Error(`psyne: reply type ${m.type}`);
    },
    async stream(buf, count) {
      for (let i = 0; i < count - 1; i++) {
        const w = send(buf, SINK);
        if (w) await w;
      }
      await this.transfer(buf);
    },
    async close() {
      tx.send(pack({ id: ++id, op: 'shutdown' }), CONTROL);
      await rx.recv({ timeout: 10000 });
      await new Promise((r) => child.once('exit', r));
      tx.close();
      rx.close();
    },
  };
}

async function measure(t) {
  const r = { transport: t.name };
  const rt = await timeEach(N.rt, N.warm, () => t.ping());
  r.controlRtP50 = pct(rt, 50);
  r.controlRtP99 = pct(rt, 99);
  const kib = payload(1024);
  r.kib1 = pct(await timeEach(N.kib, N.warm, () => t.transfer(kib)), 50);
  const mib = payload(1 << 20);
  r.mib1 = pct(await timeEach(t.large.mib, 3, () => t.transfer(mib)), 50);
  const mib10 = payload(10 << 20);
  r.mib10 = pct(await timeEach(t.large.mib10, 2, () => t.transfer(mib10)), 50);
  const small = payload(100);
  let t0 = now();
  await t.stream(small, N.small);
  r.smallPerSec = N.small / (ms(now() - t0) / 1000);
  t0 = now();
  await t.stream(mib, t.large.large);
  r.largeGBps = (t.large.large * (1 << 20)) / (ms(now() - t0) / 1000) / 1e9;
  await t.close();
  return r;
}

function table(rows) {
  const f = (v, d = 3) => v.toFixed(d);
  const lines = [
    '| transport | control RT p50 (ms) | control RT p99 (ms) | 1 KiB (ms) | 1 MiB (ms) | 10 MiB (ms) | 100 B msgs/s | 1 MiB msgs GB/s |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.transport} | ${f(r.controlRtP50)} | ${f(r.controlRtP99)} | ${f(r.kib1)} | ${f(r.mib1)} | ${f(r.mib10, 2)} | ${Math.round(r.smallPerSec).toLocaleString('en-US')} | ${f(r.largeGBps, 2)} |`,
    );
  }
  return lines.join('\n');
}

(async () => {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(
    `# psyne Node benchmark (${quick ? 'quick' : 'full'}${spin === undefined ? '' : `, spin ${spin} µs`}), ${new Date().toISOString()}, ${cpu}, ${os.cpus().length} CPUs, Node ${process.version}`,
  );
  engineBinary(); // build before timing anything
  const rows = [];
  for (const make of [ndjson, msgpackUnix, psyneIpc]) {
    const t = await make();
    rows.push(await measure(t));
    console.error(`  ${rows.at(-1).transport} done`);
  }
  console.log(table(rows));
  const [nd, , ps] = rows;
  const ratio = (a, b) => (a / b).toFixed(1);
  console.log(
    `\npsyne-ipc vs ndjson: ${ratio(ps.smallPerSec, nd.smallPerSec)}x small-message throughput, ` +
      `${ratio(ps.largeGBps, nd.largeGBps)}x large-message throughput, ` +
      `${ratio(nd.controlRtP50, ps.controlRtP50)}x faster control round trip (p50)`,
  );
  const targets = [
    ['control RT p50 < 0.1 ms', ps.controlRtP50 < 0.1],
    ['1 KiB < 0.2 ms', ps.kib1 < 0.2],
    ['1 MiB < 1 ms', ps.mib1 < 1],
    ['10 MiB < 5 ms', ps.mib10 < 5],
    ['> 100,000 small msgs/s', ps.smallPerSec > 100000],
    ['> 1 GB/s large', ps.largeGBps > 1],
    ['>= 10x NDJSON throughput (small and large)', ps.smallPerSec >= 10 * nd.smallPerSec && ps.largeGBps >= 10 * nd.largeGBps],
  ];
  console.log(`targets (psyne-ipc): ${targets.map(([n, ok]) => `${n}: ${ok ? 'met' : 'MISSED'}`).join('; ')}`);
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ date: new Date().toISOString(), cpu, quick, rows }, null, 2));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
