'use strict';
// Shared by the tests: unique channel names, the Rust engine of
// examples/node as a peer process, and small waiting helpers.
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..', '..');

let seq = 0;
/** A channel name no other test (or test run) uses. */
function unique(prefix) {
  seq += 1;
  return `${prefix}-${process.pid}-${seq}-${Date.now().toString(36)}`;
}

/**
 * The engine binary (examples/node/engine): $PSYNE_NODE_ENGINE, else built
 * here with cargo into $CARGO_TARGET_DIR (default target/node).
 */
function engineBinary() {
  if (process.env.PSYNE_NODE_ENGINE) return process.env.PSYNE_NODE_ENGINE;
  const targetDir = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target', 'node');
  const manifest = path.join(ROOT, 'examples', 'node', 'engine', 'Cargo.toml');
  const r = spawnSync('cargo', ['build', '--release', '--quiet', '--manifest-path', manifest], {
    stdio: 'inherit',
    env: { ...process.env, CARGO_TARGET_DIR: targetDir },
  });
  if (r.status !== 0) throw new Error('could not build examples/node/engine');
  return path.join(targetDir, 'release', 'psyne-node-engine');
}

/** Starts the engine with `args`; resolves once it printed its ready line on stderr. */
function startEngine(args) {
  const child = spawn(engineBinary(), args, { stdio: ['ignore', 'inherit', 'pipe'] });
  let stderr = '';
  const ready = new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      if (/serving|listening/.test(stderr)) resolve();
    });
    child.once('exit', (code, sig) => reject(new Error(`engine exited (${code ?? sig}) before it was ready: ${stderr}`)));
  });
  child.stderr.on('data', (d) => process.stderr.write(d.toString().replace(/^/gm, '[engine] ')));
  return { child, ready, exited: new Promise((resolve) => child.once('exit', (code, sig) => resolve({ code, sig }))) };
}

/** Removes a leftover /dev/shm segment of an ipc:// name (after a test's peer was killed). */
function removeSegment(name) {
  fs.rmSync(`/dev/shm/psyne-${name}`, { force: true });
}

module.exports = { ROOT, unique, engineBinary, startEngine, removeSegment };
