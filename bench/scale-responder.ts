/**
 * The pqgate side of `npm run bench:scale`: the production daemon (the same
 * appliance `pqgate daemon --config FILE` starts, firmware/appliance/launch.ts)
 * with two bench hooks:
 *
 *  - admission relaxed for a load test, the way the strongSwan side raises
 *    `cookie_threshold` / `block_threshold`: the load generators keep up to a
 *    few dozen handshakes in flight from a handful of addresses, which the
 *    default half-open limits (firmware/ikev2/context.ts) would throttle with
 *    COOKIE round trips and drops. Nothing else of the engine changes.
 *  - SIGUSR2 writes a memory report (one JSON line) to the file named by
 *    PQGATE_SCALE_STATS, after two full garbage collections (node --expose-gc)
 *    so the numbers are live memory, not garbage waiting for the collector;
 *    with PQGATE_SCALE_SNAPSHOT=DIR it also writes a heap snapshot there
 *    (bench/scale-heap.ts summarizes it).
 *
 * argv: CONFIG.json
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import { loadConfigFile } from '../firmware/config/schema.js';
import { Logger } from '../firmware/log.js';
import { startAppliance } from '../firmware/appliance/launch.js';
import type { EngineFactory } from '../firmware/daemon.js';

const configPath = process.argv[2];
if (!configPath) throw new Error('usage: scale-responder CONFIG.json');
const statsPath = process.env.PQGATE_SCALE_STATS;
const snapDir = process.env.PQGATE_SCALE_SNAPSHOT;

const relaxed: EngineFactory = async (deps) => {
  const { Engine } = await import('../firmware/ikev2/engine.js');
  return new Engine({ clock: deps.clock, rng: deps.rng, ikePort: deps.ikePort, nattPort: deps.nattPort, forceEncap: deps.forceEncap, cookieThreshold: 1 << 30, halfOpenPerSource: 1 << 30 });
};

/** Live memory after full collections: RSS, V8 heap, external (Buffers/ArrayBuffers), native (addon) via RSS. */
function report(tag: string): Record<string, unknown> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  const m = process.memoryUsage();
  const h = getHeapStatistics();
  // Per V8 space: committed vs used (new space keeps its grown semi-spaces; old space has free lists).
  const spaces = Object.fromEntries(getHeapSpaceStatistics().map((x) => [x.space_name, { size: x.space_size, used: x.space_used_size }]));
  return { tag, rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, mallocedMemory: h.malloced_memory, gcExposed: !!gc, at: Date.now(), spaces };
}

async function main(): Promise<void> {
  const config = loadConfigFile(configPath!);
  const logger = new Logger({ level: config.logLevel, sink: (l) => process.stdout.write(l + '\n') });
  const app = await startAppliance({ logger, syslog: 'off', config, configPath: configPath!, engineFactory: relaxed, webSocket: null });
  let n = 0;
  process.on('SIGUSR2', () => {
    const r = report(`r${n++}`);
    if (snapDir) r.snapshot = writeHeapSnapshot(join(snapDir, `pqgate-${process.pid}-${r.tag as string}.heapsnapshot`));
    if (statsPath) appendFileSync(statsPath, JSON.stringify(r) + '\n');
  });
  const stop = (sig: string): void => {
    app.stop(sig).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.stdout.write('scale responder ready\n');
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
