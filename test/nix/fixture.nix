# Small real closures for the Nix oracle tests: no nixpkgs, /bin/sh builders,
# outputs with every kind of NAR node and references of every kind.
let
  drv = import ./drv.nix;

  # A directory with everything a NAR can hold; one symlink points into the
  # path itself (a self-reference).
  lib = drv "lib" ''
    mkdir -p $out/bin $out/share/doc/deep/deeper/deepest $out/empty-dir $out/lib
    printf '#!/bin/sh\necho lib\n' > $out/bin/x
    chmod 755 $out/bin/x
    : > $out/empty-file
    printf 'exactly8' > $out/eight
    ln $out/eight $out/eight-hardlink
    yes 'diskwright nar chunking test line' | head -c 2500000 > $out/share/big
    ln -s x $out/bin/y
    ln -s $out/bin/x $out/bin/self
    ln -s /nonexistent/target $out/dangling
    touch "$out/$(printf 'caf\351')"
    for n in B a A b _ .hidden Z z 0 é e- e.; do echo "$n" > "$out/share/doc/$n"; done
    echo deep > $out/share/doc/deep/deeper/deepest/leaf
    chmod +x $out/share/doc/deep/deeper/deepest/leaf
  '';

  # A store path that is a single regular file.
  data = drv "data" ''
    printf 'plain data\n' > $out
  '';

  # Referenced only through a file name in app.
  named = drv "named" ''
    printf 'named\n' > $out
  '';

  # A single executable file that refers to lib.
  tool = drv "tool" ''
    printf '#!/bin/sh\nexec %s/bin/x "$@"\n' ${lib} > $out
    chmod +x $out
  '';

  # References through a symlink target, file contents (also past 1 MiB)
  # and a file name.
  app = drv "app" ''
    mkdir $out
    ln -s ${tool} $out/tool
    { yes filler | head -c 1048500; echo ${data}; } > $out/late-ref
    touch "$out/$(basename ${named})"
  '';

  # Identical files in two paths: nix-store --optimise hard-links them.
  dup = n: drv "dup${n}" ''
    mkdir $out
    yes dup | head -c 100000 > $out/same
    echo ${n} > $out/own
  '';
  dup1 = dup "1";
  dup2 = dup "2";

  # Present in the store but in no closure of root.
  other = drv "other" ''
    echo other > $out
  '';

  # A symlink store path.
  link = drv "link" ''
    ln -s ${data} $out
  '';

  root = drv "root" ''
    mkdir $out
    ln -s ${app} $out/app
    ln -s ${dup1} $out/dup1
    echo ${dup2} > $out/dup2-path
    ln -s ${link} $out/link
  '';
in
{ inherit lib data named tool app dup1 dup2 other link root; }
