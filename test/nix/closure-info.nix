# closureInfo (nixpkgs pkgs/build-support/closure-info.nix) without nixpkgs:
# the same structured-attrs exportReferencesGraph and jq program, with
# Debian's jq and /bin/sh as the builder.
{ roots }:
builtins.derivation {
  name = "closure-info";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ ./closure-info.sh ];
  __structuredAttrs = true;
  exportReferencesGraph.closure = roots;
}
