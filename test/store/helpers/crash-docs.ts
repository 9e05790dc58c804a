/**
 * Deterministic configuration for revision k of the crash test, shared by
 * the writer child and the checking parent: the parent recomputes what
 * revision k must contain and compares it with the database.
 */
import type { ConfigDoc } from '../../../firmware/store/document.js';

export interface CrashRevision {
  doc: ConfigDoc;
  presets: Record<string, string>;
}

export function crashRevision(k: number): CrashRevision {
  // Small documents keep the database small, so that the integrity checks after each kill stay fast.
  const n = 1 + (k % 2);
  const tunnels = Array.from({ length: n }, (_, i) => ({
    name: `t${i}`,
    local_id: `fqdn:gw${i}.example`,
    remote_addr: `192.0.2.${10 + i}`,
    // A new key every few revisions, so secrets rows are inserted as well as reused.
    psk: `crash-test-key-${i}-${Math.floor(k / 4) % 5}-xxxxxxxx`,
    mss: 536 + (k % 900),
  }));
  const doc: ConfigDoc = { version: 1, listen: k % 3 ? ['0.0.0.0'] : ['0.0.0.0', '::'], tunnels };
  return { doc, presets: k % 2 ? { t0: 'strongswan' } : {} };
}
