'use strict';
// What a received message costs on the JavaScript thread: a copy into a
// Buffer of its own (tryRecv) against a zero-copy view that is detached on
// release (tryRecvView + release), on one memory:// channel, sizes 64 B to
// 4 MiB. Each loop also sends the message (the same send in both), so the
// difference between the columns is the receive side's.
//
//   node bench/views.js [--quick]
const os = require('node:os');
const { Channel } = require('..');

const quick = process.argv.includes('--quick');
const sizes = [64, 4096, 65536, 1 << 20, 4 << 20];

function perOp(n, fn) {
  for (let i = 0; i < Math.min(n, 200); i++) fn();
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - t) / n;
}

console.log(`# view vs copy, ${new Date().toISOString()}, ${os.cpus()[0]?.model}, Node ${process.version}`);
console.log('| size | send + tryRecv, copy (µs) | send + tryRecvView + release (µs) |');
console.log('|---:|---:|---:|');
for (const size of sizes) {
  const ch = new Channel(`memory://views-${size}`, { bufferSize: Math.max(1 << 16, size * 4) });
  const data = Buffer.alloc(size, 1);
  const n = Math.max(quick ? 50 : 200, Math.floor((quick ? 2e7 : 2e8) / (size + 2000)));
  const copy = perOp(n, () => {
    ch.send(data, 1);
    const m = ch.tryRecv();
    if (m.data.length !== size) throw new Error('short');
  });
  const view = perOp(n, () => {
    ch.send(data, 1);
    const v = ch.tryRecvView();
    if (v.data[size - 1] !== 1) throw new Error('bad byte');
    v.release();
  });
  const f = (ns) => (ns / 1000).toFixed(2);
  console.log(`| ${size} | ${f(copy)} | ${f(view)} |`);
  ch.close();
}
