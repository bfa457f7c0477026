# Builder for closure-info.nix. Nix 2.8 exposes structured attrs as
# $NIX_ATTRS_JSON_FILE (and .attrs.json in the build directory); the output
# path is .outputs.out there.
set -e
export PATH=/usr/bin:/bin
attrs=${NIX_ATTRS_JSON_FILE:-.attrs.json}
out=$(jq -r .outputs.out < "$attrs")
mkdir "$out"
if [ "$(jq '.closure | length' < "$attrs")" = 0 ]; then
  echo 0 > "$out/total-nar-size"
  : > "$out/registration"
  : > "$out/store-paths"
else
  jq -r '.closure | map(.narSize) | add' < "$attrs" > "$out/total-nar-size"
  jq -r '.closure | map([.path, .narHash, .narSize, "", (.references | length)] + .references) | add | map("\(.)\n") | add' < "$attrs" | head -n -1 > "$out/registration"
  jq -r '.closure[].path' < "$attrs" > "$out/store-paths"
fi
