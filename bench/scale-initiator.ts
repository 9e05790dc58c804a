/**
 * Load generator of `npm run bench:scale`: `count` branch tunnels from one
 * source address, each a real pqgate initiator engine tunnel over real UDP
 * sockets, brought up with `concurrency` handshakes in flight and then kept
 * (no DPD, no rekeys, no deletes) until the process is told to stop.
 *
 * Every tunnel has its own IKE identity (`b<index>.scale.example`) and its
 * own traffic selector: the branch network 198.51.100.0/25 narrowed to one
 * UDP port (10000 + index), so the responder keeps one distinct Child SA
 * with distinct policies per tunnel; many tunnels from one address are told
 * apart by their IKE SPIs (RFC 7296 §2.6). The selectors stay inside the
 * documentation ranges (test/interop/lib/netns.ts) and no packet is ever sent
 * through the tunnels.
 *
 * argv[2]: JSON Args. Prints progress lines `progress N` and, when every
 * tunnel is up (or failed `maxAttempts` times), one line `result {JSON}`.
 * SIGTERM exits at once without deleting anything (the responder's state is
 * what is being measured; the orchestrator stops the responder first).
 */
import { Engine } from '../firmware/ikev2/engine.js';
import type { Action } from '../firmware/ikev2/engine-types.js';
import type { TunnelConfig, TsConfig } from '../firmware/config/types.js';
import { UdpTransport } from '../firmware/net/udp.js';
import { systemClock } from '../firmware/util/clock.js';
import { systemRng } from '../firmware/util/rng.js';
import { parseIdentity } from '../firmware/ikev2/sa/identity.js';
import { parseTs } from '../firmware/ikev2/sa/ts.js';

interface Args {
  local: string;
  remote: string;
  remoteId: string;
  proposal: string;
  psk: string;
  /** Global index of this generator's first tunnel (identities and ports are unique across generators). */
  first: number;
  count: number;
  concurrency: number;
  maxAttempts: number;
}

const args: Args = {
  local: '192.0.2.1',
  remote: '192.0.2.2',
  remoteId: 'hub.scale.example',
  proposal: 'aes256gcm16-prfsha384-x25519-ke1_mlkem768',
  psk: 'pqgate-benchmark-psk-0123456789',
  first: 0,
  count: 100,
  concurrency: 16,
  maxAttempts: 5,
  ...(JSON.parse(process.argv[2] ?? '{}') as Partial<Args>),
};

const BRANCH_NET = '198.51.100.0/25';
const HUB_NET = '198.51.100.128/25';
const PORT_BASE = 10000;

function tunnel(i: number): TunnelConfig {
  return {
    name: `b${i}`,
    localAddr: args.local,
    remoteAddr: args.remote,
    remotePort: 500,
    localId: parseIdentity(`b${i}.scale.example`)!,
    remoteId: parseIdentity(args.remoteId),
    auth: 'psk',
    psk: new TextEncoder().encode(args.psk),
    ikeProposals: [args.proposal],
    espProposals: ['aes256gcm16'],
    localTs: [parseTs(`${BRANCH_NET}[udp/${PORT_BASE + i}]`) as TsConfig],
    remoteTs: [parseTs(HUB_NET) as TsConfig],
    mode: 'policy',
    startAction: 'none',
    fragmentation: 'yes',
    fragmentSize: 1280,
    encap: true,
    rekeyTime: 0,
    childRekeyTime: 0,
    dpdDelay: 0,
    replayWindow: 64,
    mss: 0,
  };
}

async function main(): Promise<void> {
  const transport = await UdpTransport.open({ listen: [args.local], ikePort: 500, nattPort: 4500, recvBufferSize: 4 << 20 });
  // The generator itself never answers IKE_SA_INITs; its limits do not matter.
  const engine = new Engine({ clock: systemClock, rng: systemRng, ikePort: 500, nattPort: 4500, forceEncap: true, halfOpenTimeout: 120_000 });
  const names = Array.from({ length: args.count }, (_, k) => args.first + k);
  engine.loadConfig(names.map(tunnel));

  let timer: NodeJS.Timeout | undefined;
  let timerAt: number | undefined;
  const waiting = new Map<string, (ok: boolean, why?: string) => void>();
  const apply = (actions: Action[]): void => {
    for (const a of actions) {
      if (a.kind === 'send') transport.send(a.from, a.to, a.data);
      else if (a.kind === 'install-child') waiting.get(a.tunnel)?.(true);
      else if (a.kind === 'event' && a.tunnel && /^IKE SA (failed|closed)/.test(a.message)) waiting.get(a.tunnel)?.(false, a.message);
    }
    arm();
  };
  // One timer, re-armed only when the engine's next deadline moves earlier
  // or the armed one fired (as the daemon does).
  const arm = (): void => {
    const t = engine.nextTimer();
    if (t === undefined || (timer && timerAt !== undefined && timerAt <= t)) return;
    if (timer) clearTimeout(timer);
    timerAt = t;
    timer = setTimeout(() => {
      timer = undefined;
      timerAt = undefined;
      apply(engine.tick());
    }, Math.max(0, Math.ceil(t - systemClock.now())));
  };
  transport.onIke((data, from, to) => apply(engine.receive(data, from, to)));

  const up = (name: string): Promise<{ ok: boolean; why?: string }> =>
    new Promise((resolve) => {
      waiting.set(name, (ok, why) => {
        waiting.delete(name);
        resolve({ ok, ...(why ? { why } : {}) });
      });
      apply(engine.command({ kind: 'up', tunnel: name }));
    });

  let next = 0;
  let established = 0;
  let failed = 0;
  let attempts = 0;
  const errors = new Map<string, number>();
  const wallStart = Date.now();
  const t0 = performance.now();
  const setupMs: number[] = [];
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const name = `b${names[next++]!}`;
      for (let k = 1; ; k++) {
        attempts++;
        const s = performance.now();
        const r = await up(name);
        if (r.ok) {
          established++;
          setupMs.push(performance.now() - s);
          if (established % 500 === 0) process.stdout.write(`progress ${established} ${((performance.now() - t0) / 1000).toFixed(1)}s\n`);
          break;
        }
        const why = (r.why ?? '?').replace(/[0-9a-f]{16}_[0-9a-f]{16}/g, 'SA');
        errors.set(why, (errors.get(why) ?? 0) + 1);
        if (k >= args.maxAttempts) {
          failed++;
          break;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, args.concurrency) }, worker));
  const wallEnd = Date.now();
  setupMs.sort((a, b) => a - b);
  process.stdout.write(
    `result ${JSON.stringify({
      established,
      failed,
      attempts,
      wallStart,
      wallEnd,
      p50ms: setupMs[Math.floor(setupMs.length / 2)] ?? 0,
      p99ms: setupMs[Math.floor(setupMs.length * 0.99)] ?? 0,
      errors: Object.fromEntries(errors),
      internalErrors: engine.stats.internalErrors,
    })}\n`,
  );
  // Keep the SAs (and answer whatever the responder sends) until stopped.
  process.on('SIGTERM', () => process.exit(0));
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
