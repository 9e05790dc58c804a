/**
 * A stand-in daemon for the web admin tests that speaks the real control
 * protocol on a real unix socket (firmware/control/server.ts ControlServer)
 * and implements the ControlApi contract (firmware/control/api.ts) on the
 * real configuration store (firmware/store/store.ts) in a temporary
 * directory: validation messages, revisions, diffs, commit-confirmed
 * deadlines, users (scrypt), backups and the event/audit logs are the
 * store's own. Only the IKE/ESP side is simulated: SAs appear when a tunnel
 * should be up, traffic counters grow with time, and tests can make a peer
 * go silent or die (sim hooks below) to see what the dashboard says.
 */
import type { TunnelHealth } from '../../firmware/health/types.js';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir, hostname, cpus, loadavg, totalmem, freemem, uptime, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ControlServer } from '../../firmware/control/server.js';
import { ControlError, ControlErrorCode } from '../../firmware/control/protocol.js';
import type { ControlApi, ControlMethod, RevisionInfo, SystemInfo } from '../../firmware/control/api.js';
import { ConfigStore, type RevisionInfo as StoreRevision } from '../../firmware/store/store.js';
import { validateDocument } from '../../firmware/store/validate.js';
import { getPreset, isPreset, presetNames } from '../../firmware/presets/presets.js';
import { formatMetrics } from '../../firmware/store/metrics.js';
import type { ChildSaStatus, IkeSaStatus } from '../../firmware/ikev2/engine-types.js';
import type { TunnelDoc } from '../../firmware/store/document.js';
import { UpgradeService } from '../../firmware/upgrade/service.js';
import { webSpoolPath } from '../../firmware/appliance/methods-upgrade.js';

type Obj = Record<string, unknown>;
type Handlers = { [M in ControlMethod]: (p: ControlApi[M][0]) => ControlApi[M][1] | Promise<ControlApi[M][1]> };

const ENCR: Record<string, string> = { aes128gcm16: 'AES_GCM_16_128', aes256gcm16: 'AES_GCM_16_256', aes128: 'AES_CBC_128', aes256: 'AES_CBC_256', chacha20poly1305: 'CHACHA20_POLY1305' };
const PRF: Record<string, string> = { prfsha256: 'PRF_HMAC_SHA2_256', prfsha384: 'PRF_HMAC_SHA2_384', prfsha512: 'PRF_HMAC_SHA2_512' };
const KE: Record<string, string> = { x25519: 'CURVE_25519', ecp256: 'ECP_256', ecp384: 'ECP_384', ecp521: 'ECP_521', modp2048: 'MODP_2048', mlkem512: 'ML_KEM_512', mlkem768: 'ML_KEM_768', mlkem1024: 'ML_KEM_1024' };
const DEFAULT_PROPOSAL = 'aes256gcm16-prfsha384-x25519-ecp384-ke1_mlkem768-ke1_mlkem1024';

/** What a peer would pick from our first proposal: the first of each kind. */
export function negotiate(proposal: string): { encr: string; prf: string; kes: string[]; pq: string | null } {
  const words = proposal.split('-');
  const encr = ENCR[words.find((w) => ENCR[w]) ?? 'aes256gcm16']!;
  const prf = PRF[words.find((w) => PRF[w]) ?? 'prfsha384']!;
  const first = words.find((w) => KE[w]);
  const kes = first ? [KE[first]!] : [];
  const ke1 = words.find((w) => w.startsWith('ke1_'));
  if (ke1 && KE[ke1.slice(4)]) kes.push(KE[ke1.slice(4)]!);
  return { encr, prf, kes, pq: kes.find((k) => k.startsWith('ML_KEM')) ?? null };
}

interface SimChild {
  reqid: number;
  spiIn: string;
  spiOut: string;
  installedAt: number;
  rekeys: number;
  bytesIn: number;
  bytesOut: number;
  packetsIn: number;
  packetsOut: number;
  lastInAt: number;
  lastOutAt: number;
  /** The peer stopped sending (or its Child SA is gone): inbound counters freeze. */
  inboundDead: boolean;
  lastTick: number;
}

interface SimSa {
  id: number;
  establishedAt: number;
  rekeys: number;
  children: SimChild[];
}

const spi = () => randomBytes(4).toString('hex');
/** The daemon's monotonic clock, as if it had been running for a while (0 means "never" in the status). */
const clock = () => performance.now() + 10_000_000;

export interface FakeDaemonOptions {
  firmware?: SystemInfo['firmware'];
  /** Firmware upgrades: the real service (test/upgrade/helpers.ts FakeBackend behind it); absent = off the image. */
  upgrade?: UpgradeService;
  /** Inbound/outbound bytes per second of a healthy simulated Child SA. */
  rate?: { in: number; out: number };
  /** Listen here instead of in the daemon's own temporary directory (start-up tests: the web admin was there first). */
  socketPath?: string;
}

export class FakeDaemon {
  readonly dir: string;
  readonly socketPath: string;
  store!: ConfigStore;
  private server!: ControlServer;
  /** Every call the web admin made: method and parameter names (values of secrets never recorded). */
  readonly calls: { method: string; keys: string[] }[] = [];
  readonly sas = new Map<string, SimSa>();
  readonly idleErrors = new Map<string, string>();
  /** Tunnels taken down by `down`: not restarted until `up`. */
  private readonly held = new Set<string>();
  private nextSaId = 1;
  private nextReqid = 1;
  private pendingTimer: NodeJS.Timeout | undefined;
  reboots = 0;
  factoryResets = 0;
  private readonly startedAt = Date.now();
  private readonly opts: FakeDaemonOptions;

  /** Paths given to upgrade.install. */
  readonly installs: string[] = [];
  private offImage: UpgradeService | undefined;

  private constructor(opts: FakeDaemonOptions) {
    this.opts = opts;
    this.dir = mkdtempSync(join(tmpdir(), 'pqg-webui-daemon-'));
    this.socketPath = opts.socketPath ?? join(this.dir, 'run', 'control.sock');
  }

  static async start(opts: FakeDaemonOptions = {}): Promise<FakeDaemon> {
    const d = new FakeDaemon(opts);
    d.openStore();
    d.server = new ControlServer({ path: d.socketPath, methods: d.handlers() as unknown as Record<string, (p: unknown) => unknown> });
    await d.server.listen();
    return d;
  }

  private openStore(): void {
    this.store = ConfigStore.open(join(this.dir, 'db', 'config.db'));
    this.store.onChange(() => {
      this.reconcile();
      this.armPendingTimer();
    });
    this.reconcile();
    this.armPendingTimer();
  }

  async close(): Promise<void> {
    clearTimeout(this.pendingTimer);
    await this.server.close();
    this.store.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  // ---- simulation hooks for tests --------------------------------------------------------

  /** The peer keeps the IKE SA but nothing arrives on the tunnel's Child SAs (last packet 90 s ago). */
  /** Health per tunnel as the daemon reports it (status.tunnels `health`). */
  readonly health = new Map<string, TunnelHealth>();

  /** The fake daemon's clock (status `now`), for health timestamps. */
  clockNow(): number {
    return clock();
  }

  setHealth(tunnel: string, h: TunnelHealth): void {
    this.health.set(tunnel, h);
  }

  silenceInbound(tunnel: string): void {
    const sa = this.sas.get(tunnel);
    if (!sa) throw new Error(`no SA for ${tunnel}`);
    for (const c of sa.children) {
      this.tick(c);
      c.inboundDead = true;
      c.lastInAt = clock() - 90_000;
      c.installedAt = Math.min(c.installedAt, clock() - 120_000);
    }
  }

  /** The peer died and DPD gave up: the IKE SA is gone with this error. */
  peerDead(tunnel: string, error = 'peer not responding to liveness checks'): void {
    if (this.sas.delete(tunnel)) this.store.logEvent({ level: 'error', tunnel, message: `IKE SA closed: ${error}` });
    this.idleErrors.set(tunnel, error);
  }

  // ---- simulation -------------------------------------------------------------------------

  private tunnels(): TunnelDoc[] {
    return this.store.getDocument().tunnels;
  }

  private wantsUp(t: TunnelDoc): boolean {
    if (t.enabled === false || this.held.has(t.name)) return false;
    const start = t.start_action ?? (t.remote_addr && t.remote_addr !== '%any' ? 'start' : 'none');
    return start === 'start';
  }

  private establish(t: TunnelDoc): void {
    const now = clock();
    this.sas.set(t.name, {
      id: this.nextSaId++,
      establishedAt: now,
      rekeys: 0,
      children: [this.newChild(now)],
    });
    this.idleErrors.delete(t.name);
    const n = negotiate(t.proposals?.[0] ?? DEFAULT_PROPOSAL);
    this.store.logEvent({ level: 'info', tunnel: t.name, message: `IKE SA established with ${t.remote_addr ?? 'peer'} (${n.kes.join(' + ')})` });
  }

  private newChild(now: number): SimChild {
    return { reqid: this.nextReqid++, spiIn: spi(), spiOut: spi(), installedAt: now, rekeys: 0, bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0, lastInAt: 0, lastOutAt: 0, inboundDead: false, lastTick: now };
  }

  private reconcile(): void {
    const ts = this.tunnels();
    for (const name of [...this.sas.keys()])
      if (!ts.some((t) => t.name === name && t.enabled !== false)) {
        this.sas.delete(name);
        this.store.logEvent({ level: 'info', tunnel: name, message: 'IKE SA deleted (tunnel removed or disabled)' });
      }
    for (const t of ts) if (this.wantsUp(t) && !this.sas.has(t.name) && !this.idleErrors.has(t.name)) this.establish(t);
  }

  private tick(c: SimChild): void {
    const now = clock();
    const dt = Math.max(0, now - c.lastTick) / 1000;
    c.lastTick = now;
    const rate = this.opts.rate ?? { in: 24_000, out: 18_000 };
    const wobble = 0.6 + 0.8 * Math.random();
    const out = Math.round(rate.out * dt * wobble);
    c.bytesOut += out;
    c.packetsOut += Math.ceil(out / 600);
    if (out) c.lastOutAt = now;
    if (!c.inboundDead) {
      const inn = Math.round(rate.in * dt * wobble);
      c.bytesIn += inn;
      c.packetsIn += Math.ceil(inn / 600);
      if (inn) c.lastInAt = now;
    }
  }

  private statusOf(t: TunnelDoc, sa: SimSa): IkeSaStatus {
    const n = negotiate(t.proposals?.[0] ?? DEFAULT_PROPOSAL);
    const esp = ENCR[(t.esp_proposals?.[0] ?? 'aes256gcm16').split('-')[0]!] ?? 'AES_GCM_16_256';
    const local = t.local_addr ?? '192.0.2.1';
    const remote = t.remote_addr && t.remote_addr !== '%any' ? t.remote_addr : '198.51.100.99';
    return {
      tunnel: t.name,
      id: sa.id,
      state: 'ESTABLISHED',
      role: 'initiator',
      local: { address: local, port: 4500 },
      remote: { address: remote, port: 4500 },
      spiI: randomBytes(8).toString('hex'),
      spiR: randomBytes(8).toString('hex'),
      localId: t.local_id ?? local,
      remoteId: t.remote_id ?? remote,
      encr: n.encr,
      prf: n.prf,
      integ: null,
      keyExchanges: n.kes,
      postQuantum: n.pq,
      authLocal: 'psk',
      authRemote: 'psk',
      fragmentation: t.fragmentation !== 'no',
      natLocal: false,
      natRemote: false,
      encap: true,
      establishedAt: sa.establishedAt,
      rekeyAt: t.rekey_time === 0 ? null : sa.establishedAt + (t.rekey_time ?? 86400) * 1000,
      rekeys: sa.rekeys,
      lastError: null,
      children: sa.children.map((c): ChildSaStatus => {
        this.tick(c);
        return {
          name: t.name,
          state: 'INSTALLED',
          reqid: c.reqid,
          spiIn: c.spiIn,
          spiOut: c.spiOut,
          encr: esp,
          integ: null,
          keyExchanges: [],
          esn: false,
          localTs: t.local_ts ?? ['0.0.0.0/0'],
          remoteTs: t.remote_ts ?? ['0.0.0.0/0'],
          encap: true,
          installedAt: c.installedAt,
          rekeyAt: t.child_rekey_time === 0 ? null : c.installedAt + (t.child_rekey_time ?? 28800) * 1000,
          rekeys: c.rekeys,
          bytesIn: c.bytesIn,
          bytesOut: c.bytesOut,
          packetsIn: c.packetsIn,
          packetsOut: c.packetsOut,
          replayDrops: 0,
          authFailures: 0,
          lastInAt: c.lastInAt,
          lastOutAt: c.lastOutAt,
        };
      }),
    };
  }

  private status(): IkeSaStatus[] {
    const ts = this.tunnels();
    return [...this.sas.entries()].flatMap(([name, sa]) => {
      const t = ts.find((x) => x.name === name);
      return t ? [this.statusOf(t, sa)] : [];
    });
  }

  private armPendingTimer(): void {
    clearTimeout(this.pendingTimer);
    const deadline = this.store.pendingDeadline();
    if (deadline === undefined) return;
    // As the daemon does: at the deadline the store rolls the pending revision back.
    this.pendingTimer = setTimeout(() => this.store.checkPending(), Math.max(0, deadline - Date.now()) + 20);
    this.pendingTimer.unref();
  }

  // ---- the contract ------------------------------------------------------------------------

  private tunnelOf(p: { tunnel?: unknown }): TunnelDoc {
    if (typeof p?.tunnel !== 'string') throw new ControlError(ControlErrorCode.INVALID_PARAMS, 'tunnel must be a string');
    const t = this.tunnels().find((x) => x.name === p.tunnel);
    if (!t) throw new ControlError(ControlErrorCode.NO_SUCH_TUNNEL, `no tunnel named '${p.tunnel}'`);
    return t;
  }

  private handlers(): Handlers {
    const rev = (r: StoreRevision): RevisionInfo => ({
      id: r.id,
      author: r.author,
      comment: r.comment,
      createdAt: r.createdAt,
      confirmDeadline: r.confirmDeadline,
      state: r.status === 'reverted' ? 'rolled-back' : r.status,
    });
    const change = (p: { actor?: unknown; comment?: unknown; confirmTimeoutSec?: unknown }) => ({
      author: String(p.actor ?? ''),
      ...(typeof p.comment === 'string' ? { comment: p.comment } : {}),
      ...(typeof p.confirmTimeoutSec === 'number' ? { confirmTimeoutSec: p.confirmTimeoutSec } : {}),
    });
    const h: Handlers = {
      version: () => ({ version: 'fake', protocol: 1 }),
      status: () => this.status(),
      // The fake has no IKE engine: no admission counters (api.ts allows null).
      'status.admission': () => null,
      'status.tunnels': () => ({
        sas: this.status(),
        idle: this.tunnels()
          .filter((t) => !this.sas.has(t.name))
          .map((t) => ({ tunnel: t.name, lastError: this.idleErrors.get(t.name) ?? null, nextAttemptAt: this.idleErrors.has(t.name) ? clock() + 30_000 : null })),
        now: clock(),
        health: Object.fromEntries(this.tunnels().map((t) => [t.name, this.health.get(t.name) ?? { state: 'unknown' as const, probesAnswered: 0 }])),
      }),
      up: (p) => {
        const t = this.tunnelOf(p);
        this.held.delete(t.name);
        this.idleErrors.delete(t.name);
        if (!this.sas.has(t.name)) this.establish(t);
        return { ok: true };
      },
      down: (p) => {
        const t = this.tunnelOf(p);
        this.held.add(t.name);
        this.sas.delete(t.name);
        this.store.logEvent({ level: 'info', tunnel: t.name, message: `IKE SA deleted by ${p.actor ?? 'admin'}` });
        return { ok: true };
      },
      'rekey-ike': (p) => {
        const t = this.tunnelOf(p);
        const sa = this.sas.get(t.name);
        if (!sa) throw new ControlError('ERR_NO_SA', `tunnel '${t.name}' has no IKE SA to rekey`);
        sa.id = this.nextSaId++;
        sa.rekeys++;
        sa.establishedAt = clock();
        this.store.logEvent({ level: 'info', tunnel: t.name, message: 'IKE SA rekeyed' });
        return { ok: true };
      },
      'rekey-child': (p) => {
        const t = this.tunnelOf(p);
        const sa = this.sas.get(t.name);
        if (!sa) throw new ControlError('ERR_NO_SA', `tunnel '${t.name}' has no IKE SA`);
        sa.children = sa.children.map((c) => ({ ...this.newChild(clock()), reqid: c.reqid, rekeys: c.rekeys + 1 }));
        this.store.logEvent({ level: 'info', tunnel: t.name, message: 'Child SA rekeyed' });
        return { ok: true };
      },
      reset: (p) => {
        const t = this.tunnelOf(p);
        this.sas.delete(t.name);
        this.idleErrors.delete(t.name);
        this.establish(t);
        return { ok: true };
      },
      dpd: (p) => {
        this.tunnelOf(p);
        return { ok: true };
      },
      reload: () => ({ tunnels: this.tunnels().length }),
      metrics: () => ({ text: formatMetrics(this.status(), { tunnels: this.tunnels().map((t) => t.name) }) }),

      'config.get': () => ({
        revision: this.store.current().id,
        document: { ...this.store.getDocument(), tunnels: this.tunnels().map((t) => (t.auth === undefined || t.auth === 'psk' ? { ...t, psk: '<set>' } : t)) },
      }),
      'config.validate': (p) => {
        const names = new Set(this.tunnels().map((t) => t.name));
        try {
          validateDocument(p.document, { hasStoredPsk: (n) => names.has(n), isPreset });
          return { ok: true, issues: [] };
        } catch (e) {
          const errs = (e as { errors?: { path: string; message: string }[] }).errors;
          if (!errs) throw e;
          return { ok: false, issues: errs.map((x) => ({ path: x.path, message: x.message.slice(x.path.length + 2) })) };
        }
      },
      'config.set': (p) => ({ revision: rev(this.store.apply(p.document, change(p)).revision) }),
      'config.tunnel.put': (p) => {
        const t = p.tunnel as Obj;
        if (!t || typeof t !== 'object' || typeof t.name !== 'string') throw new ControlError(ControlErrorCode.INVALID_PARAMS, 'tunnel.name must be a string');
        const name = t.name;
        if (p.preset !== undefined) {
          const { name: _n, ...rest } = t;
          return { revision: rev(this.store.addTunnelFromPreset(p.preset, { name, ...rest }, { ...change(p), ...(p.params ? { params: p.params } : {}) }).revision) };
        }
        const { name: _n, ...fields } = t;
        return { revision: rev(this.store.apply({ patch: { tunnels: { [name]: fields } } }, change(p)).revision) };
      },
      'config.tunnel.delete': (p) => ({ revision: rev(this.store.apply({ patch: { tunnels: { [p.name]: null } } }, change(p)).revision) }),
      'config.presets': () =>
        presetNames().map((n) => {
          const pr = getPreset(n)!;
          return { name: pr.name, title: pr.title, description: pr.description, tunnel: pr.tunnel, params: pr.params, requires: pr.requires };
        }),
      'config.import': (p) => ({ revision: rev(this.store.importDocument(p.document, change(p)).revision) }),
      'config.export': (p) => ({ document: this.store.exportDocument({ backup: true, includeSecrets: p.includeSecrets === true, actor: p.actor ?? 'unknown' }) }),
      'config.history': (p) => this.store.history({ ...(p.limit ? { limit: p.limit } : {}), ...(p.beforeId ? { beforeId: p.beforeId } : {}) }).map(rev),
      'config.diff': (p) => {
        const d = this.store.diff(p.from, p.to);
        return { text: d.text, entries: d.entries.map((e) => ({ path: e.path, kind: e.op, ...(e.before !== undefined ? { before: e.before } : {}), ...(e.after !== undefined ? { after: e.after } : {}) })) };
      },
      'config.rollback': (p) => ({ revision: rev(this.store.rollback(p.revision, change(p)).revision) }),
      'config.confirm': (p) => ({ revision: rev(this.store.confirm({ author: p.actor })) }),
      'config.cancel': (p) => ({ revision: rev(this.store.cancelPending({ author: p.actor }).revision) }),
      'config.pending': () => {
        this.store.checkPending();
        const r = this.store.pending();
        return { revision: r ? rev(r) : null };
      },

      'certs.list': () =>
        this.store.listCertificates().map((c) => ({ name: c.name, kind: c.kind, subject: c.subject, issuer: c.issuer, notBefore: c.notBefore, notAfter: c.notAfter, sans: [], keyType: 'unknown', hasPrivateKey: c.hasPrivateKey })),
      'certs.add': (p) => {
        const c = this.store.addCertificate(p, { actor: p.actor });
        return { name: c.name, kind: c.kind, subject: c.subject, issuer: c.issuer, notBefore: c.notBefore, notAfter: c.notAfter, sans: [], keyType: 'unknown', hasPrivateKey: c.hasPrivateKey };
      },
      'certs.remove': (p) => {
        this.store.removeCertificate(p.name, { actor: p.actor });
        return { ok: true };
      },

      'users.list': () => this.store.listUsers().map((u) => ({ name: u.name, createdAt: u.createdAt, lastLoginAt: null })),
      'users.create': (p) => {
        if (this.store.listUsers().length > 0 && !p.actor) throw new ControlError('ERR_PERMISSION', 'setup is complete: only an authenticated administrator may add users');
        this.store.createUser(p.name, p.password, { actor: p.actor ?? 'first-boot setup' });
        return { ok: true };
      },
      'users.verify': (p) => ({ ok: this.store.verifyUser(p.name, p.password) }),
      'users.password': (p) => {
        this.store.changePassword(p.name, p.newPassword, { actor: p.actor, ...(p.currentPassword !== undefined ? { currentPassword: p.currentPassword } : {}) });
        return { ok: true };
      },
      'users.delete': (p) => {
        this.store.deleteUser(p.name, { actor: p.actor });
        return { ok: true };
      },
      'users.setupRequired': () => ({ setupRequired: this.store.listUsers().length === 0 }),

      'logs.events': (p) => {
        const order = ['error', 'warn', 'info', 'debug'];
        const max = p.level ? order.indexOf(p.level) : order.length;
        const rows = this.store.events({ limit: 10_000, ...(p.tunnel ? { tunnel: p.tunnel } : {}), ...(p.beforeId ? { beforeId: p.beforeId } : {}) });
        return rows
          .filter((e) => order.indexOf(e.level) <= max)
          .slice(0, p.limit ?? 100)
          .map((e) => ({ id: e.id, ts: e.ts, level: e.level, message: e.message, ...(e.tunnel ? { tunnel: e.tunnel } : {}) }));
      },
      'logs.audit': (p) =>
        this.store.auditLog({ ...(p.limit ? { limit: p.limit } : {}), ...(p.beforeId ? { beforeId: p.beforeId } : {}) }).map((a) => ({
          id: a.id,
          ts: a.ts,
          actor: a.actor,
          action: a.action,
          detail: `${a.target ?? ''}${a.detail ? ` ${JSON.stringify(a.detail)}` : ''}`,
        })),
      // Session keys: the daemon serves them only on its owner-only admin socket, never to the web admin.
      'keys.export': () => {
        throw new ControlError(ControlErrorCode.METHOD_NOT_FOUND, 'keys.export is not served on the web socket');
      },
      'keys.capture': () => {
        throw new ControlError(ControlErrorCode.METHOD_NOT_FOUND, 'keys.capture is not served on the web socket');
      },

      'system.info': () => ({
        hostname: hostname(),
        version: (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version,
        uptimeSec: Math.round(uptime()),
        daemonUptimeSec: Math.round((Date.now() - this.startedAt) / 1000),
        dataPlane: 'userspace (simulated)',
        cpu: { model: cpus()[0]?.model ?? 'unknown', cores: cpus().length, load: loadavg() },
        memory: { totalBytes: totalmem(), freeBytes: freemem(), rssBytes: process.memoryUsage().rss },
        interfaces: Object.entries(networkInterfaces()).map(([name, addrs]) => ({
          name,
          addresses: (addrs ?? []).map((a) => `${a.address}/${a.cidr?.split('/')[1] ?? ''}`),
          ...(addrs?.[0]?.mac && addrs[0].mac !== '00:00:00:00:00:00' ? { mac: addrs[0].mac } : {}),
          up: true,
        })),
        temperaturesC: [],
        firmware: this.opts.firmware ?? null,
      }),
      'system.reboot': (p) => {
        this.reboots++;
        this.store.logEvent({ level: 'warn', message: `reboot requested by ${p.actor}` });
        return { ok: true };
      },
      // Like methods-upgrade.ts on the web socket: spooled *.pqb names only, install in the background.
      'upgrade.status': () => (this.opts.upgrade ?? (this.offImage ??= new UpgradeService({ backend: undefined, trustDir: join(this.dir, 'no-trust') }))).status(),
      'upgrade.install': async (p) => {
        const svc = this.opts.upgrade;
        const path = webSpoolPath(String(p.path));
        if (!svc) throw new ControlError('NO_BACKEND', 'firmware upgrades need the appliance image');
        if (svc.isBusy) throw new ControlError('BUSY', 'another firmware upgrade is in progress');
        const id = svc.nextId;
        this.installs.push(path);
        void svc.install(path, { reboot: p.reboot === true }).catch(() => undefined);
        return { id, started: true as const };
      },
      'upgrade.keylist': () => {
        throw new ControlError('BAD_TRUST', 'no trust store in the fake daemon');
      },
      'system.factoryReset': (p) => {
        if (p.confirm !== 'FACTORY RESET') throw new ControlError(ControlErrorCode.INVALID_PARAMS, "confirm must be 'FACTORY RESET'");
        clearTimeout(this.pendingTimer);
        this.store.close();
        rmSync(join(this.dir, 'db'), { recursive: true, force: true });
        this.sas.clear();
        this.idleErrors.clear();
        this.held.clear();
        this.factoryResets++;
        this.openStore();
        return { ok: true };
      },
    };
    // Record what was called (parameter names only: values may be passwords).
    const recorded = {} as Record<string, (p: unknown) => unknown>;
    for (const [m, fn] of Object.entries(h) as [string, (p: unknown) => unknown][])
      recorded[m] = (p: unknown) => {
        this.calls.push({ method: m, keys: p && typeof p === 'object' ? Object.keys(p) : [] });
        return fn((p ?? {}) as never);
      };
    return recorded as unknown as Handlers;
  }
}
