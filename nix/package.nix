# diskwright itself as a derivation, from a checkout where `npm ci` has run
# (it brings node_modules and compiles the xattr addon to build/Release).
# Nix cannot fetch npm packages here without a hash per package, so the
# runtime dependencies (package.json's "dependencies" and theirs, nothing
# from devDependencies) are copied from the checkout's node_modules.
#
# The layout is $out/lib/diskwright/{bin,src,build,node_modules,package.json}
# and $out/bin/diskwright. Node strips TypeScript types everywhere except
# under a node_modules directory, so the sources must not sit in one.
{ pkgs
, nodejs ? pkgs.nodejs_24 or pkgs.nodejs
, bash ? pkgs.bash
, src ? ../.
}:
let
  inherit (builtins) attrNames fromJSON readFile pathExists replaceStrings;
  manifest = fromJSON (readFile (src + "/package.json"));
  modules = src + "/node_modules";
  depsOf = dir: attrNames ((fromJSON (readFile (dir + "/package.json"))).dependencies or { });
  # The hoisted packages the runtime needs; one nested under its user's own
  # node_modules comes with that package's directory.
  runtime = map (x: x.key) (builtins.genericClosure {
    startSet = map (key: { inherit key; }) (depsOf src);
    operator = x: map (key: { inherit key; }) (builtins.filter (n: pathExists (modules + "/${n}")) (depsOf (modules + "/${x.key}")));
  });
  addon = src + "/build/Release/xattr.node";
  copy = rel: builtins.path {
    path = src + "/${rel}";
    name = "diskwright-" + replaceStrings [ "@" "/" ] [ "" "-" ] (baseNameOf rel);
  };
  missing = builtins.filter (n: !pathExists (modules + "/${n}/package.json")) (depsOf src);
in
assert pathExists addon || throw "diskwright: ${toString addon} is missing: run `npm ci` in the checkout first (it compiles the xattr addon)";
assert missing == [ ] || throw "diskwright: node_modules lacks ${toString missing}: run `npm ci` in the checkout first";
builtins.derivation {
  name = "diskwright-${manifest.version}";
  system = pkgs.stdenv.hostPlatform.system or pkgs.system or builtins.currentSystem;
  builder = "${nodejs}/bin/node";
  args = [ ./install.mjs ];
  __structuredAttrs = true;
  parts = {
    "bin" = copy "bin";
    "src" = copy "src";
    "package.json" = copy "package.json";
    "build/Release/xattr.node" = addon;
  } // builtins.listToAttrs (map (n: { name = "node_modules/${n}"; value = copy "node_modules/${n}"; }) runtime);
  node = "${nodejs}/bin/node";
  shell = "${bash}/bin/bash";
}
