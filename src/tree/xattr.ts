// Host extended attributes, read through the small native addon (Node has no
// xattr API). Names come back as the kernel lists them; callers sort them.
// Without the addon none can be read: the first scan says so once (a Node
// warning) rather than dropping them silently.

import { addon as native, warnAddonMissing } from '../native/addon.ts';
const addon = native as unknown as {
  readXattrs(path: string | Buffer): Array<[string, Buffer]>;
} | undefined;

export function readXattrs(path: string | Buffer): Array<[string, Buffer]> {
  if (addon) return addon.readXattrs(path);
  warnAddonMissing('extended attributes of source trees are not read, so the image has none');
  return [];
}
