#!/usr/bin/env bash
# Boot parts (firmware, bootloaders, kernels) are test and example inputs,
# never build steps: fetched from Debian with apt-get download into a cache
# (DISKWRIGHT_BOOT_CACHE, default .cache/boot) that the boot tests and
# `npm run example:boot` read. Needs apt-get (Debian/Ubuntu) and dpkg-deb.
set -euo pipefail
cd "$(dirname "$0")/.."
export DISKWRIGHT_BOOT_CACHE=${DISKWRIGHT_BOOT_CACHE:-$PWD/.cache/boot}
mkdir -p "$DISKWRIGHT_BOOT_CACHE/debs"
chmod 777 "$DISKWRIGHT_BOOT_CACHE/debs" # apt's _apt user writes there
# linux-image-amd64 is a metapackage without a kernel: the versioned package
# it depends on is fetched in its place, extracted under the metapackage's name
# so the tests need not know the version. A name ending in -arm64 is the arm64
# package (dpkg --add-architecture arm64) for the U-Boot test on
# qemu-system-aarch64; its .deb goes to debs/arm64 so globs cannot mix arches.
for pkg in ovmf linux-image-amd64 busybox-static systemd-boot-efi grub-pc-bin grub-common u-boot-qemu linux-image-arm64 busybox-static-arm64; do
  if [ ! -e "$DISKWRIGHT_BOOT_CACHE/$pkg/.done" ]; then
    real=$pkg; arch=; debs=$DISKWRIGHT_BOOT_CACHE/debs
    case $pkg in
      linux-image-arm64) arch=:arm64 ;;
      *-arm64) real=${pkg%-arm64}; arch=:arm64 ;;
    esac
    if [ -n "$arch" ]; then
      debs=$debs/arm64; mkdir -p "$debs"; chmod 777 "$debs"
      dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64 && apt-get update -qq; }
    fi
    case $pkg in linux-image-amd64|linux-image-arm64)
      kernel() { apt-cache depends "$pkg$arch" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-\(amd\|arm\)64\)\(:arm64\)\?$/\1/p' | head -n1; }
      real=$(kernel)
      [ -n "$real" ] || { apt-get update -qq && real=$(kernel); }
    esac
    (cd "$debs" && apt-get download -qq "$real$arch" 2>/dev/null || { apt-get update -qq && apt-get download -qq "$real$arch"; })
    rm -rf "$DISKWRIGHT_BOOT_CACHE/$pkg"
    dpkg-deb -x "$(ls "$debs"/"${real}"_*.deb | sort -V | tail -n1)" "$DISKWRIGHT_BOOT_CACHE/$pkg"
    touch "$DISKWRIGHT_BOOT_CACHE/$pkg/.done"
  fi
done
