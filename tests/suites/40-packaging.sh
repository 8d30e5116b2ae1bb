#!/usr/bin/env bash
# Suite 40: the installed package works for C and C++ users.
#  - include/psyne.h compiles warning-free as C11 and C++17 (-Wall -Wextra -pedantic -Werror)
#  - examples/c and examples/cpp build both ways (pkg-config, find_package), each
#    shared and static, against $PSYNE_PREFIX, and run (the ipc producer/consumer
#    and the tcp echo server/client as pairs of processes, over tcp:// and ws://)
#  - the C examples run under AddressSanitizer+UBSan, and under valgrind
#    (`cmake --build build --target memcheck`)
#  - find_package version rules, relocation (--prefix), DESTDIR, the
#    uninstalled tree (psyne-uninstalled.pc), and the .deb from CPack
# Builds on suite 10 (the install in $PSYNE_PREFIX and its build dir); runs it
# first when $PSYNE_PREFIX is empty, e.g. for `tests/run-all.sh packaging`.
set -euo pipefail
PSYNE_ROOT="${PSYNE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
PSYNE_PREFIX="${PSYNE_PREFIX:?run through tests/run-all.sh or set PSYNE_PREFIX}"
export PSYNE_ROOT PSYNE_PREFIX
build="${PSYNE_BUILD_DIR:-$PSYNE_ROOT/build}"
if [ ! -f "$PSYNE_PREFIX/lib/pkgconfig/psyne.pc" ] || [ ! -f "$build/CMakeCache.txt" ]; then
  bash "$PSYNE_ROOT/tests/suites/10-install.sh"
fi
ex="$PSYNE_ROOT/examples"
work="$(mktemp -d /tmp/psyne-40.XXXXXX)"
trap 'rm -rf "$work"' EXIT
lib="$PSYNE_PREFIX/lib"
export PKG_CONFIG_PATH="$lib/pkgconfig"
version="$(pkg-config --modversion psyne)"

c_examples=(copy zero_copy side_handles errors threads ipc_producer ipc_consumer tcp_echo_server tcp_echo_client)
cpp_examples=(copy zero_copy errors threads)
strict_c=(-std=c11 -Wall -Wextra -pedantic -Werror)
strict_cpp=(-std=c++17 -Wall -Wextra -pedantic -Werror)

start=$SECONDS
step() { echo "--- [$((SECONDS - start))s] $*"; }
fail() { echo "40-packaging: FAIL: $*" >&2; exit 1; }
# run NAME CMD...: run an example quietly, show its output when it fails
run() {
  local name=$1 status=0; shift
  "$@" >"$work/out.log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then cat "$work/out.log"; fail "$name exited $status"; fi
}
# run_all DIR [WRAPPER...]: the examples built in DIR (ipc and tcp as pairs of
# processes; the tcp pair on a port the system picks, see cmake/run-tcp-pair.sh)
run_all() {
  local dir=$1; shift
  for e in copy zero_copy side_handles errors threads; do
    if [ -x "$dir/$e" ]; then run "$dir/$e" "$@" "$dir/$e"; fi
  done
  if [ -x "$dir/ipc_producer" ]; then
    sh "$PSYNE_ROOT/cmake/run-ipc-pair.sh" "$dir/ipc_producer" "$dir/ipc_consumer" "$@" \
      || fail "$dir ipc pair"
  fi
  if [ -x "$dir/tcp_echo_server" ]; then
    sh "$PSYNE_ROOT/cmake/run-tcp-pair.sh" "$dir/tcp_echo_server" "$dir/tcp_echo_client" "$@" \
      >"$work/tcp-pair.log" 2>&1 || { cat "$work/tcp-pair.log"; fail "$dir tcp pair"; }
    if [ $# -eq 0 ]; then   # the same pair over ws:// (unwrapped builds only)
      PSYNE_TCP_PAIR_SCHEME=ws sh "$PSYNE_ROOT/cmake/run-tcp-pair.sh" "$dir/tcp_echo_server" "$dir/tcp_echo_client" \
        >"$work/ws-pair.log" 2>&1 || { cat "$work/ws-pair.log"; fail "$dir ws pair"; }
    fi
  fi
}
needs_libpsyne_so() { readelf -d "$1" | grep -F "[libpsyne.so.${version%%.*}]" >/dev/null; }

step "psyne.h: C11 and C++17 with ${strict_c[*]:1}"
# included twice (include guard), first (self-contained), and linked from C++
# (the names are extern "C").
printf '%s\n' '#include <psyne.h>' '#include <psyne.h>' \
  'int main(void) { return psyne_init() == PSYNE_OK ? 0 : 1; }' >"$work/header.c"
cp "$work/header.c" "$work/header.cpp"
cc "${strict_c[@]}" $(pkg-config --cflags psyne) -c "$work/header.c" -o "$work/header-c.o" \
  || fail "psyne.h as C11"
c++ "${strict_cpp[@]}" $(pkg-config --cflags psyne) -c "$work/header.cpp" -o "$work/header-cpp.o" \
  || fail "psyne.h as C++17"
c++ "$work/header-cpp.o" $(pkg-config --libs psyne) -o "$work/header-cpp" || fail "C++ link (extern \"C\"?)"

step "pkg-config: build the examples (shared: psyne, static: psyne-static)"
# psyne.pc's --static list is right too (for tools that pick the archive themselves)
[ "$(echo $(pkg-config --static --libs psyne))" = "-L$lib -lpsyne $(sed -n 's/^Libs.private: //p' "$lib/pkgconfig/psyne.pc")" ] \
  || fail "pkg-config --static --libs psyne: $(pkg-config --static --libs psyne)"
mkdir -p "$work/pc" "$work/pc-static"
for e in "${c_examples[@]}"; do
  cc "${strict_c[@]}" "$ex/c/$e.c" -o "$work/pc/$e" $(pkg-config --cflags --libs psyne) -pthread
  cc "${strict_c[@]}" "$ex/c/$e.c" -o "$work/pc-static/$e" $(pkg-config --static --cflags --libs psyne-static) -pthread
done
for e in "${cpp_examples[@]}"; do
  c++ "${strict_cpp[@]}" "$ex/cpp/$e.cpp" -o "$work/pc/${e}_cpp" $(pkg-config --cflags --libs psyne) -pthread
  c++ "${strict_cpp[@]}" "$ex/cpp/$e.cpp" -o "$work/pc-static/${e}_cpp" $(pkg-config --static --cflags --libs psyne-static) -pthread
done
needs_libpsyne_so "$work/pc/copy" || fail "shared build does not need libpsyne.so"
! needs_libpsyne_so "$work/pc-static/copy" || fail "static build still needs libpsyne.so"

step "pkg-config builds: run (shared with LD_LIBRARY_PATH)"
(export LD_LIBRARY_PATH="$lib"; run_all "$work/pc")
run_all "$work/pc-static"
for e in "${cpp_examples[@]}"; do
  run "${e}_cpp" env LD_LIBRARY_PATH="$lib" "$work/pc/${e}_cpp"
  run "${e}_cpp static" "$work/pc-static/${e}_cpp"
done
"$work/pc-static/copy" | grep -F "$version" >/dev/null || fail "psyne_version() does not say $version"

step "find_package(psyne): build examples/c and examples/cpp (psyne::psyne and psyne::psyne_static)"
for lang in c cpp; do
  cmake -S "$ex/$lang" -B "$work/cmake-$lang" -DCMAKE_PREFIX_PATH="$PSYNE_PREFIX" \
        -DCMAKE_BUILD_TYPE=Debug >"$work/cmake-$lang.log" 2>&1 || { cat "$work/cmake-$lang.log"; fail "configure examples/$lang"; }
  cmake --build "$work/cmake-$lang" -j2 >"$work/cmake-$lang.log" 2>&1 || { cat "$work/cmake-$lang.log"; fail "build examples/$lang"; }
done
needs_libpsyne_so "$work/cmake-c/c_copy" || fail "psyne::psyne does not link libpsyne.so"
! needs_libpsyne_so "$work/cmake-c/c_copy_static" || fail "psyne::psyne_static links libpsyne.so"
for lang in c cpp; do
  for e in "$work/cmake-$lang/${lang}_"*; do
    case "$e" in *ipc_*|*tcp_echo_*) continue ;; esac
    if [ -x "$e" ] && [ -f "$e" ]; then run "$(basename "$e")" env LD_LIBRARY_PATH="$lib" "$e"; fi
  done
done
sh "$PSYNE_ROOT/cmake/run-ipc-pair.sh" "$work/cmake-c/c_ipc_producer_static" "$work/cmake-c/c_ipc_consumer_static" \
  || fail "cmake ipc pair"
sh "$PSYNE_ROOT/cmake/run-tcp-pair.sh" "$work/cmake-c/c_tcp_echo_server" "$work/cmake-c/c_tcp_echo_client" \
  env LD_LIBRARY_PATH="$lib" || fail "cmake tcp pair"

step "find_package version rules, relocated install (cmake --install --prefix)"
cmake --install "$build" --prefix "$work/moved" >/dev/null
mkdir -p "$work/fp"
cat >"$work/fp/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.18)
project(find_psyne LANGUAGES C)
find_package(psyne 0.2 QUIET)
if(psyne_FOUND)
  message(FATAL_ERROR "find_package(psyne 0.2) accepted ${psyne_VERSION}")
endif()
find_package(psyne 0.1 REQUIRED)
get_target_property(loc psyne::psyne IMPORTED_LOCATION)
get_target_property(sloc psyne::psyne_static IMPORTED_LOCATION)
message(STATUS "psyne ${psyne_VERSION}: ${loc} ${sloc}")
if(NOT loc MATCHES "^${EXPECT_PREFIX}/" OR NOT EXISTS "${loc}" OR NOT EXISTS "${sloc}")
  message(FATAL_ERROR "psyne::psyne points at ${loc}, not into ${EXPECT_PREFIX}")
endif()
CMAKE
cmake -S "$work/fp" -B "$work/fp/b" -DCMAKE_PREFIX_PATH="$work/moved" -DEXPECT_PREFIX="$work/moved" \
  >"$work/fp.log" 2>&1 || { cat "$work/fp.log"; fail "find_package rules / relocation"; }
grep -F "prefix=$work/moved" "$work/moved/lib/pkgconfig/psyne.pc" >/dev/null || fail "relocated psyne.pc prefix"

step "DESTDIR staging"
DESTDIR="$work/stage" cmake --install "$build" >/dev/null
staged="$work/stage$PSYNE_PREFIX"
[ "$(readlink "$staged/lib/libpsyne.so.${version%%.*}")" = "libpsyne.so.$version" ] || fail "DESTDIR symlinks"
for f in include/psyne.h lib/libpsyne.a lib/cmake/psyne/psyneConfig.cmake lib/pkgconfig/psyne.pc; do
  [ -e "$staged/$f" ] || fail "DESTDIR: missing $f"
done
grep -Fx "prefix=$PSYNE_PREFIX" "$staged/lib/pkgconfig/psyne.pc" >/dev/null || fail "DESTDIR leaked into psyne.pc"

step "uninstalled tree: PKG_CONFIG_PATH=$build/pkgconfig"
[ "$(PKG_CONFIG_PATH="$build/pkgconfig" pkg-config --variable=libdir psyne)" = "$build/lib" ] \
  || fail "psyne-uninstalled.pc is not picked up"
cc "${strict_c[@]}" "$ex/c/copy.c" -o "$work/uninstalled-copy" $(PKG_CONFIG_PATH="$build/pkgconfig" pkg-config --cflags --libs psyne)
run "uninstalled copy (rpath, no LD_LIBRARY_PATH)" env -u LD_LIBRARY_PATH "$work/uninstalled-copy"
cc "${strict_c[@]}" "$ex/c/copy.c" -o "$work/uninstalled-copy-static" $(PKG_CONFIG_PATH="$build/pkgconfig" pkg-config --cflags --libs psyne-static)
! needs_libpsyne_so "$work/uninstalled-copy-static" || fail "psyne-static-uninstalled.pc links libpsyne.so"
run "uninstalled static copy" "$work/uninstalled-copy-static"

step "C examples under AddressSanitizer + UBSan (ASAN_OPTIONS=detect_leaks=1)"
mkdir -p "$work/asan"
san=(-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all)
for e in "${c_examples[@]}"; do
  cc "${strict_c[@]}" "${san[@]}" "$ex/c/$e.c" -o "$work/asan/$e" $(pkg-config --cflags --libs psyne) -pthread
done
(export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 LD_LIBRARY_PATH="$lib"
 run_all "$work/asan")

step "C examples under valgrind (cmake --build build --target memcheck)"
cmake --build "$build" --target memcheck >"$work/memcheck.log" 2>&1 || { cat "$work/memcheck.log"; fail "memcheck"; }
grep -F -e "ipc pair" -e "tcp pair" "$work/memcheck.log" || true

step "CPack: cpack -G DEB"
(cd "$build" && cpack -G DEB -B "$work/deb" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail cpack; }
deb="$work/deb/libpsyne-dev_${version}_amd64.deb"
[ -f "$deb" ] || fail "no $(basename "$deb")"
dpkg-deb -c "$deb" >"$work/deb.list"
for f in "./usr/include/psyne.h" "./usr/lib/libpsyne.so.$version" "./usr/lib/libpsyne.so -> libpsyne.so.${version%%.*}" \
         "./usr/lib/libpsyne.a" "./usr/lib/pkgconfig/psyne.pc" "./usr/lib/cmake/psyne/psyneConfig.cmake" \
         "./usr/bin/psyne"; do
  grep -F -- "$f" "$work/deb.list" >/dev/null || { cat "$work/deb.list"; fail "deb lacks $f"; }
done
dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/lib/pkgconfig/psyne.pc | grep -Fx "prefix=/usr" >/dev/null \
  || fail "psyne.pc in the deb does not say prefix=/usr"
# the packaged command runs (it links libpsyne statically: no library path needed)
dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/bin/psyne >"$work/psyne-from-deb"
chmod +x "$work/psyne-from-deb"
"$work/psyne-from-deb" --version | grep -Fx "psyne $version" >/dev/null || fail "psyne from the deb: --version"
echo "$(basename "$deb"): $(wc -l <"$work/deb.list") entries"

echo "packaging ok ($((SECONDS - start))s)"
