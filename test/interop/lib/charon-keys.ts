/**
 * Extract IKE and ESP keys from a charon file log, for decrypting captures
 * with Wireshark. Debian does not build strongSwan's save-keys plugin, so the
 * keys are taken from the debug log instead:
 *   ike >= 4 logs every IKE key derivation ("Sk_ei secret => 36 bytes @ ..."
 *            followed by a hex dump), once after IKE_SA_INIT and again after
 *            each IKE_INTERMEDIATE key exchange (RFC 9370 §2.2.2);
 *   chd >= 4 logs Child SA keys ("encryption initiator key => ...").
 * Use KEY_LOG_LEVELS from swanctl-conf.ts. Log lines need `ike_name = yes`
 * (always set by renderStrongswanConf) to carry the `<conn|uniqueid>` prefix.
 */
import type { EspKeyEntry, IkeKeyEntry } from './tshark.js';
import { formatEspUat, formatIkev2Uat } from './tshark.js';
import type { IkeSa } from './swanctl-parse.js';

interface Dump {
  /** Index of the header line in the log. */
  line: number;
  uid: number;
  group: string;
  label: string;
  len: number;
  hex: string;
}

/**
 * Hex dumps (`label => N bytes @ addr` + offset lines) in log order. Lines of
 * concurrent threads interleave, so continuation lines are matched to the
 * open dump of the same thread.
 */
export function parseDumps(log: string): Dump[] {
  const done: Dump[] = [];
  const open = new Map<string, Dump>(); // by thread id
  const head = /^\S+ (\d+)\[(\w+)\] <(?:[^|>]*\|)?(\d+)> (.*?) => (\d+) bytes @ (?:0x[0-9a-f]+|\(nil\))$/;
  const line = /^\S+ (\d+)\[(\w+)\] <(?:[^|>]*\|)?\d+>\s+\d+: ((?:[0-9A-F]{2} )+)/;
  const lines = log.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const l = lines[n]!;
    const h = head.exec(l);
    if (h) {
      const [, thread, group, uid, label, len] = h;
      const prev = open.get(thread!);
      if (prev) done.push(prev);
      const d: Dump = { line: n, uid: Number(uid), group: group!, label: label!, len: Number(len), hex: '' };
      if (d.len === 0) done.push(d);
      else open.set(thread!, d);
      continue;
    }
    const m = line.exec(l);
    if (m) {
      const d = open.get(m[1]!);
      if (d) {
        d.hex += m[3]!.replace(/ /g, '').toLowerCase();
        if (d.hex.length >= d.len * 2) {
          done.push(d);
          open.delete(m[1]!);
        }
      }
    }
  }
  for (const d of open.values()) done.push(d);
  return done.sort((a, b) => a.line - b.line);
}

/** One IKE key derivation of one IKE SA. */
export interface IkeKeyGeneration {
  uid: number;
  generation: number;
  skEi: string;
  skEr: string;
  skAi: string;
  skAr: string;
}

export function ikeKeyGenerations(log: string): IkeKeyGeneration[] {
  const out: IkeKeyGeneration[] = [];
  const cur = new Map<number, Partial<IkeKeyGeneration>>();
  const count = new Map<number, number>();
  for (const d of parseDumps(log)) {
    if (d.group !== 'IKE') continue;
    const m = /^Sk_(d|ai|ar|ei|er|pi|pr) secret$/.exec(d.label);
    if (!m) continue;
    const g = cur.get(d.uid) ?? { uid: d.uid, skAi: '', skAr: '' };
    if (m[1] === 'd') {
      // Sk_d is derived first: a new generation starts.
      cur.set(d.uid, { uid: d.uid, skAi: '', skAr: '' });
      continue;
    }
    if (m[1] === 'ei') g.skEi = d.hex;
    if (m[1] === 'er') g.skEr = d.hex;
    if (m[1] === 'ai') g.skAi = d.hex;
    if (m[1] === 'ar') g.skAr = d.hex;
    cur.set(d.uid, g);
    if (m[1] === 'pr') {
      const n = count.get(d.uid) ?? 0;
      count.set(d.uid, n + 1);
      out.push({ uid: d.uid, generation: n, skEi: g.skEi ?? '', skEr: g.skEr ?? '', skAi: g.skAi ?? '', skAr: g.skAr ?? '' });
      cur.delete(d.uid);
    }
  }
  return out;
}

/** Wireshark's IKEv2 algorithm names for a strongSwan encr-alg / keysize / integ-alg. */
export function wiresharkIkeAlgs(encr: string, keysize: number, integ?: string): { enc: string; integ: string } {
  const gcm = /^AES_GCM_(8|12|16)$/.exec(encr);
  const ccm = /^AES_CCM_(8|12|16)$/.exec(encr);
  let enc: string;
  if (gcm) enc = `AES-GCM-${keysize} with ${gcm[1]} octet ICV [RFC5282]`;
  else if (ccm) enc = `AES-CCM-${keysize} with ${ccm[1]} octet ICV [RFC5282]`;
  else if (encr === 'AES_CBC') enc = `AES-CBC-${keysize} [RFC3602]`;
  else if (encr === 'AES_CTR') enc = `AES-CTR-${keysize} [RFC5930]`;
  else if (encr === '3DES') enc = '3DES [RFC2451]';
  else throw new Error(`no Wireshark name for IKE encryption ${encr}`);
  const integNames: Record<string, string> = {
    HMAC_SHA1_96: 'HMAC_SHA1_96 [RFC2404]',
    HMAC_SHA2_256_128: 'HMAC_SHA2_256_128 [RFC4868]',
    HMAC_SHA2_384_192: 'HMAC_SHA2_384_192 [RFC4868]',
    HMAC_SHA2_512_256: 'HMAC_SHA2_512_256 [RFC4868]',
  };
  const i = gcm || ccm || !integ ? 'NONE [RFC4306]' : integNames[integ];
  if (!i) throw new Error(`no Wireshark name for IKE integrity ${integ}`);
  return { enc, integ: i };
}

/**
 * Wireshark's ESP algorithm names (packet-esp.c UAT values, Wireshark 4.0).
 * Since 4.0 AES-GCM names its ICV length and must be paired with "NULL"
 * authentication (the older "AES-GCM [RFC4106]" + "ANY 128 bit ..." pair that
 * strongSwan's save-keys writes is rejected as a preference error).
 */
export function wiresharkEspAlgs(encr: string, integ?: string): { enc: string; auth: string } {
  const gcm = /^AES_GCM_(8|12|16)$/.exec(encr);
  if (gcm) return { enc: `AES-GCM with ${gcm[1]} octet ICV [RFC4106]`, auth: 'NULL' };
  const encNames: Record<string, string> = { AES_CBC: 'AES-CBC [RFC3602]', AES_CTR: 'AES-CTR [RFC3686]', NULL: 'NULL' };
  const authNames: Record<string, string> = {
    HMAC_SHA1_96: 'HMAC-SHA-1-96 [RFC2404]',
    HMAC_SHA2_256_128: 'HMAC-SHA-256-128 [RFC4868]',
    HMAC_SHA2_384_192: 'HMAC-SHA-384-192 [RFC4868]',
    HMAC_SHA2_512_256: 'HMAC-SHA-512-256 [RFC4868]',
  };
  const enc = encNames[encr];
  const auth = integ ? authNames[integ] : 'NULL';
  if (!enc || !auth) throw new Error(`no Wireshark name for ESP ${encr}/${integ}`);
  return { enc, auth };
}

/**
 * IKEv2 UAT tables from a charon log and the SAs listed by `--list-sas`
 * (for SPIs and algorithms): element g holds every SA's g-th key generation
 * (0 = after IKE_SA_INIT, 1.. = after each IKE_INTERMEDIATE round).
 */
export function ikev2TablesFromCharon(log: string, sas: readonly IkeSa[]): string[] {
  const bySa = new Map(sas.map((s) => [s.uniqueId, s]));
  const tables: IkeKeyEntry[][] = [];
  for (const g of ikeKeyGenerations(log)) {
    const sa = bySa.get(g.uid);
    if (!sa || !sa.encrAlg) continue;
    const algs = wiresharkIkeAlgs(sa.encrAlg, sa.encrKeysize ?? 0, sa.integAlg);
    (tables[g.generation] ??= []).push({
      spiI: sa.spiI,
      spiR: sa.spiR,
      skEi: g.skEi,
      skEr: g.skEr,
      skAi: g.skAi,
      skAr: g.skAr,
      encAlg: algs.enc,
      integAlg: algs.integ,
    });
  }
  return tables.map((t) => formatIkev2Uat(t ?? []));
}

/**
 * esp_sa UAT entries for the Child SAs in a charon log. Direction: the
 * initiator of the exchange that created a Child SA sends with the
 * "initiator" keys (RFC 7296 §2.17); a node knows it initiated when it logged
 * "establishing CHILD_SA name{id}".
 */
export function espTableFromCharon(log: string, sas: readonly IkeSa[], wildcardAddrs = false): string {
  const children = new Map<string, { encr: string; integ?: string }>();
  for (const s of sas) for (const c of s.children) children.set(`${c.spiIn}`, { encr: c.encrAlg ?? '', ...(c.integAlg ? { integ: c.integAlg } : {}) });
  const entries: EspKeyEntry[] = [];
  const keys = new Map<number, Record<string, string>>();
  const initiated = new Set<string>();
  const sa = new Map<number, { inSrc?: string; inDst?: string }>();
  const dumpAt = new Map(parseDumps(log).map((d) => [d.line, d]));
  const lines = log.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const p = /^\S+ \d+\[(\w+)\] <(?:[^|>]*\|)?(\d+)> (.*)$/.exec(lines[n]!);
    if (!p) continue;
    const uid = Number(p[2]);
    const text = p[3]!;
    const d = dumpAt.get(n);
    if (d) {
      if (d.group === 'CHD' && /^(encryption|integrity) (initiator|responder) key$/.test(d.label)) {
        const k = keys.get(uid) ?? {};
        k[d.label] = d.hex;
        keys.set(uid, k);
      }
      continue;
    }
    let m = /^establishing CHILD_SA (\S+?)\{(\d+)\}/.exec(text);
    if (m) initiated.add(`${uid}/${m[2]}`);
    m = /^\s*SPI 0x([0-9a-f]+), src (\S+) dst (\S+)$/.exec(text);
    if (m) {
      const s = sa.get(uid) ?? {};
      if (s.inSrc === undefined) {
        s.inSrc = m[2];
        s.inDst = m[3];
      }
      sa.set(uid, s);
    }
    m = /^CHILD_SA (\S+?)\{(\d+)\} established with SPIs ([0-9a-f]+)_i(?: \(0x[0-9a-f]+\))? ([0-9a-f]+)_o/.exec(text);
    if (m) {
      const k = keys.get(uid) ?? {};
      const s = sa.get(uid) ?? {};
      const spiIn = m[3]!;
      const spiOut = m[4]!;
      const alg = children.get(spiIn);
      if (alg && k['encryption initiator key']) {
        const names = wiresharkEspAlgs(alg.encr, alg.integ);
        const iAmInit = initiated.has(`${uid}/${m[2]}`);
        const me = s.inDst ?? '*';
        const peer = s.inSrc ?? '*';
        const keyOut = iAmInit ? 'initiator' : 'responder';
        const keyIn = iAmInit ? 'responder' : 'initiator';
        const addr = (a: string): string => (wildcardAddrs ? '*' : a);
        entries.push({
          src: addr(me), dst: addr(peer), spi: spiOut, encAlg: names.enc,
          encKey: k[`encryption ${keyOut} key`] ?? '', authAlg: names.auth, authKey: k[`integrity ${keyOut} key`] ?? '',
        });
        entries.push({
          src: addr(peer), dst: addr(me), spi: spiIn, encAlg: names.enc,
          encKey: k[`encryption ${keyIn} key`] ?? '', authAlg: names.auth, authKey: k[`integrity ${keyIn} key`] ?? '',
        });
      }
      keys.delete(uid);
      sa.delete(uid);
    }
  }
  return formatEspUat(entries);
}
