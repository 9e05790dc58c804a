/**
 * Log records to the local syslog daemon in RFC 5424 format (facility
 * daemon, APP-NAME "pqgate", PROCID our pid).
 *
 * /dev/log is a unix *datagram* socket and Node has no unix datagram
 * sockets (node:dgram is UDP only, node:net is streams only). Rather than a
 * native dependency, records go through one long-lived util-linux
 * `logger(1)` process: `logger --rfc5424 --prio-prefix` reads one record per
 * line from its stdin, takes the priority from a `<PRI>` prefix on each line
 * (RFC 5424 §6.2.1: facility · 8 + severity) and writes a datagram with the
 * RFC 5424 header (version 1, timestamp, hostname, app-name, procid).
 *
 * `auto` (the default) enables this when /dev/log is a socket and the
 * installed logger is util-linux's (it understands --prio-prefix); busybox's
 * logger does not, and the appliance image already feeds the daemon's
 * stdout to syslog itself (image/overlay/usr/lib/pqgate/service). If logger
 * exits, it is restarted with a growing delay; records in between are lost
 * (stdout still has them), never queued without bound.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { formatRecordText, type LogLevel, type LogRecord } from '../log.js';

/** RFC 5424 §6.2.1 severities. */
const SEVERITY: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, debug: 7, trace: 7 };
/** Facility 3 = system daemons. */
const FACILITY_DAEMON = 3;
/** Lines written while logger's stdin is congested are dropped beyond this (bytes). */
const MAX_PENDING = 1 << 20;

export type SyslogMode = 'auto' | 'on' | 'off';

export interface SyslogOptions {
  /** Socket path (default /dev/log). */
  socket?: string;
  /** logger binary (default `logger` from PATH). */
  logger?: string;
  tag?: string;
  /** Problems with syslog itself (logged to stdout by the caller). */
  onProblem?: (msg: string) => void;
}

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

/** Why syslog cannot be used here, or undefined if it can. */
export function syslogUnavailable(o: SyslogOptions = {}): string | undefined {
  const sock = o.socket ?? '/dev/log';
  if (!isSocket(sock)) return `${sock} is not a socket (no syslog daemon)`;
  const r = spawnSync(o.logger ?? 'logger', ['--help'], { encoding: 'utf8', timeout: 5000 });
  if (r.error) return `no logger(1): ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`;
  if (!`${r.stdout}${r.stderr}`.includes('--prio-prefix')) return 'logger(1) is not util-linux (no --prio-prefix)';
  return undefined;
}

/** `<PRI>` + the record's text (no timestamp: the RFC 5424 header has one). */
export function syslogLine(r: LogRecord): string {
  return `<${FACILITY_DAEMON * 8 + SEVERITY[r.level]}>${formatRecordText(r).replace(/[\r\n]+/g, ' ')}\n`;
}

export class SyslogSink {
  private proc: ChildProcess | undefined;
  private closed = false;
  private restarts = 0;
  private timer: NodeJS.Timeout | undefined;
  dropped = 0;

  constructor(private readonly o: SyslogOptions = {}) {
    this.start();
  }

  private start(): void {
    const args = ['--rfc5424', '--prio-prefix', `--id=${process.pid}`, '-t', this.o.tag ?? 'pqgate', '-u', this.o.socket ?? '/dev/log'];
    const p = spawn(this.o.logger ?? 'logger', args, { stdio: ['pipe', 'ignore', 'ignore'] });
    this.proc = p;
    p.stdin!.on('error', () => {}); // EPIPE when logger died: handled by 'exit'
    p.once('error', (e) => this.o.onProblem?.(`syslog: cannot run logger(1): ${e.message}`));
    p.once('exit', (code, sig) => {
      if (this.proc === p) this.proc = undefined;
      if (this.closed) return;
      const delay = Math.min(60_000, 1000 * 2 ** Math.min(this.restarts++, 6));
      this.o.onProblem?.(`syslog: logger(1) exited (${sig ?? code}); restarting in ${delay / 1000} s`);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (!this.closed) this.start();
      }, delay);
      this.timer.unref();
    });
  }

  /** For Logger's `tap`. */
  write(r: LogRecord): void {
    const p = this.proc;
    if (!p?.stdin || !p.stdin.writable) {
      this.dropped++;
      return;
    }
    if (p.stdin.writableLength > MAX_PENDING) {
      this.dropped++;
      return;
    }
    p.stdin.write(syslogLine(r));
  }

  /** Flush and stop logger (it exits at end of input after sending what it read). */
  close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const p = this.proc;
    if (!p) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        p.kill('SIGTERM');
        resolve();
      }, 2000);
      p.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      p.stdin?.end();
    });
  }
}
