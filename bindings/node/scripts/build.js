'use strict';
// Builds the native addon with cargo (release) and copies the shared library
// next to index.js as psyne.node. Run by `npm install` (the package's
// `install` script) and by `npm run build`. Needs Rust (cargo) on PATH; the
// psyne crate is built from the repository this package sits in (../..).
// CARGO_TARGET_DIR is honoured (default: ./target).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const here = path.resolve(__dirname, '..');
const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(process.env.CARGO_TARGET_DIR)
  : path.join(here, 'target');
const cargo = process.env.CARGO || 'cargo';

const r = spawnSync(cargo, ['build', '--release', '--manifest-path', path.join(here, 'Cargo.toml')], {
  stdio: 'inherit',
  env: { ...process.env, CARGO_TARGET_DIR: targetDir },
});
if (r.error) {
  console.error(`psyne: could not run ${cargo} (${r.error.message}); install Rust from rustup.rs`);
  process.exit(1);
}
if (r.status !== 0) process.exit(r.status ?? 1);

const lib = path.join(targetDir, 'release', 'libpsyne_node.so');
if (!fs.existsSync(lib)) {
  console.error(`psyne: cargo finished but ${lib} is missing`);
  process.exit(1);
}
// Copy to a temporary name and rename: a running process that has the old
// addon loaded keeps its (unlinked) copy intact.
const dest = path.join(here, 'psyne.node');
const tmp = `${dest}.${process.pid}.tmp`;
fs.copyFileSync(lib, tmp);
fs.renameSync(tmp, dest);
