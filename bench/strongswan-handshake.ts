/**
 * strongSwan 6.1 <-> 6.1 handshake benchmark: hybrid (x25519 + ML-KEM-768)
 * and classic (x25519), PSK. Needs root and the sid-strongswan peer root
 * (`sudo bash test/peers/setup.sh`).
 *
 *   npm run build && sudo node dist/bench/strongswan-handshake.js \
 *     [--concurrency 16] [--setups 400] [--samples 40] [--kind hybrid|classic|both] [--json]
 *
 * See bench/lib/strongswan-bench.ts for the method.
 */
import { strongswanHandshakeBench, type StrongswanHandshakeResult } from './lib/strongswan-bench.js';

/** Measured earlier on this machine (shared/spec/peers-and-machine.md). */
const ANCHORS = {
  hybrid: { rate: 743, p50ms: 2.64, packets: 7, bytes: 3679 },
  classic: { rate: 942, p50ms: 1.96 },
} as const;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('strongswan-handshake: needs root (network namespaces)');
    process.exit(2);
  }
  const concurrency = Number(arg('concurrency', '16'));
  const setups = Number(arg('setups', '400'));
  const latencySamples = Number(arg('samples', '40'));
  const which = arg('kind', 'both');
  const kinds = which === 'both' ? (['hybrid', 'classic'] as const) : ([which] as readonly string[]);
  const results: Record<string, StrongswanHandshakeResult> = {};
  for (const kind of kinds) {
    results[kind] = await strongswanHandshakeBench({ kind, concurrency, setups, latencySamples, wire: true });
  }
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify(results, null, 2));
    return;
  }
  for (const [kind, r] of Object.entries(results)) {
    const a = (ANCHORS as Record<string, { rate: number; p50ms: number; packets?: number; bytes?: number }>)[kind];
    console.log(`strongSwan ${r.version} ${kind} (${r.proposal})`);
    console.log(`  rate     ${r.rate.toFixed(0)} setups/s with ${r.concurrency} concurrent (${r.setups} setups, ${r.failures} failures)` + (a ? `   [anchor ${a.rate}/s]` : ''));
    console.log(`  latency  p50 ${r.p50ms.toFixed(2)} ms, p90 ${r.p90ms.toFixed(2)} ms` + (a ? `   [anchor p50 ${a.p50ms} ms]` : ''));
    console.log(
      `  wire     ${r.packets} packets, ${r.bytes} B UDP payload (${r.ipBytes} B incl. IPv4+UDP headers)` +
        (a?.bytes ? `   [anchor ${a.packets} packets, ${a.bytes} B]` : ''),
    );
    for (const [ex, e] of Object.entries(r.exchanges)) console.log(`           ${ex.padEnd(17)} ${e.packets} packets ${e.bytes} B`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
