/**
 * Parsers for iproute2's XFRM output (iproute2 6.x text format, as printed by
 * ip/ipxfrm.c): the counters of `ip -s xfrm state get` and the events of
 * `ip xfrm monitor acquire expire`. Tolerant: unknown lines are skipped, and
 * a block that lacks what we need yields undefined rather than an exception.
 */
import type { SaCounters } from '../types.js';

/**
 * Counters from one state's `ip -s` dump:
 *   lifetime current:
 *     420(bytes), 5(packets)
 *     add 2026-11-27 01:00:00 use 2026-11-27 01:00:01
 *   stats:
 *     replay-window 0 replay 0 failed 0
 * "replay-window" counts packets outside the window, "replay" duplicates in
 * it (both are anti-replay drops, RFC 4303 §3.4.3), "failed" ICV failures.
 * `use` is "-" until the first packet; times are local time as formatted by ip.
 */
export function parseStateCounters(text: string): SaCounters | undefined {
  const cur = /^\s*(\d+)\(bytes\),\s*(\d+)\(packets\)/m.exec(text);
  if (!cur) return undefined;
  const stats = /^\s*replay-window\s+(\d+)\s+replay\s+(\d+)\s+failed\s+(\d+)/m.exec(text);
  const use = /^\s*add\s+\S+\s+\S+\s+use\s+(\d{4}-\d{2}-\d{2})\s+(\d{2}:\d{2}:\d{2})/m.exec(text);
  let lastUsed = 0;
  if (use) {
    const t = new Date(`${use[1]}T${use[2]}`).getTime();
    if (Number.isFinite(t)) lastUsed = t;
  }
  return {
    bytes: Number(cur[1]),
    packets: Number(cur[2]),
    replayDrops: stats ? Number(stats[1]) + Number(stats[2]) : 0,
    authFailures: stats ? Number(stats[3]) : 0,
    lastUsed,
  };
}

export type MonitorEvent =
  | { kind: 'expire'; src: string; dst: string; spi: number; hard: boolean }
  | { kind: 'acquire'; reqid: number };

/**
 * Splits `ip xfrm monitor` output into events. A message starts at a line
 * without leading whitespace; its continuation lines are indented:
 *   Expired src 192.0.2.1 dst 192.0.2.2
 *   	proto esp spi 0x0000c001(49153) reqid 1(0x00000001) mode tunnel
 *   	...
 *   	hard 1
 *   acquire proto esp
 *     sel src 198.51.100.1/32 dst 203.0.113.1/32 ...
 *     policy src ... dir out priority ...
 *   	tmpl src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x00000000(0) reqid 1(0x00000001) mode tunnel
 */
export class MonitorParser {
  private block: string[] = [];
  private partial = '';

  constructor(private readonly onEvent: (e: MonitorEvent) => void) {}

  /** Feed raw output (any chunking). */
  push(chunk: string): void {
    this.partial += chunk;
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      const line = this.partial.slice(0, nl).replace(/\r$/, '');
      this.partial = this.partial.slice(nl + 1);
      this.line(line);
    }
  }

  /** End of input: flush the last message. */
  end(): void {
    if (this.partial) this.line(this.partial);
    this.partial = '';
    this.flush();
  }

  private line(line: string): void {
    if (line === '') return;
    if (!/^\s/.test(line)) this.flush();
    this.block.push(line);
    // An expire message is complete with its "hard N" line: emit without waiting for the next message.
    if (/^\s*hard\s+[01]\s*$/.test(line)) this.flush();
  }

  private flush(): void {
    if (this.block.length === 0) return;
    const text = this.block.join('\n');
    this.block = [];
    const e = parseMonitorBlock(text);
    if (e) this.onEvent(e);
  }
}

export function parseMonitorBlock(text: string): MonitorEvent | undefined {
  if (/^Expired\s/.test(text)) {
    const addr = /^Expired\s+src\s+(\S+)\s+dst\s+(\S+)/.exec(text);
    const spi = /\bproto\s+esp\s+spi\s+0x([0-9a-fA-F]+)/.exec(text);
    const hard = /^\s*hard\s+([01])\s*$/m.exec(text);
    if (!addr || !spi || !hard) return undefined;
    return { kind: 'expire', src: addr[1]!, dst: addr[2]!, spi: parseInt(spi[1]!, 16) >>> 0, hard: hard[1] === '1' };
  }
  if (/^acquire\s/.test(text)) {
    const reqid = /\breqid\s+(\d+)/.exec(text);
    if (!reqid) return undefined;
    return { kind: 'acquire', reqid: Number(reqid[1]) };
  }
  return undefined;
}
