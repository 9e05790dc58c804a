/**
 * In-process handshake cost: two engines over the in-memory network, no
 * sockets, so the number is the CPU the protocol and crypto take per
 * establishment (both sides, including the delete). Run with --cpu-prof to
 * see where the time goes. Usage: node dist/bench/engine-micro.js [N] [proposal] [warmup]
 *
 * The warm-up (default 1000 establishments) lets V8 finish optimising the
 * hot paths first: after only 20, the CPU per establishment of the next 400
 * was ~1.6x the steady state (TurboFan compiler threads count as CPU).
 */
import { Engine } from '../firmware/ikev2/engine.js';
import type { Action } from '../firmware/ikev2/engine-types.js';
import type { TunnelConfig, TsConfig } from '../firmware/config/types.js';
import { FakeNetwork } from '../firmware/net/fake.js';
import { FakeClock } from '../firmware/util/clock.js';
import { systemRng } from '../firmware/util/rng.js';
import { parseIdentity } from '../firmware/ikev2/sa/identity.js';
import { parseTs } from '../firmware/ikev2/sa/ts.js';

const N = Number(process.argv[2] ?? 300);
const proposal = process.argv[3] ?? 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';

function tunnel(local: string, remote: string | undefined, lid: string, rid: string): TunnelConfig {
  return {
    name: 't',
    localAddr: local,
    remoteAddr: remote,
    remotePort: 500,
    localId: parseIdentity(lid)!,
    remoteId: parseIdentity(rid),
    auth: 'psk',
    psk: new TextEncoder().encode('engine-micro-benchmark-psk'),
    ikeProposals: [proposal],
    espProposals: ['aes256gcm16'],
    localTs: [parseTs('0.0.0.0/0') as TsConfig],
    remoteTs: [parseTs('0.0.0.0/0') as TsConfig],
    mode: 'route',
    startAction: 'none',
    fragmentation: 'yes',
    fragmentSize: 1280,
    encap: false,
    rekeyTime: 0,
    childRekeyTime: 0,
    dpdDelay: 0,
    replayWindow: 64,
    mss: 0,
  };
}

const clock = new FakeClock(0);
const net = new FakeNetwork({ clock });
// The fake network's packet trace (a test aid) would otherwise grow to 100,000 entries and cost heap and GC time.
net.traceLimit = 1000;
const a = new Engine({ clock, rng: systemRng });
const b = new Engine({ clock, rng: systemRng });
const apply = (actions: Action[]): void => {
  for (const x of actions) if (x.kind === 'send') net.send(x.from, x.to, x.data);
};
for (const port of [500, 4500]) {
  net.attach({ address: '192.0.2.1', port }, (d, f, t) => apply(a.receive(d, f, t)));
  net.attach({ address: '192.0.2.2', port }, (d, f, t) => apply(b.receive(d, f, t)));
}
apply(a.loadConfig([tunnel('192.0.2.1', '192.0.2.2', 'a.example', 'b.example')]));
apply(b.loadConfig([tunnel('192.0.2.2', undefined, 'b.example', 'a.example')]));

const one = (): void => {
  apply(a.command({ kind: 'up', tunnel: 't' }));
  net.runUntilIdle();
  apply(a.command({ kind: 'down', tunnel: 't' }));
  net.runUntilIdle();
};
const WARMUP = Number(process.argv[4] ?? 1000);
for (let i = 0; i < WARMUP; i++) one();
// CPU time of this process (user + system), so the number holds on a busy machine.
const c0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < N; i++) one();
const cpu = process.cpuUsage(c0);
const ms = (cpu.user + cpu.system) / 1000 / N;
const wall = (performance.now() - t0) / N;
console.log(`${proposal}: ${ms.toFixed(3)} ms CPU per establishment+delete (both sides; wall ${wall.toFixed(3)} ms), ${(1000 / ms).toFixed(0)}/s per CPU-second`);
