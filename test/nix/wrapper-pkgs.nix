# A stand-in for nixpkgs with what nix/default.nix uses (nixpkgs cannot be
# fetched here): bash and Node copied from the build machine into the store.
# Both link against the host's libc, which a build without sandbox reaches.
{ node }:
let
  drv = import ./drv.nix;
  system = builtins.currentSystem;
in
{
  inherit system;
  stdenv.hostPlatform.system = system;
  bash = drv "bash" "mkdir -p $out/bin && cp /bin/bash $out/bin/bash";
  nodejs_24 = drv "nodejs" "mkdir -p $out/bin && cp ${node} $out/bin/node";
}
