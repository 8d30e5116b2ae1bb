#!/usr/bin/env bash
# Suite 20: the C ABI.
#  1. cargo build --release (incremental) -> target/release/libpsyne.so
#  2. include/psyne.h is up to date with src/ffi (cargo test --test header)
#  3. every function listed in docs/C_API.md is declared in the header and
#     exported by libpsyne.so, and called by at least one tests/c program
#  4. the header compiles warning-free as C11 and C++17 (-Wall -Wextra -pedantic -Werror)
#  5. the C test programs in tests/c, built plainly and with
#     -fsanitize=address,undefined, all pass against target/release/libpsyne.so
set -euo pipefail
PSYNE_ROOT="${PSYNE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
PSYNE_LIBDIR="${PSYNE_LIBDIR:-$PSYNE_ROOT/target/release}"
cd "$PSYNE_ROOT"
fail() { echo "20-c-abi: FAIL: $*" >&2; exit 1; }

cargo build --release
cargo test --release --test header

lib="$PSYNE_LIBDIR/libpsyne.so"
[ -f "$lib" ] || fail "missing $lib"
header="$PSYNE_ROOT/include/psyne.h"

# --- the documented contract is declared and exported
fns="$(grep -o '\bpsyne_[a-z_]*(' docs/C_API.md | tr -d '(' | sort -u)"
[ -n "$fns" ] || fail "no functions found in docs/C_API.md"
exported="$(nm -D --defined-only "$lib" | awk '{print $3}')"
for f in $fns; do
  grep -Eq "[ *]$f\(" "$header" || fail "$f is in docs/C_API.md but not declared in include/psyne.h"
  grep -qx "$f" <<<"$exported" || fail "$f is in docs/C_API.md but not exported by libpsyne.so"
done
echo "all $(wc -w <<<"$fns") documented functions are declared and exported"
for s in $exported; do
  grep -qx "$s" <<<"$fns" || fail "libpsyne.so exports $s, which docs/C_API.md does not list"
done
for f in $fns; do
  grep -q "\b$f(" tests/c/test_*.c || fail "$f is not exercised by any tests/c/test_*.c program"
done

# --- build
out="$PSYNE_ROOT/target/c-abi-tests"
mkdir -p "$out"
CC="${CC:-gcc}"
CXX="${CXX:-g++}"
strict=(-Wall -Wextra -pedantic -Werror)
hdr_extra=(-Wundef -Wshadow -Wcast-qual)
"$CC" -std=c11 "${strict[@]}" "${hdr_extra[@]}" -Wstrict-prototypes -I include -c tests/c/header_c.c -o "$out/header_c.o"
"$CXX" -std=c++17 "${strict[@]}" "${hdr_extra[@]}" -I include -c tests/c/header_cxx.cpp -o "$out/header_cxx.o"
echo "include/psyne.h compiles cleanly as C11 and C++17"
# The C benchmark (built by benches/build.rs, outside the test build) must
# keep compiling against the header.
"$CC" -std=c11 "${strict[@]}" -D_POSIX_C_SOURCE=200809L -I include -c benches/c/bench_c.c -o "$out/bench_c.o"
echo "benches/c/bench_c.c compiles against include/psyne.h"

tests=(test_api test_messages test_sides test_threads test_network)
cflags=(-std=c11 "${strict[@]}" -D_POSIX_C_SOURCE=200809L -g -I include -I tests/c)
ldflags=(-L "$PSYNE_LIBDIR" -lpsyne -lpthread)
san=(-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all)
for t in "${tests[@]}"; do
  "$CC" "${cflags[@]}" -O2 "tests/c/$t.c" -o "$out/$t" "${ldflags[@]}"
  "$CC" "${cflags[@]}" "${san[@]}" "tests/c/$t.c" -o "$out/$t.asan" "${ldflags[@]}"
done

# --- run
export LD_LIBRARY_PATH="$PSYNE_LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# allocator_may_return_null: test_api provokes OUT_OF_MEMORY with a 1 TiB ring.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=0
for t in "${tests[@]}"; do
  for variant in "$t" "$t.asan"; do
    echo "--- $variant"
    if ! timeout 120 "$out/$variant"; then
      echo "20-c-abi: $variant FAILED" >&2
      failed=1
    fi
  done
done
[ "$failed" -eq 0 ] || fail "C ABI tests failed"
echo "20-c-abi: ok"
