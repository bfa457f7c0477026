# A stand-in for nixpkgs with what nix/default.nix uses (nixpkgs cannot be
# fetched here): bash and Node (with its Node-API headers) copied from the
# build machine into the store, and the machine's gcc as stdenv.cc. They link
# against the host's libc, which a build without sandbox reaches.
{ node, nodeInclude }:
let
  drv = import ./drv.nix;
  system = builtins.currentSystem;
in
{
  inherit system;
  stdenv.hostPlatform.system = system;
  stdenv.cc = drv "cc" ''
    mkdir -p $out/bin
    printf '#!/bin/sh\nPATH=/usr/bin:/bin exec gcc "$@"\n' > $out/bin/cc
    chmod 755 $out/bin/cc
  '';
  bash = drv "bash" "mkdir -p $out/bin && cp /bin/bash $out/bin/bash";
  nodejs_24 = drv "nodejs" "mkdir -p $out/bin $out/include && cp ${node} $out/bin/node && cp -r ${nodeInclude} $out/include/node";
}
