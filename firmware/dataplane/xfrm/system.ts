/**
 * The XFRM data plane's edges to the system, behind small interfaces so the
 * data plane itself is testable without a kernel:
 *  - IpRunner: iproute2 (`ip -batch -` with commands on stdin, `ip ARGS` for
 *    queries), optionally inside a network namespace (`ip -n NS`);
 *  - the event monitor (`ip xfrm monitor acquire expire`, a long-running child);
 *  - UDP_ENCAP on this process's own NAT-T sockets (RFC 3948 §2.2: the
 *    kernel must see ESP-in-UDP on port 4500 before userspace does). The
 *    sockets belong to the IKE transport; we find them by port through
 *    /proc/net/udp{,6} and /proc/self/fd, so the transport needs no hook.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { XfrmError } from './algorithms.js';
import { MonitorParser, type MonitorEvent } from './parse.js';

export interface IpRunner {
  /** `ip -batch -`: run these lines, stop at the first failure (throws XfrmError with ip's message). */
  batch(lines: string[]): Promise<void>;
  /** `ip ARGS...` → stdout; throws XfrmError on a non-zero exit. */
  run(args: string[]): Promise<string>;
}

export interface XfrmMonitor {
  close(): void;
}

export interface XfrmSystem {
  ip: IpRunner;
  /** Start delivering kernel XFRM events. */
  monitor(onEvent: (e: MonitorEvent) => void, onError: (e: Error) => void): XfrmMonitor;
  /** Set UDP_ENCAP_ESPINUDP on every socket of ours bound to UDP `port` not yet marked; returns how many were marked. */
  enableUdpEncap(port: number): number;
}

export class IprouteRunner implements IpRunner {
  constructor(private readonly opts: { ipPath?: string; netns?: string; timeoutMs?: number } = {}) {}

  private argv(args: string[]): string[] {
    return this.opts.netns ? ['-n', this.opts.netns, ...args] : args;
  }

  batch(lines: string[]): Promise<void> {
    if (lines.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const child = execFile(this.opts.ipPath ?? 'ip', this.argv(['-batch', '-']), { timeout: this.opts.timeoutMs ?? 10_000 }, (err, _stdout, stderr) => {
        if (!err) return resolve();
        // ip names the failing line as "Command failed -:N"; report that command without its keys.
        const m = /Command failed -:(\d+)/.exec(stderr);
        const failed = m ? lines[Number(m[1]) - 1] : undefined;
        const what = failed ? redactKeys(failed) : `${lines.length} command(s)`;
        reject(new XfrmError('ERR_XFRM_IP', `ip ${what}: ${stderr.replace(/Command failed -:\d+\s*/g, '').trim() || err.message}`, { cause: err }));
      });
      child.stdin?.end(lines.join('\n') + '\n');
    });
  }

  run(args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(this.opts.ipPath ?? 'ip', this.argv(args), { timeout: this.opts.timeoutMs ?? 10_000, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new XfrmError('ERR_XFRM_IP', `ip ${args.join(' ')}: ${stderr.trim() || err.message}`, { cause: err }));
        else resolve(stdout);
      });
    });
  }
}

/** Replace hex key material in an ip command line (for error messages and logs). */
export function redactKeys(line: string): string {
  return line.replace(/\b(aead|enc|auth-trunc|auth)\s+(\S+)\s+0x[0-9a-fA-F]+/g, '$1 $2 0x<key>');
}

/** UDP_ENCAP_ESPINUDP (linux/udp.h). */
const UDP_ENCAP_ESPINUDP = 2;

export class LinuxXfrmSystem implements XfrmSystem {
  readonly ip: IpRunner;
  private readonly marked = new Set<string>();

  constructor(private readonly opts: { ipPath?: string; netns?: string; setUdpEncap?: (fd: number, type: number) => void } = {}) {
    this.ip = new IprouteRunner(opts);
  }

  monitor(onEvent: (e: MonitorEvent) => void, onError: (e: Error) => void): XfrmMonitor {
    let closed = false;
    let child: ChildProcess | undefined;
    let restarts = 0;
    const start = (): void => {
      const argv = this.opts.netns ? ['-n', this.opts.netns] : [];
      child = spawn(this.opts.ipPath ?? 'ip', [...argv, 'xfrm', 'monitor', 'acquire', 'expire'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const parser = new MonitorParser(onEvent);
      child.stdout!.setEncoding('utf8').on('data', (d: string) => parser.push(d));
      child.stderr!.setEncoding('utf8').on('data', (d: string) => onError(new XfrmError('ERR_XFRM_MONITOR', `ip xfrm monitor: ${d.trim()}`)));
      child.on('error', (e) => onError(new XfrmError('ERR_XFRM_MONITOR', `ip xfrm monitor: ${e.message}`, { cause: e })));
      child.on('exit', (code) => {
        parser.end();
        if (closed) return;
        // Expiry events drive rekeys: keep the monitor alive (with a bound on restarts per process life).
        onError(new XfrmError('ERR_XFRM_MONITOR', `ip xfrm monitor exited (${code}); restarting`));
        if (restarts++ < 100) setTimeout(() => !closed && start(), 1000).unref();
      });
    };
    start();
    return {
      close: () => {
        closed = true;
        child?.kill('SIGTERM');
      },
    };
  }

  enableUdpEncap(port: number): number {
    const set = this.opts.setUdpEncap;
    if (!set) throw new XfrmError('ERR_XFRM_ENCAP', 'no setUdpEncap (the pqtun addon) available');
    let n = 0;
    for (const { fd, inode } of ownUdpSockets(port)) {
      if (this.marked.has(inode)) continue;
      set(fd, UDP_ENCAP_ESPINUDP);
      this.marked.add(inode);
      n++;
    }
    return n;
  }
}

/** Socket inodes bound to local UDP `port` in /proc/net/udp and udp6 text. */
export function udpInodesForPort(procNetUdp: string, port: number): string[] {
  const out: string[] = [];
  for (const line of procNetUdp.split('\n')) {
    // "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ..."
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !/^\d+:$/.test(f[0]!)) continue;
    const local = f[1]!;
    const p = parseInt(local.slice(local.indexOf(':') + 1), 16);
    if (p === port) out.push(f[9]!);
  }
  return out;
}

/** This process's file descriptors that are UDP sockets bound to `port`. */
export function ownUdpSockets(port: number): { fd: number; inode: string }[] {
  let text = '';
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    try {
      text += readFileSync(f, 'utf8');
    } catch {
      // no IPv6
    }
  }
  const inodes = new Set(udpInodesForPort(text, port));
  if (inodes.size === 0) return [];
  const out: { fd: number; inode: string }[] = [];
  for (const name of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${name}`);
    } catch {
      continue; // closed meanwhile
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m && inodes.has(m[1]!)) out.push({ fd: Number(name), inode: m[1]! });
  }
  return out;
}
