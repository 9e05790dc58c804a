/**
 * rest-api: the web admin's request input validators, in-process (no HTTP
 * server): the JSON API body fields (webui/api.ts changeFields, int), the
 * tunnel form -> config.tunnel.put conversion (webui/tunnel-form.ts
 * formToTunnel, trialSeconds), the event log filter, multipart/form-data
 * uploads (webui/multipart.ts: parser, file-name check, form fields) and the
 * backup-restore JSON parse. Input: [kind][payload]:
 *   0 API body (JSON), 1 tunnel form (JSON object of strings),
 *   2 multipart ([u8 length][Content-Type][body]), 3 backup file text.
 * Acceptable errors: ChangeRefused (HTTP 4xx) and MultipartError. Invariants:
 * a parsed part's data lies inside the body; at most 16 parts; accepted file
 * names pass checkFileName; the form conversion only emits known fields with
 * JSON-typed values.
 */
import { changeFields, int } from '../../webui/api.js';
import { ChangeRefused, parseBackup, isSaAction } from '../../webui/service.js';
import { FIELDS, formToTunnel, trialSeconds } from '../../webui/tunnel-form.js';
import { logFilter } from '../../webui/pages/system.js';
import { checkFileName, formOf, MultipartError, parseMultipart } from '../../webui/multipart.js';
import { errSig, InvariantError, type FuzzTarget } from '../lib/target.js';

const dec = new TextDecoder();
const enc = new TextEncoder();
const KNOWN = new Set(FIELDS.map((f) => f.key));

export type RestKind = 0 | 1 | 2 | 3;

export function packRestInput(kind: RestKind, body: Uint8Array | string): Uint8Array {
  const b = typeof body === 'string' ? enc.encode(body) : body;
  const out = new Uint8Array(1 + b.length);
  out[0] = kind;
  out.set(b, 1);
  return out;
}

export function multipartInput(contentType: string, body: string): Uint8Array {
  const ct = enc.encode(contentType);
  const b = enc.encode(body);
  const out = new Uint8Array(1 + ct.length + b.length);
  out[0] = ct.length;
  out.set(ct, 1);
  out.set(b, 1 + ct.length);
  return out;
}

/** Request bodies as the web admin's pages and API clients send them. */
export function restSamples(): { label: string; kind: RestKind; body: Uint8Array | string }[] {
  const crlf = (lines: string[]) => lines.join('\r\n');
  const boundary = '----pqgateFormBoundary7MA4YWxkTrZu0gW';
  const backup = JSON.stringify({ version: 1, schema_version: 4, tunnels: [{ name: 'hub', remote_addr: '192.0.2.2', local_id: 'fqdn:branch.example', psk: 'Branch-PSK-alpha-7f3c9e21d4b8' }], tunnel_presets: {} });
  return [
    { label: 'api-change', kind: 0, body: JSON.stringify({ comment: 'move hub to ML-KEM-1024', confirmTimeoutSec: 300, revision: 7, limit: '50', beforeId: 3, action: 'rekey-ike' }) },
    { label: 'api-logs', kind: 0, body: JSON.stringify({ tunnel: 'hub', level: 'warn', limit: 100 }) },
    {
      label: 'form-new',
      kind: 1,
      body: JSON.stringify({
        name: 'hub', remote_addr: '192.0.2.2', local_id: 'fqdn:branch.example', psk: 'Branch-PSK-alpha-7f3c9e21d4b8', proposals: 'aes256gcm16-prfsha384-x25519-ke1_mlkem768\r\naes256gcm16-prfsha384-x25519',
        esp_proposals: 'aes256gcm16', mode: 'route', inside_addr: '10.100.0.9/31', mss: '1360', has_enabled: '1', enabled: 'on', has_encap: '1', trial: 'on', trial_sec: '300', param_tunnel_id: 'abc',
      }),
    },
    { label: 'form-edit', kind: 1, body: JSON.stringify({ name: 'site2', local_ts: '10.1.0.0/16', remote_ts: '10.2.0.0/16\n2001:db8:2::/48', dpd_delay: '', replay_window: '0', has_enabled: '1' }) },
    {
      label: 'multipart-backup',
      kind: 2,
      body: multipartInput(
        `multipart/form-data; boundary=${boundary}`,
        crlf([`--${boundary}`, 'Content-Disposition: form-data; name="_csrf"', '', 'c5r6f7', `--${boundary}`, 'Content-Disposition: form-data; name="backup"; filename="pqgate-backup.json"', 'Content-Type: application/json', '', backup, `--${boundary}--`, '']),
      ),
    },
    {
      label: 'multipart-cert',
      kind: 2,
      body: multipartInput(
        `multipart/form-data; boundary="${boundary}"`,
        crlf([`--${boundary}`, 'Content-Disposition: form-data; name="cert"; filename="gw.pem"', 'Content-Type: application/x-pem-file', '', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----', `--${boundary}`, 'Content-Disposition: form-data; name="comment"', '', 'new cert', `--${boundary}--`]),
      ),
    },
    { label: 'backup-text', kind: 3, body: backup },
  ];
}

function expected(e: unknown): boolean {
  return e instanceof ChangeRefused || e instanceof MultipartError;
}

function jsonValue(v: unknown, depth = 0): boolean {
  if (depth > 4) return false;
  if (v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return true;
  return Array.isArray(v) && v.every((x) => jsonValue(x, depth + 1));
}

function runApiBody(b: Record<string, unknown>): string {
  const sigs: string[] = [];
  const out = changeFields(b);
  if (out.confirmTimeoutSec !== undefined && !(Number.isInteger(out.confirmTimeoutSec) && out.confirmTimeoutSec >= 1 && out.confirmTimeoutSec <= 604800))
    throw new InvariantError(`changeFields accepted confirmTimeoutSec ${out.confirmTimeoutSec}`);
  for (const k of ['revision', 'limit', 'beforeId', 'from', 'to']) {
    const n = int(b[k], 1, 1000);
    if (n !== undefined && !(Number.isInteger(n) && n >= 1 && n <= 1000)) throw new InvariantError(`int() returned ${n}`);
    sigs.push(n === undefined ? 'u' : 'n');
  }
  const f = logFilter(b);
  if (f.tunnel !== undefined && !/^[A-Za-z0-9_.-]{1,32}$/.test(f.tunnel)) throw new InvariantError('logFilter passed a bad tunnel name');
  sigs.push(isSaAction(String(b.action)) ? 'act' : 'noact');
  return sigs.join('');
}

function runForm(form: Record<string, unknown>): string {
  const r = formToTunnel(form, undefined, { isNew: true });
  for (const [k, v] of Object.entries(r.tunnel)) {
    if (k !== 'name' && !KNOWN.has(k)) throw new InvariantError(`formToTunnel emitted unknown field ${k}`);
    if (!jsonValue(v)) throw new InvariantError(`formToTunnel emitted a non-JSON value for ${k}`);
  }
  const edit = formToTunnel(form, r.tunnel, { isNew: false, fixedName: 'fixed' });
  if (edit.name !== 'fixed') throw new InvariantError('fixedName ignored');
  const t = trialSeconds(form);
  return `form:${Object.keys(r.tunnel).length}:${Object.keys(r.params).length}:${typeof t}`;
}

function runMultipart(input: Uint8Array): string {
  const l = input[0] ?? 0;
  const ct = dec.decode(input.subarray(1, 1 + l));
  const body = Buffer.from(input.subarray(1 + l));
  const parts = parseMultipart(body, ct);
  if (parts.length > 16) throw new InvariantError(`${parts.length} parts accepted (max 16)`);
  for (const p of parts) {
    if (p.data.buffer !== body.buffer || p.data.byteOffset < body.byteOffset || p.data.byteOffset + p.data.length > body.byteOffset + body.length)
      throw new InvariantError('part data outside the body');
    if (p.filename !== undefined) checkFileName(p.filename);
  }
  const f = formOf(parts);
  const backup = f.files.backup;
  if (backup) parseBackup(backup.data.toString('utf8'));
  return `mp:${parts.length}:${Object.keys(f.files).length}`;
}

export const restApi: FuzzTarget<null> = {
  name: 'rest-api',
  description: 'web admin input validators in-process: API body fields, tunnel form conversion, multipart uploads, backup parse',
  setup: () => null,
  run(input) {
    const kind = (input[0] ?? 0) % 4;
    const payload = input.subarray(1);
    try {
      if (kind === 2) return runMultipart(payload);
      const text = dec.decode(payload);
      if (kind === 3) {
        parseBackup(text);
        return 'backup-ok';
      }
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch {
        return 'not-json';
      }
      // Express hands routes whatever JSON the client sent: bodyOf() keeps objects only.
      const obj = v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
      return kind === 0 ? runApiBody(obj) : runForm(obj);
    } catch (e) {
      if (!expected(e)) throw e;
      return errSig(e);
    }
  },
  maxLen: 65536,
};
