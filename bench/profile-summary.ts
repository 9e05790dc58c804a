/**
 * Where the time goes in a V8 CPU profile (`node --cpu-prof`, e.g. from
 * `npm run bench:handshake -- --profile`, written to bench-profiles/):
 * self time grouped by area (ML-KEM, node:crypto calls, codec, engine,
 * UDP I/O, GC...) and the top functions by self and inclusive time.
 *
 *   node dist/bench/profile-summary.js FILE.cpuprofile [--top N]
 *
 * The profiler samples wall-clock time while the thread runs JavaScript: on
 * a loaded machine a sample also covers time the process was descheduled,
 * so compare shares (%), not absolute milliseconds, between runs.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Area of a function, by its script (first match wins). */
const AREAS: [string, (f: CallFrame) => boolean][] = [
  ['idle', (f) => f.functionName === '(idle)'],
  ['garbage collector', (f) => f.functionName === '(garbage collector)'],
  ['ML-KEM (firmware/crypto/mlkem)', (f) => f.url.includes('/crypto/mlkem/')],
  ['node:crypto internals (HMAC, AES-GCM, X25519, hashes)', (f) => /^node:internal\/crypto\//.test(f.url) || f.url === 'node:crypto'],
  ['firmware/crypto (wrappers, prf+, SK)', (f) => f.url.includes('/firmware/crypto/')],
  ['codec (encode/decode/validate)', (f) => f.url.includes('/ikev2/codec/')],
  ['engine: exchanges', (f) => f.url.includes('/ikev2/exchanges/')],
  ['engine: SA/proposals/TS', (f) => f.url.includes('/ikev2/sa/')],
  ['engine: core (engine, ike-sa, windows)', (f) => f.url.includes('/ikev2/')],
  ['UDP I/O (node:dgram, net/, natt)', (f) => f.url === 'node:dgram' || f.url.startsWith('node:internal/dgram') || f.url.includes('/firmware/net/') || f.url.includes('/dataplane/udp-') || f.url.includes('/dataplane/natt-io')],
  ['daemon/appliance/log', (f) => /\/firmware\/(daemon|log|appliance\/|control\/|keylog)/.test(f.url)],
  ['bench driver', (f) => f.url.includes('/bench/')],
  ['firmware/util (bytes, hex)', (f) => f.url.includes('/firmware/util/')],
  ['node runtime (timers, events, promises, buffers)', (f) => f.url.startsWith('node:')],
  ['native/program', (f) => f.url === '' && f.functionName !== '(root)'],
];

function area(f: CallFrame): string {
  for (const [name, test] of AREAS) if (test(f)) return name;
  return 'other';
}

const key = (f: CallFrame): string => `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;

function main(): void {
  const file = process.argv[2];
  if (!file) throw new Error('usage: profile-summary FILE.cpuprofile [--top N]');
  const ti = process.argv.indexOf('--top');
  const top = ti > 0 ? Number(process.argv[ti + 1]) : 20;
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const d = p.timeDeltas[i] ?? 0;
    const leaf = byId.get(p.samples[i]!)!;
    total += d;
    const a = area(leaf.callFrame);
    if (a === 'idle') idle += d;
    areas.set(a, (areas.get(a) ?? 0) + d);
    self.set(key(leaf.callFrame), (self.get(key(leaf.callFrame)) ?? 0) + d);
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const k = key(byId.get(id)!.callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + d);
    }
  }
  const busy = total - idle;
  const ms = (us: number) => (us / 1000).toFixed(1).padStart(8);
  const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
  console.log(`${file}: ${ms(total).trim()} ms sampled, ${ms(busy).trim()} ms busy (shares below are of busy time)`);
  console.log('--- by area (self time)');
  for (const [k, v] of [...areas].sort((a, b) => b[1] - a[1])) if (k !== 'idle') console.log(ms(v), pct(v), k);
  console.log(`--- top ${top} functions by self time`);
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) if (!k.startsWith('(idle)')) console.log(ms(v), pct(v), k);
  console.log(`--- top ${top} functions by inclusive time`);
  for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).filter(([k]) => !/^\((root|idle)\)/.test(k)).slice(0, top)) console.log(ms(v), pct(v), k);
}

main();
