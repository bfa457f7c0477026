// Nix without Nix: NAR hashing and dumping, closures, closureInfo files and
// registrations, byte-compatible with what Nix itself computes.
import { narDigest, narNodeOfPath, writeNar, type NarChunkSink, type NarDigest } from '../nix/nar.ts';

export { closure, type Closure, type ClosureOptions } from '../nix/closure.ts';
export {
  closureInfoFiles,
  formatRegistration,
  formatStorePaths,
  formatTotalNarSize,
  parseRegistration,
  writeClosureInfo,
  type ClosureInfoFiles,
  type GivenPathInfo,
  type RegistrationFormat,
  type StorePathInfo,
} from '../nix/registration.ts';
export { readReferenceSource, parsePathInfoJson, ReferenceScanner, storeContents } from '../nix/references.ts';
export { narDigest, narNodeOfEntry, narNodeOfPath, writeNar, type NarChunkSink, type NarDigest, type NarNode } from '../nix/nar.ts';
export { formatSha256, parseSha256, type HashFormat } from '../nix/hash.ts';
export { toNix32, fromNix32 } from '../nix/base32.ts';
export { isStorePathName, physicalPath, resolveRoot, storeDirs, DEFAULT_NIX_STORE_DIR, type StoreDirs } from '../nix/store-path.ts';

/** narHash (sha256, 32 bytes) and narSize of whatever is at `path`, in one streaming pass. */
export function narHashPath(path: string): NarDigest {
  return narDigest(narNodeOfPath(path));
}

/** Streams the NAR of `path` to `sink` (chunks valid only during the call); returns its size. */
export function dumpNar(path: string, sink: NarChunkSink): number {
  return writeNar(narNodeOfPath(path), sink);
}
