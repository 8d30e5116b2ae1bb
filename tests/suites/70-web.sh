#!/usr/bin/env bash
# Suite 70: ws:// with third-party clients, not psyne's code, on the other end.
#  - Python's `websockets` against a psyne listener (examples/ws_echo.rs):
#    well-formed frames echoed; a text frame, an oversized message, a bad
#    header and a length mismatch get their documented close codes
#    (tests/web/test_websockets_client.py)
#  - a real headless Chromium (Debian's chromium, driven by playwright-core
#    from npm; no browser download) loads examples/web's page: it connects,
#    renders the messages and metrics the listener publishes, and sends one
#    back through its form; the page's DOM and the psyne side are checked
# (The Rust tungstenite client and psyne<->psyne tests are tests/ws.rs in 00-rust.)
set -euo pipefail
PSYNE_ROOT="${PSYNE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
cd "$PSYNE_ROOT"
work="$(mktemp -d /tmp/psyne-70.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "70-web: FAIL: $*" >&2; exit 1; }

cargo build --release --quiet --example ws_echo --example web

echo "--- Python websockets client -> psyne ws:// listener"
. "$PSYNE_ROOT/tests/suites/lib/pyvenv.sh"
PSYNE_WS_ECHO="$PSYNE_ROOT/target/release/examples/ws_echo" \
  "$PSYNE_PYTHON" -m pytest -q -p no:cacheprovider tests/web/test_websockets_client.py

echo "--- headless Chromium -> examples/web"
chromium="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium" ] || fail "$chromium is missing (.ci/run installs Debian's chromium package)"
node_dir="$PSYNE_ROOT/target/web-node"
mkdir -p "$node_dir"
if [ ! -d "$node_dir/node_modules/playwright-core" ]; then
  echo '{"private":true}' >"$node_dir/package.json"
  (cd "$node_dir" && npm install --silent --no-audit --no-fund playwright-core@1)
fi
cp tests/web/browser.mjs "$node_dir/"
target/release/examples/web --http 127.0.0.1:0 --ws 0 >"$work/web.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^channel:' "$work/web.out" && break; sleep 0.1; done
url="$(sed -n 's/^page: *//p' "$work/web.out")"
[ -n "$url" ] || { cat "$work/web.out"; fail "examples/web did not start"; }
CHROMIUM="$chromium" timeout 120 node "$node_dir/browser.mjs" "$url" >"$work/dom.json" \
  || { cat "$work/web.out"; fail "the page did not do its part in Chromium"; }
cat "$work/dom.json"
"${PSYNE_PYTHON}" - "$work/dom.json" <<'PY' || fail "the DOM is not what the page should show"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["status"] == "connected to a psyne listener", d
assert any(m.startswith("tick ") for m in d["messages"]), d   # published by psyne
assert "echo: hello from chromium" in d["messages"], d         # sent by the page, echoed
assert d["peers"] >= 1, d                                      # the channel's metrics
PY
# The psyne side received what the page sent.
for _ in $(seq 100); do grep -q '^from page: hello from chromium$' "$work/web.out" && break; sleep 0.1; done
grep -q '^from page: hello from chromium$' "$work/web.out" || { cat "$work/web.out"; fail "psyne did not receive the page's message"; }
echo "70-web: ok"
