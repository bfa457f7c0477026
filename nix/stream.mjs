// Builder of streamLayeredImage: $out is an executable that writes the image
// archive to standard output when it runs, from the config and closure the
// conf derivation holds; its arguments go to `diskwright container`.
import * as fs from 'node:fs';

const attrs = JSON.parse(fs.readFileSync(process.env.NIX_ATTRS_JSON_FILE ?? '.attrs.json', 'utf8'));
const quote = (s) => `'${s.replaceAll("'", `'\\''`)}'`;
fs.writeFileSync(
  attrs.outputs.out,
  `#!${attrs.shell}\nexec ${quote(attrs.diskwright)} container ${quote(`${attrs.conf}/config.json`)} --stream "$@"\n`,
  { mode: 0o555 },
);
