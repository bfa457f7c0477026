# nixpkgs' image builders with diskwright inside: the same argument names, an
# ordinary derivation each (no VM, no kvm system feature), so Hydra and remote
# builders can spread image builds over any Linux machine.
#
#   let dw = import ./nix { inherit pkgs; };
#   in dw.makeDiskImage { inherit config; diskSize = "auto"; partitionTableType = "efi"; }
#
# Each builder turns its arguments into a diskwright config
# (builtins.toJSON), hands the derivation the closure of its store paths
# (exportReferencesGraph, so diskwright hashes nothing Nix already knows) and
# runs `diskwright build`. See docs/nix.md for what maps to what.
{ pkgs
, nodejs ? pkgs.nodejs_24 or pkgs.nodejs
, bash ? pkgs.bash
, diskwright ? import ./package.nix { inherit pkgs nodejs bash; }
}:
let
  inherit (builtins) attrNames concatMap filter head isAttrs isList isString removeAttrs toJSON;
  system = pkgs.stdenv.hostPlatform.system or pkgs.system or builtins.currentSystem;
  storeDir = builtins.storeDir;

  # The arguments without those given as null, which nixpkgs takes as not given.
  given = args: removeAttrs args (filter (n: args.${n} == null) (attrNames args));

  # nixpkgs arguments with no equivalent here: refused, saying why, unless
  # they ask for nothing (false, "" or [], as their defaults mostly are).
  refuse = fn: unsupported: args0:
    let
      args = given args0;
      bad = filter (n: args ? ${n} && !(builtins.elem args.${n} [ false "" [ ] ])) (attrNames unsupported);
    in
    if bad == [ ] then removeAttrs args (attrNames unsupported)
    else throw "diskwright.${fn}: ${head bad} is not supported: ${unsupported.${head bad}}";

  # The store paths a value names anywhere in its strings (a path inside one
  # counts as that path), as diskwright finds them in a container config.
  # No string context is needed: the config carries it, which makes them
  # inputs, and exportReferencesGraph takes any path in the inputs' closure.
  storePathRegex = "(${escapeRegex storeDir}/[0-9a-df-np-sv-z]{32}-[-+._?=0-9A-Za-z]+)";
  escapeRegex = builtins.replaceStrings [ "." "+" "?" "(" ")" "[" "]" "{" "}" "^" "$" "|" "*" "\\" ] [ "\\." "\\+" "\\?" "\\(" "\\)" "\\[" "\\]" "\\{" "\\}" "\\^" "\\$" "\\|" "\\*" "\\\\" ];
  storePathsIn = v:
    if isString v then concatMap (p: if isList p then p else [ ]) (builtins.split storePathRegex v)
    else if isList v then concatMap storePathsIn v
    else if isAttrs v && !(v ? outPath) then concatMap (n: storePathsIn v.${n}) (attrNames v)
    else if isAttrs v then [ v.outPath ]
    else [ ];

  # A NixOS configuration's system (config.system.build.toplevel), or `toplevel` itself.
  toplevelOf = args:
    if args ? toplevel then args.toplevel
    else if args ? config then args.config.system.build.toplevel
    else null;

  # The Nix system the image is for: the NixOS configuration's, else the build machine's.
  systemOf = args: args.config.nixpkgs.hostPlatform.system or system;

  # One derivation running `diskwright COMMAND config.json -o $out` in its
  # build directory. `roots`: the store paths whose closure the config's
  # storeReferences describes. `imageFile`: $out is the image itself, not a
  # directory (make-ext4-fs). `subdir`: the image goes in $out/SUBDIR, its
  # nix-support in $out (sd-image).
  run = { name, command, config, roots, imageFile ? false, subdir ? null }: builtins.derivation {
    inherit name system;
    builder = "${nodejs}/bin/node";
    args = [ ./build.mjs ];
    __structuredAttrs = true;
    exportReferencesGraph.closure = roots;
    config = toJSON (config // {
      nixStoreDir = storeDir;
    } // (if roots == [ ] then { } else { storeReferences = "closure.json"; }));
    inherit command imageFile subdir;
    diskwright = "${diskwright}/bin/diskwright";
  };

  # Arguments that only tune nixpkgs' VM: without one they mean nothing.
  vmOnly = [ "memSize" "efiFirmware" "lib" "pkgs" ];

  makeDiskImage = args0:
    let
      args = refuse "makeDiskImage" {
        postVM = "it runs shell commands after the VM; post-process the image in a derivation of your own";
        copyChannel = "no nixpkgs channel is copied into the image; put one in contents, or set copyChannel = false";
        includeChannel = "no nixpkgs channel is copied into the image; put one in contents, or set includeChannel = false";
      } args0;
      toplevel = toplevelOf args;
      passed = removeAttrs args ([ "config" "toplevel" ] ++ vmOnly);
      config = { system = systemOf args; } // passed // (if toplevel == null then { } else { inherit toplevel; });
    in
    run {
      name = args.name or "nixos-disk-image";
      command = "build";
      inherit config;
      roots = storePathsIn [ toplevel (args.storePaths or [ ]) (args.additionalPaths or [ ]) ];
    };

  makeExt4Fs = args0:
    let
      args = refuse "makeExt4Fs" {
        populateImageCommands = "it runs shell commands; give the directories to copy to the root as `files` instead";
      } args0;
      passed = removeAttrs args ([ "e2fsprogs" "zstd" "libfaketime" "perl" "fakeroot" "lib" "pkgs" "name" ]);
    in
    run {
      # make-ext4-fs's output is the image file itself.
      name = args.name or "ext4-fs.img${if args.compressImage or false then ".zst" else ""}";
      command = "build";
      config = { builder = "make-ext4-fs"; } // passed;
      roots = storePathsIn (args.storePaths or [ ]);
      imageFile = true;
    };

  sdImage = args0:
    let
      args = refuse "sdImage" {
        populateFirmwareCommands = "it runs shell commands; give firmwareContents ({ source; target; } entries) instead";
        populateRootCommands = "it runs shell commands; give rootContents ({ source; target; } entries) instead";
        postBuildCommands = "it runs shell commands; give postBuildBlobs ({ source; offset; } entries) for a boot loader written into the image";
      } args0;
      toplevel = toplevelOf args;
      passed = removeAttrs args [ "config" "toplevel" "name" "lib" "pkgs" ];
    in
    run {
      name = args.name or "${args.imageBaseName or "nixos-sd-image"}";
      command = "build";
      config = { builder = "sd-image"; system = systemOf args; } // passed // (if toplevel == null then { } else { inherit toplevel; });
      roots = storePathsIn [ toplevel (args.storePaths or [ ]) ];
      subdir = "sd-image";
    };

  # As nixpkgs: the result is an executable that writes the image archive to
  # standard output (`$(nix-build ...) | podman load`); the layers are made
  # when it runs, not in the store.
  streamLayeredImage = args0:
    let
      args = refuse "streamLayeredImage" {
        fromImage = "a base image is not supported; put what it held in contents";
        extraCommands = "it runs shell commands; give files as contents (a directory, or { source; target; } entries)";
        fakeRootCommands = "it runs shell commands; set owners and modes with perms or contents entries' user, group and mode";
        enableFakechroot = "there are no fakeRootCommands to run";
        layeringPipeline = "set layering (popularity or size) instead";
      } args0;
      passed = removeAttrs args [ "passthru" "meta" "lib" "pkgs" ];
      conf = run {
        name = "${baseNameOf args.name}-conf";
        command = "conf";
        config = { system = systemOf { }; } // passed;
        # contents' packages (not its { source; target; } entries, which are copied) and store paths the image config names.
        roots = storePathsIn [ (filter (c: isString c || c ? outPath) (args.contents or [ ])) (args.storePaths or [ ]) (args.additionalPaths or [ ]) (args.config or { }) ];
      };
    in
    # passthru and meta sit on the result, as mkDerivation puts them.
    (args.passthru or { }) // (if args ? meta then { inherit (args) meta; } else { }) // builtins.derivation {
      name = "stream-${baseNameOf args.name}";
      inherit system;
      builder = "${nodejs}/bin/node";
      args = [ ./stream.mjs ];
      __structuredAttrs = true;
      shell = "${bash}/bin/bash";
      diskwright = "${diskwright}/bin/diskwright";
      inherit conf;
    } // { inherit conf; isExe = true; };
in
{
  inherit makeDiskImage makeExt4Fs sdImage streamLayeredImage diskwright;
}
