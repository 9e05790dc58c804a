/**
 * The daemon: the composition root around the sans-IO engine
 * (boringtun's device/ around noise/).
 *
 *   config ──loadConfig──▶ Engine ◀──receive── net (UDP 500/4500, marker demux)
 *                            │ ▲
 *             actions ◀──────┘ └── tick(): one setTimeout, re-armed from
 *                                  nextTimer() after every engine call
 *   send → net · install-child/delete-child → DataPlane · keylog → KeylogWriter
 *   event → log · control socket → status / up / down / reload / version
 *   (the full control API, the configuration store and the event log are
 *   firmware/appliance/, which embeds this class and observes its actions)
 *
 * Data plane (docs/dataplane.md): by default the userspace ESP data plane
 * (dataplane/userspace.ts). It cannot receive raw ESP (IP protocol 50), so
 * every tunnel is forced onto UDP encapsulation (RFC 3948; engine
 * forceEncap, like strongSwan's kernel-libipsec with encap = yes); ESP-in-UDP
 * from the NAT-T socket goes to receiveEsp, its output leaves from the same
 * socket (sendRaw, no non-ESP marker). `data_plane: "recording"` (or
 * DaemonOptions.dataPlane) keeps the old record-only behaviour.
 *
 * Every engine call goes through call(): an exception from the engine is a
 * bug, logged, never fatal to the process. Data-plane operations run on one
 * promise chain so installs and deletes keep the engine's order.
 */
import type { DaemonConfig, TunnelConfig } from './config/types.js';
import type { Action, Command, EngineApi, InstallChildAction, DeleteChildAction, IkeSaStatus, ChildSaStatus } from './ikev2/engine-types.js';
import type { DataPlane, SaCounters } from './dataplane/types.js';
import { UserspaceDataPlane } from './dataplane/userspace.js';
import { IpLinks, type Links } from './dataplane/links.js';
import { NattIo } from './dataplane/natt-io.js';
import { classifyNattDatagram } from './net/natt.js';
import type { DatagramHandler, Endpoint, IkeTransport } from './net/types.js';
import { type Clock, systemClock, type Rng } from './util/clock.js';
import { systemRng } from './util/rng.js';
import { Logger, nullLogger } from './log.js';
import { PqError } from './util/errors.js';
import { wipe } from './util/bytes.js';
import { KeylogWriter, resolveKeylogPath } from './keylog.js';
import { UdpTransport, probeSourceAddress } from './net/udp.js';
import { ControlServer } from './control/server.js';
import { basicMethods } from './control/daemon-methods.js';
import { sameForEngine, tunnelInterfaces, tunnelOptions } from './appliance/reconcile.js';
export { packageVersion } from './appliance/version.js';
import { RecordingDataPlane } from './dataplane/recording.js';
import { loadConfigFile, defaultConfig } from './config/schema.js';
import { HealthMonitor, type Pinger } from './health/monitor.js';
import type { TunnelHealth } from './health/types.js';
import { lastInboundAt } from './health/activity.js';

export interface EngineDeps {
  clock: Clock;
  rng: Rng;
  /** Source ports for initiated exchanges (the bound ports; differ from 500/4500 only in tests). */
  ikePort: number;
  nattPort: number;
  forceEncap: boolean;
  /** IKE_SA_INIT admission limits from the configuration (cookie_threshold, ...). */
  admission?: import('./config/types.js').AdmissionConfig;
}

export type EngineFactory = (deps: EngineDeps) => EngineApi | Promise<EngineApi>;

/**
 * The one place that knows the Engine's constructor. Imported lazily so that
 * the daemon's edges (and their tests with a stub engine) do not load the
 * whole IKE stack.
 */
export const createEngine: EngineFactory = async (deps) => {
  const { Engine } = await import('./ikev2/engine.js');
  const ad = deps.admission ?? {};
  return new Engine({
    clock: deps.clock,
    rng: deps.rng,
    ikePort: deps.ikePort,
    nattPort: deps.nattPort,
    forceEncap: deps.forceEncap,
    dataPlaneActivity: true,
    cookieThreshold: ad.cookieThreshold,
    cookieThresholdIp: ad.cookieThresholdIp,
    halfOpenPerSource: ad.blockThreshold,
    halfOpenLimit: ad.initLimitHalfOpen,
    ...(ad.halfOpenTimeout !== undefined ? { halfOpenTimeout: ad.halfOpenTimeout * 1000 } : {}),
  });
};

export interface DaemonOptions {
  config: DaemonConfig;
  /** The file `reload` re-reads; undefined = the embedded default config. */
  configPath?: string;
  logger?: Logger;
  engineFactory?: EngineFactory;
  /** Default: UdpTransport on config.listen / ports. */
  transportFactory?: (config: DaemonConfig, logger: Logger) => Promise<IkeTransport>;
  /**
   * Default: from config.dataPlane — the userspace ESP data plane over TUN
   * (UserspaceDataPlane with IpLinks), or RecordingDataPlane for "recording".
   */
  dataPlane?: DataPlane;
  /** Interface plumbing for the default userspace data plane (tests: MemoryLinks). Default IpLinks. */
  links?: Links;
  clock?: Clock;
  rng?: Rng;
  /** Environment (PQGATE_KEYLOG). Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Force UDP encapsulation of ESP on every tunnel. Default: true with the userspace data plane, else false. */
  forceEncap?: boolean;
  /**
   * UDP-encapsulated ESP received on the NAT-T port. Default: the data
   * plane's receiveEsp when it has one (userspace), else counted and dropped.
   */
  espHandler?: DatagramHandler;
  /**
   * For tunnels with remote_addr but no local_addr, ask the kernel's routing
   * table which local address reaches the peer and use it (so the engine
   * never works with a wildcard source). Default: on with the UDP transport.
   */
  sourceAddressFor?: ((remote: string) => Promise<string | undefined>) | null;
  /** Skip the control socket (embedding / tests; the appliance serves its own). */
  noControl?: boolean;
  /** Sees what the daemon carries out (firmware/appliance: event log, metrics, key capture). */
  observer?: DaemonObserver;
  /** Active health probes (health_check): default the system's ping. */
  pinger?: Pinger;
}

/**
 * Hooks for an embedding layer. Called synchronously after the daemon
 * carried the action out; an observer that throws is logged and ignored.
 */
export interface DaemonObserver {
  /** Every engine action except `send` (events, key log lines, Child SA installs and deletes). */
  action?(a: Exclude<Action, { kind: 'send' }>): void;
  /** A Child SA left the data plane; its last counters (undefined if the data plane did not know it). */
  childRetired?(a: DeleteChildAction, inbound: SaCounters | undefined, outbound: SaCounters | undefined): void;
}

export class Daemon {
  config: DaemonConfig;
  readonly log: Logger;
  private readonly opts: DaemonOptions;
  private readonly clock: Clock;
  private engine!: EngineApi;
  private transport!: IkeTransport;
  private dataPlane!: DataPlane;
  private control: ControlServer | undefined;
  private keylog: KeylogWriter | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerAt: number | undefined;
  private dpChain: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;
  private readonly startedAt: number;
  /** Inbound/outbound SPI → tunnel, for data-plane expire events. */
  private readonly spiTunnel = new Map<string, string>();
  private readonly reqidTunnel = new Map<number, string>();
  /** The tunnels as handed to the engine, by name (reconcile compares against them). */
  private running = new Map<string, TunnelConfig>();
  /** Interface settings applied per tunnel (JSON of TunnelOptions). */
  private readonly ifaceOpts = new Map<string, string>();
  private nattIo: NattIo | undefined;
  private health: HealthMonitor | undefined;
  readonly stats = { engineErrors: 0, dataPlaneErrors: 0, espDropped: 0, sent: 0 };

  private constructor(opts: DaemonOptions) {
    this.opts = opts;
    this.config = opts.config;
    this.log = opts.logger ?? nullLogger;
    this.clock = opts.clock ?? systemClock;
    this.startedAt = this.clock.now();
  }

  static async start(opts: DaemonOptions): Promise<Daemon> {
    const d = new Daemon(opts);
    try {
      await d.init();
    } catch (e) {
      await d.teardown();
      throw e;
    }
    return d;
  }

  private async init(): Promise<void> {
    const { config, log } = this;
    const keylogPath = resolveKeylogPath(this.opts.env ?? process.env, config.keylog);
    if (keylogPath) {
      this.keylog = new KeylogWriter(keylogPath);
      log.warn('key log enabled: IKE and ESP session keys are written in clear', { ikeFile: this.keylog.ikePath, espFile: this.keylog.espPath });
    }
    const usingUdp = !this.opts.transportFactory;
    this.transport = this.opts.transportFactory
      ? await this.opts.transportFactory(config, log)
      : await UdpTransport.open({ listen: config.listen, ikePort: config.ikePort, nattPort: config.nattPort, logger: log, recvBufferSize: 4 << 20 });
    const eps = this.transport.localEndpoints();
    log.info('listening', { endpoints: eps.map((e) => `${e.address}:${e.port}`) });
    // With ephemeral ports (tests) the engine must use the ports actually bound.
    const { ike: ikePort, natt: nattPort } = this.transport.boundPorts();
    this.dataPlane = this.opts.dataPlane ?? this.defaultDataPlane();
    this.dataPlane.onEvent((e) => this.onDataPlaneEvent(e));
    const userspace = this.dataPlane instanceof UserspaceDataPlane ? this.dataPlane : undefined;
    log.info('data plane', { dataPlane: this.dataPlane.name });
    const factory = this.opts.engineFactory ?? createEngine;
    // The userspace data plane only speaks ESP-in-UDP: force encapsulation (fake NAT-D, RFC 7296 §2.23).
    const forceEncap = this.opts.forceEncap ?? userspace !== undefined;
    this.engine = await factory({ clock: this.clock, rng: this.opts.rng ?? systemRng, ikePort, nattPort, forceEncap, ...(config.admission ? { admission: config.admission } : {}) });

    this.transport.onIke((data, from, to) => this.onIkeDatagram(data, from, to));
    this.transport.onEsp(
      this.opts.espHandler ??
        (userspace
          ? (data, from, to) => userspace.receiveEsp(data, from, to)
          : () => {
              this.stats.espDropped++;
            }),
    );
    this.startNattReceive();
    if (this.opts.sourceAddressFor === undefined && usingUdp) this.opts.sourceAddressFor = probeSourceAddress;
    const tunnels = await this.withSourceAddresses(config.tunnels);
    await this.applyTunnelOptions(tunnels);
    this.call(() => this.engine.loadConfig(tunnels));
    this.running = new Map(tunnels.map((t) => [t.name, t]));
    this.health = new HealthMonitor({
      clock: this.clock,
      ...(this.opts.pinger ? { pinger: this.opts.pinger } : {}),
      counters: (t) => this.dataPlane.probeCounters?.(t),
      hasChildSa: (t) =>
        this.engine.hasInstalledChild?.(t) ??
        this.engine.status().some((s) => s.tunnel === t && s.state === 'ESTABLISHED' && s.children.some((c) => c.state === 'INSTALLED' || c.state === 'REKEYING')),
      onChange: (tunnel, state, detail) => this.run([{ kind: 'event', level: state === 'down' ? 'warn' : 'info', tunnel, message: `health probe ${state}: ${detail}` }]),
    });
    this.health.configure(tunnels);
    log.info(`loaded ${tunnels.length} tunnel${tunnels.length === 1 ? '' : 's'}`, { tunnels: tunnels.map((t) => t.name) });

    if (!this.opts.noControl) {
      this.control = new ControlServer({ path: config.controlSocket, logger: log, methods: basicMethods(this) });
      await this.control.listen();
      log.info('control socket ready', { path: config.controlSocket });
    }
  }

  private defaultDataPlane(): DataPlane {
    if ((this.config.dataPlane ?? 'userspace') === 'recording') return new RecordingDataPlane();
    // sendmmsg/recvmmsg on the NAT-T sockets when the addon can reach their descriptors.
    if (this.transport instanceof UdpTransport) this.nattIo = NattIo.create({ transport: this.transport, log: this.log, fallback: (from, to, data) => this.transport.sendRaw(from, to, data) });
    const batch = this.nattIo?.sender;
    return new UserspaceDataPlane({
      // ESP-in-UDP leaves from the NAT-T socket of the SA's local address (RFC 3948 §2.1: no marker),
      // in sendmmsg batches when the addon can reach the socket's descriptor.
      sendUdp: batch ? (from, to, data) => batch.send(from, to, data) : (from, to, data) => this.transport.sendRaw(from, to, data),
      ...(batch ? { flushUdp: () => batch.flush() } : {}),
      links: this.opts.links ?? new IpLinks(),
      // Bursts of a fast TCP sender (GSO segments of 45 packets) overflow the TUN's default 500 while we encrypt.
      txQueueLen: 1000,
      clock: this.clock,
      onError: (e) => {
        this.stats.dataPlaneErrors++;
        this.log.warn('data plane error', { error: e });
      },
    });
  }

  private onIkeDatagram(data: Uint8Array, from: Endpoint, to: Endpoint): void {
    // Hot path: the record's fields are built only when trace is on.
    if (this.log.enabled('trace')) this.log.trace('IKE datagram in', { from: `${from.address}:${from.port}`, to: `${to.address}:${to.port}`, bytes: data.length });
    this.call(() => this.engine.receive(data, from, to));
  }

  /**
   * With the userspace data plane on real sockets, the NAT-T sockets are read
   * with recvmmsg + UDP GRO (dataplane/natt-io.ts): ESP straight to the data
   * plane, the rest (IKE behind the non-ESP marker, keepalives) demultiplexed
   * here as UdpTransport would (RFC 3948 §2.2).
   */
  private startNattReceive(): void {
    const dp = this.dataPlane;
    if (!this.nattIo || !(dp instanceof UserspaceDataPlane)) return;
    this.nattIo.receive({
      onEsp: (data, from, to) => dp.receiveEsp(data, from, to),
      onOther: (data, from, to) => {
        const c = classifyNattDatagram(data);
        if (c.kind === 'ike') this.onIkeDatagram(c.data, from, to);
        else if (c.kind === 'invalid' && this.log.enabled('trace')) this.log.trace('dropped datagram', { from: `${from.address}:${from.port}`, reason: c.reason });
      },
      onBatchEnd: () => dp.flush(),
    });
  }

  /**
   * Per-tunnel interface settings (inside address, MSS clamp, MTU) for data
   * planes with tunnel interfaces, set before the tunnel's first Child SA
   * and again when they change (an existing interface is reconfigured).
   */
  private async applyTunnelOptions(tunnels: TunnelConfig[]): Promise<void> {
    const ifs = tunnelInterfaces(this.dataPlane);
    if (!ifs) return;
    for (const t of tunnels) {
      const o = tunnelOptions(t);
      await ifs.setTunnelOptions(t.name, o).then(
        () => void this.ifaceOpts.set(t.name, JSON.stringify(o)),
        (e: unknown) => {
          this.stats.dataPlaneErrors++;
          this.log.error('cannot apply tunnel interface settings', { tunnel: t.name, error: e });
        },
      );
    }
  }

  /** Fill local_addr from the routing table for initiating tunnels that lack one (see DaemonOptions.sourceAddressFor). */
  private async withSourceAddresses(tunnels: TunnelConfig[]): Promise<TunnelConfig[]> {
    const probe = this.opts.sourceAddressFor;
    if (!probe) return tunnels;
    const bound = new Set(this.transport.localEndpoints().map((e) => e.address));
    const out: TunnelConfig[] = [];
    for (const t of tunnels) {
      if (t.localAddr !== undefined || t.remoteAddr === undefined) {
        out.push(t);
        continue;
      }
      const src = await probe(t.remoteAddr).catch(() => undefined);
      if (src !== undefined && bound.has(src)) out.push({ ...t, localAddr: src });
      else {
        if (src !== undefined) this.log.warn('route to peer uses an address the daemon does not listen on', { tunnel: t.name, source: src });
        out.push(t);
      }
    }
    return out;
  }

  /** True once stop() was called: control methods refuse work. */
  get isStopping(): boolean {
    return this.stopping !== undefined;
  }

  /** The data plane's name (`userspace`, `recording`, `kernel`...). */
  get dataPlaneName(): string {
    return this.dataPlane.name;
  }

  /** Milliseconds since start on the daemon's clock, and that clock's current value. */
  uptime(): { now: number; uptimeMs: number } {
    const now = this.clock.now();
    return { now, uptimeMs: Math.round(now - this.startedAt) };
  }

  assertRunning(): void {
    if (this.stopping) throw new PqError('ERR_STOPPING', 'the daemon is shutting down');
  }

  /** Is a tunnel of this name configured (and enabled)? */
  hasTunnel(name: string): boolean {
    return this.config.tunnels.some((t) => t.name === name);
  }

  status(): IkeSaStatus[] {
    try {
      return this.engine.status();
    } catch (e) {
      this.stats.engineErrors++;
      this.log.error('engine status() threw', { error: e });
      throw e;
    }
  }

  /**
   * status() plus each Child SA's data-plane counters (bytes, packets, replay
   * drops, ICV failures; DataPlane.querySa), as `pqgate status` shows them.
   */
  /** Half-open IKE SAs, cookies sent and IKE_SA_INIT drops (null with an engine that does not count them). */
  admissionStatus(): import('./ikev2/admission.js').AdmissionStatus | null {
    return this.engine.admissionStatus?.() ?? null;
  }

  async statusWithCounters(): Promise<IkeSaStatus[]> {
    const st = this.status();
    for (const sa of st) for (const c of sa.children) await this.addCounters(c);
    for (const sa of st) sa.health = this.tunnelHealth(sa.tunnel);
    return st;
  }

  /** A tunnel's health (firmware/health/types.ts): the peer's probes and the active probe. */
  tunnelHealth(tunnel: string): TunnelHealth {
    return this.health?.health(tunnel) ?? { state: 'unknown', probesAnswered: 0 };
  }

  private async addCounters(c: ChildSaStatus): Promise<void> {
    const spiIn = parseInt(c.spiIn, 16);
    const spiOut = parseInt(c.spiOut, 16);
    let cin, cout;
    try {
      [cin, cout] = await Promise.all([this.dataPlane.querySa(spiIn, 'in'), this.dataPlane.querySa(spiOut, 'out')]);
    } catch (e) {
      this.log.debug('querySa failed', { error: e });
      return;
    }
    if (cin) {
      c.bytesIn = cin.bytes;
      c.packetsIn = cin.packets;
      c.replayDrops = cin.replayDrops;
      c.authFailures = cin.authFailures;
      if (cin.malformedDrops !== undefined) c.malformedDrops = cin.malformedDrops;
      c.lastInAt = cin.lastUsed;
    }
    if (cout) {
      c.bytesOut = cout.bytes;
      c.packetsOut = cout.packets;
      c.lastOutAt = cout.lastUsed;
    }
  }

  command(cmd: Command): void {
    this.call(() => this.engine.command(cmd));
  }

  /** Re-read the configuration file (or the embedded default) and apply it. Throws ConfigValidationError (nothing changes) if invalid. */
  async reload(): Promise<{ tunnels: string[]; restartRequired: string[] }> {
    this.assertRunning();
    return this.applyConfig(this.opts.configPath ? loadConfigFile(this.opts.configPath) : defaultConfig());
  }

  /**
   * Reconcile the running daemon with a new configuration. The engine gets
   * the new tunnel set (engine.loadConfig keeps the SAs of tunnels whose
   * configuration is unchanged, re-establishes changed ones, deletes removed
   * ones). A tunnel whose change touches only data-plane fields (mss, mtu,
   * inside_addr) keeps its SAs: the engine is handed its running
   * configuration and only the interface is reconfigured. Listen addresses,
   * ports, the control socket, the key log and the data plane need a
   * restart; their running values are kept and reported.
   */
  async applyConfig(next: DaemonConfig): Promise<{ tunnels: string[]; restartRequired: string[] }> {
    this.assertRunning();
    const cur = this.config;
    const restartRequired: string[] = [];
    if (JSON.stringify(next.listen) !== JSON.stringify(cur.listen)) restartRequired.push('listen');
    if (next.ikePort !== cur.ikePort) restartRequired.push('ike_port');
    if (next.nattPort !== cur.nattPort) restartRequired.push('natt_port');
    if (next.controlSocket !== cur.controlSocket) restartRequired.push('control_socket');
    if (next.keylog !== cur.keylog) restartRequired.push('keylog');
    if ((next.dataPlane ?? 'userspace') !== (cur.dataPlane ?? 'userspace')) restartRequired.push('data_plane');
    // The engine takes its admission limits at construction (cookie_threshold, block_threshold, ...).
    if (JSON.stringify(next.admission ?? {}) !== JSON.stringify(cur.admission ?? {})) restartRequired.push('admission');
    if (restartRequired.length) this.log.warn('configuration changes that take effect only after a restart', { fields: restartRequired });
    // Keep the running values of restart-only fields so config and reality agree.
    this.config = { ...next, listen: cur.listen, ikePort: cur.ikePort, nattPort: cur.nattPort, controlSocket: cur.controlSocket, ...(cur.keylog !== undefined ? { keylog: cur.keylog } : {}), ...(cur.dataPlane !== undefined ? { dataPlane: cur.dataPlane } : {}), ...(cur.admission !== undefined ? { admission: cur.admission } : {}) };
    if (this.config.keylog === undefined) delete this.config.keylog;
    if (this.config.dataPlane === undefined) delete this.config.dataPlane;
    if (this.config.admission === undefined) delete this.config.admission;
    this.log.setLevel(next.logLevel);
    if (this.transport instanceof UdpTransport) {
      const r = await this.transport.refresh();
      if (r.added.length || r.removed.length) {
        this.log.info('listen addresses changed', r);
        this.nattIo?.sync(); // sockets came and went: take the new ones over, release the old
      }
    }
    const wanted = await this.withSourceAddresses(this.config.tunnels);
    const forEngine: TunnelConfig[] = [];
    const reconfigure: TunnelConfig[] = [];
    for (const t of wanted) {
      const old = this.running.get(t.name);
      // The engine compares the object it holds with the new one: hand it back the very same content.
      if (old && sameForEngine(old, t)) forEngine.push(old);
      else forEngine.push(t);
      if (this.ifaceOpts.get(t.name) !== JSON.stringify(tunnelOptions(t))) reconfigure.push(t);
    }
    await this.applyTunnelOptions(reconfigure);
    const removed = [...this.running.keys()].filter((n) => !wanted.some((t) => t.name === n));
    this.call(() => this.engine.loadConfig(forEngine));
    this.health?.configure(forEngine);
    // After the engine's delete-child actions (same chain): a removed route-based tunnel's interface goes too.
    const ifs = tunnelInterfaces(this.dataPlane);
    if (ifs?.removeTunnel) for (const name of removed) this.enqueueDataPlane('remove interface', () => ifs.removeTunnel!(name));
    this.running = new Map(forEngine.map((t) => [t.name, t]));
    for (const name of removed) this.ifaceOpts.delete(name);
    this.log.info('configuration applied', { tunnels: wanted.map((t) => t.name), ...(removed.length ? { removed } : {}), ...(reconfigure.length ? { changed: reconfigure.map((t) => t.name) } : {}) });
    return { tunnels: wanted.map((t) => t.name), restartRequired };
  }

  /** Run one engine entry point and carry out its actions. */
  private call(fn: () => Action[]): void {
    let actions: Action[] = [];
    try {
      actions = fn();
    } catch (e) {
      this.stats.engineErrors++;
      this.log.error('engine error (bug): continuing', { error: e, stack: e instanceof Error ? e.stack?.split('\n').slice(0, 6).join(' | ') : undefined });
    }
    this.run(actions);
    this.arm();
  }

  private run(actions: Action[]): void {
    for (const a of actions) {
      try {
        switch (a.kind) {
          case 'send':
            this.stats.sent++;
            if (this.log.enabled('trace')) this.log.trace('IKE datagram out', { from: `${a.from.address}:${a.from.port}`, to: `${a.to.address}:${a.to.port}`, bytes: a.data.length });
            this.transport.send(a.from, a.to, a.data);
            break;
          case 'install-child':
            this.enqueueDataPlane('install', () => this.installChild(a));
            break;
          case 'delete-child':
            this.enqueueDataPlane('delete', () => this.deleteChild(a));
            break;
          case 'keylog':
            this.keylog?.write(a);
            break;
          case 'event':
            this.log.log(a.level, a.message, { tunnel: a.tunnel, ikeSa: a.ikeSa });
            break;
          case 'trap': // traps.ts: outbound policies without an SA; their acquire initiates the tunnel
            for (const p of a.policies) a.install ? this.reqidTunnel.set(p.reqid, a.tunnel) : this.reqidTunnel.delete(p.reqid);
            this.enqueueDataPlane('trap', async () => {
              for (const p of a.policies) await (a.install ? this.dataPlane.addPolicy(p) : this.dataPlane.deletePolicy(p));
            });
            break;
          case 'query-activity': // on-idle DPD: when did ESP last arrive? (health/activity.ts)
            void lastInboundAt(this.dataPlane, a.inboundSpis, this.clock).then((at) => this.call(() => this.engine.activity?.(a.ikeSa, at) ?? []));
            break;
        }
      } catch (e) {
        this.log.error(`cannot carry out ${a.kind} action`, { error: e });
      }
      if (a.kind !== 'send' && this.opts.observer?.action) {
        try {
          this.opts.observer.action(a);
        } catch (e) {
          this.log.error('action observer failed', { kind: a.kind, error: e });
        }
      }
      // Key copies behind a key log line die with the action (issue 9): the
      // key log and the observer (key capture) have read `line` by now.
      if (a.kind === 'keylog') a.dispose?.();
    }
  }

  private enqueueDataPlane(what: string, op: () => Promise<void>): void {
    this.dpChain = this.dpChain.then(op).catch((e) => {
      this.stats.dataPlaneErrors++;
      this.log.error(`data plane ${what} failed`, { error: e });
    });
  }

  private async installChild(a: InstallChildAction): Promise<void> {
    try {
      await this.dataPlane.addSa(a.inbound);
      await this.dataPlane.addSa(a.outbound);
    } finally {
      // Every data plane keeps its own copy (ESP transforms, XFRM state);
      // the engine handed these to us and nobody else reads them (issue 9).
      wipe(a.inbound.encrKey, a.inbound.integKey, a.outbound.encrKey, a.outbound.integKey);
    }
    for (const p of a.policies) await this.dataPlane.addPolicy(p);
    this.spiTunnel.set(`in:${a.inbound.spi >>> 0}`, a.tunnel);
    this.spiTunnel.set(`out:${a.outbound.spi >>> 0}`, a.tunnel);
    this.reqidTunnel.set(a.inbound.reqid, a.tunnel);
    if (this.log.enabled('debug')) this.log.debug('Child SA installed', { tunnel: a.tunnel, spiIn: a.inbound.spi.toString(16).padStart(8, '0'), spiOut: a.outbound.spi.toString(16).padStart(8, '0') });
  }

  private async deleteChild(a: DeleteChildAction): Promise<void> {
    // A rekeyed Child SA's successor (same reqid) already installed the same
    // policies: removing them would cut the new SA off (engine-types.ts).
    if (!a.rekeyed) for (const p of a.policies) await this.dataPlane.deletePolicy(p);
    const retired = this.opts.observer?.childRetired;
    if (retired) {
      // The SA's last counters, before they vanish with it (cumulative metrics).
      const [cin, cout] = await Promise.all([this.dataPlane.querySa(a.inboundSpi, 'in'), this.dataPlane.querySa(a.outboundSpi, 'out')]).catch(() => [undefined, undefined]);
      try {
        retired(a, cin, cout);
      } catch (e) {
        this.log.error('childRetired observer failed', { error: e });
      }
    }
    await this.dataPlane.deleteSa(a.inboundSpi, 'in');
    await this.dataPlane.deleteSa(a.outboundSpi, 'out');
    this.spiTunnel.delete(`in:${a.inboundSpi >>> 0}`);
    this.spiTunnel.delete(`out:${a.outboundSpi >>> 0}`);
    if (!a.rekeyed) for (const p of a.policies) this.reqidTunnel.delete(p.reqid);
  }

  private onDataPlaneEvent(e: Parameters<Parameters<DataPlane['onEvent']>[0]>[0]): void {
    if (this.stopping) return;
    if (e.kind === 'expire') {
      const tunnel = this.spiTunnel.get(`${e.direction}:${e.spi >>> 0}`);
      if (!tunnel) return;
      // Volume/lifetime limits from the data plane (RFC 4301 §4.4.2.1): soft → rekey, hard → the SA is gone; rebuild.
      this.log.info(`Child SA ${e.hard ? 'hard' : 'soft'} expiry from the data plane`, { tunnel, spi: e.spi.toString(16) });
      this.command({ kind: e.hard ? 'up' : 'rekey-child', tunnel });
    } else if (e.kind === 'acquire') {
      const tunnel = this.reqidTunnel.get(e.reqid) ?? this.config.tunnels.find((t) => t.startAction === 'trap')?.name;
      if (tunnel) this.command({ kind: 'up', tunnel });
    }
  }

  /** One timer for the whole engine, re-armed after every engine call. */
  private arm(): void {
    if (this.stopping) return;
    let next: number | undefined;
    try {
      next = this.engine.nextTimer();
    } catch (e) {
      this.stats.engineErrors++;
      this.log.error('engine nextTimer() threw', { error: e });
    }
    // A timer that fires no later than needed is kept: every datagram moves the
    // engine's next deadline (a retransmit 4 s on), and a clearTimeout +
    // setTimeout pair per datagram was measurable in the handshake benchmark.
    // An early firing only looks again (onTimer).
    if (this.timer && next !== undefined && this.timerAt !== undefined && this.timerAt <= next) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = next;
    if (next === undefined) return;
    // ceil: Node timers have ms resolution; firing a fraction early would only re-arm.
    const delay = Math.min(Math.max(0, Math.ceil(next - this.clock.now())), 0x7fffffff);
    this.timer = setTimeout(() => this.onTimer(), delay);
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = undefined;
    let due: number | undefined;
    try {
      due = this.engine.nextTimer();
    } catch {
      due = undefined; // arm() reports it
    }
    // Armed for an earlier deadline than the engine has now, or libuv fired a
    // little early (it schedules from its cached loop time, which lags behind
    // the clock after a long turn, e.g. a busy data plane): wait out the rest.
    if (due === undefined || this.clock.now() < due) {
      this.arm();
      return;
    }
    this.call(() => this.engine.tick());
  }

  /** Graceful shutdown: delete every IKE SA (RFC 7296 §1.4.1), flush, close sockets, remove the control socket. Idempotent. */
  stop(reason = 'shutdown'): Promise<void> {
    this.stopping ??= this.shutdown(reason);
    return this.stopping;
  }

  private async shutdown(reason: string): Promise<void> {
    this.log.info('stopping', { reason });
    let names: string[] = [];
    try {
      names = [...new Set(this.engine.status().map((s) => s.tunnel))];
    } catch (e) {
      this.log.error('engine status() threw during shutdown', { error: e });
    }
    for (const tunnel of names) {
      try {
        this.run(this.engine.command({ kind: 'down', tunnel }));
      } catch (e) {
        this.log.error('engine down failed during shutdown', { tunnel, error: e });
      }
    }
    await this.teardown();
    this.log.info('stopped');
  }

  private async teardown(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.health?.close();
    await this.dpChain;
    this.nattIo?.close(); // before the transport closes the sockets whose descriptors it borrows
    // UdpTransport.close() waits for in-flight sends, so the DELETEs leave.
    await this.transport?.close().catch((e: unknown) => this.log.error('closing sockets failed', { error: e }));
    await this.control?.close().catch((e: unknown) => this.log.error('closing control socket failed', { error: e }));
    await this.dataPlane?.close().catch((e: unknown) => this.log.error('closing data plane failed', { error: e }));
    this.keylog?.close();
  }
}
