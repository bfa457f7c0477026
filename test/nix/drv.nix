# The test derivations' one shape: no nixpkgs, a /bin/sh script as the
# builder, Debian's tools on PATH. `drv name script`.
name: script: builtins.derivation {
  inherit name;
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-e" "-c" script ];
  PATH = "/usr/bin:/bin";
}
