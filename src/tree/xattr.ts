// Host extended attributes, read through the small native addon (Node has no
// xattr API). Names come back as the kernel lists them; callers sort them.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const addon = require('../../build/Release/xattr.node') as {
  readXattrs(path: string | Buffer): Array<[string, Buffer]>;
};

export function readXattrs(path: string | Buffer): Array<[string, Buffer]> {
  return addon.readXattrs(path);
}
