#!/usr/bin/env bash
# Suite 55-node: the Node.js package in bindings/node (napi-rs addon over the
# Rust core) and the Node example in examples/node.
#
#   rustfmt and clippy of the addon crate and of the example's Rust engine
#   (each its own cargo workspace, outside the library's);
#   `npm install` in bindings/node (its install script builds the addon with
#   cargo and copies it to psyne.node), the TypeScript types compiled against
#   a usage file (tsc --noEmit);
#   `node --test` over bindings/node/test: every method and error, views and
#   reservations, AbortSignal, the event loop staying live during waits,
#   Node <-> the Rust engine as separate processes over ipc:// and unix://,
#   and that engine killed with SIGKILL;
#   `npm install /path/to/bindings/node` from a throwaway project;
#   the example (examples/node/frontend.js with its engine);
#   the benchmark in quick mode (a table; nothing is asserted about speed).
#
# Builds go to $PSYNE_ROOT/target/node (incremental across runs).
# Run alone: bash tests/suites/55-node.sh
set -euo pipefail

ROOT="${PSYNE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
NODE_DIR="$ROOT/bindings/node"
ENGINE_MANIFEST="$ROOT/examples/node/engine/Cargo.toml"
export CARGO_TARGET_DIR="$ROOT/target/node"
export PSYNE_NODE_ENGINE="$CARGO_TARGET_DIR/release/psyne-node-engine"
NPM_FLAGS=(--no-audit --no-fund --loglevel=error)

say() { printf '[55-node] %s\n' "$*"; }
die() { printf '[55-node] FAIL: %s\n' "$*" >&2; exit 1; }

command -v node >/dev/null || die "node is not installed (Node.js >= 18 is needed)"
command -v npm >/dev/null || die "npm is not installed"
command -v cargo >/dev/null || die "cargo is not installed"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 18 ] || die "Node.js $(node --version) is too old (>= 18 is needed)"
say "node $(node --version), npm $(npm --version)"

WORK="$(mktemp -d /tmp/psyne-node-suite.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

say "rustfmt and clippy (addon and example engine)"
for manifest in "$NODE_DIR/Cargo.toml" "$ENGINE_MANIFEST"; do
  cargo fmt --manifest-path "$manifest" -- --check
  cargo clippy --quiet --release --all-targets --manifest-path "$manifest" -- -D warnings
done

say "npm install in bindings/node (builds the addon)"
rm -f "$NODE_DIR/psyne.node"
(cd "$NODE_DIR" && npm install "${NPM_FLAGS[@]}")
[ -f "$NODE_DIR/psyne.node" ] || die "npm install did not build psyne.node"

say "TypeScript types (tsc --noEmit over test/types.ts)"
(cd "$NODE_DIR" && npx --no-install tsc -p test/tsconfig.json)

say "example engine"
cargo build --quiet --release --manifest-path "$ENGINE_MANIFEST"

say "node --test"
(cd "$NODE_DIR" && node --expose-gc --test --test-reporter=spec test/)

say "npm install of the package by path, from a throwaway project"
mkdir "$WORK/app"
(
  cd "$WORK/app"
  npm init -y >/dev/null
  # npm versions that hold back dependencies' install scripts run those
  # listed in allowScripts.
  npm pkg set 'allowScripts.psyne=true' --json
  npm install "${NPM_FLAGS[@]}" "$NODE_DIR"
  node -e '
    const { Channel, PsyneError } = require("psyne");
    const ch = new Channel("memory://installed", { bufferSize: 4096 });
    ch.send("installed", 5);
    const m = ch.tryRecv();
    if (m.data.toString() !== "installed" || m.type !== 5) throw new Error("round trip failed");
    try { ch.send(Buffer.alloc(5000)); throw new Error("no error"); } catch (e) {
      if (!(e instanceof PsyneError) || e.code !== "INVALID_ARGUMENT") throw e;
    }
    ch.close();
    console.log("require(\"psyne\") from an installed project: ok");'
)

say "example: examples/node/frontend.js <-> engine over ipc://"
(
  cd "$ROOT/examples/node"
  npm install "${NPM_FLAGS[@]}"
  head -c $((5 << 20)) /dev/urandom >"$WORK/upload.bin"
  out="$(node frontend.js "$WORK/upload.bin")"
  printf '%s\n' "$out"
  grep -q 'identical' <<<"$out" || die "the example's download differs from the upload"
)

say "benchmark (quick): NDJSON over stdio vs MessagePack over a Unix socket vs psyne ipc://"
(cd "$NODE_DIR" && node bench/ipc-vs-baselines.js --quick)
(cd "$NODE_DIR" && node bench/views.js --quick)

say "ok"
