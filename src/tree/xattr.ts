// Host extended attributes, read through the small native addon (Node has no
// xattr API). Names come back as the kernel lists them; callers sort them.

import { addon as native } from '../native/addon.ts';
const addon = native as unknown as {
  readXattrs(path: string | Buffer): Array<[string, Buffer]>;
};

export function readXattrs(path: string | Buffer): Array<[string, Buffer]> {
  return addon.readXattrs(path);
}
