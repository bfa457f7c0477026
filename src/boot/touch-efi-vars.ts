// touchEFIVars: make-disk-image's efi-vars.fd without its VM. There, the
// template (efiVariables) is the VM's pflash and `bootctl install` adds a
// Boot#### entry for systemd-boot and puts it first in BootOrder; here the
// same two variables are written into a copy of the template by our store
// writer (efi-vars.ts), pointing at the ESP as the compiled layout placed it.
// The options and the template are checked before the closure is read; the
// file is made after the disk is compiled and written beside the image.
import * as fs from 'node:fs';
import { DiskwrightError } from '../errors.ts';
import type { ImageConfig } from '../config/schema.ts';
import type { DiskSpec } from '../disk/spec.ts';
import type { PartitionReport } from '../disk/compile.ts';
import { byteName, type Entry } from '../tree/model.ts';
import { readEfiVars, writeEfiVars } from './efi-vars.ts';
import { configStoreDirs, hostFile } from './host-file.ts';
import { efiArch } from './systemd-boot.ts';

/** Variable stores are firmware flash regions: OVMF's are 128 KiB to 4 MiB; anything far larger is not one. */
const MAX_TEMPLATE = 64 << 20;

/** The output's name, as make-disk-image names it. */
export const EFI_VARS_FILE = 'efi-vars.fd';

/** bootctl's entry number and description for systemd-boot. */
const BOOT_NUMBER = 1;

export interface EfiVarsPlan {
  template: Buffer;
  /** `efiVariables <path>` for messages. */
  what: string;
}

const layoutName = (cfg: ImageConfig) => cfg.preset ?? (cfg.partitions ? 'custom' : cfg.partitionTableType);

/** Checks touchEFIVars' options and reads the template; undefined when touchEFIVars is off. */
export function planEfiVars(cfg: ImageConfig, baseDir: string): EfiVarsPlan | undefined {
  if (!cfg.touchEFIVars) return undefined;
  if (cfg.efiVariables === undefined) {
    throw new DiskwrightError('CONFIG_INVALID', 'touchEFIVars: efiVariables is not set; set it to the firmware\'s variable-store template (OVMF_VARS.fd or OVMF_VARS_4M.fd, e.g. ${pkgs.OVMF.fd}/FV/OVMF_VARS.fd)', {});
  }
  const gpt = cfg.partitions ? ['gpt', 'hybrid'].includes(cfg.partitionTableType) : ['efi', 'efixbootldr', 'hybrid'].includes(cfg.partitionTableType);
  if (!gpt) {
    throw new DiskwrightError('CONFIG_INVALID', `touchEFIVars: the ${layoutName(cfg)} layout has no GPT with an ESP for the Boot0001 entry; use partitionTableType efi, efixbootldr or hybrid, or set touchEFIVars to false`, {});
  }
  const fix = 'give the firmware\'s variable-store template (OVMF_VARS.fd or OVMF_VARS_4M.fd)';
  const file = hostFile(cfg.efiVariables, 'efiVariables', baseDir, configStoreDirs(cfg, baseDir), fix);
  const what = `efiVariables ${cfg.efiVariables}`;
  if (file.size > MAX_TEMPLATE) {
    throw new DiskwrightError('INPUT_NOT_IMAGE', `${what} is ${file.size} bytes, too large for a variable store; ${fix}`, { path: cfg.efiVariables });
  }
  const template = fs.readFileSync(file.host);
  readEfiVars(template, what);
  return { template, what };
}

function lookup(root: Entry | undefined, p: string): Entry | undefined {
  let e = root;
  for (const part of p.split('/')) e = e?.type === 'dir' ? e.children.get(byteName(part)) : undefined;
  return e;
}

/**
 * efi-vars.fd: the template with Boot0001 ("Linux Boot Manager",
 * HD(ESP)/\EFI\systemd\systemd-boot<arch>.efi) first in BootOrder, as
 * `bootctl install` leaves it.
 */
export function efiVarsFile(plan: EfiVarsPlan, cfg: ImageConfig, spec: DiskSpec, partitions: PartitionReport[]): Buffer {
  const esp = partitions.find((p) => p.role === 'esp');
  if (!esp || esp.number === null || esp.guid === undefined) {
    throw new DiskwrightError('CONFIG_INVALID', `touchEFIVars: the ${layoutName(cfg)} layout has no ESP in a GPT for the Boot0001 entry; add one (type esp, fs vfat) or set touchEFIVars to false`, {});
  }
  const arch = efiArch(cfg.system);
  const loader = `EFI/systemd/systemd-boot${arch}.efi`;
  const tree = spec.partitions.find((p) => p.role === 'esp')?.content;
  if (tree?.fs !== 'vfat' || lookup(tree.tree, loader)?.type !== 'file') {
    throw new DiskwrightError('CONFIG_INVALID', `touchEFIVars: no systemd-boot on the ESP (/${loader}) for Boot0001 to start; give toplevel or bootEntries with bootLoader systemd-boot, or set touchEFIVars to false`, {});
  }
  return writeEfiVars(plan.template, {
    boot: [{
      number: BOOT_NUMBER,
      partition: { partitionNumber: esp.number, startLba: esp.startSector, sizeLba: esp.sectors, partitionGuid: esp.guid },
      path: `\\${loader.replaceAll('/', '\\')}`,
    }],
  }, plan.what);
}
