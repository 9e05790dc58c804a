/**
 * Regenerates fuzz/corpus/<target>/ from real runs (npm run fuzz:corpus):
 *
 *   ike-parse, sk-decrypt, reassembly: every datagram two engines exchange
 *     in hybrid (x25519 + ML-KEM-768 via IKE_INTERMEDIATE, fragmented) PSK
 *     handshakes with AES-GCM and AES-CBC/HMAC, followed by a Child SA
 *     rekey, an IKE SA rekey, DPD and a delete; the IKE key sets of every
 *     generation (keys.json) so protected messages decrypt.
 *   esp-decap: the Child SA keys the engines installed (sas.json) and ESP
 *     packets sealed by the data plane's EspSa with those keys.
 *   config-import: documents exported by a real ConfigStore after applying
 *     configurations and presets.
 *   rest-api: web admin request bodies built by the web admin's own form
 *     and multipart code paths.
 * The engines use deterministic RNGs, so a re-run reproduces the same bytes.
 * The keys are test keys of these throw-away runs only.
 */
import { mkdirSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { RecordingLab, labTunnel, type RecordedIkeKeys } from './lib/lab.js';
import { corpusDir } from './lib/corpus.js';
import { decodeHeaderOnly, decodeProtected, encodePlain, isFragment, Reassembler } from '../firmware/ikev2/codec/index.js';
import type { DecodedMessage } from '../firmware/ikev2/codec/types.js';
import { ExchangeType } from '../firmware/ikev2/constants.js';
import { EspSa } from '../firmware/dataplane/esp/sa.js';
import { ConfigStore } from '../firmware/store/store.js';
import { presetNames, getPreset } from '../firmware/presets/presets.js';
import { cipherFor, packReseal } from './targets/sk-common.js';
import { packEspInput, ipv4Packet, ipv6Packet, type EspSaRecord } from './targets/esp-decap.js';
import { packFragmentSet } from './targets/reassembly.js';
import { packRestInput, restSamples } from './targets/rest-api.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const written = new Map<string, number>();

function reset(target: string): string {
  const d = corpusDir(target);
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
  written.set(target, 0);
  return d;
}

function put(target: string, label: string, data: Uint8Array | string): void {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const h = createHash('sha1').update(bytes).digest('hex').slice(0, 12);
  writeFileSync(join(corpusDir(target), `${label}-${h}.bin`), bytes);
  written.set(target, (written.get(target) ?? 0) + 1);
}

interface Run {
  lab: RecordingLab;
  esp: EspSaRecord[];
}

/** One full tunnel life between two engines. */
function tunnelRun(ikeProposal: string, espProposal: string, fragmentSize: number): Run {
  const lab = new RecordingLab();
  const a = lab.addHost('a', '192.0.2.1');
  const b = lab.addHost('b', '192.0.2.2');
  const over = { ikeProposals: [ikeProposal], espProposals: [espProposal], fragmentSize };
  lab.load(a, [labTunnel('a', over)]);
  lab.load(b, [labTunnel('b', over)]);
  lab.command(a, { kind: 'up', tunnel: 't1' });
  lab.advance(2_000);
  lab.command(a, { kind: 'rekey-child', tunnel: 't1' });
  lab.advance(2_000);
  lab.command(b, { kind: 'dpd', tunnel: 't1' });
  lab.advance(2_000);
  lab.command(a, { kind: 'rekey-ike', tunnel: 't1' });
  lab.advance(2_000);
  lab.command(a, { kind: 'down', tunnel: 't1' });
  lab.advance(5_000);
  const esp: EspSaRecord[] = [];
  for (const h of [a, b])
    for (const i of h.installs) {
      const s = i.inbound;
      esp.push({ spi: s.spi, encrId: s.encrId, encrKeyBits: s.encrKeyBits, encrKey: hex(s.encrKey), integId: s.integId, integKey: hex(s.integKey) });
    }
  if (!lab.ikeKeys.length || !esp.length) throw new Error(`run ${ikeProposal}: no keys recorded (handshake failed?)`);
  return { lab, esp };
}

function main(): void {
  const runs = [
    tunnelRun('aes256gcm16-prfsha384-x25519-ke1_mlkem768', 'aes256gcm16', 1280),
    tunnelRun('aes256-sha256-prfsha256-x25519-ke1_mlkem768', 'aes128-sha256', 576),
  ];
  const keys: RecordedIkeKeys[] = runs.flatMap((r) => r.lab.ikeKeys);

  // ike-parse: every datagram as sent on the wire.
  reset('ike-parse');
  reset('sk-decrypt');
  reset('reassembly');
  writeFileSync(join(corpusDir('sk-decrypt'), 'keys.json'), JSON.stringify(keys, null, 1) + '\n');
  writeFileSync(join(corpusDir('reassembly'), 'keys.json'), JSON.stringify(keys, null, 1) + '\n');
  const fragSets = new Map<string, { keyIdx: number; dir: number; frames: Uint8Array[] }>();
  const reassembler = new Reassembler({ rules: false });
  // The inner payloads of protected messages, re-encoded as plain messages, so ike-parse reaches
  // every payload decoder (TS, IDi/IDr, AUTH, CP, Delete... only ever travel encrypted).
  const plainOf = (m: DecodedMessage, label: string) => put('ike-parse', `plain-${label}`, encodePlain({ ...m, encrypted: false }));
  for (const r of runs)
    for (const d of r.lab.datagrams) {
      const h = decodeHeaderOnly(d.data);
      const ex = (Object.entries(ExchangeType).find(([, v]) => v === h.exchange)?.[0] ?? String(h.exchange)).toLowerCase();
      put('ike-parse', `${ex}-${h.response ? 'resp' : 'req'}`, d.data);
      if (h.exchange === ExchangeType.IKE_SA_INIT) continue;
      const dir = h.initiator ? 0 : 1;
      // The key set that verifies this datagram (IKE_INTERMEDIATE uses an earlier generation than IKE_AUTH).
      let keyIdx = -1;
      let decoded;
      for (let k = 0; k < keys.length && keyIdx < 0; k++) {
        try {
          decoded = decodeProtected(d.data, cipherFor(keys[k]!, dir), { rules: false });
          keyIdx = k;
        } catch {
          /* not this generation */
        }
      }
      if (keyIdx < 0 || !decoded) throw new Error(`no recorded key decrypts a ${ex} datagram`);
      put('sk-decrypt', `${ex}-wire`, Uint8Array.from([keyIdx, dir, ...d.data]));
      const resealed = packReseal(d.data, keys[keyIdx]!, dir);
      put('sk-decrypt', `${ex}-reseal`, Uint8Array.from([keyIdx, dir | 2, ...resealed]));
      if (!isFragment(decoded)) plainOf(decoded, `${ex}-${h.response ? 'resp' : 'req'}`);
      else {
        const whole = reassembler.add(`${keyIdx}|${dir}`, decoded);
        if (whole) plainOf(whole, `${ex}-${h.response ? 'resp' : 'req'}-reassembled`);
      }
      if (isFragment(decoded)) {
        const k = `${keyIdx}|${dir}|${h.messageId}|${h.response}`;
        const set = fragSets.get(k) ?? { keyIdx, dir, frames: [] };
        set.frames.push(resealed);
        fragSets.set(k, set);
      }
    }
  for (const [, s] of fragSets) {
    put('reassembly', `set${s.frames.length}`, packFragmentSet(s.keyIdx, s.dir, s.frames));
    put('reassembly', `set${s.frames.length}-reversed`, packFragmentSet(s.keyIdx, s.dir, [...s.frames].reverse()));
  }

  // esp-decap: the installed Child SAs' keys, packets sealed by EspSa.
  reset('esp-decap');
  const sas = runs.flatMap((r) => r.esp);
  writeFileSync(join(corpusDir('esp-decap'), 'sas.json'), JSON.stringify(sas, null, 1) + '\n');
  const inner = [
    ipv4Packet('10.1.0.5', '10.2.0.7', 17, Uint8Array.from([0x13, 0x88, 0x00, 0x35, 0, 12, 0, 0, 1, 2, 3, 4])),
    ipv4Packet('10.1.0.5', '10.2.0.7', 1, Uint8Array.from([8, 0, 0xf7, 0xff, 0, 0, 0, 0])),
    ipv4Packet('10.1.0.5', '10.2.0.7', 6, new Uint8Array(20).fill(0).map((_, i) => (i === 12 ? 0x50 : i === 13 ? 0x02 : 0))),
    ipv6Packet('2001:db8:1::5', '2001:db8:2::7', 17, Uint8Array.from([0x13, 0x88, 0x00, 0x35, 0, 10, 0, 0, 9, 9])),
  ];
  sas.forEach((rec, idx) => {
    for (const esn of [false, true]) {
      const sender = new EspSa({ spi: rec.spi, encrId: rec.encrId, encrKeyBits: rec.encrKeyBits, encrKey: Buffer.from(rec.encrKey, 'hex'), integId: rec.integId, integKey: Buffer.from(rec.integKey, 'hex'), esn, replayWindow: 64, native: false });
      const pkts: { kind: 0 | 1; bytes: Uint8Array }[] = [];
      inner.forEach((p, i) => {
        const nh = p[0]! >> 4 === 6 ? 41 : 4;
        // AES-CBC takes a random IV: fix it so that a re-run reproduces the corpus byte for byte.
        const iv = sender.transform.ivSize === 16 ? new Uint8Array(16).fill(0x40 + i) : undefined;
        pkts.push({ kind: 0, bytes: sender.encapsulate(p, nh, undefined, { seq: esn ? 0x1_0000_0000 + i + 1 : i + 1, ...(iv ? { iv } : {}) })!.slice() });
      });
      // Resealed form: the same inner packets at chosen sequence numbers (reordered, one duplicate).
      const seqs = [5, 3, 9, 3];
      inner.forEach((p, i) => {
        const nh = p[0]! >> 4 === 6 ? 41 : 4;
        const b = new Uint8Array(9 + p.length);
        const dv = new DataView(b.buffer);
        dv.setUint32(0, esn ? 1 : 0);
        dv.setUint32(4, seqs[i]!);
        b[8] = nh;
        b.set(p, 9);
        pkts.push({ kind: 1, bytes: b });
      });
      put('esp-decap', `sa${idx}-${esn ? 'esn' : 'seq32'}`, packEspInput(idx, esn, 2, pkts));
      sender.destroy();
    }
  });

  // config-import: documents exported by a real store.
  reset('config-import');
  const dir = mkdtempSync(join(tmpdir(), 'pqgate-fuzzgen-'));
  try {
    const store = ConfigStore.open(join(dir, 'config.db'), { now: () => Date.UTC(2026, 10, 27) });
    const docs: unknown[] = [
      {
        version: 1,
        listen: ['0.0.0.0'],
        log_level: 'info',
        tunnels: [
          { name: 'hub', remote_addr: '192.0.2.2', local_id: 'fqdn:branch.example', psk: 'Branch-PSK-alpha-7f3c9e21d4b8', proposals: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'], esp_proposals: ['aes256gcm16'], mode: 'route', inside_addr: '10.100.0.9/31', dpd_delay: 10, mss: 1360 },
          { name: 'site2', remote_addr: '%any', local_id: '@gw.branch.example', remote_id: '@site2.example', psk: '0x3f1a9c0e7b5d42a8c6e1f0b9d2a7c4e5', local_ts: ['10.1.0.0/16'], remote_ts: ['10.2.0.0/16', '2001:db8:2::/48'], mode: 'policy', replay_window: 128, fragment_size: 1280 },
        ],
      },
    ];
    for (const d of docs) store.apply(d, { author: 'fuzz-corpus' });
    for (const name of presetNames()) {
      const p = getPreset(name)!;
      const params: Record<string, string> = {};
      for (const [k, def] of Object.entries(p.params)) params[k] = /\[0-9a-f\]|hex/i.test(def.pattern) ? '0123456789abcdef0123456789abcdef' : 'example1';
      try {
        store.addTunnelFromPreset(name, { name: `p-${name}`.slice(0, 30), remote_addr: '198.51.100.7', local_id: 'fqdn:branch.example', psk: 'Branch-PSK-bravo-0a6e5d4c3b2f' }, { author: 'fuzz-corpus', params });
      } catch {
        /* a preset that needs other parameters: its document is still covered by the others */
      }
    }
    put('config-import', 'export', JSON.stringify(store.exportDocument({}), null, 2));
    put('config-import', 'backup', JSON.stringify(store.exportDocument({ backup: true, includeSecrets: true, actor: 'fuzz-corpus' }), null, 2));
    put('config-import', 'export-compact', JSON.stringify(store.exportDocument({ includeSecrets: true, actor: 'fuzz-corpus' })));
    store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  reset('rest-api');
  for (const s of restSamples()) put('rest-api', s.label, packRestInput(s.kind, s.body));

  for (const [t, n] of written) console.log(`${t}: ${n} inputs`);
}

main();
