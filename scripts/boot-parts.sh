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
# so the tests need not know the version.
for pkg in ovmf linux-image-amd64 busybox-static systemd-boot-efi grub-pc-bin grub-common u-boot-qemu; do
  if [ ! -e "$DISKWRIGHT_BOOT_CACHE/$pkg/.done" ]; then
    real=$pkg
    if [ "$pkg" = linux-image-amd64 ]; then
      kernel() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1; }
      real=$(kernel)
      [ -n "$real" ] || { apt-get update -qq && real=$(kernel); }
    fi
    (cd "$DISKWRIGHT_BOOT_CACHE/debs" && apt-get download -qq "$real" 2>/dev/null || { apt-get update -qq && apt-get download -qq "$real"; })
    rm -rf "$DISKWRIGHT_BOOT_CACHE/$pkg"
    dpkg-deb -x "$(ls "$DISKWRIGHT_BOOT_CACHE"/debs/"${real}"_*.deb | sort -V | tail -n1)" "$DISKWRIGHT_BOOT_CACHE/$pkg"
    touch "$DISKWRIGHT_BOOT_CACHE/$pkg/.done"
  fi
done

