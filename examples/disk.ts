// The same disk as disk.yaml, as a typed config: `diskwright build examples/disk.ts`.
import { defineImage } from 'diskwright';

export default defineImage({
  partitionTableType: 'efi',
  bootSize: '64M',
  additionalSpace: '64M',
  label: 'nixos',
  root: 'rootfs',
  contents: [{ source: 'www', target: '/srv/www', mode: 'D0755,F0644', user: 'www', group: 'www' }],
  espContents: [{ source: 'esp/', target: '/' }],
});
