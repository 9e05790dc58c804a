/**
 * The upgrade service behind the control API (`upgrade.status`,
 * `upgrade.install`, `upgrade.keylist`): verify a bundle completely, then
 * hand it to the SlotBackend (device side: write the inactive slot, read
 * back, make it the trial slot with systemd-boot boot counting), record
 * the outcome, optionally reboot. One install at a time (BUSY). A refused
 * bundle is recorded as outcome 'refused' with its reason and nothing is
 * written. Off the appliance image there is no backend and every install
 * answers NO_BACKEND ("firmware upgrades need the appliance image").
 */
import { readFileSync } from 'node:fs';
import type { SlotBackend, SlotName, SlotStatus, UpgradeOutcome } from './types.js';
import { UpgradeError } from './types.js';
import { verifyBundleFile, DEFAULT_MAX_BUNDLE, type VerifiedBundleEx } from './bundle-verify.js';
import { loadTrustStore, newestKeyList, storedKeyList, storeKeyList, DEFAULT_STATE_DIR, DEFAULT_TRUST_DIR, type LoadedTrust } from './trust.js';
import { openKeyList } from './keylist.js';

export const NO_BACKEND_MESSAGE = 'firmware upgrades need the appliance image: this daemon runs on a general-purpose host (no A/B firmware slots)';

export interface UpgradeProgress {
  /** Install number since the daemon started (0 = none yet): tells a poller which install it sees. */
  id: number;
  phase: 'idle' | 'verifying' | 'writing' | 'finishing' | 'done' | 'failed';
  done: number;
  total: number;
  toVersion?: string;
  error?: { code: string; message: string };
}

export interface UpgradeStatus {
  available: boolean;
  /** Why upgrades are unavailable (no backend, unusable trust store). */
  reason?: string;
  /** Development image: accepts unsigned firmware. */
  dev: boolean;
  board?: string;
  runningVersion?: string;
  securityFloor?: number;
  slots: SlotStatus[];
  lastOutcome?: UpgradeOutcome;
  progress: UpgradeProgress;
  /** Newest key list version the device knows (signed images). */
  keyListVersion?: number;
}

export interface UpgradeServiceOptions {
  backend: SlotBackend | undefined;
  trustDir?: string;
  stateDir?: string;
  maxBytes?: number;
  now?: () => number;
  log?: (msg: string, meta?: Record<string, unknown>) => void;
}

export interface InstallResult {
  slot: SlotName;
  version: string;
  securityVersion: number;
  signedBy: string | null;
  rebooting: boolean;
}

export class UpgradeService {
  private busy = false;
  private progress: UpgradeProgress = { id: 0, phase: 'idle', done: 0, total: 0 };
  private installs = 0;
  private readonly now: () => number;

  constructor(private readonly o: UpgradeServiceOptions) {
    this.now = o.now ?? Date.now;
  }

  get isBusy(): boolean {
    return this.busy;
  }

  get backend(): SlotBackend | undefined {
    return this.o.backend;
  }

  private trust(): LoadedTrust {
    return loadTrustStore(this.o.trustDir ?? DEFAULT_TRUST_DIR);
  }

  private get stateDir(): string {
    return this.o.stateDir ?? DEFAULT_STATE_DIR;
  }

  /** Whether the trust store says development mode (false if it cannot be read). */
  devMode(): boolean {
    try {
      return this.trust().dev;
    } catch {
      return false;
    }
  }

  async status(): Promise<UpgradeStatus> {
    const b = this.o.backend;
    let trust: LoadedTrust | undefined;
    let trustProblem: string | undefined;
    try {
      trust = this.trust();
    } catch (e) {
      trustProblem = (e as Error).message;
    }
    const base = { dev: trust?.dev ?? false, progress: { ...this.progress } };
    if (!b) return { ...base, available: false, reason: NO_BACKEND_MESSAGE, slots: [] };
    const [slots, runningVersion, securityFloor, lastOutcome] = await Promise.all([b.slots(), b.runningVersion(), b.securityFloor(), b.lastOutcome()]);
    let keyListVersion: number | undefined;
    if (trust && trust.roots.size) {
      keyListVersion = newestKeyList([trust.shippedList, storedKeyList(this.stateDir, trust.roots)])?.list.version;
    }
    return {
      ...base,
      available: trust !== undefined,
      ...(trustProblem ? { reason: trustProblem } : {}),
      board: b.board,
      runningVersion,
      securityFloor,
      slots,
      ...(lastOutcome ? { lastOutcome } : {}),
      ...(keyListVersion !== undefined ? { keyListVersion } : {}),
    };
  }

  /** Verify, write the inactive slot, make it the trial slot. Refusals are recorded and rethrown (UpgradeError). */
  /** Id the next install() will carry in its progress. */
  get nextId(): number {
    return this.installs + 1;
  }

  async install(path: string, opts: { onProgress?: (p: UpgradeProgress) => void; reboot?: boolean } = {}): Promise<InstallResult> {
    const b = this.o.backend;
    if (!b) throw new UpgradeError('NO_BACKEND', NO_BACKEND_MESSAGE);
    if (this.busy) throw new UpgradeError('BUSY', 'another firmware upgrade is in progress');
    this.busy = true;
    const id = ++this.installs;
    const set = (p: Omit<UpgradeProgress, 'id'>) => {
      this.progress = { id, ...p };
      opts.onProgress?.(this.progress);
    };
    set({ phase: 'verifying', done: 0, total: 0 });
    let fromVersion = 'unknown';
    let toVersion = 'unknown';
    let slot: SlotName = 'b';
    let stage: 'verify' | 'write' = 'verify';
    try {
      fromVersion = await b.runningVersion();
      slot = (await b.slots()).find((s) => !s.active)?.name ?? 'b';
      const trust = this.trust();
      const v: VerifiedBundleEx = await verifyBundleFile(path, {
        trust,
        board: b.board,
        securityFloor: await b.securityFloor(),
        stateDir: this.stateDir,
        maxBytes: this.o.maxBytes ?? DEFAULT_MAX_BUNDLE,
        onProgress: (done, total) => set({ phase: 'verifying', done, total }),
      });
      toVersion = v.header.version;
      if (v.newerKeyList) storeKeyList(this.stateDir, v.newerKeyList, trust.roots, trust.shippedList);
      stage = 'write';
      const total = v.header.images.reduce((a, i) => a + i.size, 0);
      set({ phase: 'writing', done: 0, total, toVersion });
      const written = await b.writeInactive(path, v.header.images, (done, t) => set({ phase: 'writing', done, total: t, toVersion }));
      slot = written;
      set({ phase: 'finishing', done: total, total, toVersion });
      await b.markTrial(written, v.header);
      await b.recordOutcome({ at: new Date(this.now()).toISOString(), fromVersion, toVersion, slot: written, result: 'installed' });
      this.o.log?.('firmware installed', { slot: written, version: toVersion, signedBy: v.signedBy ?? 'unsigned (development)' });
      set({ phase: 'done', done: total, total, toVersion });
      const rebooting = opts.reboot === true;
      if (rebooting) setTimeout(() => void b.reboot().catch((e: unknown) => this.o.log?.('reboot failed', { error: String(e) })), 300);
      return { slot: written, version: toVersion, securityVersion: v.header.securityVersion, signedBy: v.signedBy ?? null, rebooting };
    } catch (e) {
      const err = e instanceof UpgradeError ? e : new UpgradeError(stage === 'verify' ? 'BAD_FILE' : 'WRITE_VERIFY', (e as Error).message ?? String(e), { cause: e });
      if (toVersion === 'unknown' && err.header) toVersion = err.header.version;
      set({ phase: 'failed', done: 0, total: 0, ...(toVersion !== 'unknown' ? { toVersion } : {}), error: { code: err.code, message: err.message } });
      await b
        .recordOutcome({ at: new Date(this.now()).toISOString(), fromVersion, toVersion, slot, result: stage === 'verify' ? 'refused' : 'failed', reason: err.message, code: err.code })
        .catch(() => undefined);
      this.o.log?.(stage === 'verify' ? 'firmware refused' : 'firmware install failed', { code: err.code, reason: err.message });
      throw err;
    } finally {
      this.busy = false;
    }
  }

  /** Install a newer signed key list (key rotation without a firmware upgrade). KEYLIST_REPLAY for an older one. */
  installKeyList(path: string): { version: number; changed: boolean } {
    const trust = this.trust();
    if (!trust.roots.size) throw new UpgradeError('DEV_MODE_REQUIRED', 'this development image has no root keys: key lists need a signed image');
    const l = openKeyList(new Uint8Array(readFileSync(path)), trust.roots, path);
    return { version: l.list.version, changed: storeKeyList(this.stateDir, l, trust.roots, trust.shippedList) };
  }
}
