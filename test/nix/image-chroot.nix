# A small closure for the chroot-store image test (image.test.ts): built in
# the test store, copied by `nix copy` into a chroot store, then deleted from
# the test store, so an image of it can only read the chroot's files. `tag`
# keeps its paths apart from every other test's.
{ tag }:
let
  drv = import ./drv.nix;

  base = drv "chroot-base-${tag}" ''
    mkdir -p $out/bin $out/share
    printf '#!/bin/sh\necho ${tag}\n' > $out/bin/hi
    chmod +x $out/bin/hi
    yes 'chroot store line' | head -c 70000 > $out/share/text
  '';
in
drv "chroot-top-${tag}" ''
  mkdir $out
  ln -s ${base}/bin/hi $out/hi
  echo ${base} > $out/base-path
''
