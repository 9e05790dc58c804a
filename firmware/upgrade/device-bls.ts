/**
 * Boot Loader Specification type #1 entries for the two firmware slots, with
 * systemd-boot's boot counting (https://uapi-group.org/specifications/specs/boot_loader_specification/
 * "Boot counting"; systemd "Automatic Boot Assessment").
 *
 * File names: `slot-a.conf` (committed, no counter), `slot-b+3-0.conf`
 * (trial: 3 tries left, 0 done), `slot-b+3.conf` (the spec allows omitting
 * the done count). systemd-boot renames `+L-D` to `+(L-1)-(D+1)` before it
 * boots the entry; an entry with `+0` sorts after every other entry, so a
 * glob default (`default slot-*`) falls back to the other slot. Blessing is
 * the rename to the name without the counter, as systemd-bless-boot does.
 *
 * Ordering: every entry carries `sort-key pqgate` and `version <generation>`;
 * systemd-boot orders entries with a sort key by version *descending*
 * (src/boot/efi/boot.c config_entry_compare), so the slot installed last
 * (highest generation) is the default as long as it has tries left, and the
 * old slot's entry never has to be edited to switch: the old entry stays
 * untouched until the new one is blessed (and even after).
 *
 * Pure functions only: parsing, naming, rendering, status mapping.
 */
import type { SlotName, SlotStatus } from './types.js';

export const ENTRY_SORT_KEY = 'pqgate';
/** Default number of boots a trial slot gets (the issue's `+3-0`). */
export const DEFAULT_TRIES = 3;
/** Counters above this are refused: a name like `slot-a+99999999999.conf` is corruption, not a plan. */
const MAX_COUNTER = 1000;

export interface EntryName {
  slot: SlotName;
  /** Undefined: no boot counting (committed entry). */
  triesLeft?: number;
  triesDone?: number;
}

const NAME_RE = /^slot-([ab])(?:\+(\d{1,4})(?:-(\d{1,4}))?)?\.conf$/;

/** Parse an entry file name; undefined for files that are not slot entries (other entries, temp files). */
export function parseEntryFileName(file: string): EntryName | undefined {
  const m = NAME_RE.exec(file);
  if (!m) return undefined;
  const slot = m[1] as SlotName;
  if (m[2] === undefined) return { slot };
  const triesLeft = Number(m[2]);
  // "+LEFT" alone means nothing tried yet (BLS: the done count is optional, default 0).
  const triesDone = m[3] === undefined ? 0 : Number(m[3]);
  if (triesLeft > MAX_COUNTER || triesDone > MAX_COUNTER) return undefined;
  return { slot, triesLeft, triesDone };
}

export function entryFileName(e: EntryName): string {
  if (e.triesLeft === undefined) return `slot-${e.slot}.conf`;
  if (!Number.isInteger(e.triesLeft) || e.triesLeft < 0 || e.triesLeft > MAX_COUNTER) throw new RangeError(`bad tries-left ${e.triesLeft}`);
  const done = e.triesDone ?? 0;
  if (!Number.isInteger(done) || done < 0 || done > MAX_COUNTER) throw new RangeError(`bad tries-done ${done}`);
  return `slot-${e.slot}+${e.triesLeft}-${done}.conf`;
}

/** The name systemd-boot gives the entry when it boots it once more (decrement left, increment done). */
export function afterBootAttempt(e: EntryName): EntryName {
  if (e.triesLeft === undefined || e.triesLeft === 0) return e;
  return { slot: e.slot, triesLeft: e.triesLeft - 1, triesDone: (e.triesDone ?? 0) + 1 };
}

export interface EntryContent {
  title: string;
  /** Install generation (monotonic per device): the newest installed slot sorts first. */
  generation: number;
  linux: string;
  initrd: string;
  options: string;
}

export function renderEntry(c: EntryContent): string {
  for (const [k, v] of Object.entries(c)) {
    if (typeof v === 'string' && /[\r\n]/.test(v)) throw new RangeError(`entry ${k} contains a line break`);
  }
  return [
    `title   ${c.title}`,
    `sort-key ${ENTRY_SORT_KEY}`,
    `version ${c.generation}`,
    `linux   ${c.linux}`,
    `initrd  ${c.initrd}`,
    `options ${c.options}`,
    '',
  ].join('\n');
}

/** Key/value lines of an entry (BLS: `key value`, `#` comments; the last occurrence wins except for initrd). */
export function parseEntry(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    out.set(m[1]!, m[2]!);
  }
  return out;
}

/** The entry's generation (`version` line); 0 when missing or not a number (factory entries of old images). */
export function entryGeneration(text: string): number {
  const v = parseEntry(text).get('version');
  return v !== undefined && /^\d{1,9}$/.test(v) ? Number(v) : 0;
}

/** Per-slot metadata kept next to the slot's kernel on the ESP (`/pqgate-X/slot.json`). */
export interface SlotMeta {
  version: string;
  securityVersion: number;
  board: string;
  generation: number;
  /** ISO time the slot was written; absent for the factory image. */
  installed?: string;
}

/** Strict parse of slot.json; undefined when unusable (a slot whose metadata is broken is reported as empty). */
export function parseSlotMeta(text: string): SlotMeta | undefined {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof j !== 'object' || j === null) return undefined;
  const o = j as Record<string, unknown>;
  if (typeof o.version !== 'string' || o.version.length > 64) return undefined;
  if (typeof o.board !== 'string' || o.board.length > 64) return undefined;
  if (!Number.isSafeInteger(o.securityVersion) || (o.securityVersion as number) < 0) return undefined;
  const generation = Number.isSafeInteger(o.generation) && (o.generation as number) >= 0 ? (o.generation as number) : 0;
  return {
    version: o.version,
    board: o.board,
    securityVersion: o.securityVersion as number,
    generation,
    ...(typeof o.installed === 'string' ? { installed: o.installed } : {}),
  };
}

/**
 * Status of one slot from its entry (if any) and metadata (if any):
 * no entry → empty (nothing boots it: never written, or being written);
 * entry without counter → good; counter with tries left → trial; `+0` → bad.
 */
export function slotStatus(slot: SlotName, running: SlotName | undefined, entry: EntryName | undefined, meta: SlotMeta | undefined): SlotStatus {
  const base: SlotStatus = { name: slot, active: slot === running, state: 'empty' };
  if (meta) Object.assign(base, { version: meta.version, securityVersion: meta.securityVersion, board: meta.board });
  if (!entry) return base;
  if (entry.triesLeft === undefined) return { ...base, state: 'good' };
  return { ...base, state: entry.triesLeft > 0 ? 'trial' : 'bad', triesLeft: entry.triesLeft, triesDone: entry.triesDone ?? 0 };
}

/**
 * Choose the one entry for a slot among the files found (normally exactly
 * one). Two can exist only after an interrupted operation (a crash between
 * writing a new name and removing an old one): a committed entry wins over a
 * counted one, then the one with fewer tries left (the conservative reading).
 */
export function pickEntry(names: readonly EntryName[]): EntryName | undefined {
  if (names.length === 0) return undefined;
  const good = names.find((n) => n.triesLeft === undefined);
  if (good) return good;
  return [...names].sort((x, y) => (x.triesLeft ?? 0) - (y.triesLeft ?? 0))[0];
}

export function otherSlot(s: SlotName): SlotName {
  return s === 'a' ? 'b' : 'a';
}
