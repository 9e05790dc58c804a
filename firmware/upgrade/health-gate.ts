/**
 * The health gate a trial slot must pass before it is blessed (issue 8,
 * docs/upgrade.md "Health gate"): the daemon answers on its control socket,
 * the web admin answers on HTTPS (when this build has one), and every tunnel
 * with an active health probe configured reports it `up`. Tunnels without a
 * probe are not checked: their peer may legitimately be down, and an upgrade
 * must not roll back because a branch office is offline.
 *
 * The checks are polled until all pass or the deadline passes; the verdict
 * names the check that was still failing, in plain words, because that text
 * is what the operator sees after a rollback.
 */

/**
 * A check that knows waiting cannot help (the daemon is crash-looping)
 * throws this: the gate fails at once instead of at the timeout, which saves
 * minutes per unblessed boot.
 */
export class GateFatal extends Error {}

export interface GateCheck {
  name: string;
  /** Resolves when healthy; throws (or rejects) with the reason otherwise. */
  run(): Promise<void>;
}

export type GateResult = { ok: true; elapsedMs: number } | { ok: false; reason: string; elapsedMs: number };

export interface GateOptions {
  timeoutMs: number;
  intervalMs: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  onAttempt?: (failing: string | undefined) => void;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function runHealthGate(checks: readonly GateCheck[], opts: GateOptions): Promise<GateResult> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? realSleep;
  const start = now();
  let last = 'no check ran';
  for (;;) {
    let failing: string | undefined;
    for (const c of checks) {
      try {
        await c.run();
      } catch (e) {
        failing = `${c.name}: ${e instanceof Error ? e.message : String(e)}`;
        if (e instanceof GateFatal) {
          opts.onAttempt?.(failing);
          return { ok: false, reason: failing, elapsedMs: now() - start };
        }
        break;
      }
    }
    opts.onAttempt?.(failing);
    if (failing === undefined) return { ok: true, elapsedMs: now() - start };
    last = failing;
    if (now() - start >= opts.timeoutMs) return { ok: false, reason: `health gate timed out after ${Math.round((now() - start) / 1000)} s: ${last}`, elapsedMs: now() - start };
    await sleep(opts.intervalMs);
  }
}

/**
 * Tunnels whose active health probe is not `up`, from a `status.tunnels`
 * answer. Read defensively (the shape is another component's: missing or
 * odd fields mean "no probe configured", never a crash): a tunnel counts as
 * probed when its health object names a `target`.
 */
export function unhealthyProbedTunnels(status: unknown): { probed: number; failing: string[] } {
  const failing: string[] = [];
  let probed = 0;
  if (typeof status !== 'object' || status === null) return { probed, failing };
  const health = (status as { health?: unknown }).health;
  if (typeof health !== 'object' || health === null || Array.isArray(health)) return { probed, failing };
  for (const [name, h] of Object.entries(health as Record<string, unknown>)) {
    if (typeof h !== 'object' || h === null) continue;
    const o = h as { state?: unknown; target?: unknown; failures?: unknown };
    if (typeof o.target !== 'string' || o.target === '') continue;
    probed++;
    if (o.state !== 'up') {
      const misses = typeof o.failures === 'number' ? `, ${o.failures} missed` : '';
      failing.push(`${name} (probe to ${o.target} ${typeof o.state === 'string' ? o.state : 'unknown'}${misses})`);
    }
  }
  return { probed, failing };
}
