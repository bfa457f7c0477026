# diskwright itself as a derivation, from a checkout where `npm ci` has run.
# Nix cannot fetch npm packages here without a hash per package, so the
# runtime dependencies (package.json's "dependencies" and theirs, nothing
# from devDependencies) are copied from the checkout's node_modules. The
# xattr addon (binding.gyp's sources) is compiled with `cc` against the
# Node-API headers of `nodejs`; without a compiler, the one `npm ci` built in
# build/Release is taken.
#
# The layout is $out/lib/diskwright/{bin,src,build,node_modules,package.json}
# and $out/bin/diskwright. Node strips TypeScript types everywhere except
# under a node_modules directory, so the sources must not sit in one.
{ pkgs
, nodejs ? pkgs.nodejs_24 or pkgs.nodejs
, bash ? pkgs.bash
, cc ? pkgs.stdenv.cc or null
, coreutils ? pkgs.coreutils or null
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
  gyp = builtins.head (fromJSON (readFile (src + "/binding.gyp"))).targets;
  copy = rel: builtins.path {
    path = src + "/${rel}";
    name = "diskwright-" + replaceStrings [ "@" "/" ] [ "" "-" ] (baseNameOf rel);
  };
  missing = builtins.filter (n: !pathExists (modules + "/${n}/package.json")) (depsOf src);
in
assert cc != null || pathExists addon || throw "diskwright: ${toString addon} is missing: run `npm ci` in the checkout first (it compiles the xattr addon)";
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
  } // (if cc == null then { "build/Release/xattr.node" = addon; } else { })
  // builtins.listToAttrs (map (n: { name = "node_modules/${n}"; value = copy "node_modules/${n}"; }) runtime);
  node = "${nodejs}/bin/node";
  shell = "${bash}/bin/bash";
  addon = if cc == null then null else {
    cc = "${cc}/bin/cc";
    include = "${nodejs}/include/node";
    inherit (gyp) sources defines;
    path = if coreutils == null then "" else "${coreutils}/bin";
  };
}
