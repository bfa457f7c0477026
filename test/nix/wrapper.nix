# nix/default.nix's builders called as a Nix user calls nixpkgs' (see
# wrapper.test.ts), with the stand-in pkgs and a small closure: app refers
# to lib through a symlink and a file's contents; a stand-in NixOS system.
{ node, nodeInclude }:
let
  pkgs = import ./wrapper-pkgs.nix { inherit node nodeInclude; };
  dw = import ../../nix { inherit pkgs; };
  drv = import ./drv.nix;
  lib = drv "lib" ''
    mkdir -p $out/bin
    printf '#!/bin/sh\necho hello\n' > $out/bin/hello
    chmod 755 $out/bin/hello
  '';
  app = drv "app" ''
    mkdir -p $out/bin $out/etc
    ln -s ${lib}/bin/hello $out/bin/hello
    echo ${lib} > $out/etc/lib-path
  '';
  # Named only inside a string of the image config.
  extra = drv "extra" "echo extra > $out";
  # A NixOS-shaped system: what a disk image reads from a toplevel to boot it
  # with systemd-boot (the files are placeholders; nothing boots here).
  kernel = drv "linux" "mkdir $out && echo kernel > $out/bzImage";
  initrd = drv "initrd" "mkdir $out && echo initrd > $out/initrd";
  systemd = drv "systemd" "mkdir -p $out/lib/systemd/boot/efi && echo systemd-boot > $out/lib/systemd/boot/efi/systemd-bootx64.efi";
  toplevel = drv "nixos-system-test" ''
    mkdir $out
    ln -s ${kernel}/bzImage $out/kernel
    ln -s ${initrd}/initrd $out/initrd
    ln -s ${systemd} $out/systemd
    printf 'console=ttyS0' > $out/kernel-params
    printf '24.11' > $out/nixos-version
    printf '#!/bin/sh\n' > $out/init
    chmod 755 $out/init
  '';
  # What makeDiskImage reads of a NixOS configuration.
  config = {
    system.build.toplevel = toplevel;
    nixpkgs.hostPlatform.system = "x86_64-linux";
  };
in
{
  inherit app extra toplevel;
  inherit (dw) diskwright;
  disk = dw.makeDiskImage {
    inherit config;
    name = "wrapper-disk";
    partitionTableType = "efi";
    bootSize = "40M";
    additionalSpace = "1M";
    additionalPaths = [ app ];
    contents = [ { source = "${app}/etc/lib-path"; target = "/etc/lib-path"; mode = "0644"; } ];
    format = "qcow2";
    # nixpkgs' VM settings: nothing to do without a VM.
    memSize = 2048;
    copyChannel = false;
    # Asking for nothing, as nixpkgs' defaults.
    postVM = "";
    configFile = null;
  };
  ext4 = dw.makeExt4Fs {
    storePaths = [ app ];
    volumeLabel = "store";
    compressImage = true;
  };
  sd = dw.sdImage {
    storePaths = [ app ];
    firmwareSize = 8;
    compressImage = false;
  };
  stream = dw.streamLayeredImage {
    name = "hello";
    tag = "test";
    contents = [ app ];
    config.Cmd = [ "/bin/hello" ];
    config.Env = [ "EXTRA=${extra}" ];
    maxLayers = 3;
    fromImage = null;
    passthru.greeting = "hello";
    extraCommands = "";
  };
  refused = dw.makeDiskImage { postVM = "echo"; };
  channel = dw.makeDiskImage { copyChannel = true; };
}
