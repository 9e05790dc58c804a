/**
 * A model of systemd-boot's entry choice and boot counting, for the unit
 * tests (src/boot/efi/boot.c: config_entry_compare sorts entries with no
 * tries left last, then by sort-key, then version descending, then id
 * descending; config_entry_find takes the first match of the default glob;
 * before booting a counted entry it renames +L-D to +(L-1)-(D+1)). The QEMU
 * scenarios check the real boot loader; this lets the unit tests walk whole
 * boot sequences.
 */
import { readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterBootAttempt, entryFileName, parseEntry, parseEntryFileName } from '../../firmware/upgrade/device-bls.js';
import type { SlotName } from '../../firmware/upgrade/types.js';

function verCmp(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** Glob match of the default pattern (only `*` is used by pqgate). */
function glob(pattern: string, s: string): boolean {
  const re = new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
  return re.test(s);
}

/** Boot once: choose the entry as systemd-boot does, apply the counter, return the slot booted. */
export function simulateBoot(espDir: string): SlotName | undefined {
  const dir = join(espDir, 'loader/entries');
  const loader = parseEntry(readFileSync(join(espDir, 'loader/loader.conf'), 'utf8'));
  const pattern = loader.get('default') ?? '*';
  const entries = readdirSync(dir)
    .filter((f) => f.endsWith('.conf'))
    .map((f) => {
      const c = parseEntry(readFileSync(join(dir, f), 'utf8'));
      const n = parseEntryFileName(f);
      // The entry id drops the counter (as current systemd-boot does); the glob covers both forms anyway.
      return { file: f, id: f.replace(/\+\d+(-\d+)?\.conf$/, '.conf'), n, sortKey: c.get('sort-key'), version: c.get('version') ?? '' , slot: /fw\.slot=([ab])/.exec(c.get('options') ?? '')?.[1] as SlotName | undefined };
    });
  entries.sort((a, b) => {
    const az = a.n?.triesLeft === 0 ? 1 : 0;
    const bz = b.n?.triesLeft === 0 ? 1 : 0;
    if (az !== bz) return az - bz;
    if (!a.sortKey !== !b.sortKey) return (a.sortKey ? 0 : 1) - (b.sortKey ? 0 : 1);
    if (a.sortKey && b.sortKey) {
      const r = a.sortKey.localeCompare(b.sortKey);
      if (r) return r;
      const v = -verCmp(a.version, b.version);
      if (v) return v;
    }
    return -verCmp(a.id, b.id);
  });
  const chosen = entries.find((e) => glob(pattern, e.id)) ?? entries[0];
  if (!chosen) return undefined;
  if (chosen.n && chosen.n.triesLeft !== undefined && chosen.n.triesLeft > 0) {
    renameSync(join(dir, chosen.file), join(dir, entryFileName(afterBootAttempt(chosen.n))));
  }
  return chosen.slot;
}
