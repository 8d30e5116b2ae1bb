#!/usr/bin/env bash
# The one command that runs every test of libpsyne (README "Run every test").
# .ci/run calls exactly this script.
#
# It builds the library once (release), installs it into a throwaway prefix,
# then runs each suite in tests/suites/ in name order. Each suite is a bash
# script that may use:
#   PSYNE_ROOT     the repository root
#   PSYNE_PREFIX   a temporary install prefix holding lib/, include/, lib/pkgconfig, lib/cmake
#   PSYNE_LIBDIR   target/release (the uninstalled build tree)
# A suite exits non-zero on failure; the first failure stops the run.
set -euo pipefail
PSYNE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PSYNE_ROOT
export PSYNE_LIBDIR="$PSYNE_ROOT/target/release"
if [ -z "${PSYNE_PREFIX:-}" ]; then
  # Our own throwaway prefix: removed on exit, whatever happens.
  PSYNE_PREFIX="$(mktemp -d /tmp/psyne-prefix.XXXXXX)"
  trap 'rm -rf "$PSYNE_PREFIX"' EXIT
fi
export PSYNE_PREFIX
cd "$PSYNE_ROOT"

only="${1:-}"   # optional: run only suites whose name contains this word
passed=0; failed=0
for suite in tests/suites/*.sh; do
  name="$(basename "$suite" .sh)"
  if [ -n "$only" ] && [[ "$name" != *"$only"* ]]; then continue; fi
  echo "=== suite $name"
  start=$(date +%s)
  if bash "$suite"; then
    passed=$((passed + 1)); echo "=== suite $name ok ($(( $(date +%s) - start ))s)"
  else
    failed=$((failed + 1)); echo "=== suite $name FAILED ($(( $(date +%s) - start ))s)"
    break
  fi
done
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
