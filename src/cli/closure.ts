// `diskwright closure ROOT... -o OUTDIR`: closureInfo's store-paths,
// registration and total-nar-size, computed without Nix.
import { Command } from 'commander';
import * as path from 'node:path';
import { closure, formatSha256, writeClosureInfo } from '../api/nix.ts';
import { jsonOption, outputOption, printJson } from './grammar.ts';
import { closureOutput } from './output-schemas.ts';

export function closureCommand(): Command {
  return new Command('closure')
    .description("write OUTDIR/store-paths, registration and total-nar-size for the closure of the ROOTs, as nixpkgs' closureInfo does")
    .argument('<root...>', 'store paths, or symlinks to them such as ./result')
    .addOption(outputOption('directory to write the three files into (created if missing)').makeOptionMandatory())
    .option('--store-dir <dir>', 'where the store paths are on this machine (default: the nix store dir; e.g. /tmp/r/nix/store for a chroot store)')
    .option('--nix-store-dir <dir>', 'the store dir the paths are named under, as NIX_STORE_DIR', '/nix/store')
    .option('--references-from <file|dir>', 'take references from a closureInfo directory, a registration or nix-store --dump-db file, or nix path-info --json output (default: scan the paths for them)')
    .option('--trust-hashes', 'with --references-from: take narHash and narSize from it instead of hashing every path')
    .option('--derivers', 'write each path\'s deriver when the references name one (closureInfo leaves it empty)')
    .addOption(jsonOption())
    .action((roots: string[], o: { output: string; storeDir?: string; nixStoreDir: string; referencesFrom?: string; trustHashes?: boolean; derivers?: boolean; json?: boolean }) => {
      const c = closure(roots, {
        nixStoreDir: o.nixStoreDir,
        storeDir: o.storeDir,
        references: o.referencesFrom,
        hashes: o.trustHashes ? 'given' : 'compute',
      });
      writeClosureInfo(o.output, c.paths, { derivers: Boolean(o.derivers) });
      if (o.json) {
        const paths = c.paths.map((p) => ({ path: p.path, narHash: formatSha256(p.narHash, 'nix32'), narSize: p.narSize, references: p.references, deriver: p.deriver }));
        const files = ['store-paths', 'registration', 'total-nar-size'].map((f) => path.join(path.resolve(o.output), f));
        return printJson(closureOutput, { paths, totalNarSize: c.totalNarSize, files });
      }
      process.stderr.write(`closure: ${c.paths.length} store path${c.paths.length === 1 ? '' : 's'}, total NAR size ${c.totalNarSize} bytes, written to ${o.output}\n`);
    });
}
