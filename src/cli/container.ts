// `diskwright container CONFIG [-o OUT] [--format ...] [--stream]`: option
// parsing and the per-layer report only.
import { Command, Option } from 'commander';
import { DiskwrightError } from '../errors.ts';
import { CONTAINER_FORMATS, notStreamable, planContainer, writeContainer, type ContainerFormat, type ContainerPlan } from '../api/container.ts';
import { loadContainerConfig } from '../container/config.ts';
import { formatSize } from '../util/sizes.ts';
import { deprecatedOption, jsonOption, outputOption, pickOutput, printJson, streamOption } from './grammar.ts';
import { containerOutput } from './output-schemas.ts';

/** One line per layer: what it holds, its size and digest. */
export function describeLayers(plan: ContainerPlan): string[] {
  const lines = [`${plan.name}:${plan.tag}: ${plan.layers.length} layer${plan.layers.length === 1 ? '' : 's'}`];
  plan.layers.forEach((l, i) => {
    const what = l.base ? 'fromImage' : l.storePaths.length ? l.storePaths.map((p) => p.slice(p.lastIndexOf('/') + 1)).join(' ') : 'customisation';
    lines.push(`  ${String(i + 1).padStart(3)}  ${l.digest}  ${formatSize(l.size).padStart(8)}  ${what}`);
  });
  return lines;
}

export function containerCommand(): Command {
  return new Command('container')
    .description("build a container image (docker-archive, oci-archive or an OCI layout directory) from a config with dockerTools.streamLayeredImage's options")
    .argument('<config>', 'config file: .json, .yaml, .toml, or a .ts/.js module exporting the options')
    .addOption(outputOption("output archive, or directory for oci-dir; '-' streams the archive to standard output"))
    .addOption(deprecatedOption('--out <path>'))
    .addOption(new Option('--format <format>', 'output kind').choices(CONTAINER_FORMATS).default('docker-archive'))
    .addOption(streamOption('the archive'))
    .addOption(jsonOption())
    .option('--cache <dir>', 'layer cache directory (default: the config\'s layerCache, else $XDG_CACHE_HOME/diskwright/layers)')
    .option('--no-cache', 'hash every layer, use and keep no cache (for a store whose paths may have changed in place)')
    .action(async (file: string, o: { output?: string; out?: string; format: ContainerFormat; stream?: boolean; json?: boolean; cache?: string | false }) => {
      const out = o.stream ? '-' : pickOutput(o.output, o.out, '--out');
      if (out === undefined) throw new DiskwrightError('OPTION_INVALID', 'no output: give -o OUT, or --stream to write the archive to standard output', {});
      if (out === '-' && o.format === 'oci-dir') throw notStreamable();
      const { config, baseDir } = await loadContainerConfig(file);
      const plan = planContainer(config, baseDir, { layerCache: o.cache });
      for (const w of plan.warnings) process.stderr.write(`diskwright: warning: ${w}\n`);
      try {
        writeContainer(plan, o.format, out);
      } finally {
        plan.cleanup();
      }
      if (o.json) {
        const layers = plan.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, mediaType: l.mediaType, size: l.size, storePaths: l.storePaths, cached: l.cached, ...(l.base ? { base: true as const } : {}) }));
        return printJson(containerOutput, { name: plan.name, tag: plan.tag, format: o.format, output: out, layers }, out === '-');
      }
      process.stderr.write(describeLayers(plan).join('\n') + '\n');
    });
}
