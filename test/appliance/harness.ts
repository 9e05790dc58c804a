/**
 * Test rig for the appliance: an Appliance (store mode, real control
 * sockets in a temporary directory, real IKE engine, userspace ESP data
 * plane on in-memory TUN devices) and plain responder daemons as its peers,
 * all on one in-memory network (firmware/net/fake.ts), as
 * test/dataplane/daemon-userspace.test.ts runs daemons.
 *
 * Every control reply that passes through `Rig.call` is recorded, so a test
 * can check that no secret ever came back.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Appliance, type ApplianceOptions } from '../../firmware/appliance/appliance.js';
import { Daemon } from '../../firmware/daemon.js';
import { parseDaemonConfig } from '../../firmware/config/schema.js';
import { FakeNetwork, FakeTransport } from '../../firmware/net/fake.js';
import { MemoryLinks } from '../../firmware/dataplane/tun/memory.js';
import { ControlClient } from '../../firmware/control/client.js';
import { Logger } from '../../firmware/log.js';
import type { IkeSaStatus } from '../../firmware/ikev2/engine-types.js';

export const GW = '192.0.2.1';
export const PEERS = ['192.0.2.11', '192.0.2.12', '192.0.2.13'] as const;
export const PROPOSAL = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
/** Distinct PSKs per tunnel: each must be absent from every reply. */
export const PSKS = ['appliance-psk-alpha-0123456789', 'appliance-psk-bravo-0123456789', 'appliance-psk-charlie-012345678'];

export const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until<T>(f: () => T | undefined | false | null | Promise<T | undefined | false | null>, ms = 8000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await wait(10);
  }
}

/** The gateway's tunnel i (0..2) to PEERS[i]. */
export function gwTunnel(i: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const n = ['a', 'b', 'c'][i]!;
  return {
    name: n,
    local_addr: GW,
    remote_addr: PEERS[i],
    local_id: `fqdn:gw-${n}.example`,
    remote_id: `fqdn:peer-${n}.example`,
    psk: PSKS[i],
    proposals: [PROPOSAL],
    esp_proposals: ['aes256gcm16'],
    mode: 'route',
    inside_addr: `203.0.113.${2 * i}/31`,
    start_action: 'start',
    dpd_delay: 0,
    ...extra,
  };
}

/** The peer's side of tunnel i: a responder accepting both AES-GCM key sizes for ESP. */
export function peerTunnel(i: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const n = ['a', 'b', 'c'][i]!;
  return {
    name: n,
    local_addr: PEERS[i],
    remote_addr: '%any',
    local_id: `fqdn:peer-${n}.example`,
    remote_id: `fqdn:gw-${n}.example`,
    psk: PSKS[i],
    proposals: [PROPOSAL],
    esp_proposals: ['aes256gcm16', 'aes128gcm16'],
    mode: 'route',
    inside_addr: `203.0.113.${2 * i + 1}/31`,
    start_action: 'none',
    dpd_delay: 0,
    ...extra,
  };
}

export interface Reply {
  method: string;
  params: unknown;
  ok: boolean;
  text: string;
}

export class Rig {
  readonly dir: string;
  readonly net = new FakeNetwork();
  readonly links = new MemoryLinks();
  readonly peers: Daemon[] = [];
  readonly replies: Reply[] = [];
  readonly logs: string[] = [];
  app!: Appliance;
  private pump: NodeJS.Timeout;
  private clients: ControlClient[] = [];

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'pqg-app-'));
    // Other users (the web socket test's unprivileged client) must be able to traverse it.
    chmodSync(this.dir, 0o755);
    // The daemons run on real timers; deliver whatever is due every millisecond.
    this.pump = setInterval(() => this.net.deliverDue(), 1);
  }

  get adminSocket(): string {
    return join(this.dir, 'run', 'ctl.sock');
  }
  get webSocket(): string {
    return join(this.dir, 'run-web', 'web.sock');
  }
  get dbPath(): string {
    return join(this.dir, 'db', 'pqgate.db');
  }

  async startPeer(i: number, extra: Record<string, unknown> = {}): Promise<Daemon> {
    const config = parseDaemonConfig({ listen: [PEERS[i]], log_level: 'error', control_socket: '/nonexistent/ctl.sock', tunnels: [peerTunnel(i, extra)] });
    const d = await Daemon.start({ config, noControl: true, links: new MemoryLinks(), transportFactory: async () => new FakeTransport(this.net, { addresses: [PEERS[i]!] }), sourceAddressFor: null });
    this.peers[i] = d;
    return d;
  }

  async startAppliance(tunnels: Record<string, unknown>[], opts: Partial<ApplianceOptions> = {}): Promise<Appliance> {
    this.app = await Appliance.start({
      db: this.dbPath,
      initialDocument: { version: 1, listen: [GW], log_level: 'info', tunnels },
      controlSocket: this.adminSocket,
      webSocket: this.webSocket,
      links: this.links,
      transportFactory: async () => new FakeTransport(this.net, { addresses: [GW] }),
      sourceAddressFor: null,
      logger: new Logger({ level: 'debug', sink: (l) => this.logs.push(l) }),
      ...opts,
    });
    return this.app;
  }

  async client(path = this.adminSocket): Promise<ControlClient> {
    const c = await ControlClient.connect(path, { timeoutMs: 20_000 });
    this.clients.push(c);
    return c;
  }

  /** One call on the admin socket (or `path`), recorded. Rejects like the client does. */
  async call<T = any>(method: string, params?: unknown, path = this.adminSocket): Promise<T> {
    const c = await ControlClient.connect(path, { timeoutMs: 20_000 });
    try {
      const r = await c.call<T>(method, params);
      this.replies.push({ method, params, ok: true, text: JSON.stringify(r) });
      return r;
    } catch (e) {
      this.replies.push({ method, params, ok: false, text: JSON.stringify({ code: (e as { code?: string }).code, message: (e as Error).message }) });
      throw e;
    } finally {
      c.close();
    }
  }

  /** The call's error code (fails the test if the call succeeds). */
  async callError(method: string, params?: unknown, path = this.adminSocket): Promise<{ code: string; message: string }> {
    try {
      await this.call(method, params, path);
    } catch (e) {
      return { code: (e as { code: string }).code, message: (e as Error).message };
    }
    throw new Error(`${method} succeeded; an error was expected`);
  }

  /** Established SAs with installed Child SAs, by tunnel, from the appliance's engine. */
  established(names: readonly string[]): Promise<Map<string, IkeSaStatus>> {
    return until(() => {
      const st = this.app.daemon.status();
      const m = new Map<string, IkeSaStatus>();
      for (const n of names) {
        const sa = st.find((s) => s.tunnel === n && s.state === 'ESTABLISHED' && s.children.length === 1 && s.children[0]!.state === 'INSTALLED');
        if (!sa) return undefined;
        m.set(n, sa);
      }
      return m;
    }, 10_000, `${names.join(', ')} established`);
  }

  async close(): Promise<void> {
    for (const c of this.clients.splice(0)) c.close();
    await this.app?.stop('test end');
    for (const p of this.peers) await p?.stop('test end');
    clearInterval(this.pump);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The identity of an SA for "untouched" checks: IKE SPIs and Child SA SPIs. */
export function spis(sa: IkeSaStatus): string {
  return `${sa.spiI}_${sa.spiR}/${sa.children.map((c) => `${c.spiIn}:${c.spiOut}`).join(',')}`;
}
