// Test-only driver for the device side of upgrades, fetched into the VM's
// /tmp by test/image/upgrade.test.ts (never part of the image: it writes
// slots without the bundle signature check, which h-bundle's upgrade service
// does before it calls the same SlotBackend).
//
//   node upgrade-driver.mjs status
//   node upgrade-driver.mjs install BUNDLE MANIFEST.json   writeInactive + markTrial
//   node upgrade-driver.mjs factory-reset                   scheduleFactoryReset
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

// The image ships its programs as bundles (image/lib/esbuild.mjs); the
// upgrade-boot bundle exports the slot backend the device itself uses.
// Loading it runs only module bodies, not the boot check (run.cjs calls main).
const { imageSlotBackend } = createRequire(import.meta.url)('/usr/lib/pqgate/lib/upgrade-boot.cjs');
const b = imageSlotBackend();
if (!b) {
  console.error('no slot backend (not booted from a slot, or ESP not mounted)');
  process.exit(2);
}
const [cmd, ...args] = process.argv.slice(2);
const out = (v) => process.stdout.write(JSON.stringify(v) + '\n');
if (cmd === 'status') {
  out({ slots: await b.slots(), floor: await b.securityFloor(), outcome: (await b.lastOutcome()) ?? null, pending: b.pending() ?? null, gate: b.gateReport() ?? null, running: await b.runningVersion() });
} else if (cmd === 'install') {
  const m = JSON.parse(readFileSync(args[1], 'utf8'));
  const images = m.images.map((i) => ({ ...i, sha256: Uint8Array.from(Buffer.from(i.sha256, 'hex')) }));
  let last = -1;
  const slot = await b.writeInactive(args[0], images, (d, t) => {
    const pct = Math.floor((100 * d) / t / 10) * 10;
    if (pct !== last) console.error(`write ${pct}%`), (last = pct);
  });
  console.error(`written to slot ${slot}`);
  await b.markTrial(slot, { ...m.header, images });
  out({ slot });
} else if (cmd === 'factory-reset') {
  await b.scheduleFactoryReset();
  out({ scheduled: true });
} else {
  console.error('usage: status | install BUNDLE MANIFEST | factory-reset');
  process.exit(2);
}
