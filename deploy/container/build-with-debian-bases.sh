#!/usr/bin/env bash
# Build the image on a machine that reaches Debian's archive and PyPI but no container registry:
# buildah (from Debian) builds deploy/container/Dockerfile unchanged, with stand-ins for its two base
# images made here, then runs the result as its own user.
#
#   python stand-in: Debian bookworm (minbase) with its python3.11 and venv, from debootstrap
#   rust stand-in:   this machine's active rustup toolchain under /usr/local/rustup and /usr/local/cargo
#
# Both stand-ins trust the CA bundle this machine trusts and read its /etc/pip.conf, so a proxy
# that inspects TLS for this machine does the same for the build. The stand-ins differ from the
# official images (Debian's Python 3.11.2 and more packages than python:3.11-slim); what is tested is
# the Dockerfile's steps: the Rust cores compiled into the wheel, the offline install, the runtime user.
#
# Usage: bash deploy/container/build-with-debian-bases.sh [TAG]   (default wirestream:<version>), as root.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
tag=${1:-wirestream:$version}
work=${WORK:-/tmp/wirestream-image-build}
isolation=${BUILDAH_ISOLATION:-chroot}  # chroot: works inside a container without user namespaces
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"  # where rustup puts itself

for tool in buildah debootstrap; do
    command -v "$tool" >/dev/null || { apt-get update -q && apt-get install -y -q buildah debootstrap; break; }
done
toolchain=$(rustup show active-toolchain 2>/dev/null | cut -d' ' -f1) || true
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo_home=${CARGO_HOME:-$HOME/.cargo}
if [[ -z "$toolchain" || ! -d "$rustup_home/toolchains/$toolchain" ]]; then
    echo "error: no active rustup toolchain (install one with rustup; the builder stage needs cargo)" >&2
    exit 2
fi
mkdir -p "$work"

if ! buildah inspect --type image localhost/wirestream-stand-in-python:3.11-bookworm >/dev/null 2>&1; then
    rm -rf "$work/rootfs"
    debootstrap --variant=minbase --include=python3.11,python3-venv,ca-certificates \
        bookworm "$work/rootfs" http://deb.debian.org/debian
    cp /etc/ssl/certs/ca-certificates.crt "$work/rootfs/etc/ssl/certs/ca-certificates.crt"
    [[ -f /etc/pip.conf ]] && cp /etc/pip.conf "$work/rootfs/etc/pip.conf"
    rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin
    container=$(buildah from scratch)
    buildah copy "$container" "$work/rootfs" / >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$container"
    buildah commit --rm "$container" localhost/wirestream-stand-in-python:3.11-bookworm
    rm -rf "$work/rootfs"
fi

rm -rf "$work/rust"
mkdir -p "$work/rust/usr/local/rustup/toolchains" "$work/rust/usr/local/cargo/bin"
printf 'version = "12"\ndefault_toolchain = "%s"\n' "$toolchain" > "$work/rust/usr/local/rustup/settings.toml"
cp -a "$rustup_home/toolchains/$toolchain" "$work/rust/usr/local/rustup/toolchains/"
rm -rf "$work/rust/usr/local/rustup/toolchains/$toolchain/share/doc"
cp -a "$cargo_home/bin/." "$work/rust/usr/local/cargo/bin/"
container=$(buildah from scratch)
buildah copy "$container" "$work/rust" / >/dev/null
buildah commit --rm "$container" localhost/wirestream-stand-in-rust:local
rm -rf "$work/rust"

buildah bud --isolation "$isolation" --layers -f deploy/container/Dockerfile \
    --build-arg PYTHON_IMAGE=localhost/wirestream-stand-in-python:3.11-bookworm \
    --build-arg RUST_IMAGE=localhost/wirestream-stand-in-rust:local \
    -t "$tag" .
# buildah keeps a working container for a stage that is only copied from; the stand-in needs none.
buildah containers -q --filter ancestor=localhost/wirestream-stand-in-rust:local | xargs -r buildah rm >/dev/null

# The image runs as its own user, with the compiled cores, and its entrypoint answers.
container=$(buildah from "$tag")
trap 'buildah rm "$container" >/dev/null' EXIT
buildah run --isolation "$isolation" "$container" -- sh -c \
    'test "$(id -u)" = 10001 && python -c "import pipeline._langid_native, pipeline._minhash_native, pipeline._tagging_native" && wirestream --help >/dev/null'
echo "built $tag: runs as uid 10001, the three compiled cores import, wirestream --help answers"
