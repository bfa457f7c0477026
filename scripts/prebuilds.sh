#!/bin/sh
# The prebuilt native addons the package ships (run by prepack): linux-x64
# and linux-arm64, N-API, so one binary serves every Node version. Built by
# prebuildify in a scratch copy of the addon's sources, so the checkout's own
# build/Release is left alone; arm64 is cross-compiled with Debian's
# gcc-aarch64-linux-gnu. The package's install script (node-gyp-build) uses
# these and compiles from source only where none fits.
set -eu
cd "$(dirname "$0")/.."
root=$PWD
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/src/native"
cp binding.gyp "$scratch/"
cp src/native/*.c src/native/*.h "$scratch/src/native/"
rm -rf prebuilds

build() { # ARCH [VAR=VALUE...]: one prebuild into prebuilds/linux-ARCH
  arch=$1; shift
  (cd "$scratch" && rm -rf build && env "$@" "$root/node_modules/.bin/prebuildify" --napi --strip --tag-libc \
    --name diskwright --arch "$arch" --out "$root" --cache "$scratch/.cache" --quiet)
}

case $(uname -m) in
  x86_64)
    build x64
    cross=aarch64-linux-gnu
    build arm64 CC=$cross-gcc CXX=$cross-gcc LINK=$cross-gcc AR=$cross-ar PREBUILD_STRIP_BIN=$cross-strip
    ;;
  aarch64)
    build arm64
    cross=x86_64-linux-gnu
    build x64 CC=$cross-gcc CXX=$cross-gcc LINK=$cross-gcc AR=$cross-ar PREBUILD_STRIP_BIN=$cross-strip
    ;;
  *) echo "prebuilds: build the package on linux x86_64 or aarch64" >&2; exit 1 ;;
esac
ls -l prebuilds/*/ >&2
