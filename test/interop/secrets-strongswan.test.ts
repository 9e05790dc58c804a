/**
 * Issue 9, with a real daemon process: pqgate (dist/, as a user runs it)
 * against strongSwan 6.1 in network namespaces, hybrid x25519 + ML-KEM-768
 * with PFS Child SA rekeys. The key log (the documented, opt-in exception)
 * tells us the session keys; none of them, nor the PSK, may appear in the
 * daemon's stdout/stderr (debug level) or in any CLI output (status,
 * status --json, metrics, logs, keys capture state), in hex (either case)
 * or base64. A second daemon started without PQGATE_KEYLOG writes no key
 * log at all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { cleanupAll, createPair, interopSkipReason, sweepStale } from './lib/netns.js';
import { peerMissingReason, sweepStaleDirs } from './lib/rootfs.js';
import { pskConnections, Strongswan } from './lib/strongswan.js';
import { Pqgate } from './lib/pqgate.js';
import { sleep } from './lib/proc.js';

const PSK = 'pqgate-secrets-psk-0123456789abcdef';
const PQ_ID = 'gw.pqgate.test';
const SS_ID = 'peer.strongswan.test';
const IKE = ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'];
const ESP = ['aes256gcm16-x25519-ke1_mlkem768'];

const skip = interopSkipReason() ?? peerMissingReason('sid-strongswan');
if (skip) console.warn(`[interop] secrets-strongswan skipped: ${skip}`);

/** Hex key material in key log lines (SPIs are 16 hex digits and left out). */
function keysIn(text: string): string[] {
  return [...text.matchAll(/(?:0x)?([0-9a-fA-F]{32,})/g)].map((m) => m[1]!.toLowerCase());
}

function needles(hexKey: string): string[] {
  const b = Buffer.from(hexKey.slice(0, 24), 'hex');
  return [b.toString('hex'), b.toString('hex').toUpperCase(), b.toString('base64'), b.toString('base64url')];
}

describe.skipIf(!!skip)('no secret in the outputs of a real daemon (strongSwan 6.1 peer)', () => {
  beforeAll(() => {
    sweepStale();
    sweepStaleDirs();
  });
  afterAll(() => {
    cleanupAll();
  });

  for (const withKeylog of [true, false]) {
    it(withKeylog ? 'keys from the opt-in key log appear in no other channel' : 'without PQGATE_KEYLOG no key log is written', async () => {
      const pair = await createPair({ tag: withKeylog ? 'sk' : 'sn' });
      const gw = await Pqgate.start({
        ns: pair.left,
        label: withKeylog ? 'sk' : 'sn',
        ...(withKeylog ? {} : { env: { PQGATE_KEYLOG: '' } }),
        config: {
          listen: [pair.leftAddr],
          tunnels: [
            {
              name: 'ss',
              local_addr: pair.leftAddr,
              remote_addr: pair.rightAddr,
              local_id: PQ_ID,
              remote_id: SS_ID,
              auth: 'psk',
              psk: PSK,
              proposals: IKE,
              esp_proposals: ESP,
              local_ts: [pair.leftInner.net],
              remote_ts: [pair.rightInner.net],
              start_action: 'none',
            },
          ],
        },
      });
      const conn = pskConnections(pair.rightAddr, pair.leftAddr, SS_ID, PQ_ID, { proposals: IKE, espProposals: ESP, psk: PSK, localTs: [pair.rightInner.net], remoteTs: [pair.leftInner.net] });
      const ss = await Strongswan.start({ ns: pair.right, label: withKeylog ? 'ssk' : 'ssn', ...conn });
      try {
        await gw.up('ss');
        await ss.waitEstablished('c', 'k', 20_000);
        await gw.waitFor((s) => s.state === 'ESTABLISHED' && s.children.length === 1, 10_000);
        // New keys while it runs: a Child SA rekey with PFS (x25519 + ML-KEM-768) and an IKE SA rekey.
        await gw.cli(['rekey', 'ss', '--child']);
        await sleep(1500);
        await gw.cli(['rekey', 'ss']);
        await sleep(1500);
        await gw.waitFor((s) => s.state === 'ESTABLISHED' && s.rekeys >= 1, 10_000, 'rekeyed IKE SA');
        const outputs: [string, string][] = [];
        for (const args of [['status'], ['status', '--json'], ['metrics'], ['logs'], ['version']]) outputs.push([`pqgate ${args.join(' ')}`, await gw.cli(args).catch((e: Error) => e.message)]);
        // (Read before stop(): stopping releases the instance directory.)
        const log = gw.log();
        outputs.push(['daemon stdout/stderr', log]);
        expect(log).toContain('IKE SA rekeyed');
        if (!withKeylog) {
          expect(existsSync(gw.keylog)).toBe(false);
          expect(existsSync(`${gw.keylog}.esp_sa`)).toBe(false);
          expect(log).not.toContain('key log enabled');
        } else {
          expect(log).toContain('key log enabled');
        }
        const keylogText = withKeylog ? readFileSync(gw.keylog, 'utf8') + (existsSync(`${gw.keylog}.esp_sa`) ? readFileSync(`${gw.keylog}.esp_sa`, 'utf8') : '') : '';
        const keys = keysIn(keylogText);
        if (withKeylog) expect(keys.length).toBeGreaterThanOrEqual(6); // SK_ei/er of three IKE SAs at least
        const leaks: string[] = [];
        const psk = Buffer.from(PSK);
        for (const [ch, text] of outputs) {
          for (const k of keys) for (const n of needles(k)) if (text.includes(n)) leaks.push(`key ${k.slice(0, 8)}… in ${ch}`);
          for (const n of [PSK, psk.toString('hex'), psk.toString('base64')]) if (text.includes(n)) leaks.push(`PSK in ${ch}`);
        }
        expect([...new Set(leaks)]).toEqual([]);
      } finally {
        await ss.stop();
        await gw.stop().catch(() => undefined);
        await pair.destroy();
      }
    });
  }
});
