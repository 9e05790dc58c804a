/**
 * Test harness: the fake daemon (real control socket, real store) plus the
 * real web server (startWebServer: HTTPS with its generated certificate) on
 * an ephemeral port, and a small HTTPS client with a cookie jar that pins
 * the server's certificate (no "ignore TLS errors") and keeps every
 * response body so tests can grep them all for secrets.
 */
import { request as httpsRequest } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeDaemon, type FakeDaemonOptions } from './fake-daemon.js';
import { startWebServer, type ConnectionLimits, type RunningServer } from '../../webui/server.js';
import type { WebAppOptions } from '../../webui/app.js';

export const ADMIN = 'admin';
export const PASSWORD = 'correct horse battery';

export interface Resp {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  url: string;
  method: string;
  json<T = any>(): T;
}

export interface RequestOptions {
  form?: Record<string, string>;
  json?: unknown;
  raw?: { body: Buffer; type: string };
  multipart?: { fields?: Record<string, string>; files?: Record<string, { filename: string; data: string | Buffer; type?: string }> };
  headers?: Record<string, string>;
  /** Send no Origin header (default: our own origin on state-changing requests). */
  noOrigin?: boolean;
  /** Add the session's CSRF token (default true on state-changing requests). */
  csrf?: boolean;
  /** Do not send cookies. */
  anonymous?: boolean;
  /** Send this request target verbatim (no URL normalisation: traversal tests). */
  rawPath?: boolean;
  /** Connect from this local address (127.0.0.x: per-address limits). */
  localAddress?: string;
}

export function multipartBody(m: NonNullable<RequestOptions['multipart']>): { body: Buffer; type: string } {
  const boundary = `----pqgtest${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const [k, v] of Object.entries(m.fields ?? {})) chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  for (const [k, f] of Object.entries(m.files ?? {})) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"; filename="${f.filename.replace(/[\\"]/g, (c) => `\\${c}`)}"\r\nContent-Type: ${f.type ?? 'application/octet-stream'}\r\n\r\n`));
    chunks.push(Buffer.isBuffer(f.data) ? f.data : Buffer.from(f.data));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

export class WebClient {
  readonly cookies = new Map<string, string>();
  /** Every response this client received. */
  readonly log: Resp[] = [];
  csrfToken = '';

  constructor(readonly server: RunningServer) {}

  get origin(): string {
    return this.server.url;
  }

  request(method: string, path: string, o: RequestOptions = {}): Promise<Resp> {
    const url = new URL(path, this.server.url);
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    const changing = !['GET', 'HEAD'].includes(method);
    let body: Buffer | undefined;
    if (o.form) {
      const form = { ...o.form };
      if (changing && o.csrf !== false && this.csrfToken && form._csrf === undefined) form._csrf = this.csrfToken;
      body = Buffer.from(new URLSearchParams(form).toString());
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else if (o.json !== undefined) {
      body = Buffer.from(JSON.stringify(o.json));
      headers['content-type'] = 'application/json';
    } else if (o.multipart) {
      const fields = { ...(o.multipart.fields ?? {}) };
      if (changing && o.csrf !== false && this.csrfToken && fields._csrf === undefined) fields._csrf = this.csrfToken;
      const m = multipartBody({ ...o.multipart, fields });
      body = m.body;
      headers['content-type'] = m.type;
    } else if (o.raw) {
      body = o.raw.body;
      headers['content-type'] = o.raw.type;
    }
    if (changing && !o.form && !o.multipart && o.csrf !== false && this.csrfToken && headers['x-csrf-token'] === undefined) headers['x-csrf-token'] = this.csrfToken;
    if (changing && !o.noOrigin && headers.origin === undefined) headers.origin = this.origin;
    if (!o.anonymous && this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (body) headers['content-length'] = String(body.length);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: url.hostname,
          port: url.port,
          path: o.rawPath ? path : url.pathname + url.search,
          method,
          headers,
          ca: this.server.certificate(),
          servername: 'localhost',
          ...(o.localAddress ? { localAddress: o.localAddress, agent: false } : {}),
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => {
            for (const sc of res.headers['set-cookie'] ?? []) {
              const [kv] = sc.split(';');
              const i = kv!.indexOf('=');
              const k = kv!.slice(0, i);
              const v = kv!.slice(i + 1);
              if (/max-age=0/i.test(sc) || v === '') this.cookies.delete(k);
              else this.cookies.set(k, v);
            }
            const text = Buffer.concat(parts).toString('utf8');
            const m = /<meta name="csrf-token" content="([^"]*)">/.exec(text);
            if (m && m[1]) this.csrfToken = m[1];
            const r: Resp = {
              status: res.statusCode ?? 0,
              headers: res.headers,
              text,
              url: url.pathname + url.search,
              method,
              json: () => JSON.parse(text),
            };
            this.log.push(r);
            resolve(r);
          });
        },
      );
      req.on('error', reject);
      if (body) req.write(body);
      req.end();
    });
  }

  get(path: string, o?: RequestOptions): Promise<Resp> {
    return this.request('GET', path, o);
  }
  post(path: string, form: Record<string, string> = {}, o: RequestOptions = {}): Promise<Resp> {
    return this.request('POST', path, { ...o, form });
  }
  api(method: string, path: string, json?: unknown, o: RequestOptions = {}): Promise<Resp> {
    return this.request(method, path, { ...o, ...(json !== undefined ? { json } : {}), headers: { accept: 'application/json', ...(o.headers ?? {}) } });
  }

  async setup(name = ADMIN, password = PASSWORD): Promise<Resp> {
    await this.get('/setup');
    return this.post('/setup', { name, password, password2: password });
  }

  async login(name = ADMIN, password = PASSWORD): Promise<Resp> {
    await this.get('/login');
    const r = await this.post('/login', { name, password });
    if (r.status === 303) await this.get('/'); // pick up the new session's CSRF token
    return r;
  }
}

export interface Harness {
  daemon: FakeDaemon;
  server: RunningServer;
  dataDir: string;
  client(): WebClient;
  close(): Promise<void>;
}

export async function startHarness(
  o: { daemon?: FakeDaemonOptions; app?: Partial<WebAppOptions>; httpRedirect?: boolean; connections?: Partial<ConnectionLimits> } = {},
): Promise<Harness> {
  const daemon = await FakeDaemon.start(o.daemon);
  const dataDir = mkdtempSync(join(tmpdir(), 'pqg-webui-data-'));
  const logs: string[] = [];
  const server = await startWebServer({
    socket: daemon.socketPath,
    listen: { host: '127.0.0.1', port: 0 },
    ...(o.httpRedirect ? { httpListen: { host: '127.0.0.1', port: 0 } } : {}),
    dataDir,
    log: (msg, meta) => logs.push(`${msg} ${JSON.stringify(meta ?? {})}`),
    ...(o.app ? { app: o.app } : {}),
    ...(o.connections ? { connections: o.connections } : {}),
  });
  return {
    daemon,
    server,
    dataDir,
    client: () => new WebClient(server),
    async close() {
      await server.close();
      await daemon.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The Cloudflare preset's required inputs (test addresses from RFC 5737). */
export const CF_FORM = {
  preset: 'cloudflare',
  name: 'cf1',
  remote_addr: '198.51.100.7',
  psk: 'cloudflare-psk-0123456789abcdef',
  inside_addr: '10.100.0.9/31',
  param_tunnel_id: 'tun-0a1b2c',
  param_account_id: 'acct-9f8e7d',
};

const unescape = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/**
 * The fields a browser would submit for the form with this id: inputs with
 * their value (checkboxes only when checked, "on"), textareas, and selects
 * with their selected option. Enough for the pages this code base renders.
 */
export function formFields(page: string, id: string): Record<string, string> {
  const start = page.indexOf(`id="${id}"`);
  if (start < 0) throw new Error(`no form #${id} on the page`);
  const end = page.indexOf('</form>', start);
  const form = page.slice(start, end);
  const out: Record<string, string> = {};
  for (const m of form.matchAll(/<input\b([^>]*)>/g)) {
    const attrs = m[1]!;
    const name = /\bname="([^"]*)"/.exec(attrs)?.[1];
    if (!name || /\bdisabled\b/.test(attrs)) continue;
    const type = /\btype="([^"]*)"/.exec(attrs)?.[1] ?? 'text';
    if (type === 'file') continue;
    if (type === 'checkbox') {
      if (/\bchecked\b/.test(attrs)) out[name] = 'on';
      continue;
    }
    out[name] = unescape(/\bvalue="([^"]*)"/.exec(attrs)?.[1] ?? '');
  }
  for (const m of form.matchAll(/<textarea\b[^>]*\bname="([^"]*)"[^>]*>([\s\S]*?)<\/textarea>/g)) out[m[1]!] = unescape(m[2]!);
  for (const m of form.matchAll(/<select\b[^>]*\bname="([^"]*)"[^>]*>([\s\S]*?)<\/select>/g)) {
    const sel = /<option value="([^"]*)" selected>/.exec(m[2]!) ?? /<option value="([^"]*)"/.exec(m[2]!);
    out[m[1]!] = unescape(sel?.[1] ?? '');
  }
  return out;
}
