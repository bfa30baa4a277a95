#!/usr/bin/env bash
# Make sure the system tools wirestream needs are present: Python 3.11+, Java 17+, Maven 3.8+
# (the local Kafka broker and the Flink job server), Go 1.22+ (builds the Prism runner); Rust
# (cargo) builds the topic tagger's compiled core when present; Chromium renders the HTML report
# in the test suite.
# On Debian/Ubuntu it installs what is missing with apt-get; elsewhere it says what to install.
set -euo pipefail

need=()
java_ok() { command -v java >/dev/null && java -version 2>&1 | awk -F'"' '/version/ {split($2,v,"."); exit !(v[1]>=17)}'; }
python_ok() { command -v python3 >/dev/null && python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; }
python_ok || need+=(python3 python3-venv)
# The local Iceberg REST catalog's launcher is compiled once (javac): a JDK, not only a runtime.
{ java_ok && command -v javac >/dev/null; } || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need+=(maven)
command -v go >/dev/null || need+=(golang-go)
# The test suite renders `wirestream report`'s HTML page in a real headless browser.
command -v chromium >/dev/null || need+=(chromium)
if ! command -v cargo >/dev/null && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  # Not fatal: without Rust the install skips the tagger's compiled core and tagging runs in
  # Python (same tags, ~4x slower); the test suite checks that the compiled core is there.
  echo "note: no Rust toolchain (cargo); install it with rustup (https://rustup.rs) for the compiled tagger" >&2
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "wirestream needs: ${need[*]}"
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
else
  echo "Install them with your package manager (Java 17+, Maven 3.8+, Go 1.22+, Python 3.11+, Chromium), then re-run." >&2
  exit 1
fi
