#!/usr/bin/env bash
# Suite 30-go: the Go binding in bindings/go (package psyne, cgo over libpsyne).
#
#   gofmt, go vet, go test -race (every method, every sentinel error, contexts,
#   concurrency, Close races, tcp/unix channels, the examples built and run,
#   ipc as two processes, network on a free port),
#   a GOEXPERIMENT=cgocheck2 run, the benchmarks run briefly (-benchtime=100x),
#   and `go get` of the module through a local file:// GOPROXY from a throwaway
#   module outside the repository, built against the installed library found
#   by pkg-config alone.
#
# cgo finds libpsyne with `#cgo pkg-config: psyne`. In order of preference:
#   1. the installed prefix $PSYNE_PREFIX (lib/pkgconfig/psyne.pc), filled by an
#      earlier suite;
#   2. the build tree's psyne-uninstalled.pc (target/pkgconfig or pkgconfig/);
#   3. a temporary psyne-uninstalled.pc written here for target/release.
# Run alone: bash tests/suites/30-go.sh (after cargo build --release).
set -euo pipefail

ROOT="${PSYNE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
LIBDIR="${PSYNE_LIBDIR:-$ROOT/target/release}"
PREFIX="${PSYNE_PREFIX:-}"
MOD=github.com/psyne-dev/psyne/bindings/go
GODIR="$ROOT/bindings/go"

say() { printf '[30-go] %s\n' "$*"; }
die() { printf '[30-go] FAIL: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "the go command is not installed (Go >= 1.24 is needed)"
command -v pkg-config >/dev/null || die "pkg-config is not installed"
export GOTOOLCHAIN=local   # never try to download another toolchain
export GOFLAGS="-buildvcs=false"
export CGO_ENABLED=1

WORK="$(mktemp -d /tmp/psyne-go-suite.XXXXXX)"
cleanup() { chmod -R u+w "$WORK" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

# A psyne-uninstalled.pc for the build tree, when the build did not write one.
write_uninstalled_pc() { # dir
  mkdir -p "$1"
  cat >"$1/psyne-uninstalled.pc" <<EOF
Name: psyne
Description: libpsyne (uninstalled build tree, written by tests/suites/30-go.sh)
Version: 0.0.0
Libs: -L$LIBDIR -lpsyne
Cflags: -I$ROOT/include
EOF
}

# libdir_of: the -L directory pkg-config reports for psyne.
libdir_of() { pkg-config --libs-only-L psyne | tr ' ' '\n' | sed -n 's/^-L//p' | head -n1; }

installed=""
if [ -n "$PREFIX" ] && [ -f "$PREFIX/lib/pkgconfig/psyne.pc" ] && [ -f "$PREFIX/include/psyne.h" ]; then
  installed="$PREFIX"
  export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
  say "using the installed libpsyne in $PREFIX"
else
  [ -f "$ROOT/include/psyne.h" ] || die "include/psyne.h is missing (run cargo build --release)"
  [ -f "$LIBDIR/libpsyne.so" ] || [ -f "$LIBDIR/libpsyne.a" ] || die "no libpsyne in $LIBDIR (run cargo build --release)"
  pcdir=""
  for d in "${PSYNE_BUILD_DIR:-$ROOT/build}/pkgconfig" "$ROOT/target/pkgconfig" "$LIBDIR/pkgconfig"; do
    if [ -f "$d/psyne-uninstalled.pc" ]; then pcdir="$d"; break; fi
  done
  if [ -z "$pcdir" ]; then
    pcdir="$WORK/pkgconfig"
    write_uninstalled_pc "$pcdir"
  fi
  export PKG_CONFIG_PATH="$pcdir"
  say "no installed prefix; using the build tree through $pcdir/psyne-uninstalled.pc"
fi
pkg-config --exists psyne || die "pkg-config cannot find psyne in $PKG_CONFIG_PATH"
LIB_DIR="$(libdir_of)"
export LD_LIBRARY_PATH="${LIB_DIR}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
say "cflags: $(pkg-config --cflags psyne)  libs: $(pkg-config --libs psyne)"

# Go's build cache does not key cgo packages on pkg-config's output or on
# headers outside the package, so a package compiled against another prefix
# (every run-all uses a new temporary one) or an older psyne.h would be
# reused. A define derived from both makes the cache key follow them.
cache_key() {
  local inc
  inc="$(pkg-config --cflags-only-I psyne | tr ' ' '\n' | sed -n 's/^-I//p' | head -n1)"
  { pkg-config --cflags --libs psyne; pkg-config --libs psyne-static 2>/dev/null || true
    cat "$inc/psyne.h" 2>/dev/null || true; } | sha256sum | cut -c1-16
}
export CGO_CPPFLAGS="${CGO_CPPFLAGS:+$CGO_CPPFLAGS }-DPSYNE_GO_BUILD_KEY=$(cache_key)"

cd "$GODIR"

say "gofmt"
unformatted="$(gofmt -l .)"
[ -z "$unformatted" ] || die "not gofmt-clean: $unformatted"

say "go vet ./..."
go vet ./...

say "go test -race ./..."
go test -race -count=1 -timeout 6m ./...

say "GOEXPERIMENT=cgocheck2 go test -short ./..."
GOEXPERIMENT=cgocheck2 go test -short -count=1 -timeout 6m ./...

say "benchmarks (briefly: -benchtime=100x)"
go test -run '^$' -bench . -benchtime 100x -count 1 ./... | grep -E '^(Benchmark|ok|PASS|FAIL)'

# --- go get through a local module proxy --------------------------------------
# A GOPROXY=file:// directory holds the module exactly as a proxy serves it
# (list, .info, .mod, .zip), so this checks what `go get` really fetches:
# the module path, the zip contents (wrap.c, the examples) and that the
# package builds from the module cache. A `replace` directive would skip all
# of that and build from the work tree.
say "go get $MOD from a file:// GOPROXY, built against the installed library"
ver="v0.1.0"
if tag="$(git -C "$ROOT" describe --tags --abbrev=0 --match 'bindings/go/v*' 2>/dev/null)"; then
  ver="${tag#bindings/go/}"
fi
proxy="$WORK/proxy"
vdir="$proxy/$MOD/@v"
stage="$WORK/stage"
mkdir -p "$vdir" "$stage/$MOD@$ver"
# The module's files: everything under bindings/go but build products.
tar -C "$GODIR" --exclude='*.test' --exclude='*.out' -cf - . | tar -C "$stage/$MOD@$ver" -xf -
# The module zip: every file under the "MODULE@VERSION/" prefix, without
# directory entries, written with Go's archive/zip (nothing beyond Go needed).
mkdir -p "$WORK/mkzip"
cat >"$WORK/mkzip/main.go" <<'EOF'
package main

import (
	"archive/zip"
	"io/fs"
	"os"
	"path/filepath"
)

// mkzip STAGE OUT: zips the files under STAGE, named relative to STAGE.
func main() {
	stage, out := os.Args[1], os.Args[2]
	f, err := os.Create(out)
	check(err)
	w := zip.NewWriter(f)
	check(filepath.WalkDir(stage, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(stage, path)
		check(err)
		data, err := os.ReadFile(path)
		check(err)
		zf, err := w.Create(filepath.ToSlash(rel))
		check(err)
		_, err = zf.Write(data)
		return err
	}))
	check(w.Close())
	check(f.Close())
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}
EOF
(cd "$WORK/mkzip" && GOFLAGS= go run main.go "$stage" "$vdir/$ver.zip")
cp "$GODIR/go.mod" "$vdir/$ver.mod"
printf '{"Version":"%s","Time":"%s"}\n' "$ver" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$vdir/$ver.info"
printf '%s\n' "$ver" >"$vdir/list"

# The library the throwaway module links against: the installed prefix, or,
# until the packaging suite fills one, a prefix made here from the build tree.
if [ -z "$installed" ]; then
  installed="$WORK/prefix"
  mkdir -p "$installed/lib/pkgconfig" "$installed/include"
  cp "$ROOT/include/psyne.h" "$installed/include/"
  cp -P "$LIBDIR"/libpsyne.so* "$installed/lib/" 2>/dev/null || cp "$LIBDIR/libpsyne.a" "$installed/lib/"
  cat >"$installed/lib/pkgconfig/psyne.pc" <<EOF
prefix=$installed
libdir=\${prefix}/lib
includedir=\${prefix}/include
Name: psyne
Description: libpsyne (prefix made by tests/suites/30-go.sh)
Version: ${ver#v}
Libs: -L\${libdir} -lpsyne
Cflags: -I\${includedir}
EOF
fi

user="$WORK/user"
mkdir -p "$user"
cat >"$user/main.go" <<'EOF'
package main

import (
	"fmt"
	"os"
	"time"

	psyne "github.com/psyne-dev/psyne/bindings/go"
)

func main() {
	ch, err := psyne.NewChannel("memory://go-get-check", 4096, psyne.ModeSPSC, psyne.TypeMulti)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer ch.Close()
	if err := ch.SendData([]byte("fetched with go get"), 3); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	data, typ, err := ch.ReceiveData(64, time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%s (type %d, libpsyne %s)\n", data, typ, psyne.Version())
}
EOF
(
  cd "$user"
  export GOPROXY="file://$proxy" GONOSUMDB="github.com/psyne-dev" GOFLAGS="-buildvcs=false -modcacherw"
  export GOMODCACHE="$WORK/modcache" GOWORK=off
  export PKG_CONFIG_PATH="$installed/lib/pkgconfig"  # pkg-config alone: no build tree
  unset PKG_CONFIG_LIBDIR
  export CGO_CPPFLAGS="-DPSYNE_GO_BUILD_KEY=$(cache_key)"
  go mod init example.com/psyne-go-get-check >/dev/null 2>&1
  go get "$MOD@$ver"
  go build -o app .
  libdir="$(pkg-config --variable=libdir psyne 2>/dev/null || true)"
  [ -n "$libdir" ] || libdir="$(libdir_of)"
  out="$(LD_LIBRARY_PATH="$libdir" ./app)"
  echo "$out"
  [[ "$out" == "fetched with go get (type 3,"* ]] || die "the go get program printed: $out"
  grep -q "^require $MOD $ver" go.mod || die "go.mod does not require $MOD $ver"
  # -tags psyne_static links libpsyne.a through psyne-static.pc: the program
  # then runs without LD_LIBRARY_PATH.
  if pkg-config --exists psyne-static; then
    go build -tags psyne_static -o app-static .
    if ldd ./app-static | grep -q libpsyne; then die "-tags psyne_static still links libpsyne.so"; fi
    out="$(env -u LD_LIBRARY_PATH ./app-static)"
    echo "static: $out"
    [[ "$out" == "fetched with go get (type 3,"* ]] || die "the static program printed: $out"
  else
    echo "no psyne-static.pc in $installed: static build not checked"
  fi
)

say "ok"
