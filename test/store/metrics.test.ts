import { describe, it, expect } from 'vitest';
import { formatMetrics, escapeLabelValue } from '../../firmware/store/metrics.js';
import type { IkeSaStatus, ChildSaStatus } from '../../firmware/ikev2/engine-types.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Parsed {
  help: Map<string, string>;
  type: Map<string, string>;
  samples: Sample[];
}

/** A small parser for the Prometheus text format (0.0.4), strict enough to catch escaping and ordering mistakes. */
function parseExposition(text: string): Parsed {
  const out: Parsed = { help: new Map(), type: new Map(), samples: [] };
  expect(text.endsWith('\n')).toBe(true);
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) {
      const rest = line.slice(7);
      const sp = rest.indexOf(' ');
      const name = rest.slice(0, sp);
      expect(name).toMatch(NAME);
      if (line.startsWith('# HELP ')) {
        expect(out.help.has(name), `duplicate HELP ${name}`).toBe(false);
        out.help.set(name, rest.slice(sp + 1).replace(/\\n/g, '\n').replace(/\\\\/g, '\\'));
      } else {
        expect(out.type.has(name), `duplicate TYPE ${name}`).toBe(false);
        expect(['counter', 'gauge']).toContain(rest.slice(sp + 1));
        out.type.set(name, rest.slice(sp + 1));
      }
      continue;
    }
    expect(line.startsWith('#')).toBe(false);
    let i = 0;
    while (i < line.length && /[a-zA-Z0-9_:]/.test(line[i]!)) i++;
    const name = line.slice(0, i);
    expect(name).toMatch(NAME);
    const labels: Record<string, string> = {};
    if (line[i] === '{') {
      i++;
      while (line[i] !== '}') {
        const eq = line.indexOf('=', i);
        const key = line.slice(i, eq);
        expect(key).toMatch(/^[a-zA-Z_][a-zA-Z0-9_]*$/);
        expect(line[eq + 1]).toBe('"');
        let j = eq + 2;
        let v = '';
        for (;;) {
          const c = line[j]!;
          expect(c, `unterminated label value in ${line}`).toBeDefined();
          if (c === '\\') {
            const n = line[j + 1];
            expect(['\\', '"', 'n']).toContain(n);
            v += n === 'n' ? '\n' : n;
            j += 2;
          } else if (c === '"') break;
          else {
            v += c;
            j++;
          }
        }
        labels[key] = v;
        i = j + 1;
        if (line[i] === ',') i++;
      }
      i++;
    }
    expect(line[i]).toBe(' ');
    const value = line.slice(i + 1);
    expect(value).toMatch(/^(-?\d+(\.\d+)?(e-?\d+)?|NaN|[+-]Inf)$/);
    // Each sample's family was introduced by HELP and TYPE before it.
    expect(out.help.has(name) && out.type.has(name), `${name} lacks HELP/TYPE`).toBe(true);
    out.samples.push({ name, labels, value: Number(value) });
  }
  return out;
}

function child(name: string): ChildSaStatus {
  return { name, state: 'INSTALLED', reqid: 1, spiIn: 'c0000001', spiOut: 'c0000002', encr: 'AES_GCM_16_256', integ: null, keyExchanges: [], esn: false, localTs: ['0.0.0.0/0'], remoteTs: ['0.0.0.0/0'], encap: false, installedAt: 0, rekeyAt: null, rekeys: 0 };
}

function sa(tunnel: string, state: string, keyExchanges: string[], children: ChildSaStatus[]): IkeSaStatus {
  const pq = keyExchanges.find((k) => k.startsWith('ML_KEM')) ?? null;
  return {
    tunnel, id: 1, state, role: 'initiator', local: { address: '192.0.2.1', port: 500 }, remote: { address: '192.0.2.2', port: 500 },
    spiI: '0102030405060708', spiR: '1112131415161718', localId: null, remoteId: null, encr: 'AES_GCM_16_256', prf: 'PRF_HMAC_SHA2_384', integ: null,
    keyExchanges, postQuantum: pq, fragmentation: true, natLocal: false, natRemote: false, encap: false, establishedAt: 0, rekeyAt: null, rekeys: 0, lastError: null, children,
  } as IkeSaStatus;
}

const WEIRD = 'we"ird\\tun\nnel';

describe('metrics', () => {
  const status = [
    sa('cf1', 'ESTABLISHED', ['ECP_384', 'ML_KEM_768'], [child('cf1'), child('cf1')]),
    sa('site2', 'ESTABLISHED', ['CURVE_25519'], [child('site2')]),
    sa('nochild', 'ESTABLISHED', ['CURVE_25519', 'ML_KEM_1024'], []),
    sa(WEIRD, 'CONNECTING', [], []),
  ];
  const text = formatMetrics(status, {
    tunnels: ['cf1', 'site2', 'down1', 'nochild', WEIRD],
    childBytes: { cf1: { in: 1_000_000, out: 2_500 }, [WEIRD]: { in: 1, out: 2 } },
    childPackets: { cf1: { in: 900, out: 30 } },
    rekeys: { ike: 3, child: 7 },
    handshakeFailures: { NO_PROPOSAL_CHOSEN: 2, 'timeout "no reply"': 1 },
  });
  const p = parseExposition(text);
  const get = (name: string, labels: Record<string, string> = {}) =>
    p.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === Object.keys(labels).length);

  it('parses, and every family has HELP and TYPE', () => {
    const families = ['pqgate_tunnel_up', 'pqgate_ike_sas', 'pqgate_child_sas', 'pqgate_child_bytes_total', 'pqgate_child_packets_total', 'pqgate_rekeys_total', 'pqgate_handshake_failures_total', 'pqgate_pq_share'];
    expect([...p.type.keys()]).toEqual(families);
    expect([...p.help.keys()]).toEqual(families);
    for (const f of families) expect(p.type.get(f)).toBe(f.endsWith('_total') ? 'counter' : 'gauge');
  });

  it('has the expected series and values', () => {
    expect(p.samples.filter((s) => s.name === 'pqgate_tunnel_up').map((s) => [s.labels.tunnel, s.value])).toEqual([
      ['cf1', 1], ['down1', 0], ['nochild', 0], ['site2', 1], [WEIRD, 0],
    ]);
    expect(get('pqgate_ike_sas')[0]!.value).toBe(3);
    expect(get('pqgate_child_sas')[0]!.value).toBe(3);
    expect(get('pqgate_child_bytes_total', { tunnel: 'cf1', direction: 'in' })[0]!.value).toBe(1_000_000);
    expect(get('pqgate_child_bytes_total', { tunnel: 'cf1', direction: 'out' })[0]!.value).toBe(2_500);
    expect(get('pqgate_child_packets_total', { tunnel: 'cf1', direction: 'in' })[0]!.value).toBe(900);
    expect(get('pqgate_rekeys_total', { kind: 'child' })[0]!.value).toBe(7);
    expect(get('pqgate_handshake_failures_total', { reason: 'NO_PROPOSAL_CHOSEN' })[0]!.value).toBe(2);
    // Two of three established IKE SAs ran ML-KEM.
    expect(get('pqgate_pq_share')[0]!.value).toBeCloseTo(2 / 3, 12);
  });

  it('escapes label values: quote, backslash and newline round-trip through the parser', () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    expect(get('pqgate_child_bytes_total', { tunnel: WEIRD, direction: 'out' })[0]!.value).toBe(2);
    expect(get('pqgate_handshake_failures_total', { reason: 'timeout "no reply"' })[0]!.value).toBe(1);
    expect(text.split('\n').every((l) => !l.includes('\r'))).toBe(true);
  });

  it('with nothing established: share 0, no per-tunnel counters, zeroed rekey counters', () => {
    const q = parseExposition(formatMetrics([]));
    expect(q.samples.map((s) => `${s.name}${JSON.stringify(s.labels)}=${s.value}`)).toEqual([
      'pqgate_ike_sas{}=0',
      'pqgate_child_sas{}=0',
      'pqgate_rekeys_total{"kind":"ike"}=0',
      'pqgate_rekeys_total{"kind":"child"}=0',
      'pqgate_pq_share{}=0',
    ]);
  });
});
