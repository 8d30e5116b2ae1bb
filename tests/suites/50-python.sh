#!/usr/bin/env bash
# Suite 50-python: the Python package in bindings/python (PyO3 extension).
#
#   pip install ./bindings/python into the shared test venv (exactly what a
#   user runs; the Rust build is incremental in target/python), then pytest
#   over bindings/python/tests: every method and error, views and
#   reservations with numpy, use after release, the GIL released while
#   waiting, asyncio, two processes over ipc:// and tcp://, Python <-> Go
#   over ipc:// (examples/python/saxs_go, built here with cgo against the
#   installed library), Ctrl-C; then the benchmark in its quick mode.
# Run alone: bash tests/run-all.sh python (or this file with PSYNE_ROOT set).
set -euo pipefail
PSYNE_ROOT="${PSYNE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
export PSYNE_ROOT
LIBDIR="${PSYNE_LIBDIR:-$PSYNE_ROOT/target/release}"
say() { printf '[50-python] %s\n' "$*"; }
die() { printf '[50-python] FAIL: %s\n' "$*" >&2; exit 1; }

. "$PSYNE_ROOT/tests/suites/lib/pyvenv.sh"
WORK="$(mktemp -d /tmp/psyne-python-suite.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

say "pip install ./bindings/python"
export CARGO_TARGET_DIR="$PSYNE_ROOT/target/python"
(cd "$PSYNE_ROOT" && "$PSYNE_PYTHON" -m pip install -q ./bindings/python) || die "pip install"
"$PSYNE_PYTHON" -c 'import psyne; print("psyne", psyne.VERSION, "from", psyne.__file__)'

# The Go stage of the cross-language test, built with cgo against libpsyne:
# the installed prefix when an earlier suite filled it, else the build tree.
command -v go >/dev/null || die "the go command is not installed (the Python <-> Go test needs it)"
if [ -n "${PSYNE_PREFIX:-}" ] && [ -f "$PSYNE_PREFIX/lib/pkgconfig/psyne.pc" ]; then
  export PKG_CONFIG_PATH="$PSYNE_PREFIX/lib/pkgconfig"
else
  [ -f "$LIBDIR/libpsyne.so" ] || die "no libpsyne in $LIBDIR (run cargo build --release)"
  mkdir -p "$WORK/pkgconfig"
  cat >"$WORK/pkgconfig/psyne-uninstalled.pc" <<PC
Name: psyne
Description: libpsyne (build tree, written by tests/suites/50-python.sh)
Version: 0.0.0
Libs: -L$LIBDIR -lpsyne
Cflags: -I$PSYNE_ROOT/include
PC
  export PKG_CONFIG_PATH="$WORK/pkgconfig"
fi
pkg-config --exists psyne || die "pkg-config cannot find psyne in $PKG_CONFIG_PATH"
libdir="$(pkg-config --libs-only-L psyne | tr ' ' '\n' | sed -n 's/^-L//p' | head -n1)"
export LD_LIBRARY_PATH="${libdir}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
say "go build examples/python/saxs_go (libpsyne from $libdir)"
(cd "$PSYNE_ROOT/examples/python/saxs_go" && GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=1 \
  CGO_CPPFLAGS="-DPSYNE_PY_SUITE_KEY=$(pkg-config --cflags --libs psyne | sha256sum | cut -c1-16)" \
  go build -o "$WORK/saxs_go" .) || die "go build"
export PSYNE_SAXS_GO="$WORK/saxs_go" PSYNE_REQUIRE_GO=1

say "pytest bindings/python/tests"
(cd "$PSYNE_ROOT/bindings/python" && "$PSYNE_PYTHON" -m pytest -q -p no:cacheprovider tests)

say "benchmark, quick mode (figures are for show: nothing asserts speed)"
"$PSYNE_PYTHON" "$PSYNE_ROOT/bindings/python/benches/bench_ipc.py" --quick

say "ok"
