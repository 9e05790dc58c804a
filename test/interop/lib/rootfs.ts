/**
 * Run a peer daemon (charon, pluto) from a cached Debian root inside a
 * network namespace and a private mount namespace.
 *
 * Layout of one instance (host paths, under os.tmpdir()):
 *   pqg-<pid>-<label>-XXXXXX/
 *     upper/ work/   overlayfs upper and work dirs (the cached root is the
 *                    read-only lower layer, so every instance has its own /etc,
 *                    /run, /var and the cache is never written)
 *     root/          overlay mount point; mounted *only* inside the daemon's
 *                    private mount namespace, so on the host it stays empty
 *     <binds>        host directories bind-mounted into the root (config, /run,
 *                    logs) so tests read logs and sockets without entering it
 *
 * The mount namespace is created by `unshare --mount --propagation private`
 * and its only long-lived member is the daemon, so every mount (overlay,
 * proc, sys, dev, binds) disappears when the daemon exits. The directory is
 * deleted only after no process is left in that mount namespace and `findmnt`
 * shows nothing below it, with `rm -rf --one-file-system`.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUN_PREFIX, type Netns } from './netns.js';
import {
  killPidSync,
  onCleanup,
  pidAlive,
  run,
  runSync,
  sleep,
  sleepSync,
  type ExecOptions,
  type ExecResult,
  type Spawned,
} from './proc.js';

export const PEER_CACHE = process.env['PQGATE_PEER_CACHE'] ?? '/var/cache/pqgate/peers';

export const PEERS = ['sid-strongswan', 'bookworm-strongswan', 'trixie-libreswan'] as const;
export type PeerName = (typeof PEERS)[number];

export function peerRootPath(peer: PeerName): string {
  return join(PEER_CACHE, peer);
}

/** Package versions recorded in the root's stamp file by test/peers/setup.sh. */
export function peerPackages(peer: PeerName): Map<string, string> {
  const m = new Map<string, string>();
  const stamp = readFileSync(join(peerRootPath(peer), '.pqgate-stamp'), 'utf8');
  const body = stamp.slice(stamp.indexOf('\n---\n') + 5);
  for (const line of body.split('\n')) {
    const [pkg, ver] = line.split(' ');
    if (pkg && ver) m.set(pkg, ver);
  }
  return m;
}

/** Why `peer` cannot be used, or undefined if its root is built. */
export function peerMissingReason(peer: PeerName): string | undefined {
  if (!existsSync(join(peerRootPath(peer), '.pqgate-stamp'))) {
    return `peer root ${peerRootPath(peer)} is not built: run \`sudo bash test/peers/setup.sh\``;
  }
  return undefined;
}

/** Single-quote for sh. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

// ------------------------------------------------------------------ instance dirs

/** Create a private temp dir `pqg-<pid>-<label>-XXXXXX` whose removal is registered for cleanup. */
export function makeInstanceDir(label: string): { dir: string; release: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `${RUN_PREFIX}${label}-`));
  const unregister = onCleanup(() => removeInstanceDir(dir), `dir ${dir}`);
  return {
    dir,
    release: () => {
      removeInstanceDir(dir);
      unregister();
    },
  };
}

/** Mount points at or below `dir`, as the host's mount namespace sees them. */
export function mountsUnder(dir: string): string[] {
  const r = runSync('findmnt', ['-rn', '-o', 'TARGET'], { check: false });
  return r.stdout
    .split('\n')
    .map((l) => l.replace(/\\x20/g, ' '))
    .filter((t) => t === dir || t.startsWith(dir + '/'));
}

/** Delete an instance dir, refusing while anything is mounted below it. */
export function removeInstanceDir(dir: string): void {
  if (!dir.startsWith(join(tmpdir(), 'pqg-'))) throw new Error(`refusing to remove ${dir}`);
  if (!existsSync(dir)) return;
  const m = mountsUnder(dir);
  if (m.length > 0) throw new Error(`not removing ${dir}: still mounted: ${m.join(', ')}`);
  runSync('rm', ['-rf', '--one-file-system', '--', dir]);
}

/** Leftover instance dirs of dead test processes (pqg-<pid>-* in tmpdir). */
export function sweepStaleDirs(): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(tmpdir())) {
    const m = /^pqg-(\d+)-/.exec(name);
    if (!m || Number(m[1]) === process.pid || pidAlive(Number(m[1]))) continue;
    const dir = join(tmpdir(), name);
    try {
      removeInstanceDir(dir);
      removed.push(dir);
    } catch {
      /* mounted or busy: leave it for a human */
    }
  }
  return removed;
}

// ------------------------------------------------------------------ rooted processes

export interface Bind {
  /** Host path (file or directory) to bind. */
  host: string;
  /** Absolute path inside the root. */
  target: string;
}

export interface RootedOptions {
  ns: Netns;
  peer: PeerName;
  /** Short label used in names and logs. */
  label: string;
  /** Instance directory (from makeInstanceDir). */
  dir: string;
  binds?: Bind[];
  /** Command and arguments inside the chroot. */
  argv: string[];
  /** Shell run inside the chroot before the daemon starts (e.g. NSS init). */
  prepare?: string;
  /** Host file receiving the daemon's stdout/stderr. */
  outFile: string;
  /** Name the process takes after exec (its /proc/PID/comm), to know when it runs. */
  comm: string;
}

export class RootedProcess {
  private unregisterReap: (() => void) | undefined;

  private constructor(
    readonly opts: RootedOptions,
    readonly proc: Spawned,
    readonly mntNs: string,
  ) {}

  get pid(): number {
    return this.proc.pid;
  }

  /**
   * Start `argv` chrooted into an overlay of the cached peer root:
   * `ip netns exec NS unshare --mount --propagation private sh -c "mounts...; exec chroot ROOT argv"`.
   */
  static async start(o: RootedOptions): Promise<RootedProcess> {
    const lower = peerRootPath(o.peer);
    const why = peerMissingReason(o.peer);
    if (why) throw new Error(why);
    const upper = join(o.dir, 'upper');
    const work = join(o.dir, 'work');
    const root = join(o.dir, 'root');
    for (const d of [upper, work, root]) mkdirSync(d, { recursive: true });
    const R = shq(root);
    const lines = [
      'set -e',
      `mount -t overlay overlay -o ${shq(`lowerdir=${lower},upperdir=${upper},workdir=${work}`)} ${R}`,
      `mount -t proc proc ${R}/proc`,
      `mount -t sysfs sysfs ${R}/sys`,
      // devtmpfs gives /dev/net/tun, /dev/urandom; rbind only as a fallback. Either
      // way the mount lives in this private namespace only.
      `mount -t devtmpfs none ${R}/dev 2>/dev/null || mount --rbind /dev ${R}/dev`,
    ];
    for (const b of o.binds ?? []) {
      const t = `${R}${shq(b.target)}`;
      if (!existsSync(b.host)) throw new Error(`bind source ${b.host} does not exist`);
      const isDir = statSync(b.host).isDirectory();
      lines.push(isDir ? `mkdir -p ${t}` : `mkdir -p "$(dirname ${t})" && touch ${t}`);
      lines.push(`mount --bind ${shq(b.host)} ${t}`);
    }
    if (o.prepare) lines.push(`chroot ${R} sh -c ${shq(o.prepare)}`);
    lines.push(`exec chroot ${R} ${o.argv.map(shq).join(' ')}`);
    writeFileSync(join(o.dir, 'start.sh'), lines.join('\n') + '\n');
    const proc = o.ns.spawn(
      ['unshare', '--mount', '--propagation', 'private', 'sh', join(o.dir, 'start.sh')],
      o.outFile,
      `${o.label} (${o.peer})`,
    );
    // The spawned PID execs ip -> unshare -> sh; the shell forks for the mounts and
    // finally execs chroot -> daemon, so the same PID ends up as the daemon.
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (proc.hasExited()) {
        const out = safeRead(o.outFile);
        throw new Error(`${o.label}: ${o.comm} exited during start-up:\n${out.slice(-3000)}`);
      }
      const comm = safeRead(`/proc/${proc.pid}/comm`).trim();
      if (comm === o.comm.slice(0, 15)) break;
      if (Date.now() > deadline) {
        await proc.stop(1000);
        throw new Error(`${o.label}: ${o.comm} did not start (comm=${comm})`);
      }
      await sleep(10);
    }
    let mntNs = '';
    try {
      mntNs = readlinkSync(`/proc/${proc.pid}/ns/mnt`);
    } catch {
      /* exited; reported by the caller's readiness check */
    }
    const rp = new RootedProcess(o, proc, mntNs);
    // On abnormal exit: kill the daemon and every helper left in its mount
    // namespace before the instance dir (registered earlier) is removed.
    rp.unregisterReap = onCleanup(() => {
      killPidSync(proc.pid);
      rp.reapNamespace();
    }, `${o.label}: mount namespace ${mntNs}`);
    return rp;
  }

  /** Host path of a file inside the instance's upper layer (files the daemon wrote). */
  upperPath(p: string): string {
    return join(this.opts.dir, 'upper', p);
  }

  /**
   * Run a command in the daemon's namespaces and root (network + mount ns,
   * root directory) via nsenter, i.e. exactly where the daemon runs.
   */
  exec(cmd: string, args: readonly string[] = [], opts?: ExecOptions): Promise<ExecResult> {
    if (this.proc.hasExited()) return Promise.reject(new Error(`${this.opts.label}: daemon has exited`));
    return run('nsenter', ['-t', String(this.pid), '-m', '-n', '-r', '-w', cmd, ...args], opts);
  }

  execSync(cmd: string, args: readonly string[] = [], opts?: ExecOptions): ExecResult {
    return runSync('nsenter', ['-t', String(this.pid), '-m', '-n', '-r', '-w', cmd, ...args], opts);
  }

  get running(): boolean {
    return !this.proc.hasExited();
  }

  /** Stop the daemon, wait for its mount namespace to empty, and leave the dir to the caller. */
  async stop(graceMs = 5000): Promise<void> {
    await this.proc.stop(graceMs);
    this.reapNamespace();
    this.unregisterReap?.();
  }

  /**
   * Processes still in the daemon's mount namespace are helpers we started
   * there (nsenter'd swanctl/whack, or daemon children); wait briefly, then kill
   * them by PID, so the namespace and its mounts are gone.
   */
  reapNamespace(): void {
    if (!this.mntNs) return;
    for (let round = 0; round < 2; round++) {
      const left = pidsInMntNs(this.mntNs);
      if (left.length === 0) return;
      if (round === 0) sleepSync(500);
      else for (const pid of left) killPidSync(pid, 1000);
    }
  }
}

function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/** PIDs whose mount namespace is `ns` (as read from /proc/PID/ns/mnt). */
export function pidsInMntNs(ns: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readlinkSync(`/proc/${e}/ns/mnt`) === ns && pidAlive(Number(e))) pids.push(Number(e));
    } catch {
      /* raced with exit */
    }
  }
  return pids;
}
