// The image's daemon entry point (started by `service daemon` from inittab):
//
//   node daemon-launch.mjs --config FILE     file mode (/data/pqgate.json provisioned)
//   node daemon-launch.mjs --db FILE         store mode: the configuration database
//
// `pqgate daemon` plus the kernel data-plane choice and the upgrade database
// preparation: firmware/appliance/image-daemon.ts, run from its bundle
// lib/daemon.cjs with its V8 code cache (lib/run.cjs, docs/image.md "Node start-up").
import { createRequire } from 'node:module';

await createRequire(import.meta.url)('./lib/run.cjs').main('daemon');
