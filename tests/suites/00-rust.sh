#!/usr/bin/env bash
# Rust: formatting, lints, unit + integration + stress + doc tests (release)
# of the workspace (the library and the psyne command, cli/; with the test
# venv's Python for the compression interop test), and the loom model checks
# of the ring (bounded preemptions).
set -euo pipefail
cd "$PSYNE_ROOT"
# $PSYNE_PYTHON: the reference compression libraries for tests/compression.rs.
. "$PSYNE_ROOT/tests/suites/lib/pyvenv.sh"

cargo fmt --all -- --check
cargo clippy --all-targets --release -- -D warnings
# Release mode: the stress tests move 10^6 messages per mode.
cargo test --release

# The examples, the demo on a small count. (The README's main job,
# `psyne bench`, runs as `bench --quick` in cli/tests, part of cargo test.)
for example in memory_threads zero_copy ipc_pair tcp_echo; do
  cargo run --release --quiet --example "$example"
done
cargo run --release --quiet --example demo -- 20000

# Loom explores every interleaving up to LOOM_MAX_PREEMPTIONS preemptions per
# execution; 2 keeps the run to about a minute on 2 cores. Separate target dir:
# --cfg loom changes every crate's build.
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}" \
  CARGO_TARGET_DIR="$PSYNE_ROOT/target/loom" cargo test --release --lib loom
