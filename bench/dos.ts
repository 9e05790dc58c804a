/**
 * `npm run bench:dos`: a pqgate responder under a spoofed IKE_SA_INIT flood
 * (bench/lib/dos-scenario.ts): the achieved flood rate, the legitimate
 * hybrid tunnel's time to establish without and during the flood, the
 * admission counters, and the responder's RSS over time.
 *
 * Options: --rate N (6000/s) --seconds N (30) --sources N (240) --attempts N (8) --skip-strongswan --json
 *          --profile DIR (CPU profile of the responder into DIR)
 * Needs root (network namespaces) and a build (the script runs `npm run build` first).
 */
import { runDosScenario } from './lib/dos-scenario.js';
import { cleanupAll } from '../test/interop/lib/proc.js';
import { sweepStale } from '../test/interop/lib/netns.js';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : dflt;
};
const json = argv.includes('--json');
const profile = opt('profile', '');

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

async function main(): Promise<void> {
  sweepStale();
  const r = await runDosScenario({
    rate: Number(opt('rate', '6000')),
    seconds: Number(opt('seconds', '30')),
    sources: Number(opt('sources', '240')),
    attempts: Number(opt('attempts', '8')),
    strongswan: !argv.includes('--skip-strongswan'),
    ...(profile ? { responderNodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profile}`] } : {}),
    log: json ? undefined : (l) => console.log(l),
  });
  if (json) {
    console.log(JSON.stringify(r));
    return;
  }
  const u = r.underFloodMs;
  console.log('');
  console.log(`flood                 ${r.flood.sent} spoofed IKE_SA_INIT in ${r.flood.seconds.toFixed(1)} s = ${r.flood.rate.toFixed(0)}/s from ${r.flood.sources} addresses`);
  console.log(`responder answered    ${r.admission.cookiesSent} COOKIE replies (${((100 * r.admission.cookiesSent) / r.flood.sent).toFixed(1)} % of the flood), ${r.admission.admitted} IKE SAs admitted`);
  console.log(`half-open             max ${r.maxHalfOpen} during the flood (cookie_threshold ${r.admission.limits.cookieThreshold}); drops: block ${r.admission.blocked}, limit ${r.admission.limitDrops}, invalid cookie ${r.admission.invalidCookies}`);
  console.log(`time to establish     no flood ${r.baselineMs.toFixed(0)} ms; under flood p50 ${pct(u, 50).toFixed(0)} ms, max ${Math.max(...u).toFixed(0)} ms (${u.length} attempts: ${u.map((x) => x.toFixed(0)).join(', ')}; ${r.underFloodFailed} not established within 32 s)`);
  console.log(`kernel                ${r.udp.rcvbufErrors} datagrams dropped at the responder's full receive buffer of ${r.udp.inDatagrams + r.udp.rcvbufErrors}; load average ${r.loadavg}`);
  console.log('responder RSS (MiB) over time:');
  const step = Math.max(1, Math.floor(r.rss.length / 30));
  for (let i = 0; i < r.rss.length; i += step) {
    const s = r.rss[i]!;
    console.log(`  t=${s.t.toFixed(1).padStart(5)} s  rss ${(s.rssKiB / 1024).toFixed(1).padStart(6)}  half-open ${s.halfOpen}  cpu ${s.cpuPct.toFixed(0)} %`);
  }
  if (r.strongswan) {
    const s = r.strongswan;
    if (s.skipped) console.log(`strongSwan initiator  skipped: ${s.skipped}`);
    else console.log(`strongSwan initiator  no flood ${s.baselineMs.toFixed(0)} ms; under flood ${s.underFloodMs.map((x) => x.toFixed(0)).join(', ') || '-'} ms; ${s.underFloodFailed} not established`);
  }
  const rs = r.rss.map((s) => s.rssKiB);
  const cpu = r.rss.filter((s) => s.t >= 1 && s.t <= r.flood.seconds).map((s) => s.cpuPct);
  console.log(`responder CPU         mean ${(cpu.reduce((a, b) => a + b, 0) / Math.max(1, cpu.length)).toFixed(0)} % of one core during the flood`);
  console.log(`RSS                   min ${(Math.min(...rs) / 1024).toFixed(1)} MiB, max ${(Math.max(...rs) / 1024).toFixed(1)} MiB`);
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
