/**
 * The IKE_SA_INIT flood generator of the DoS test and benchmark
 * (bench/lib/dos-scenario.ts), run as its own process inside the attacker's
 * network namespace: precomputed hybrid IKE_SA_INIT requests
 * (bench/lib/dos-packets.ts) sent at a fixed rate from many source
 * addresses (one UDP socket bound to each address the namespace holds),
 * each datagram with a fresh initiator SPI. It never answers a COOKIE, as a
 * spoofing attacker cannot; the replies that come back are only counted.
 *
 * Usage: node dist/bench/dos-flood.js '{"target":"203.0.113.1","sources":[...],"rate":6000,"seconds":20,"out":"/tmp/x.json"}'
 * Writes a JSON summary to `out` when done (or on SIGTERM) and progress lines on stdout.
 */
import { createSocket, type Socket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { initRequest } from './lib/dos-packets.js';

interface Args {
  target: string;
  port: number;
  sources: string[];
  rate: number;
  seconds: number;
  out: string;
  /** Distinct precomputed requests (nonces, KE values) cycled through. */
  templates: number;
}

export interface FloodSummary {
  sent: number;
  seconds: number;
  /** Achieved send rate, datagrams per second. */
  rate: number;
  replies: number;
  /** Replies that were a bare COOKIE notify (69 octets with a 33-octet cookie). */
  cookieReplies: number;
  sendErrors: number;
  sources: number;
}

const args: Args = { port: 500, rate: 6000, seconds: 20, templates: 1024, target: '', sources: [], out: '', ...(JSON.parse(process.argv[2] ?? '{}') as Partial<Args>) };
if (!args.target || args.sources.length === 0 || !args.out) throw new Error('dos-flood: target, sources and out are required');

const templates = Array.from({ length: args.templates }, () => Buffer.from(initRequest()));
let sent = 0;
let replies = 0;
let cookieReplies = 0;
let sendErrors = 0;
let stopped = false;

const sockets: Socket[] = [];
async function open(): Promise<void> {
  for (const address of args.sources) {
    const s = createSocket({ type: 'udp4', recvBufferSize: 1 << 20, sendBufferSize: 1 << 20 });
    s.on('message', (m) => {
      replies++;
      if (m.length === 69 && m[16] === 41) cookieReplies++;
    });
    s.on('error', () => sendErrors++);
    await new Promise<void>((res, rej) => {
      s.once('error', rej);
      s.bind({ address, port: 0, exclusive: true }, () => {
        s.off('error', rej);
        res();
      });
    });
    sockets.push(s);
  }
}

function summary(t0: number): FloodSummary {
  const seconds = (performance.now() - t0) / 1000;
  return { sent, seconds, rate: sent / seconds, replies, cookieReplies, sendErrors, sources: sockets.length };
}

async function main(): Promise<void> {
  await open();
  const t0 = performance.now();
  const end = t0 + args.seconds * 1000;
  let spi = BigInt(process.pid) << 32n;
  let lastReport = t0;
  const finish = (): void => {
    if (stopped) return;
    stopped = true;
    const s = summary(t0);
    writeFileSync(args.out, JSON.stringify(s));
    console.log(`done ${JSON.stringify(s)}`);
    for (const so of sockets) so.close();
  };
  process.on('SIGTERM', finish);
  const cb = (err: Error | null): void => {
    if (err) sendErrors++;
  };
  const tick = (): void => {
    if (stopped) return;
    const now = performance.now();
    if (now >= end) return finish();
    // Paced to the wall clock: catch up in bounded batches if the event loop was late.
    const due = Math.min(Math.floor(((now - t0) / 1000) * args.rate) - sent, 512);
    for (let i = 0; i < due; i++) {
      const pkt = templates[sent % templates.length]!;
      spi++;
      pkt.writeBigUInt64BE(spi & 0xffffffffffffffffn, 0); // fresh SPIi: every datagram is a new IKE SA to the responder
      sockets[sent % sockets.length]!.send(pkt, args.port, args.target, cb);
      sent++;
    }
    if (now - lastReport >= 1000) {
      lastReport = now;
      console.log(`progress ${JSON.stringify(summary(t0))}`);
    }
    setImmediate(tick);
  };
  tick();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
