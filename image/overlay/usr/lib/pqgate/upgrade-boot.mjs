// Once per boot (`service upgrade-boot` from inittab, only when the shell
// found something to do): the device side of firmware upgrades — health gate
// and bless on a trial slot, rollback record after a fallback, clean-up of
// interrupted writes (firmware/upgrade/image-boot.ts, docs/upgrade-device.md),
// run from its bundle lib/upgrade-boot.cjs (lib/run.cjs).
import { createRequire } from 'node:module';

await createRequire(import.meta.url)('./lib/run.cjs').main('upgrade-boot');
