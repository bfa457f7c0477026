// GPT GUIDs on disk: UEFI 2.10 Appendix A (EFI_GUID) and §5.3.3. The text
// form XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX is stored "mixed-endian": the first
// three fields (32, 16, 16 bits) little-endian, the last 8 bytes as written.
// https://uefi.org/specs/UEFI/2.10/Apx_A_GUID_and_Time_Formats.html
import { DiskwrightError } from '../errors.ts';
import { formatUuid, parseUuid, seededUuid } from '../util/ids.ts';

/** Swaps the first three fields between text (big-endian) and on-disk (little-endian) order. */
function swapFields(b: Buffer): Buffer {
  const out = Buffer.from(b);
  out.writeUInt32LE(b.readUInt32BE(0), 0);
  out.writeUInt16LE(b.readUInt16BE(4), 4);
  out.writeUInt16LE(b.readUInt16BE(6), 6);
  return out;
}

/** True when `text` is an 8-4-4-4-12 hex GUID. */
export function isGuid(text: string): boolean {
  return parseUuid(text) !== null;
}

/** The 16 on-disk bytes of a GUID given as text (any case). */
export function guidToBytes(text: string): Buffer {
  const b = parseUuid(text);
  if (!b) throw new DiskwrightError('PARTITION_INVALID', `invalid GUID "${text}": expected 8-4-4-4-12 hex digits`, { guid: text });
  return swapFields(b);
}

/** Uppercase text of 16 on-disk GUID bytes, as sgdisk, sfdisk and parted print it. */
export function bytesToGuid(buf: Uint8Array): string {
  if (buf.length !== 16) throw new RangeError(`bytesToGuid: need 16 bytes, got ${buf.length}`);
  return formatUuid(swapFields(Buffer.from(buf))).toUpperCase();
}

/**
 * A version-4 GUID (as text) for (seed, purpose). The version and variant bits
 * sit where the text form puts them, so tools show it as a random GUID.
 */
export function seededGuid(seed: string, purpose: string): string {
  return formatUuid(seededUuid(seed, purpose)).toUpperCase();
}

// nixpkgs' make-disk-image.nix passes `--disk-guid=97FD5997-D90B-4AA3-8D16-C1723AEA73C`
// to sgdisk in deterministic mode. That string has 31 hex digits (35 chars), and
// sgdisk reads it hex pair by hex pair after dropping the dashes, so the disk ends
// up with this GUID. We use the value sgdisk actually writes, to match its images.
export const MAKE_DISK_IMAGE_DISK_GUID = '97FD5997-F390-0B4A-A3F8-D106C1723AEA';
/** make-disk-image's fixed GUID for partition 1 (ESP or BIOS boot, by layout). */
export const MAKE_DISK_IMAGE_PART1_GUID = '1C06F03B-704E-4657-B9CD-681A087A2FDC';
/** make-disk-image's fixed GUID for partition 2 where it is not the root (legacy+gpt root, XBOOTLDR, hybrid's BIOS boot). */
export const MAKE_DISK_IMAGE_PART2_GUID = '970C694F-AFD0-4B99-B750-CDB7A329AB6F';
