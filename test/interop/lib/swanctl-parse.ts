/**
 * Parse `swanctl --list-sas --pretty` (the vici `list-sa` events printed as
 * an indented tree) into typed IKE/Child SA records. The pretty form is used
 * instead of the human text because every field is labelled; `algorithms`
 * re-creates the text form's algorithm line, e.g.
 *   6.1:   AES_GCM_16-256/PRF_HMAC_SHA2_384/CURVE_25519/KE1_ML_KEM_768
 *   5.9.8: AES_GCM_16-256/PRF_HMAC_SHA2_384/CURVE_25519
 * strongSwan 6.x reports the additional key exchanges of RFC 9370 as vici keys
 * `ake1`..`ake7` (value e.g. ML_KEM_768); the text form prints them as KE<n>_<value>.
 */

export type ViciValue = string | string[] | ViciSection;
export interface ViciSection {
  [key: string]: ViciValue;
}

/** Parse the pretty vici dump into a list of top-level messages (`<name> {...}`). */
export function parseViciPretty(text: string): { name: string; body: ViciSection }[] {
  const out: { name: string; body: ViciSection }[] = [];
  const stack: ViciSection[] = [];
  let list: string[] | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (list) {
      if (line === ']') list = undefined;
      else list.push(line);
      continue;
    }
    if (line === '}') {
      stack.pop();
      continue;
    }
    let m = /^(.*?) \{$/.exec(line);
    if (m) {
      const sec: ViciSection = {};
      if (stack.length === 0) out.push({ name: m[1]!, body: sec });
      else stack[stack.length - 1]![m[1]!] = sec;
      stack.push(sec);
      continue;
    }
    m = /^(\S+) = \[$/.exec(line);
    if (m && stack.length) {
      list = [];
      stack[stack.length - 1]![m[1]!] = list;
      continue;
    }
    m = /^(\S+) = (.*)$/.exec(line);
    if (m && stack.length) stack[stack.length - 1]![m[1]!] = m[2]!;
  }
  return out;
}

export interface ChildSa {
  /** Child config name. */
  name: string;
  uniqueId: number;
  reqid: number;
  /** INSTALLED, REKEYING, REKEYED, DELETING, ... */
  state: string;
  mode: string;
  protocol: string;
  /** UDP encapsulation in use. */
  encap: boolean;
  spiIn: string;
  spiOut: string;
  encrAlg?: string;
  encrKeysize?: number;
  integAlg?: string;
  /** Key exchange of the CREATE_CHILD_SA that made this SA (absent for the IKE_AUTH child). */
  dhGroup?: string;
  /** Additional key exchanges (ake1..ake7 values), index 0 = ake1. */
  additionalKe: string[];
  bytesIn: number;
  packetsIn: number;
  bytesOut: number;
  packetsOut: number;
  localTs: string[];
  remoteTs: string[];
  installTime?: number;
  rekeyTime?: number;
  lifeTime?: number;
  /** As in swanctl's text output, e.g. `ESP:AES_GCM_16-256/CURVE_25519/KE1_ML_KEM_768`. */
  algorithms: string;
  raw: ViciSection;
}

export interface IkeSa {
  /** Connection name. */
  name: string;
  uniqueId: number;
  version: number;
  /** CREATED, CONNECTING, ESTABLISHED, PASSIVE, REKEYING, REKEYED, DELETING, DESTROYING */
  state: string;
  localHost: string;
  localPort: number;
  localId: string;
  remoteHost: string;
  remotePort: number;
  remoteId: string;
  initiator: boolean;
  /** 16 hex digits each. */
  spiI: string;
  spiR: string;
  natLocal: boolean;
  natRemote: boolean;
  /** NAT detected or faked (encap = yes). */
  natAny: boolean;
  encrAlg?: string;
  encrKeysize?: number;
  integAlg?: string;
  prfAlg?: string;
  dhGroup?: string;
  /** Additional key exchanges (RFC 9370) from `ake1`..`ake7`; index 0 = ake1. */
  additionalKe: string[];
  /** As in swanctl's text output, e.g. `AES_GCM_16-256/PRF_HMAC_SHA2_384/CURVE_25519/KE1_ML_KEM_768`. */
  algorithms: string;
  established?: number;
  rekeyTime?: number;
  reauthTime?: number;
  tasksQueued: string[];
  tasksActive: string[];
  tasksPassive: string[];
  children: ChildSa[];
  raw: ViciSection;
}

const str = (s: ViciSection, k: string): string | undefined => (typeof s[k] === 'string' ? (s[k] as string) : undefined);
const int = (s: ViciSection, k: string): number | undefined => {
  const v = str(s, k);
  return v === undefined ? undefined : Number(v);
};
const arr = (s: ViciSection, k: string): string[] => {
  const v = s[k];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
};
const yes = (s: ViciSection, k: string): boolean => str(s, k) === 'yes';

function akes(s: ViciSection): string[] {
  const out: string[] = [];
  for (let i = 1; i <= 7; i++) {
    const v = str(s, `ake${i}`);
    if (v) out[i - 1] = v;
  }
  return out;
}

function akeSuffix(list: readonly string[]): string {
  return list.map((v, i) => (v ? `/KE${i + 1}_${v}` : '')).join('');
}

function parseChild(c: ViciSection): ChildSa {
  const encr = str(c, 'encr-alg');
  const integ = str(c, 'integ-alg');
  const additionalKe = akes(c);
  let alg = `${str(c, 'protocol') ?? ''}:`;
  if (encr) alg += encr + (str(c, 'encr-keysize') ? `-${str(c, 'encr-keysize')}` : '');
  if (integ) alg += (encr ? '/' : '') + integ + (str(c, 'integ-keysize') ? `-${str(c, 'integ-keysize')}` : '');
  if (str(c, 'prf-alg')) alg += `/${str(c, 'prf-alg')}`;
  if (str(c, 'dh-group')) alg += `/${str(c, 'dh-group')}`;
  alg += akeSuffix(additionalKe);
  if (str(c, 'esn')) alg += '/ESN';
  const child: ChildSa = {
    name: str(c, 'name') ?? '',
    uniqueId: int(c, 'uniqueid') ?? 0,
    reqid: int(c, 'reqid') ?? 0,
    state: str(c, 'state') ?? '',
    mode: str(c, 'mode') ?? '',
    protocol: str(c, 'protocol') ?? '',
    encap: yes(c, 'encap'),
    spiIn: str(c, 'spi-in') ?? '',
    spiOut: str(c, 'spi-out') ?? '',
    additionalKe,
    bytesIn: int(c, 'bytes-in') ?? 0,
    packetsIn: int(c, 'packets-in') ?? 0,
    bytesOut: int(c, 'bytes-out') ?? 0,
    packetsOut: int(c, 'packets-out') ?? 0,
    localTs: arr(c, 'local-ts'),
    remoteTs: arr(c, 'remote-ts'),
    algorithms: alg,
    raw: c,
  };
  if (encr) child.encrAlg = encr;
  if (str(c, 'encr-keysize')) child.encrKeysize = int(c, 'encr-keysize')!;
  if (integ) child.integAlg = integ;
  if (str(c, 'dh-group')) child.dhGroup = str(c, 'dh-group')!;
  for (const [k, f] of [['install-time', 'installTime'], ['rekey-time', 'rekeyTime'], ['life-time', 'lifeTime']] as const) {
    const v = int(c, k);
    if (v !== undefined) child[f] = v;
  }
  return child;
}

function parseIke(name: string, s: ViciSection): IkeSa {
  const encr = str(s, 'encr-alg');
  const additionalKe = akes(s);
  let alg = '';
  if (encr) {
    alg = encr + (str(s, 'encr-keysize') ? `-${str(s, 'encr-keysize')}` : '');
    if (str(s, 'integ-alg')) alg += `/${str(s, 'integ-alg')}`;
    if (str(s, 'integ-keysize')) alg += `-${str(s, 'integ-keysize')}`;
    alg += `/${str(s, 'prf-alg') ?? ''}/${str(s, 'dh-group') ?? ''}` + akeSuffix(additionalKe);
  }
  const children = Object.values((s['child-sas'] as ViciSection | undefined) ?? {})
    .filter((c): c is ViciSection => typeof c === 'object' && !Array.isArray(c))
    .map(parseChild);
  const sa: IkeSa = {
    name,
    uniqueId: int(s, 'uniqueid') ?? 0,
    version: int(s, 'version') ?? 0,
    state: str(s, 'state') ?? '',
    localHost: str(s, 'local-host') ?? '',
    localPort: int(s, 'local-port') ?? 0,
    localId: str(s, 'local-id') ?? '',
    remoteHost: str(s, 'remote-host') ?? '',
    remotePort: int(s, 'remote-port') ?? 0,
    remoteId: str(s, 'remote-id') ?? '',
    initiator: yes(s, 'initiator'),
    spiI: str(s, 'initiator-spi') ?? '',
    spiR: str(s, 'responder-spi') ?? '',
    natLocal: yes(s, 'nat-local'),
    natRemote: yes(s, 'nat-remote'),
    natAny: yes(s, 'nat-any'),
    additionalKe,
    algorithms: alg,
    tasksQueued: arr(s, 'tasks-queued'),
    tasksActive: arr(s, 'tasks-active'),
    tasksPassive: arr(s, 'tasks-passive'),
    children,
    raw: s,
  };
  if (encr) sa.encrAlg = encr;
  if (str(s, 'encr-keysize')) sa.encrKeysize = int(s, 'encr-keysize')!;
  if (str(s, 'integ-alg')) sa.integAlg = str(s, 'integ-alg')!;
  if (str(s, 'prf-alg')) sa.prfAlg = str(s, 'prf-alg')!;
  if (str(s, 'dh-group')) sa.dhGroup = str(s, 'dh-group')!;
  for (const [k, f] of [['established', 'established'], ['rekey-time', 'rekeyTime'], ['reauth-time', 'reauthTime']] as const) {
    const v = int(s, k);
    if (v !== undefined) sa[f] = v;
  }
  return sa;
}

/** Parse `swanctl --list-sas --pretty` output. */
export function parseListSasPretty(text: string): IkeSa[] {
  const out: IkeSa[] = [];
  for (const msg of parseViciPretty(text)) {
    if (msg.name !== 'list-sa event') continue;
    for (const [name, body] of Object.entries(msg.body)) {
      if (typeof body === 'object' && !Array.isArray(body)) out.push(parseIke(name, body));
    }
  }
  return out;
}
