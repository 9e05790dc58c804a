/**
 * Packet capture inside a namespace and decoding with tshark (Wireshark 4.0
 * on Debian 12), including IKEv2 / ESP decryption from key tables in
 * Wireshark's UAT formats.
 *
 * Capture filters (BPF) record nothing on this machine, so captures are
 * unfiltered and every selection is a *display* filter (`-Y`).
 *
 * Key tables: Wireshark reads `ikev2_decryption_table` and `esp_sa` from its
 * configuration directory. Each decode run gets a throw-away configuration
 * directory (HOME=<tmp>, so ~/.config/wireshark/<uat>) holding exactly the
 * tables given, so nothing depends on the invoking user's Wireshark settings.
 *
 * UAT record formats (one line per SA; what Wireshark itself writes and what
 * strongSwan's save-keys plugin emits):
 *   ikev2_decryption_table:
 *     SPIi(16 hex),SPIr(16 hex),SK_ei,SK_er,"<encr alg>",SK_ai,SK_ar,"<integ alg>"
 *     e.g. ...,"AES-GCM-256 with 16 octet ICV [RFC5282]",,,"NONE [RFC4306]"
 *   esp_sa:
 *     "IPv4","<src>","<dst>","0x<SPI>","<encr alg>","0x<key>","<auth alg>","0x<key>"
 *     e.g. "IPv4","192.0.2.1","192.0.2.2","0xc1234567","AES-GCM with 16 octet ICV [RFC4106]",
 *          "0x<36 bytes>","NULL","0x"
 * (AES-GCM keys include the 4-octet salt, RFC 4106 §8.1 / RFC 5282 §7.1.)
 */
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUN_PREFIX, type Netns } from './netns.js';
import { onCleanup, run, runSync, sleep, type Spawned } from './proc.js';

// ------------------------------------------------------------------ capture

export class Capture {
  private constructor(
    readonly file: string,
    private readonly proc: Spawned,
    private readonly errFile: string,
  ) {}

  /**
   * Start dumpcap on `iface` inside `ns`, writing classic pcap to `file`.
   * Resolves once dumpcap reports that it is capturing.
   */
  static async start(ns: Netns, iface: string, file: string): Promise<Capture> {
    const errFile = `${file}.dumpcap.log`;
    const proc = ns.spawn(['dumpcap', '-q', '-P', '-i', iface, '-w', file], errFile, `dumpcap ${iface}`);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const err = safeRead(errFile);
      if (/Capturing on/.test(err) && existsNonEmpty(file)) {
        // dumpcap announces the capture a little before packets reach its ring
        // (measured: the first ~20 ms are lost); wait before letting traffic start.
        await sleep(250);
        break;
      }
      if (proc.hasExited()) throw new Error(`dumpcap failed in ${ns.name}: ${err}`);
      if (Date.now() > deadline) {
        await proc.stop(1000);
        throw new Error(`dumpcap did not start in ${ns.name}: ${err}`);
      }
      await sleep(20);
    }
    return new Capture(file, proc, errFile);
  }

  /** Stop (SIGTERM lets dumpcap flush) and return the pcap path. */
  async stop(): Promise<string> {
    // libpcap's TPACKET_V3 ring hands packets to dumpcap in blocks retired after
    // its read timeout (250 ms); a block still open at SIGTERM is lost, so a stop
    // right after the traffic recorded nothing. Wait for the block to retire.
    await sleep(600);
    await this.proc.stop(3000);
    if (!existsNonEmpty(this.file)) throw new Error(`capture ${this.file} is empty: ${safeRead(this.errFile)}`);
    return this.file;
  }
}

function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

function existsNonEmpty(p: string): boolean {
  try {
    return statSync(p).size > 0;
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------ key tables

export interface IkeKeyEntry {
  /** 16 hex digits each. */
  spiI: string;
  spiR: string;
  /** Hex keys. SK_ai/SK_ar are empty for AEAD suites. */
  skEi: string;
  skEr: string;
  skAi: string;
  skAr: string;
  /** Wireshark's names, e.g. "AES-GCM-256 with 16 octet ICV [RFC5282]" and "NONE [RFC4306]". */
  encAlg: string;
  integAlg: string;
}

export interface EspKeyEntry {
  family?: 'IPv4' | 'IPv6';
  /** Addresses as seen in the capture, or "*" for any. */
  src: string;
  dst: string;
  /** 8 hex digits (no 0x). */
  spi: string;
  encAlg: string;
  encKey: string;
  authAlg: string;
  authKey: string;
}

export function formatIkev2Uat(entries: readonly IkeKeyEntry[]): string {
  return (
    entries
      .map((e) => `${e.spiI},${e.spiR},${e.skEi},${e.skEr},"${e.encAlg}",${e.skAi},${e.skAr},"${e.integAlg}"`)
      .join('\n') + '\n'
  );
}

export function formatEspUat(entries: readonly EspKeyEntry[]): string {
  return (
    entries
      .map(
        (e) =>
          `"${e.family ?? 'IPv4'}","${e.src}","${e.dst}","0x${e.spi}","${e.encAlg}","0x${e.encKey}","${e.authAlg}","0x${e.authKey}"`,
      )
      .join('\n') + '\n'
  );
}

/** Split one UAT line into its fields (comma-separated, optional double quotes). */
export function parseUatLine(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let v = '';
      i++;
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < line.length) i++;
        v += line[i++];
      }
      i++; // closing quote
      out.push(v);
      if (line[i] === ',') i++;
      else break;
    } else {
      const j = line.indexOf(',', i);
      out.push(line.slice(i, j < 0 ? undefined : j));
      if (j < 0) break;
      i = j + 1;
    }
  }
  return out;
}

export function parseIkev2Uat(text: string): IkeKeyEntry[] {
  return text
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => {
      const [spiI = '', spiR = '', skEi = '', skEr = '', encAlg = '', skAi = '', skAr = '', integAlg = ''] = parseUatLine(l);
      return { spiI, spiR, skEi, skEr, encAlg, skAi, skAr, integAlg };
    });
}

export function parseEspUat(text: string): EspKeyEntry[] {
  return text
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => {
      const [family = 'IPv4', src = '', dst = '', spi = '', encAlg = '', encKey = '', authAlg = '', authKey = ''] = parseUatLine(l);
      return {
        family: family as 'IPv4' | 'IPv6',
        src,
        dst,
        spi: spi.replace(/^0x/i, ''),
        encAlg,
        encKey: encKey.replace(/^0x/i, ''),
        authAlg,
        authKey: authKey.replace(/^0x/i, ''),
      };
    });
}

// ------------------------------------------------------------------ running tshark

export interface TsharkOptions {
  /** Display filter (-Y). */
  filter?: string;
  /** ikev2_decryption_table contents (UAT text). */
  ikev2Table?: string;
  /** esp_sa contents (UAT text); also turns on ESP decryption. */
  espTable?: string;
  /** Extra `-o name:value` preferences. */
  prefs?: string[];
  /** Decode UDP ports as ISAKMP/ESP-in-UDP besides 500/4500 (e.g. pqgate on odd ports). */
  decodeAs?: string[];
}

let profileSeq = 0;

/** A throw-away HOME with ~/.config/wireshark holding the given UAT tables. */
function makeProfile(o: TsharkOptions): { home: string; release: () => void } {
  const home = mkdtempSync(join(tmpdir(), `${RUN_PREFIX}ws${profileSeq++}-`));
  const rm = (): void => void runSync('rm', ['-rf', '--one-file-system', '--', home], { check: false });
  const unregister = onCleanup(rm, `tshark profile ${home}`);
  const cfg = join(home, '.config', 'wireshark');
  mkdirSync(cfg, { recursive: true });
  writeFileSync(join(cfg, 'ikev2_decryption_table'), '# generated by pqgate tests\n' + (o.ikev2Table ?? ''));
  writeFileSync(join(cfg, 'esp_sa'), '# generated by pqgate tests\n' + (o.espTable ?? ''));
  return {
    home,
    release: () => {
      rm();
      unregister();
    },
  };
}

function tsharkArgs(pcap: string, o: TsharkOptions): string[] {
  const args = ['-r', pcap, '-n'];
  if (o.filter) args.push('-Y', o.filter);
  if (o.espTable) {
    args.push('-o', 'esp.enable_encryption_decode:TRUE');
  }
  for (const p of o.prefs ?? []) args.push('-o', p);
  for (const d of o.decodeAs ?? []) args.push('-d', d);
  return args;
}

async function runTshark(args: string[], o: TsharkOptions): Promise<string> {
  const { home, release } = makeProfile(o);
  try {
    const r = await run('tshark', args, {
      env: { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), WIRESHARK_CONFIG_DIR: join(home, '.config', 'wireshark') },
      timeoutMs: 120_000,
    });
    return r.stdout;
  } finally {
    release();
  }
}

/** `tshark -T fields`: one record per displayed frame, each field a list (tshark's `,` aggregation). */
export async function tsharkFields(pcap: string, fields: readonly string[], o: TsharkOptions = {}): Promise<Record<string, string[]>[]> {
  const args = [...tsharkArgs(pcap, o), '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=a', '-E', 'aggregator=|'];
  for (const f of fields) args.push('-e', f);
  const out = await runTshark(args, o);
  return out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const cols = l.split('\t');
      const rec: Record<string, string[]> = {};
      fields.forEach((f, i) => {
        const v = cols[i] ?? '';
        rec[f] = v === '' ? [] : v.split('|');
      });
      return rec;
    });
}

/** `tshark -T json` (the full dissection tree of every displayed frame). */
export async function tsharkJson(pcap: string, o: TsharkOptions = {}): Promise<unknown[]> {
  const out = await runTshark([...tsharkArgs(pcap, o), '-T', 'json'], o);
  return JSON.parse(out) as unknown[];
}

// ------------------------------------------------------------------ IKE report

/** IKEv2 exchange types (RFC 7296 §3.1, RFC 9242 §3). */
export const EXCHANGE_NAMES: Record<number, string> = {
  34: 'IKE_SA_INIT',
  35: 'IKE_AUTH',
  36: 'CREATE_CHILD_SA',
  37: 'INFORMATIONAL',
  43: 'IKE_INTERMEDIATE',
};

export interface IkeMessage {
  frame: number;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  /** UDP payload length (incl. the non-ESP marker on port 4500). */
  udpBytes: number;
  spiI: string;
  spiR: string;
  exchange: string;
  exchangeType: number;
  response: boolean;
  msgId: number;
  /** Payload type numbers in tree order: outer, inner when decrypted, incl. proposal (2) / transform (3) substructures. */
  payloadTypes: number[];
  /** An Encrypted or Encrypted Fragment payload (46 / 53) is present. */
  encrypted: boolean;
  /** Its contents were decrypted with one of the key tables (and the ICV verified). */
  decrypted: boolean;
  /** An AUTH payload was found (only visible in IKE_AUTH after decryption). */
  hasAuth: boolean;
  /** Encrypted Fragment number / total (RFC 7383), when fragmented. */
  fragment?: { number: number; total: number };
}

const IKE_FIELDS = [
  'frame.number', 'ip.src', 'ip.dst', 'udp.srcport', 'udp.dstport', 'udp.length',
  'isakmp.ispi', 'isakmp.rspi', 'isakmp.exchangetype', 'isakmp.flags', 'isakmp.messageid',
  'isakmp.nextpayload', 'isakmp.typepayload', 'isakmp.enc.decrypted', 'isakmp.auth.method',
  'isakmp.frag.number', 'isakmp.frag.total', '_ws.expert.message',
] as const;

/**
 * Decode all IKEv2 messages in `pcap`. Because strongSwan re-derives the IKE
 * keys after every IKE_INTERMEDIATE round (RFC 9370 §2.2.2), one SA can need
 * several key sets: pass one table per key generation; a message counts as
 * decrypted if any table decrypts it.
 */
export async function ikeMessages(pcap: string, ikev2Tables: readonly string[] = [''], o: Omit<TsharkOptions, 'ikev2Table' | 'filter'> = {}): Promise<IkeMessage[]> {
  const merged = new Map<number, IkeMessage>();
  for (const table of ikev2Tables.length ? ikev2Tables : ['']) {
    const recs = await tsharkFields(pcap, IKE_FIELDS, { ...o, ikev2Table: table, filter: 'isakmp' });
    for (const r of recs) {
      const m = toIkeMessage(r);
      const prev = merged.get(m.frame);
      if (!prev || (!prev.decrypted && m.decrypted)) merged.set(m.frame, m);
    }
  }
  return [...merged.values()].sort((a, b) => a.frame - b.frame);
}

function num(v: string | undefined): number {
  if (v === undefined || v === '') return NaN;
  return v.startsWith('0x') ? parseInt(v, 16) : Number(v);
}

function toIkeMessage(r: Record<string, string[]>): IkeMessage {
  const f = (k: string): string[] => r[k] ?? [];
  const flags = num(f('isakmp.flags')[0]);
  const exchangeType = num(f('isakmp.exchangetype')[0]);
  // Every payload (outer, inner after decryption, and proposal/transform substructures) in tree order.
  const payloadTypes = f('isakmp.typepayload').map(num).filter((n) => !Number.isNaN(n));
  const typePayloads = payloadTypes;
  const fragNo = f('isakmp.frag.number')[0];
  const msg: IkeMessage = {
    frame: num(f('frame.number')[0]),
    src: f('ip.src')[0] ?? '',
    dst: f('ip.dst')[0] ?? '',
    srcPort: num(f('udp.srcport')[0]),
    dstPort: num(f('udp.dstport')[0]),
    udpBytes: num(f('udp.length')[0]) - 8,
    spiI: (f('isakmp.ispi')[0] ?? '').replace(/^0x/, ''),
    spiR: (f('isakmp.rspi')[0] ?? '').replace(/^0x/, ''),
    exchange: EXCHANGE_NAMES[exchangeType] ?? `EXCHANGE_${exchangeType}`,
    exchangeType,
    // IKEv2 header flags: bit 0x20 = Response (RFC 7296 §3.1).
    response: (flags & 0x20) !== 0,
    msgId: num(f('isakmp.messageid')[0]),
    payloadTypes,
    encrypted: typePayloads.includes(46) || typePayloads.includes(53) || payloadTypes[0] === 46 || payloadTypes[0] === 53,
    // Wireshark "decrypts" with any key it is given; only a matching ICV/HMAC
    // (no "Integrity Checksum Data is incorrect" expert note) means the right key.
    decrypted:
      f('isakmp.enc.decrypted').length > 0 &&
      !f('_ws.expert.message').some((e) => /Integrity Checksum Data is incorrect/.test(e)),
    hasAuth: f('isakmp.auth.method').length > 0,
  };
  if (fragNo !== undefined) msg.fragment = { number: num(fragNo), total: num(f('isakmp.frag.total')[0]) };
  return msg;
}

/** Summary of which IKE_AUTH (and IKE_INTERMEDIATE) messages the key tables decrypted. */
export interface DecryptionReport {
  messages: IkeMessage[];
  ikeAuth: { frame: number; response: boolean; decrypted: boolean; hasAuth: boolean }[];
  intermediate: { frame: number; response: boolean; decrypted: boolean }[];
  /** Every IKE_AUTH message was decrypted and showed an AUTH payload. */
  allIkeAuthDecrypted: boolean;
}

/**
 * Given a pcap and key tables in Wireshark's UAT formats, report which
 * IKE_AUTH messages were decrypted (AUTH payload visible) and which
 * IKE_INTERMEDIATE ones. `ikev2Tables`: one UAT text per key generation.
 */
export async function ikeDecryptionReport(pcap: string, ikev2Tables: readonly string[], espTable?: string): Promise<DecryptionReport> {
  const messages = await ikeMessages(pcap, ikev2Tables, espTable ? { espTable } : {});
  const ikeAuth = messages
    .filter((m) => m.exchangeType === 35)
    .map((m) => ({ frame: m.frame, response: m.response, decrypted: m.decrypted, hasAuth: m.hasAuth }));
  const intermediate = messages
    .filter((m) => m.exchangeType === 43)
    .map((m) => ({ frame: m.frame, response: m.response, decrypted: m.decrypted }));
  return {
    messages,
    ikeAuth,
    intermediate,
    allIkeAuthDecrypted: ikeAuth.length > 0 && ikeAuth.every((m) => m.decrypted && m.hasAuth),
  };
}

/**
 * ESP frames in a capture. `decrypted`: the esp_sa table decrypted it into a
 * well-formed inner packet (pad length and next header 4 = IPv4 / 41 = IPv6
 * parsed, and an inner IP header dissected after the outer one; an inner IPv6
 * header shows in `ipv6.*`, not as a second `ip.src`). `inner.family` tells which. Wireshark
 * does not check the AES-GCM ICV, so a wrong key shows up as a garbage
 * next-header / missing inner header instead.
 */
export async function espFrames(pcap: string, espTable?: string): Promise<{ frame: number; spi: string; seq: number; decrypted: boolean; inner?: { family: 4 | 6; src: string; dst: string } }[]> {
  const fields = ['frame.number', 'esp.spi', 'esp.sequence', 'esp.pad_len', 'esp.protocol', 'ip.src', 'ip.dst', 'ipv6.src', 'ipv6.dst'];
  const recs = await tsharkFields(pcap, fields, { filter: 'esp', ...(espTable ? { espTable } : {}) });
  return recs.map((r) => {
    const srcs = r['ip.src'] ?? [];
    const dsts = r['ip.dst'] ?? [];
    const src6 = r['ipv6.src'] ?? [];
    const dst6 = r['ipv6.dst'] ?? [];
    const nh = num(r['esp.protocol']?.[0]);
    const padded = (r['esp.pad_len']?.length ?? 0) > 0;
    // Two IP headers dissected (outer + inner), the last one of the family next header names.
    const twoHeaders = srcs.length + src6.length >= 2;
    const inner4 = padded && nh === 4 && twoHeaders && srcs.length > 0;
    const inner6 = padded && nh === 41 && twoHeaders && src6.length > 0;
    const out: { frame: number; spi: string; seq: number; decrypted: boolean; inner?: { family: 4 | 6; src: string; dst: string } } = {
      frame: num(r['frame.number']?.[0]),
      spi: (r['esp.spi']?.[0] ?? '').replace(/^0x/, ''),
      seq: num(r['esp.sequence']?.[0]),
      decrypted: inner4 || inner6,
    };
    if (inner4) out.inner = { family: 4, src: srcs[srcs.length - 1]!, dst: dsts[dsts.length - 1]! };
    else if (inner6) out.inner = { family: 6, src: src6[src6.length - 1]!, dst: dst6[dst6.length - 1]! };
    return out;
  });
}

/** UDP packets and payload bytes on the IKE ports (500/4500, excluding ESP-in-UDP and keepalives). */
export async function ikeWireStats(pcap: string, ports: readonly number[] = [500, 4500]): Promise<{ packets: number; bytes: number }> {
  const portExpr = ports.map((p) => `udp.port == ${p}`).join(' || ');
  const recs = await tsharkFields(pcap, ['udp.length'], { filter: `(${portExpr}) && isakmp && !isakmp.ike.nat_keepalive` });
  return { packets: recs.length, bytes: recs.reduce((s, r) => s + num(r['udp.length']?.[0]) - 8, 0) };
}
