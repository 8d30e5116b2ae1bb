'use strict';
// The Node front end: talks to the Rust engine (engine/, a separate process)
// over two psyne ipc:// rings — requests one way, replies the other —
// with MessagePack control messages and raw file contents.
//
//   npm install                      # builds psyne's addon, installs msgpackr
//   cargo build --release --manifest-path engine/Cargo.toml
//   node frontend.js [FILE]          # starts the engine, uploads FILE (default: 8 MiB of test bytes), downloads it again
//
// The engine binary: $PSYNE_NODE_ENGINE, else engine/target/release/psyne-node-engine
// (or $CARGO_TARGET_DIR/release/psyne-node-engine).
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { pack, unpack } = require('msgpackr');
const { Channel } = require('psyne');

const CONTROL = 1; // MessagePack map {id, op, ...}
const DATA = 2; // file contents
const RING = 64 << 20; // the largest message is half the ring: 32 MiB

const engineBin =
  process.env.PSYNE_NODE_ENGINE ||
  path.join(process.env.CARGO_TARGET_DIR || path.join(__dirname, 'engine', 'target'), 'release', 'psyne-node-engine');

async function main() {
  const file = process.argv[2] ? fs.readFileSync(process.argv[2]) : Buffer.alloc(8 << 20, 'psyne ');
  const name = `node-example-${process.pid}`;
  const req = `ipc://${name}.req`;
  const rep = `ipc://${name}.rep`;

  // Both sides open both rings with the same size: whoever comes first creates them.
  const requests = new Channel(req, { bufferSize: RING });
  const replies = new Channel(rep, { bufferSize: RING });
  const engine = spawn(engineBin, ['psyne', req, rep, String(RING)], { stdio: 'inherit' });
  const engineExit = new Promise((resolve) => engine.once('exit', (code, sig) => resolve(code ?? sig)));

  let nextId = 1;
  async function call(request) {
    const id = nextId++;
    requests.send(pack({ id, ...request }), CONTROL); // never waits: CHANNEL_FULL if the ring is full
    const { data, type } = await replies.recv({ timeout: 10000 }); // the event loop runs meanwhile
    if (type !== CONTROL) throw new Error(`expected a control reply, got type ${type}`);
    const reply = unpack(data);
    if (reply.id !== id || reply.op === 'error') throw new Error(`engine: ${reply.error ?? 'reply out of order'}`);
    return reply;
  }

  let t = process.hrtime.bigint();
  const since = () => {
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    t = process.hrtime.bigint();
    return `${ms.toFixed(3)} ms`;
  };

  await call({ op: 'ping' }); // the first reply also tells that the engine is up
  since();
  console.log('ping:', (await call({ op: 'ping' })).op, since());

  // Upload: a control message, then the contents written straight into the ring.
  requests.send(pack({ id: nextId++, op: 'put', name: 'upload', size: file.length }), CONTROL);
  const slot = requests.reserve(file.length);
  file.copy(slot.data);
  slot.send(DATA);
  const stored = unpack((await replies.recv({ timeout: 10000 })).data);
  console.log(`put ${file.length} bytes: engine stored ${stored.size}`, since());

  // Download: the reply's bytes are read in place (a view of the ring), then released.
  const meta = await call({ op: 'get', name: 'upload' });
  const view = await replies.recvView({ timeout: 10000 });
  const same = view.type === DATA && view.data.equals(file);
  view.release();
  console.log(`get ${meta.size} bytes: ${same ? 'identical' : 'DIFFERENT'}`, since());

  await call({ op: 'shutdown' });
  console.log('engine exited with', await engineExit);
  requests.close();
  replies.close();
  if (!same) process.exit(1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
