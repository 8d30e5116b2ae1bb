#!/usr/bin/env bash
# Suite 10: build libpsyne with CMake (cargo underneath, incremental) and
# install it into $PSYNE_PREFIX, which the later suites (C ABI, Go) build
# against. Checks the SONAME, the version symlinks and every installed file
# (bin/psyne, the command, included).
#
# Build directory: $PSYNE_BUILD_DIR, default <repo>/build (suite 40 reuses it).
set -euo pipefail
PSYNE_ROOT="${PSYNE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
PSYNE_PREFIX="${PSYNE_PREFIX:?run through tests/run-all.sh or set PSYNE_PREFIX}"
build="${PSYNE_BUILD_DIR:-$PSYNE_ROOT/build}"
version="$(sed -n 's/^version *= *"\([0-9.]*\)".*/\1/p' "$PSYNE_ROOT/Cargo.toml" | head -n1)"
major="${version%%.*}"
fail() { echo "10-install: FAIL: $*" >&2; exit 1; }

mkdir -p "$build"
cmake -S "$PSYNE_ROOT" -B "$build" -DCMAKE_INSTALL_PREFIX="$PSYNE_PREFIX" >"$build/configure.log" 2>&1 \
  || { cat "$build/configure.log"; fail "cmake configure"; }
# keep the cargo output: it carries rustc's native-static-libs line
cmake --build "$build" >"$build/build.log" 2>&1 || { tail -n 60 "$build/build.log"; fail "build"; }
cmake --install "$build" >/dev/null
lib="$PSYNE_PREFIX/lib"

# --- SONAME and the symlink chain libpsyne.so -> .so.0 -> .so.0.1.0
soname="$(readelf -d "$lib/libpsyne.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[ "$soname" = "libpsyne.so.$major" ] || fail "SONAME is '$soname', want libpsyne.so.$major"
[ "$(readlink "$lib/libpsyne.so")" = "libpsyne.so.$major" ] || fail "libpsyne.so link"
[ "$(readlink "$lib/libpsyne.so.$major")" = "libpsyne.so.$version" ] || fail "libpsyne.so.$major link"
[ -f "$lib/libpsyne.so.$version" ] && [ ! -L "$lib/libpsyne.so.$version" ] || fail "real file"
echo "SONAME $soname; libpsyne.so -> libpsyne.so.$major -> libpsyne.so.$version"

# --- every installed file
for f in include/psyne.h lib/libpsyne.a lib/pkgconfig/psyne.pc lib/pkgconfig/psyne-static.pc \
         lib/cmake/psyne/psyneConfig.cmake lib/cmake/psyne/psyneConfigVersion.cmake \
         lib/cmake/psyne/psyneTargets.cmake; do
  [ -s "$PSYNE_PREFIX/$f" ] || fail "missing $PSYNE_PREFIX/$f"
done
# the psyne command, installed beside the library, runs and knows its version
[ -x "$PSYNE_PREFIX/bin/psyne" ] || fail "missing $PSYNE_PREFIX/bin/psyne"
[ "$("$PSYNE_PREFIX/bin/psyne" --version)" = "psyne $version" ] \
  || fail "bin/psyne --version says '$("$PSYNE_PREFIX/bin/psyne" --version 2>&1)', want 'psyne $version'"
"$PSYNE_PREFIX/bin/psyne" inspect --help | grep -F "Exit codes:" >/dev/null || fail "bin/psyne inspect --help"
echo "bin/psyne: $("$PSYNE_PREFIX/bin/psyne" --version)"
# the C ABI is exported by both libraries
nm -D --defined-only "$lib/libpsyne.so" | grep -w psyne_init >/dev/null || fail "libpsyne.so does not export psyne_init"
nm --defined-only "$lib/libpsyne.a" 2>/dev/null | grep -w psyne_init >/dev/null || fail "libpsyne.a has no psyne_init"

# --- installed libraries carry no debug info (README: the install is stripped)
for f in "libpsyne.so.$version" libpsyne.a; do
  ! readelf -S "$lib/$f" 2>/dev/null | grep -q '\.debug_info' || fail "$f has debug info"
done
echo "libpsyne.so.$version $(stat -c %s "$lib/libpsyne.so.$version") bytes, libpsyne.a $(stat -c %s "$lib/libpsyne.a") bytes, no debug info"

# --- pkg-config: valid, right version and flags
export PKG_CONFIG_PATH="$lib/pkgconfig"
pkg-config --validate psyne && pkg-config --validate psyne-static || fail "pkg-config --validate"
[ "$(pkg-config --modversion psyne)" = "$version" ] || fail "psyne.pc version"
[ "$(echo $(pkg-config --cflags psyne))" = "-I$PSYNE_PREFIX/include" ] || fail "Cflags: $(pkg-config --cflags psyne)"
[ "$(echo $(pkg-config --libs psyne))" = "-L$lib -lpsyne" ] || fail "Libs: $(pkg-config --libs psyne)"

# --- Libs.private must still be what rustc says the archive needs
# (cargo replays the note even when nothing was rebuilt)
rustc_libs="$(sed -n 's/.*native-static-libs: //p' "$build/build.log" | tail -n1)"
pc_libs="$(sed -n 's/^Libs.private: //p' "$lib/pkgconfig/psyne.pc")"
[ -n "$rustc_libs" ] || fail "no native-static-libs line in $build/build.log"
[ "$rustc_libs" = "$pc_libs" ] \
  || fail "rustc now wants '$rustc_libs' but psyne.pc says '$pc_libs': update PSYNE_NATIVE_STATIC_LIBS in CMakeLists.txt"
echo "Libs.private matches rustc: $pc_libs"

echo "installed libpsyne $version into $PSYNE_PREFIX"
