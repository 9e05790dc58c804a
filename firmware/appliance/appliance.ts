/**
 * The appliance: the daemon (firmware/daemon.ts) running on the
 * configuration store (firmware/store/), serving the whole control API
 * (firmware/control/api.ts) to the CLI and the web admin.
 *
 *   ConfigStore ──onChange──▶ reconcile: daemon.applyConfig(store.daemonConfig())
 *        │                     (one at a time, in order; the engine keeps the
 *        │                      SAs of unchanged tunnels)
 *        └─ pendingDeadline() ─▶ timer ─▶ store.checkPending() ─▶ rollback ─▶ reconcile
 *   Daemon ──observer──▶ event log (store), telemetry (metrics), key capture
 *   ControlServer ×2: admin socket (owner only, every method)
 *                     web socket (group pqgate-web: every method but keys.*)
 *
 * Two configuration sources:
 *   store (`--db PATH`)      revisions, commit-confirmed, users, certificates,
 *                            the audit and event logs;
 *   file (`--config FILE`,   stateless: the file is the configuration and
 *   `--default-config`)      `reload` re-reads it; the config.*, certs.*,
 *                            users.* and logs.audit methods answer
 *                            ERR_NO_STORE, events are kept in memory.
 */
import { rmSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { Daemon, type DaemonOptions } from '../daemon.js';
import type { DaemonConfig } from '../config/types.js';
import { defaultConfig, loadConfigFile } from '../config/schema.js';
import { ConfigStore, type StoreChangeEvent } from '../store/store.js';
import { ControlServer, type MethodHandler } from '../control/server.js';
import { ControlError } from '../control/protocol.js';
import { nullLogger, type Logger } from '../log.js';
import { PqError } from '../util/errors.js';
import { MemoryEventLog, StoreEventLog, type EventLog } from './events.js';
import { Telemetry } from './telemetry.js';
import { KeyCapture } from './keys.js';
import { imageSlot, rebootMachine } from './system.js';
import { opsMethods } from './methods-ops.js';
import { configMethods } from './methods-config.js';
import { guardSecrets } from './guard.js';
import { upgradeMethods } from './methods-upgrade.js';
import { UpgradeService } from '../upgrade/service.js';
import { selectBackend } from '../upgrade/backend.js';
import { watchLocalAddresses, type AddressWatch } from '../net/address-watch.js';

/** Methods only the admin socket serves (session keys). */
export const ADMIN_ONLY_METHODS: readonly string[] = ['keys.export', 'keys.capture'];

export const NO_STORE = 'ERR_NO_STORE';

export interface ApplianceOptions extends Omit<DaemonOptions, 'config' | 'configPath' | 'noControl' | 'observer'> {
  /** Store mode: the configuration database. */
  db?: string;
  /** Store mode: document of revision 1 of a new database (first start, factory reset). Default: the embedded default. */
  initialDocument?: unknown;
  /** File mode: the configuration, and the file `reload` re-reads (undefined = the embedded default). */
  config?: DaemonConfig;
  configPath?: string;
  /** Control socket path; default: the configuration's control_socket. */
  controlSocket?: string;
  /** The web admin's socket; default in store mode: a sibling directory of the control socket's (`<dir>-web/web.sock`); null = none. */
  webSocket?: string | null;
  /** gid that may use the web socket (0660); undefined = owner only. */
  webGroup?: number;
  /** Force the data plane kind (the store does not hold `data_plane`). */
  dataPlaneKind?: 'userspace' | 'recording';
  /** Key capture on from the start (keys.export). */
  keyCapture?: boolean;
  /** Running as the appliance image (system.reboot allowed). Default: detected from /proc/cmdline. */
  appliance?: boolean;
  /** How to reboot (default /sbin/reboot). */
  reboot?: () => Promise<void> | void;
  /** Wall clock for the store and the confirm timer (tests). Default Date.now. */
  wallClock?: () => number;
  /** Firmware upgrade service (tests inject one with a fake backend). Default: the image's device backend, none off the image. */
  upgrade?: UpgradeService;
  /**
   * Local address watch (firmware/net/address-watch.ts): poll interval in ms,
   * or false for none. A change runs the same reconcile as a configuration
   * change: new addresses get their IKE sockets, tunnels re-derive their
   * source addresses. Default 2000, so the daemon can start before the WAN
   * port's DHCP lease (the image's rcS does not wait for it).
   */
  addressWatchMs?: number | false;
}

/** `<dir>-web/web.sock` beside the control socket's directory. */
export function defaultWebSocket(controlSocket: string): string {
  const dir = dirname(controlSocket);
  return join(dirname(dir), `${basename(dir)}-web`, 'web.sock');
}

export class Appliance {
  readonly log: Logger;
  daemon!: Daemon;
  /** The store (store mode); replaced by a factory reset. */
  private storeRef: ConfigStore | undefined;
  events!: EventLog;
  readonly telemetry: Telemetry;
  readonly keys: KeyCapture;
  readonly opts: ApplianceOptions;
  readonly wallNow: () => number;
  readonly startedAt: number;
  /** users.verify successes since start (api.ts users.list lastLoginAt; not persisted). */
  readonly lastLogins = new Map<string, number>();
  readonly slot: string | undefined;
  readonly isAppliance: boolean;
  /** Firmware upgrades (firmware/upgrade/service.ts). */
  upgrade!: UpgradeService;
  private admin: ControlServer | undefined;
  private web: ControlServer | undefined;
  private chain: Promise<void> = Promise.resolve();
  private pendingTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopping: Promise<void> | undefined;
  private addressWatch: AddressWatch | undefined;
  /** Tunnels whose Child SAs are rekeyed once their IKE SA rekey completes (rekeyAll). */
  private readonly childRekeyAfterIke = new Set<string>();

  private constructor(opts: ApplianceOptions) {
    this.opts = opts;
    this.log = opts.logger ?? nullLogger;
    this.wallNow = opts.wallClock ?? Date.now;
    this.startedAt = this.wallNow();
    this.telemetry = new Telemetry(this.wallNow);
    this.keys = new KeyCapture(opts.keyCapture ?? false, this.wallNow);
    this.slot = imageSlot();
    this.isAppliance = opts.appliance ?? this.slot !== undefined;
  }

  static async start(opts: ApplianceOptions): Promise<Appliance> {
    if ((opts.db === undefined) === (opts.config === undefined)) throw new PqError('ERR_ARGUMENT', 'Appliance.start needs exactly one of db and config');
    const a = new Appliance(opts);
    try {
      await a.init();
    } catch (e) {
      await a.teardown();
      throw e;
    }
    return a;
  }

  get store(): ConfigStore | undefined {
    return this.storeRef;
  }

  /** The store, or ERR_NO_STORE in file mode. */
  requireStore(): ConfigStore {
    if (!this.storeRef)
      throw new ControlError(NO_STORE, 'the daemon runs from a configuration file (stateless): start it with `pqgate daemon --db PATH` for revisions, users, certificates and the web admin');
    return this.storeRef;
  }

  get controlSocket(): string {
    return this.daemon.config.controlSocket;
  }

  get webSocketPath(): string | undefined {
    return this.web?.path;
  }

  private fileConfig(cfg: DaemonConfig): DaemonConfig {
    const out = { ...cfg };
    if (this.opts.controlSocket) out.controlSocket = this.opts.controlSocket;
    if (this.opts.dataPlaneKind) out.dataPlane = this.opts.dataPlaneKind;
    return out;
  }

  private openStore(): ConfigStore {
    const s = ConfigStore.open(this.opts.db!, { now: this.wallNow, ...(this.opts.initialDocument !== undefined ? { initialDocument: this.opts.initialDocument } : {}) });
    this.unsubscribe = s.onChange((e) => this.onStoreChange(e));
    return s;
  }

  private async init(): Promise<void> {
    let config: DaemonConfig;
    if (this.opts.db !== undefined) {
      this.storeRef = this.openStore();
      this.events = new StoreEventLog(this.storeRef, this.wallNow, (e) => this.log.error('cannot write the event log', { error: e }));
      config = this.fileConfig(this.storeRef.daemonConfig({ env: this.opts.env ?? process.env }));
    } else {
      this.events = new MemoryEventLog(1000, this.wallNow);
      config = this.fileConfig(this.opts.config!);
    }
    const { db: _db, initialDocument: _i, config: _c, configPath, controlSocket: _s, webSocket: _w, webGroup: _g, dataPlaneKind: _k, keyCapture: _kc, appliance: _a, reboot: _r, wallClock: _wc, upgrade: _u, addressWatchMs: _aw, ...daemonOpts } = this.opts;
    const upgradeLog = (msg: string, meta?: Record<string, unknown>) => this.log.info(msg, meta);
    this.upgrade = this.opts.upgrade ?? new UpgradeService({ backend: this.isAppliance ? await selectBackend(this.slot, upgradeLog) : undefined, now: this.wallNow, log: upgradeLog });
    this.daemon = await Daemon.start({
      ...daemonOpts,
      config,
      ...(configPath !== undefined ? { configPath } : {}),
      noControl: true,
      observer: {
        action: (a) => {
          if (a.kind === 'event') {
            if (a.tunnel && this.childRekeyAfterIke.has(a.tunnel) && a.message.startsWith('IKE SA rekeyed')) {
              this.childRekeyAfterIke.delete(a.tunnel);
              const t = a.tunnel;
              // Not from inside the engine's action loop.
              setImmediate(() => !this.stopping && this.daemon.hasTunnel(t) && this.daemon.command({ kind: 'rekey-child', tunnel: t }));
            }
            this.telemetry.onEvent(a);
            this.keys.onEvent(a);
            if (a.level !== 'debug') this.events.append({ level: a.level, tunnel: a.tunnel, message: a.message });
          } else if (a.kind === 'keylog') this.keys.onKeylog(a);
          else if (a.kind === 'delete-child') {
            this.telemetry.onDeleteChild(a);
            this.keys.onDeleteChild(a);
          }
        },
        childRetired: (a, cin, cout) => this.telemetry.onChildRetired(a, cin, cout),
      },
    });
    this.events.append({ level: 'info', message: `daemon started (${this.storeRef ? `configuration revision ${this.storeRef.current().id}` : 'configuration file'}, ${config.tunnels.length} tunnel${config.tunnels.length === 1 ? '' : 's'})` });
    if (this.keys.enabled) this.log.warn('key capture is on: the current IKE and ESP keys are kept in memory for `pqgate keys export`');
    this.armPendingTimer();
    if (this.opts.addressWatchMs !== false) {
      this.addressWatch = watchLocalAddresses({
        intervalMs: this.opts.addressWatchMs ?? 2000,
        onChange: (now, before) => {
          const added = now.filter((a) => !before.includes(a));
          const removed = before.filter((a) => !now.includes(a));
          this.log.info('local addresses changed', { added, removed });
          void this.reconcile('local addresses changed').catch(() => undefined);
        },
        onError: (e) => this.log.warn('cannot list the local addresses', { error: e }),
      });
    }

    const methods = guardSecrets({ ...opsMethods(this), ...configMethods(this), ...upgradeMethods(this) }, () => this.daemon.config.tunnels, this.log);
    this.admin = new ControlServer({ path: config.controlSocket, logger: this.log, methods });
    await this.admin.listen();
    this.log.info('control socket ready', { path: config.controlSocket });
    // The web admin needs the store: in file mode there is a web socket only when asked for.
    const webPath = this.opts.webSocket === undefined ? (this.storeRef ? defaultWebSocket(config.controlSocket) : null) : this.opts.webSocket;
    if (webPath) {
      // The web socket's upgrade.install takes spooled *.pqb files only (methods-upgrade.ts webSpoolPath).
      const webMethods = { ...Object.fromEntries(Object.entries(methods).filter(([m]) => !ADMIN_ONLY_METHODS.includes(m))), ...guardSecrets(upgradeMethods(this, { web: true }), () => this.daemon.config.tunnels, this.log) };
      this.web = new ControlServer({ path: webPath, logger: this.log, methods: webMethods, ...(this.opts.webGroup !== undefined ? { group: this.opts.webGroup } : {}) });
      await this.web.listen();
      this.log.info('web admin socket ready', { path: webPath, group: this.opts.webGroup ?? 'owner only' });
    }
  }

  // ---- reconcile -----------------------------------------------------------------

  private onStoreChange(e: StoreChangeEvent): void {
    const what: Record<string, string> = {
      initial: 'initial configuration',
      apply: 'configuration changed',
      import: 'configuration imported',
      rollback: 'configuration rolled back',
      confirm: 'confirmed',
      'confirm-timeout': `revision ${e.previous} was not confirmed in time: rolled back`,
      cancel: `revision ${e.previous} cancelled: rolled back`,
    };
    const pending = e.pending ? `, pending confirmation until ${new Date(this.storeRef?.pendingDeadline() ?? 0).toISOString()}` : '';
    this.events.append({ level: e.kind === 'confirm-timeout' ? 'warn' : 'info', message: `revision ${e.revision}: ${what[e.kind] ?? e.kind}${pending}` });
    if (e.configChanged) void this.reconcile(`revision ${e.revision} (${e.kind})`);
    this.armPendingTimer();
  }

  /**
   * Bring the running tunnels in line with the store's current revision
   * (file mode: re-read the file). Serialised: each call runs after the
   * previous one finished, and always applies the newest revision.
   */
  reconcile(reason: string): Promise<{ tunnels: string[]; restartRequired: string[] }> {
    const run = async () => {
      if (this.stopping) return { tunnels: [], restartRequired: [] };
      const store = this.storeRef;
      if (!store) {
        // File mode: re-read the file (ConfigValidationError: nothing changes), with the command line's overrides.
        const env = this.opts.env ?? process.env;
        return this.daemon.applyConfig(this.fileConfig(this.opts.configPath ? loadConfigFile(this.opts.configPath, { env }) : defaultConfig({ env })));
      }
      let next: DaemonConfig;
      try {
        next = store.daemonConfig({ env: this.opts.env ?? process.env });
      } catch (e) {
        // Validated when committed; only a firmware with stricter rules can get here.
        this.events.append({ level: 'error', message: `revision ${store.current().id} cannot be applied: ${(e as Error).message.split('\n')[0]}` });
        throw e;
      }
      // Restart-only settings keep their running values (the command line may have set them).
      next.controlSocket = this.daemon.config.controlSocket;
      if (this.daemon.config.dataPlane !== undefined) next.dataPlane = this.daemon.config.dataPlane;
      const before = new Set(this.daemon.config.tunnels.map((t) => t.name));
      const r = await this.daemon.applyConfig(next);
      for (const n of before) if (!r.tunnels.includes(n)) this.telemetry.forget(n);
      this.log.info('reconciled', { reason, tunnels: r.tunnels });
      return r;
    };
    const p = this.chain.then(run);
    this.chain = p.then(
      () => undefined,
      (e: unknown) => this.log.error('reconcile failed', { reason, error: e }),
    );
    return p;
  }

  /** Resolves when every reconcile scheduled so far has run (config.* methods answer after it). */
  settled(): Promise<void> {
    return this.chain;
  }

  private armPendingTimer(): void {
    if (this.pendingTimer) clearTimeout(this.pendingTimer);
    this.pendingTimer = undefined;
    const deadline = this.stopping ? undefined : this.storeRef?.pendingDeadline();
    if (deadline === undefined) return;
    const delay = Math.min(Math.max(0, deadline - this.wallNow()), 0x7fffffff);
    this.pendingTimer = setTimeout(() => {
      this.pendingTimer = undefined;
      try {
        // Rolls back (and fires onStoreChange → reconcile) if the deadline passed; else re-arms.
        if (!this.storeRef?.checkPending()) this.armPendingTimer();
      } catch (e) {
        this.log.error('commit-confirmed check failed', { error: e });
        this.armPendingTimer();
      }
    }, delay + 1);
  }

  // ---- operations ------------------------------------------------------------------

  /**
   * Rekey every IKE SA, then its Child SAs (fresh keys for key capture). One
   * after the other: a CREATE_CHILD_SA queued on an IKE SA that is being
   * rekeyed is dropped with it, so the Child SA rekey waits for the engine's
   * "IKE SA rekeyed" event.
   */
  rekeyAll(): void {
    for (const t of new Set(this.daemon.status().filter((s) => s.state === 'ESTABLISHED').map((s) => s.tunnel))) {
      this.childRekeyAfterIke.add(t);
      this.daemon.command({ kind: 'rekey-ike', tunnel: t });
    }
  }

  /** Delete a tunnel's SAs and bring it up again. */
  async resetTunnel(tunnel: string): Promise<void> {
    this.daemon.command({ kind: 'down', tunnel });
    // `up` does nothing while the old initiator SA is still being deleted (engine.ts command 'up').
    const deadline = this.wallNow() + 5000;
    while (this.daemon.status().some((s) => s.tunnel === tunnel) && this.wallNow() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (this.daemon.hasTunnel(tunnel)) this.daemon.command({ kind: 'up', tunnel });
  }

  /** Wipe the store (configuration, PSKs, private keys, certificates, users, logs) and start over from the initial document. */
  async factoryReset(actor: string): Promise<void> {
    const old = this.requireStore();
    this.log.warn('factory reset', { actor });
    if (this.pendingTimer) clearTimeout(this.pendingTimer);
    this.pendingTimer = undefined;
    await this.settled();
    this.events.flush();
    this.unsubscribe?.();
    const path = old.path;
    old.close();
    for (const f of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) rmSync(f, { force: true });
    this.storeRef = this.openStore();
    (this.events as StoreEventLog).setStore(this.storeRef);
    this.keys.setEnabled(false);
    this.lastLogins.clear();
    this.events.append({ level: 'warn', message: `factory reset by ${actor}: configuration, keys, certificates, users and logs erased` });
    await this.reconcile('factory reset');
  }

  /** Reboot the machine (appliance image only; callers check isAppliance). */
  async reboot(actor: string): Promise<void> {
    this.events.append({ level: 'warn', message: `reboot requested by ${actor}` });
    this.events.flush();
    // The init system stops us with SIGTERM first (rcK): IKE SAs are deleted then.
    await (this.opts.reboot ?? rebootMachine)();
  }

  // ---- shutdown ----------------------------------------------------------------------

  stop(reason = 'shutdown'): Promise<void> {
    this.stopping ??= this.shutdown(reason);
    return this.stopping;
  }

  private async shutdown(reason: string): Promise<void> {
    this.events.append({ level: 'info', message: `daemon stopping (${reason})` });
    await this.teardown(reason);
  }

  private async teardown(reason = 'start-up failed'): Promise<void> {
    if (this.pendingTimer) clearTimeout(this.pendingTimer);
    this.addressWatch?.stop();
    await this.chain;
    await this.admin?.close().catch(() => undefined);
    await this.web?.close().catch(() => undefined);
    await this.daemon?.stop(reason);
    this.events?.close();
    this.unsubscribe?.();
    this.storeRef?.close();
  }
}

export type { MethodHandler };
