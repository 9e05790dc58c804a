/**
 * Network namespaces for interop tests: namespaces, veth links, an optional
 * NAT namespace in the middle, and running commands inside a namespace.
 *
 * Address plan (documentation ranges only, RFC 5737):
 *   192.0.2.0/24     direct link between the two hosts (no NAT)
 *   203.0.113.0/24   "public" side of the NAT (the host not behind NAT + NAT's outside)
 *   198.51.100.0/24  "private" side behind the NAT (the NATed host + NAT's inside)
 * Any other address is rejected, so a typo cannot route test traffic elsewhere.
 *
 * Names are `pqg-<pid>-<tag>`: unique per test process, and a later run can
 * tell from the PID whether a leftover namespace's creator is still alive
 * (see sweepStale()).
 */
import { readdirSync } from 'node:fs';
import {
  cleanupAll,
  killPidSync,
  onCleanup,
  pidAlive,
  run,
  runSync,
  spawnLogged,
  type ExecOptions,
  type ExecResult,
  type Spawned,
} from './proc.js';

export const NS_PREFIX = 'pqg-';
export const RUN_PREFIX = `${NS_PREFIX}${process.pid}-`;

const ALLOWED_NETS = ['192.0.2.', '198.51.100.', '203.0.113.'] as const;

/** Throw unless `cidrOrAddr` lies in one of the three documentation /24s. */
export function assertTestAddress(cidrOrAddr: string): void {
  const addr = cidrOrAddr.split('/')[0]!;
  if (!ALLOWED_NETS.some((p) => addr.startsWith(p)) || !/^\d+\.\d+\.\d+\.\d+$/.test(addr)) {
    throw new Error(`address ${cidrOrAddr} is outside 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24`);
  }
}

export class Netns {
  private unregister: (() => void) | undefined;
  private destroyed = false;

  private constructor(readonly name: string) {}

  /** Create `pqg-<pid>-<tag>` with `lo` up. */
  static async create(tag: string): Promise<Netns> {
    if (!/^[A-Za-z0-9_.-]{1,40}$/.test(tag)) throw new Error(`bad namespace tag ${tag}`);
    const ns = new Netns(`${RUN_PREFIX}${tag}`);
    await run('ip', ['netns', 'add', ns.name]);
    ns.unregister = onCleanup(() => ns.destroySync(), `netns ${ns.name}`);
    await ns.ip(['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Run `ip -n NS ...`. */
  ip(args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return run('ip', ['-n', this.name, ...args], opts);
  }

  /** Run a command inside the namespace (`ip netns exec`). */
  exec(cmd: string, args: readonly string[] = [], opts?: ExecOptions): Promise<ExecResult> {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  /** Run a shell snippet inside the namespace. */
  sh(script: string, opts?: ExecOptions): Promise<ExecResult> {
    return this.exec('sh', ['-c', script], opts);
  }

  /**
   * Start a long-running process inside the namespace. Its output goes to
   * `logFile`; it is stopped (by PID) on cleanup.
   */
  spawn(argv: readonly string[], logFile: string, label = argv[0]!): Spawned {
    return spawnLogged(['ip', 'netns', 'exec', this.name, ...argv], logFile, `${this.name}: ${label}`);
  }

  /** Add an address (must be a documentation address) to an interface. */
  async addAddr(dev: string, cidr: string): Promise<void> {
    assertTestAddress(cidr);
    await this.ip(['addr', 'add', cidr, 'dev', dev]);
  }

  /** Default route via `gw` (a documentation address). */
  async defaultRoute(gw: string): Promise<void> {
    assertTestAddress(gw);
    await this.ip(['route', 'replace', 'default', 'via', gw]);
  }

  async sysctl(key: string, value: string | number): Promise<void> {
    await this.exec('sysctl', ['-q', '-w', `${key}=${value}`]);
  }

  /** Apply an nftables ruleset inside the namespace (host nft, or a peer root's). */
  async nft(ruleset: string): Promise<void> {
    await this.exec('nft', ['-f', '-'], { input: ruleset });
  }

  /** PIDs of processes whose network namespace is this one. */
  pids(): number[] {
    const r = runSync('ip', ['netns', 'pids', this.name], { check: false });
    return r.stdout
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
      .filter((n) => Number.isInteger(n) && n > 0);
  }

  async destroy(): Promise<void> {
    this.destroySync();
  }

  /**
   * Delete the namespace. Processes still inside it are ones we started in
   * it (nothing else can enter a pqg- namespace), so they are killed by PID.
   */
  destroySync(): void {
    if (this.destroyed) return;
    for (const pid of this.pids()) killPidSync(pid, 1000);
    runSync('ip', ['netns', 'del', this.name], { check: false });
    this.destroyed = true;
    this.unregister?.();
  }
}

/** `exec(ns, cmd, args)`: run a command inside a namespace (same as `ns.exec`). */
export function exec(ns: Netns, cmd: string, args: readonly string[] = [], opts?: ExecOptions): Promise<ExecResult> {
  return ns.exec(cmd, args, opts);
}

/** Start a long-running process inside a namespace (same as `ns.spawn`); stopped by PID on cleanup. */
export function spawnIn(ns: Netns, argv: readonly string[], logFile: string, label?: string): Spawned {
  return ns.spawn(argv, logFile, label);
}

/** Create a veth pair with one end in each namespace (created there directly, so no name clashes). */
export async function vethLink(
  a: Netns,
  aIf: string,
  aCidr: string | undefined,
  b: Netns,
  bIf: string,
  bCidr: string | undefined,
  mtu?: number,
): Promise<void> {
  if (aIf.length > 15 || bIf.length > 15) throw new Error('interface names are limited to 15 characters');
  await run('ip', ['link', 'add', aIf, 'netns', a.name, 'type', 'veth', 'peer', 'name', bIf, 'netns', b.name]);
  for (const [ns, dev, cidr] of [
    [a, aIf, aCidr],
    [b, bIf, bCidr],
  ] as const) {
    if (mtu) await ns.ip(['link', 'set', dev, 'mtu', String(mtu)]);
    if (cidr) await ns.addAddr(dev, cidr);
    await ns.ip(['link', 'set', dev, 'up']);
  }
}

export interface Pair {
  /** Host on the "public" side (for a gateway under test, typically pqgate). */
  readonly left: Netns;
  /** The other host; behind the NAT when `nat` is set. */
  readonly right: Netns;
  /** The NAT namespace, when requested. */
  readonly nat?: Netns;
  /** Address `left` uses, and the one `right` must contact it on. */
  readonly leftAddr: string;
  /** Address `right` has on its own interface. */
  readonly rightAddr: string;
  /** Address under which `left` sees `right` (the NAT's public address when NATed). */
  readonly rightSeenAs: string;
  /** Interface names (always `eth0` inside each host). */
  readonly dev: 'eth0';
  /**
   * Inner (tunnelled) networks, from the /24 the topology leaves unused:
   * `net` for traffic selectors, `addr` to put on `lo` (see addInnerAddresses).
   */
  readonly leftInner: { addr: string; net: string };
  readonly rightInner: { addr: string; net: string };
  destroy(): Promise<void>;
}

export interface PairOptions {
  /** Put `right` behind an nftables masquerade NAT in a middle namespace. */
  nat?: boolean;
  /** Tag prefix for namespace names (default 'p'). */
  tag?: string;
  /** Link MTU (default 1500). */
  mtu?: number;
}

/**
 * Two hosts, directly on 192.0.2.0/24 (left .1, right .2), or with `nat`:
 *   left 203.0.113.1 — (203.0.113.254) nat (198.51.100.254) — right 198.51.100.2
 * The NAT masquerades everything leaving its public interface, so `left`
 * sees `right` as 203.0.113.254 and `right` reaches `left` via its default route.
 */
export async function createPair(opts: PairOptions = {}): Promise<Pair> {
  const tag = opts.tag ?? 'p';
  const created: Netns[] = [];
  const destroy = async (): Promise<void> => {
    for (const ns of created.reverse()) ns.destroySync();
  };
  try {
    const left = await Netns.create(`${tag}-l`);
    created.push(left);
    const right = await Netns.create(`${tag}-r`);
    created.push(right);
    if (!opts.nat) {
      await vethLink(left, 'eth0', '192.0.2.1/24', right, 'eth0', '192.0.2.2/24', opts.mtu);
      return {
        left,
        right,
        leftAddr: '192.0.2.1',
        rightAddr: '192.0.2.2',
        rightSeenAs: '192.0.2.2',
        dev: 'eth0',
        leftInner: { addr: '198.51.100.1', net: '198.51.100.0/25' },
        rightInner: { addr: '198.51.100.129', net: '198.51.100.128/25' },
        destroy,
      };
    }
    const nat = await Netns.create(`${tag}-n`);
    created.push(nat);
    await vethLink(left, 'eth0', '203.0.113.1/24', nat, 'pub', '203.0.113.254/24', opts.mtu);
    await vethLink(right, 'eth0', '198.51.100.2/24', nat, 'priv', '198.51.100.254/24', opts.mtu);
    await right.defaultRoute('198.51.100.254');
    await nat.sysctl('net.ipv4.ip_forward', 1);
    await nat.nft(
      [
        'table ip pqgate_nat {',
        '  chain postrouting {',
        '    type nat hook postrouting priority srcnat; policy accept;',
        '    oifname "pub" masquerade',
        '  }',
        '}',
      ].join('\n'),
    );
    return {
      left,
      right,
      nat,
      leftAddr: '203.0.113.1',
      rightAddr: '198.51.100.2',
      rightSeenAs: '203.0.113.254',
      dev: 'eth0',
      leftInner: { addr: '192.0.2.1', net: '192.0.2.0/25' },
      rightInner: { addr: '192.0.2.129', net: '192.0.2.128/25' },
      destroy,
    };
  } catch (e) {
    await destroy();
    throw e;
  }
}

/** Put each side's inner address on its `lo` (as /32), so tunnelled traffic has a source. */
export async function addInnerAddresses(pair: Pair): Promise<void> {
  await pair.left.addAddr('lo', `${pair.leftInner.addr}/32`);
  await pair.right.addAddr('lo', `${pair.rightInner.addr}/32`);
}

/**
 * Send `count` UDP datagrams from `ns` to `dst:port` (bash's /dev/udp; no
 * listener needed: the packets are counted by the IPsec SAs, not delivered).
 */
export async function sendUdp(ns: Netns, dst: string, port = 9, count = 3, payload = 'pqgate-probe'): Promise<void> {
  assertTestAddress(dst);
  const script = `for i in $(seq ${count}); do echo ${payload}-$i > /dev/udp/${dst}/${port}; done`;
  await ns.exec('bash', ['-c', script], { check: false });
}

/**
 * Remove leftovers of earlier runs: `pqg-<pid>-*` namespaces whose creating
 * process is gone. Processes still inside such a namespace were started by
 * that run, so they are killed by PID. Returns the namespaces removed.
 */
export function sweepStale(): string[] {
  const removed: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync('/run/netns');
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = /^pqg-(\d+)-/.exec(name);
    if (!m) continue;
    const creator = Number(m[1]);
    if (creator === process.pid || pidAlive(creator)) continue;
    const pids = runSync('ip', ['netns', 'pids', name], { check: false })
      .stdout.split(/\s+/)
      .filter(Boolean)
      .map(Number);
    for (const pid of pids) killPidSync(pid, 1000);
    runSync('ip', ['netns', 'del', name], { check: false });
    removed.push(name);
  }
  return removed;
}

/** Namespaces created by this process that still exist. */
export function ownNamespaces(): string[] {
  try {
    return readdirSync('/run/netns').filter((n) => n.startsWith(RUN_PREFIX));
  } catch {
    return [];
  }
}

/** True when running as root (the interop tests need it). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Why interop tests cannot run here, or undefined if they can. */
export function interopSkipReason(): string | undefined {
  if (!isRoot()) return 'interop tests need root (network namespaces, mounts): run `sudo npm test`';
  if (runSync('sh', ['-c', 'command -v ip && command -v nsenter && command -v unshare'], { check: false }).code !== 0) {
    return 'interop tests need iproute2 and util-linux (run `bash test/peers/setup.sh`)';
  }
  return undefined;
}

export { cleanupAll };
