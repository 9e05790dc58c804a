/**
 * A strongSwan (charon + swanctl) peer in a network namespace, started from
 * an overlay of a cached Debian root (sid: 6.1 with ML-KEM; bookworm: 5.9.8).
 *
 * Host-visible files of an instance (dir = pqg-<pid>-<label>-XXXXXX):
 *   strongswan.conf      bound to /etc/strongswan.conf
 *   swanctl/             bound to /etc/swanctl (swanctl.conf, x509/, private/ ...)
 *   run/                 bound to /run (charon.pid, charon.vici)
 *   log/charon.log       charon's file log (levels from CharonOptions.logLevels)
 *   log/stdout.log       charon's stdout/stderr
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type Netns } from './netns.js';
import { sleep, type ExecOptions, type ExecResult } from './proc.js';
import { makeInstanceDir, peerPackages, RootedProcess, type PeerName } from './rootfs.js';
import {
  renderStrongswanConf,
  renderSwanctlConf,
  type CharonOptions,
  type SwanConnection,
  type SwanSecret,
} from './swanctl-conf.js';
import { parseListSasPretty, type IkeSa } from './swanctl-parse.js';

export * from './swanctl-conf.js';
export * from './swanctl-parse.js';

export type StrongswanPeer = Extract<PeerName, 'sid-strongswan' | 'bookworm-strongswan'>;

export interface StrongswanOptions {
  ns: Netns;
  /** Which cached root (default sid-strongswan, i.e. 6.1). */
  peer?: StrongswanPeer;
  /** Short label for names and logs (default 'ss'). */
  label?: string;
  connections: SwanConnection[];
  secrets?: SwanSecret[];
  charon?: CharonOptions;
  /** Extra files under /etc/swanctl, by relative path (e.g. `x509ca/ca.pem`). */
  files?: Record<string, string | Uint8Array>;
  /**
   * Add `ip rule add to <remote>/32 lookup main pref 100` for every literal
   * remote address, so that with 0.0.0.0/0 selectors kernel-libipsec's routes
   * (table 220) cannot swallow the IKE traffic to the peer itself. Default true.
   */
  protectPeerRoutes?: boolean;
  /** Run `swanctl --load-all` once charon is up (default true). */
  load?: boolean;
}

const SWANCTL_DIRS = [
  'conf.d', 'x509', 'x509ca', 'x509aa', 'x509ocsp', 'x509crl', 'x509ac',
  'pubkey', 'private', 'rsa', 'ecdsa', 'pkcs8', 'pkcs12',
] as const;

export class Strongswan {
  private released = false;

  private constructor(
    readonly opts: StrongswanOptions,
    readonly peer: StrongswanPeer,
    readonly dir: string,
    private readonly releaseDir: () => void,
    readonly daemon: RootedProcess,
  ) {}

  /** strongSwan package version of this root (e.g. `6.1.0-2`). */
  get version(): string {
    return peerPackages(this.peer).get('strongswan-charon') ?? 'unknown';
  }

  /** Host path of charon's file log. */
  get logPath(): string {
    return join(this.dir, 'log', 'charon.log');
  }

  /** Host path of the vici socket (usable from the host: /run is a bound host dir). */
  get viciPath(): string {
    return join(this.dir, 'run', 'charon.vici');
  }

  get pid(): number {
    return this.daemon.pid;
  }

  static async start(o: StrongswanOptions): Promise<Strongswan> {
    const peer = o.peer ?? 'sid-strongswan';
    const label = o.label ?? 'ss';
    const { dir, release } = makeInstanceDir(label);
    try {
      for (const d of ['run', 'log', 'swanctl', ...SWANCTL_DIRS.map((x) => `swanctl/${x}`)]) {
        mkdirSync(join(dir, d), { recursive: true });
      }
      writeFileSync(
        join(dir, 'strongswan.conf'),
        renderStrongswanConf(o.charon ?? {}, { logFile: '/var/log/pqgate/charon.log' }),
      );
      writeFileSync(join(dir, 'swanctl', 'swanctl.conf'), renderSwanctlConf(o.connections, o.secrets));
      for (const [rel, content] of Object.entries(o.files ?? {})) {
        const p = join(dir, 'swanctl', rel);
        mkdirSync(dirname(p), { recursive: true });
        writeFileSync(p, content, { mode: 0o600 });
      }
      if (o.protectPeerRoutes ?? true) {
        const remotes = new Set(
          o.connections.flatMap((c) => c.remoteAddrs ?? []).filter((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a)),
        );
        for (const a of remotes) {
          // Idempotent: a previous instance in the same namespace may have added it.
          const r = await o.ns.ip(['rule', 'add', 'to', `${a}/32`, 'lookup', 'main', 'pref', '100'], { check: false });
          if (r.code !== 0 && !/File exists/.test(r.stderr)) throw new Error(`ip rule add failed: ${r.stderr}`);
        }
      }
      const daemon = await RootedProcess.start({
        ns: o.ns,
        peer,
        label,
        dir,
        binds: [
          { host: join(dir, 'strongswan.conf'), target: '/etc/strongswan.conf' },
          { host: join(dir, 'swanctl'), target: '/etc/swanctl' },
          { host: join(dir, 'run'), target: '/run' },
          { host: join(dir, 'log'), target: '/var/log/pqgate' },
        ],
        argv: ['/usr/lib/ipsec/charon'],
        outFile: join(dir, 'log', 'stdout.log'),
        comm: 'charon',
      });
      const ss = new Strongswan(o, peer, dir, release, daemon);
      await ss.waitReady();
      if (o.load ?? true) await ss.loadAll();
      return ss;
    } catch (e) {
      // Leave the logs for diagnosis in the error, then clean up.
      const log = safeRead(join(dir, 'log', 'charon.log')) + safeRead(join(dir, 'log', 'stdout.log'));
      try {
        release();
      } catch {
        /* reported by the cleanup registry */
      }
      (e as Error).message += log ? `\n--- charon log (${label}) ---\n${log.slice(-4000)}` : '';
      throw e;
    }
  }

  private async waitReady(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(this.viciPath)) {
      if (!this.daemon.running) throw new Error(`charon (${this.opts.label ?? 'ss'}) exited during start-up`);
      if (Date.now() > deadline) throw new Error(`charon (${this.opts.label ?? 'ss'}): no vici socket after ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  /** Run swanctl inside the instance (same network namespace, mount namespace and root as charon). */
  swanctl(args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.daemon.exec('swanctl', args, opts);
  }

  /** Run any command inside the instance. */
  exec(cmd: string, args: readonly string[] = [], opts?: ExecOptions): Promise<ExecResult> {
    return this.daemon.exec(cmd, args, opts);
  }

  async loadAll(): Promise<void> {
    await this.swanctl(['--load-all', '--noprompt']);
  }

  /** Rewrite swanctl.conf and reload it (connections no longer listed are unloaded). */
  async reconfigure(connections: SwanConnection[], secrets: SwanSecret[] = this.opts.secrets ?? []): Promise<void> {
    writeFileSync(join(this.dir, 'swanctl', 'swanctl.conf'), renderSwanctlConf(connections, secrets));
    await this.loadAll();
  }

  /**
   * Initiate a Child SA (and its IKE SA). Resolves with swanctl's output when
   * the exchange completed; rejects (CommandError) when it failed.
   */
  initiate(child: string | undefined, ike?: string, timeoutSec = 15, opts?: ExecOptions): Promise<ExecResult> {
    const args = ['--initiate', '--timeout', String(timeoutSec)];
    if (child) args.push('--child', child);
    if (ike) args.push('--ike', ike);
    return this.swanctl(args, { timeoutMs: (timeoutSec + 5) * 1000, ...opts });
  }

  terminate(sel: { ike?: string; ikeId?: number; child?: string; childId?: number }, timeoutSec = 10): Promise<ExecResult> {
    const args = ['--terminate', '--timeout', String(timeoutSec)];
    if (sel.ike) args.push('--ike', sel.ike);
    if (sel.ikeId !== undefined) args.push('--ike-id', String(sel.ikeId));
    if (sel.child) args.push('--child', sel.child);
    if (sel.childId !== undefined) args.push('--child-id', String(sel.childId));
    return this.swanctl(args, { timeoutMs: (timeoutSec + 5) * 1000 });
  }

  /** `swanctl --list-sas` as printed (for humans and logs). */
  async listSasText(): Promise<string> {
    return (await this.swanctl(['--list-sas', '--noblock'])).stdout;
  }

  /** `swanctl --list-sas --pretty`, parsed (see swanctl-parse.ts for the fields). */
  async listSas(): Promise<IkeSa[]> {
    return parseListSasPretty((await this.swanctl(['--list-sas', '--noblock', '--pretty'])).stdout);
  }

  /** Poll `check` (every 50 ms) until it returns a truthy value or `timeoutMs` passes. */
  async waitFor<T>(check: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 10_000, what = 'condition'): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let lastErr: unknown;
    for (;;) {
      try {
        const v = await check();
        if (v) return v;
      } catch (e) {
        lastErr = e;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}` +
            (lastErr ? ` (last error: ${(lastErr as Error).message})` : '') +
            `\n--- last lines of ${this.logPath} ---\n${this.log().split('\n').slice(-40).join('\n')}`,
        );
      }
      await sleep(50);
    }
  }

  /** Wait until an IKE SA of connection `ike` is ESTABLISHED (and, if given, its Child SA `child` INSTALLED). */
  waitEstablished(ike: string, child?: string, timeoutMs = 10_000): Promise<IkeSa> {
    return this.waitFor(
      async () =>
        (await this.listSas()).find(
          (s) => s.name === ike && s.state === 'ESTABLISHED' && (!child || s.children.some((c) => c.name === child && c.state === 'INSTALLED')),
        ),
      timeoutMs,
      `IKE SA ${ike}${child ? `/${child}` : ''} established`,
    );
  }

  /** charon's file log so far. */
  log(): string {
    return safeRead(this.logPath);
  }

  /** Stop charon, wait for its namespace to empty and remove the instance dir. */
  async stop(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.daemon.stop();
    this.releaseDir();
  }

  /** Stop but keep the directory (logs) until process cleanup; returns the dir. */
  async stopKeepLogs(): Promise<string> {
    if (!this.released) await this.daemon.stop();
    return this.dir;
  }
}

function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

// ------------------------------------------------------------------ common configurations

export interface PskPairOptions {
  /** IKE proposals for both sides. */
  proposals: string[];
  espProposals?: string[];
  psk?: string;
  /** Child SA selectors (initiator view); defaults 10.1.0.0/24 === 10.2.0.0/24. */
  localTs?: string[];
  remoteTs?: string[];
  charon?: CharonOptions;
  unique?: SwanConnection['unique'];
  extra?: Partial<SwanConnection>;
}

/**
 * Matching PSK connection descriptions for a pair of peers: connection `c`,
 * child `k`, ids `left`/`right`, encap forced.
 */
export function pskConnections(
  localAddr: string,
  remoteAddr: string,
  localId: string,
  remoteId: string,
  o: PskPairOptions,
  reverse = false,
): { connections: SwanConnection[]; secrets: SwanSecret[] } {
  const lts = o.localTs ?? ['10.1.0.0/24'];
  const rts = o.remoteTs ?? ['10.2.0.0/24'];
  const conn: SwanConnection = {
    name: 'c',
    localAddrs: [localAddr],
    remoteAddrs: [remoteAddr],
    proposals: o.proposals,
    encap: true,
    fragmentation: 'yes',
    unique: o.unique,
    local: { auth: 'psk', id: localId },
    remote: { auth: 'psk', id: remoteId },
    children: [
      {
        name: 'k',
        localTs: reverse ? rts : lts,
        remoteTs: reverse ? lts : rts,
        espProposals: o.espProposals ?? ['aes256gcm16'],
      },
    ],
    ...o.extra,
  };
  return {
    connections: [conn],
    secrets: [{ type: 'ike', secret: o.psk ?? 'pqgate-interop-psk-0123456789', ids: [localId, remoteId] }],
  };
}
