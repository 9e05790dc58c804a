/**
 * The initiator side of the pqgate handshake benchmark, run as its own
 * process inside the initiator's network namespace (as strongSwan's
 * initiator charon is): the real engine over real UDP sockets, driven the
 * way bench/lib/strongswan-bench.ts drives charon over VICI:
 *  - rate: `concurrency` workers (one tunnel each, own identity), each
 *    looping "up, wait for the Child SA install, down, wait for the delete";
 *    rate = established setups / wall time after a warm-up;
 *  - latency: one worker, sequential setups after the rate phase, time from
 *    `up` to the Child SA install (IKE_SA_INIT .. IKE_AUTH), p50;
 *  - wire: the UDP payload bytes and datagrams of one setup (IKE_SA_INIT,
 *    IKE_INTERMEDIATE, IKE_AUTH, both directions, marker included).
 * Prints one JSON object on stdout.
 */
import { Engine } from '../firmware/ikev2/engine.js';
import type { Action } from '../firmware/ikev2/engine-types.js';
import type { TunnelConfig } from '../firmware/config/types.js';
import { UdpTransport } from '../firmware/net/udp.js';
import { systemClock } from '../firmware/util/clock.js';
import { systemRng } from '../firmware/util/rng.js';
import { parseIdentity } from '../firmware/ikev2/sa/identity.js';
import { parseTs } from '../firmware/ikev2/sa/ts.js';
import type { TsConfig } from '../firmware/config/types.js';
import { pidsCpuMs, selfCpuMs } from './lib/cpu.js';

interface Args {
  local: string;
  remote: string;
  proposal: string;
  psk: string;
  concurrency: number;
  setups: number;
  warmup: number;
  latencySamples: number;
  /** Measure the single-setup latency and the bytes of one setup (only one driver of several does). */
  measureLatency: boolean;
  /** Responder processes whose CPU time is read at the start and the end of the rate phase. */
  responderPids: number[];
}

const args: Args = {
  local: '198.51.100.1',
  remote: '198.51.100.2',
  proposal: 'aes256gcm16-prfsha384-x25519-ke1_mlkem768',
  psk: 'pqgate-benchmark-psk-0123456789',
  concurrency: 16,
  setups: 400,
  warmup: 32,
  latencySamples: 40,
  measureLatency: true,
  responderPids: [],
  ...(JSON.parse(process.argv[2] ?? '{}') as Partial<Args>),
};

function tunnel(i: number): TunnelConfig {
  return {
    name: `w${i}`,
    localAddr: args.local,
    remoteAddr: args.remote,
    remotePort: 500,
    localId: parseIdentity(`w${i}.bench.example`)!,
    remoteId: parseIdentity('responder.bench.example'),
    auth: 'psk',
    psk: new TextEncoder().encode(args.psk),
    ikeProposals: [args.proposal],
    espProposals: ['aes256gcm16'],
    localTs: [parseTs('10.1.0.0/16') as TsConfig],
    remoteTs: [parseTs('10.2.0.0/16') as TsConfig],
    mode: 'policy',
    startAction: 'none',
    fragmentation: 'yes',
    fragmentSize: 1280,
    encap: true, // as strongSwan's encap = yes in the reference run
    rekeyTime: 0,
    childRekeyTime: 0,
    dpdDelay: 0,
    replayWindow: 64,
    mss: 0,
  };
}

async function main(): Promise<void> {
  const transport = await UdpTransport.open({ listen: [args.local], ikePort: 500, nattPort: 4500 });
  const engine = new Engine({ clock: systemClock, rng: systemRng, ikePort: 500, nattPort: 4500, forceEncap: true, cookieThreshold: 1 << 30 });
  const n = Math.max(args.concurrency, 1);
  engine.loadConfig(Array.from({ length: n }, (_, i) => tunnel(i)));

  const trace = process.env.PQGATE_BENCH_TRACE === '1';
  const tr = (m: string) => trace && process.stderr.write(`${performance.now().toFixed(2)} ${m}\n`);
  let timer: NodeJS.Timeout | undefined;
  let wire: { on: boolean; packets: number; bytes: number } = { on: false, packets: 0, bytes: 0 };
  const onInstall = new Map<string, () => void>();
  const onDelete = new Map<string, () => void>();
  const apply = (actions: Action[]): void => {
    for (const a of actions) {
      if (a.kind === 'send') {
        if (wire.on && a.data[18] !== 37) {
          wire.packets++;
          wire.bytes += a.data.length + (a.from.port === 4500 ? 4 : 0);
        }
        if (trace) tr(`send ${a.data.length} x${a.data[18]} m${(a.data[19]! & 0x20) ? 'r' : 'q'}`);
        transport.send(a.from, a.to, a.data);
      } else if (a.kind === 'install-child') {
        onInstall.get(a.tunnel)?.();
      } else if (a.kind === 'delete-child') {
        onDelete.get(a.tunnel)?.();
      } else if (a.kind === 'event' && a.level === 'error') {
        process.stderr.write(`[${a.tunnel}] ${a.message}\n`);
      }
    }
    arm();
  };
  // As the daemon does (firmware/daemon.ts arm()): a timer that fires no
  // later than the engine's next deadline is kept instead of being replaced
  // after every datagram; an early firing only looks again.
  let timerAt: number | undefined;
  const onTimer = (): void => {
    timer = undefined;
    timerAt = undefined;
    const due = engine.nextTimer();
    if (due === undefined || systemClock.now() < due) arm();
    else apply(engine.tick());
  };
  const arm = (): void => {
    const t = engine.nextTimer();
    if (timer && t !== undefined && timerAt !== undefined && timerAt <= t) return;
    if (timer) clearTimeout(timer);
    timerAt = t;
    timer = t === undefined ? undefined : setTimeout(onTimer, Math.max(0, Math.ceil(t - systemClock.now())));
  };
  transport.onIke((data, from, to) => {
    if (wire.on && data[18] !== 37) {
      wire.packets++;
      wire.bytes += data.length + (to.port === 4500 ? 4 : 0);
    }
    if (trace) tr(`recv ${data.length} x${data[18]} ${(data[19]! & 0x20) ? 'r' : 'q'}`);
    apply(engine.receive(data, from, to));
    if (trace) tr('handled');
  });

  const setupOnce = (name: string): Promise<number> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      tr(`${name} up`);
      onInstall.set(name, () => {
        tr(`${name} installed`);
        onInstall.delete(name);
        resolve(performance.now() - t0);
      });
      apply(engine.command({ kind: 'up', tunnel: name }));
    });
  const teardown = (name: string): Promise<void> =>
    new Promise((resolve) => {
      tr(`${name} down`);
      onDelete.set(name, () => {
        tr(`${name} deleted`);
        onDelete.delete(name);
        setImmediate(resolve);
      });
      apply(engine.command({ kind: 'down', tunnel: name }));
    });

  // wire: one setup
  let wireResult = { packets: 0, bytes: 0 };
  const lat: number[] = [];
  if (args.measureLatency) {
    wire = { on: true, packets: 0, bytes: 0 };
    await setupOnce('w0');
    wire.on = false;
    wireResult = { packets: wire.packets, bytes: wire.bytes };
    await teardown('w0');
  } else {
    // warm the JIT like the measuring driver does
    for (let i = 0; i < 10; i++) {
      await setupOnce('w0');
      await teardown('w0');
    }
  }

  // rate: concurrency workers
  let done = 0;
  let measuredStart = 0;
  let wallStart = 0;
  let cpuStart = 0;
  let respCpuStart = 0;
  const total = args.setups + args.warmup;
  let started = 0;
  await new Promise<void>((resolveAll) => {
    let active = 0;
    const worker = async (name: string): Promise<void> => {
      active++;
      while (started < total) {
        started++;
        await setupOnce(name);
        done++;
        if (done === args.warmup) {
          measuredStart = performance.now();
          wallStart = Date.now();
          cpuStart = selfCpuMs();
          respCpuStart = pidsCpuMs(args.responderPids);
        }
        await teardown(name);
      }
      if (--active === 0) resolveAll();
    };
    for (let i = 0; i < n; i++) void worker(`w${i}`);
  });
  const elapsed = (performance.now() - measuredStart) / 1000;
  const cpuMs = selfCpuMs() - cpuStart;
  const respCpuMs = pidsCpuMs(args.responderPids) - respCpuStart;
  const rate = (done - args.warmup) / elapsed;
  const wallEnd = Date.now();
  // latency: sequential setups, after the rate phase so the code is as warm
  // as in a running gateway (strongswan-bench.ts measures charon the same way).
  if (args.measureLatency) {
    for (let i = 0; i < args.latencySamples; i++) {
      lat.push(await setupOnce('w0'));
      await teardown('w0');
    }
    lat.sort((x, y) => x - y);
  }
  if (timer) clearTimeout(timer);
  await transport.close();
  process.stdout.write(
    JSON.stringify({
      rate,
      p50ms: lat[Math.floor(lat.length / 2)] ?? 0,
      p90ms: lat[Math.floor(lat.length * 0.9)] ?? 0,
      packets: wireResult.packets,
      bytes: wireResult.bytes,
      ipBytes: wireResult.bytes + 28 * wireResult.packets,
      setups: done - args.warmup,
      wallStart,
      wallEnd,
      cpuMs,
      respCpuStart,
      respCpuMs,
      internalErrors: engine.stats.internalErrors,
    }) + '\n',
  );
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
