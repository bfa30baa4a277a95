#!/usr/bin/env bash
# Install the Apache Beam Prism runner binary with `go install` (Go module proxy; no GitHub
# release download).
#
# usage: deploy/prism/install.sh BEAM_VERSION DIR
#   BEAM_VERSION  must equal the Python apache-beam version, e.g. 2.62.0
#   DIR           install directory; the binary ends up as DIR/prism
#
# Prints the absolute path of the binary as the last line of stdout. Idempotent: skipped when
# DIR/prism exists and `go version -m DIR/prism` says it was built from
# github.com/apache/beam/sdks/v2 at vBEAM_VERSION (prism itself has no --version flag).
#
# Env: FORCE=1  reinstall even if the right version is present
#
# Note: where the checksum database (sum.golang.org, reached through the module proxy) does
# not know the Beam module, `go install` fails with "verifying module ... 404 Not Found".
# The script then retries once with GONOSUMDB=github.com/apache/beam (the Beam module itself
# is then not checked against the sumdb; its dependencies still are) and says so on stderr.
set -euo pipefail

die() { echo "install.sh: error: $*" >&2; exit 1; }

[[ $# -eq 2 ]] || die "usage: $0 BEAM_VERSION DIR"
BEAM_VERSION=${1#v}
DIR=$2
[[ $BEAM_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "BEAM_VERSION must look like 2.62.0, got '$1'"
command -v go >/dev/null 2>&1 || die "go not found on PATH (need the Go toolchain, >= the go directive of beam sdks/v2 v${BEAM_VERSION})"

MOD=github.com/apache/beam/sdks/v2
PKG=$MOD/go/cmd/prism

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
BIN=$DIR/prism

installed_version() {
  # Prints e.g. v2.62.0, or nothing.
  go version -m "$1" 2>/dev/null | awk -v m="$MOD" '$1 == "mod" && $2 == m { print $3 }'
}

if [[ ${FORCE:-0} != 1 && -x $BIN && "$(installed_version "$BIN")" == "v$BEAM_VERSION" ]]; then
  echo "install.sh: up to date: $BIN (prism v$BEAM_VERSION)" >&2
  echo "$BIN"
  exit 0
fi

# Build into a scratch GOBIN, then move into place, so a failed build never leaves DIR/prism
# half-written or at the wrong version.
scratch=$(mktemp -d "$DIR/.prism-install.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
log=$scratch/go-install.log

echo "install.sh: go install $PKG@v$BEAM_VERSION (cold: ~3.5-5 min on 2 cores) ..." >&2
if ! GOBIN=$scratch go install "$PKG@v$BEAM_VERSION" >"$log" 2>&1; then
  if grep -q "verifying module" "$log" && grep -q "$MOD@v$BEAM_VERSION" "$log"; then
    echo "install.sh: warning: checksum database has no entry for $MOD@v$BEAM_VERSION;" \
      "retrying with GONOSUMDB=github.com/apache/beam" >&2
    GONOSUMDB=github.com/apache/beam${GONOSUMDB:+,$GONOSUMDB} GOBIN=$scratch \
      go install "$PKG@v$BEAM_VERSION" >"$log" 2>&1 || { cat "$log" >&2; die "go install failed"; }
  else
    cat "$log" >&2
    die "go install failed"
  fi
fi

[[ -x $scratch/prism ]] || die "go install succeeded but produced no prism binary"
got=$(installed_version "$scratch/prism")
[[ $got == "v$BEAM_VERSION" ]] || die "built prism reports module version '$got', expected v$BEAM_VERSION"
mv -f "$scratch/prism" "$BIN"
echo "install.sh: installed $BIN (prism v$BEAM_VERSION)" >&2
echo "$BIN"
