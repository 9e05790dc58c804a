#!/usr/bin/env node
/**
 * pqgate web admin server (docs/webui.md).
 *
 *   node dist/webui/server.js --socket /run/pqgate-web/web.sock --listen 127.0.0.1:8443
 *        --data /var/lib/pqgate-web [--http-listen 0.0.0.0:80] [--user pqgate-web] [--group pqgate-web]
 *
 * Start-up order: data directory (0700) → HTTPS certificate (tls-store.ts;
 * generated at first start by tls.ts) → bind HTTPS (and the HTTP→HTTPS redirect) → drop
 * privileges (when started as root with --user: supplementary groups from
 * /etc/group, then setgid, then setuid; the data directory is handed to that
 * user first) → "listening" → load the application (express and the pages)
 * → serve. The process then holds no root rights and reaches the
 * daemon only through a control socket, which it may use because the
 * daemon opens its web socket to the web user's group (`pqgate daemon
 * --web-group`, docs/webui.md).
 *
 * Why the application loads after the bind (issue 7, docs/webui.md
 * "Start-up before the daemon"): at boot this process starts together with
 * the daemon on a small CPU, and evaluating express and its dependencies is
 * most of its start-up. Binding needs only node:https, the certificate and
 * the application's files (app-state.ts, prepared as root); app.ts is a
 * dynamic import, which the image's bundler turns into code that runs on
 * first use. Until it is loaded, page requests get the "starting" page
 * (starting.ts) while the daemon's socket does not exist, and all others
 * wait for the application. No request is read before privileges are dropped.
 */
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createHttpServer, get as httpGet, type Server as HttpServer } from 'node:http';
import { accessSync, chmodSync, chownSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AddressInfo, Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { ServerResponse } from 'node:http';
import type { WebAppOptions, WebContext } from './app.js';
import type { DaemonApi } from './daemon-client.js';
import { prepareAppState } from './app-state.js';
import { answerStarting } from './starting.js';
import { addressGroup } from './sessions.js';
import { loadTls, saveTls, tlsInfo, type TlsMaterial } from './tls-store.js';
import type { Express } from 'express';

export interface HostPort {
  host: string;
  port: number;
}

export interface ServerOptions {
  socket: string;
  listen: HostPort;
  /** Plain-HTTP listener that only redirects to HTTPS. */
  httpListen?: HostPort;
  dataDir: string;
  /** Drop to this user (and group) after binding; requires root. */
  user?: string;
  group?: string;
  /**
   * Written (this process's pid) once the pages are ready: a readiness
   * signal for the supervisor. The image's rcS loads the CPU's crypto
   * drivers only after it, so their loading does not compete with this
   * start (firmware/appliance/cpu-crypto.ts). Written as the dropped user:
   * the service script creates it for that user.
   */
  readyFile?: string;
  /** Tests: a daemon other than the socket client, session/lockout tuning. */
  daemon?: DaemonApi;
  app?: Partial<Omit<WebAppOptions, 'daemon' | 'dataDir' | 'tls' | 'state'>>;
  /**
   * Until the daemon first answers (boot: the web admin starts with it, not
   * after it), how long a request waits for the control socket before the
   * page says the gateway is starting (default 8 s; DaemonClient startupWaitMs).
   */
  startupWaitMs?: number;
  /** Slow-client limits (defaults: DEFAULT_CONNECTION_LIMITS); tests shorten them. */
  connections?: Partial<ConnectionLimits>;
  log?: (msg: string, meta?: Record<string, unknown>) => void;
}

export interface RunningServer {
  app: Express;
  ctx: WebContext;
  https: HttpsServer;
  http: HttpServer | undefined;
  /** https://host:port of the HTTPS listener (actual port). */
  url: string;
  port: number;
  httpPort: number | undefined;
  /** The certificate currently served (PEM), e.g. for clients to pin. */
  certificate(): string;
  close(): Promise<void>;
}

/**
 * Slow-loris defences of the admin port. A router has little memory for
 * half-open requests, so every stage of a connection has a deadline, and
 * one address cannot hold more than a few connections:
 *   - TLS handshake (tls.Server handshakeTimeout),
 *   - request headers (http.Server headersTimeout; Node checks every
 *     checkIntervalMs), the whole request (requestTimeout), an idle
 *     keep-alive connection (keepAliveTimeout) and any connection that
 *     stops sending or reading (idleTimeout, socket inactivity);
 *   - connections per client address (an IPv6 client's /64; counted on the
 *     TCP connection, before TLS) and in total (net.Server maxConnections); extra ones are closed
 *     at once, so a normal client from elsewhere is still served.
 */
export interface ConnectionLimits {
  handshakeTimeoutMs: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /**
   * Whole-request deadline for a firmware upload (POST of a .pqb, tens of
   * MiB): requestTimeoutMs would cut it off on a slow WAN link, so uploads
   * get their own, longer deadline plus a minimum average rate
   * (uploadMinBytesPerSec, checked after the first requestTimeoutMs) so a
   * trickling upload cannot hold a connection for the whole deadline.
   */
  uploadTimeoutMs: number;
  uploadMinBytesPerSec: number;
  keepAliveTimeoutMs: number;
  idleTimeoutMs: number;
  checkIntervalMs: number;
  maxPerAddress: number;
  maxConnections: number;
}

export const DEFAULT_STARTUP_WAIT_MS = 8_000;

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  handshakeTimeoutMs: 10_000,
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 60_000,
  uploadTimeoutMs: 30 * 60_000,
  uploadMinBytesPerSec: 16 * 1024,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  checkIntervalMs: 5_000,
  maxPerAddress: 16,
  maxConnections: 256,
};

/** Count TCP connections per remote address; close those over the limit before anything is read from them. */
function limitPerAddress(server: HttpsServer | HttpServer, max: number, log: (m: string, meta?: Record<string, unknown>) => void): void {
  const open = new Map<string, number>();
  let lastWarn = 0;
  server.on('connection', (socket: Socket) => {
    const addr = addressGroup(socket.remoteAddress ?? '?');
    const n = (open.get(addr) ?? 0) + 1;
    if (n > max) {
      socket.destroy();
      if (Date.now() - lastWarn > 60_000) {
        lastWarn = Date.now();
        log('too many connections from one address: closing the extra ones', { address: addr, limit: max });
      }
      return;
    }
    open.set(addr, n);
    socket.once('close', () => {
      const m = (open.get(addr) ?? 1) - 1;
      if (m <= 0) open.delete(addr);
      else open.set(addr, m);
    });
  });
}

/** Routes whose body is a firmware bundle (webui/pages/upgrade.ts). */
const UPLOAD_PATHS = new Set(['/maintenance/firmware', '/api/v1/firmware']);

/**
 * Destroy the connection of a request whose body has not fully arrived in
 * time: requestTimeoutMs for ordinary requests; for firmware uploads
 * uploadTimeoutMs, and after requestTimeoutMs the upload must keep an
 * average of uploadMinBytesPerSec (checked each requestTimeoutMs).
 */
function requestDeadline(req: IncomingMessage, l: ConnectionLimits): void {
  const path = (req.url ?? '').split('?')[0]!;
  const upload = req.method === 'POST' && UPLOAD_PATHS.has(path);
  const started = Date.now();
  const timers: NodeJS.Timeout[] = [];
  const kill = (): void => {
    if (!req.complete) req.socket.destroy();
  };
  const done = (): void => {
    for (const t of timers) clearTimeout(t);
  };
  if (!upload) {
    timers.push(setTimeout(kill, l.requestTimeoutMs));
  } else {
    // Counted on the socket, not with a 'data' listener: that would put the
    // request stream into flowing mode before the route pipes it to the spool.
    const base = req.socket.bytesRead;
    timers.push(setTimeout(kill, l.uploadTimeoutMs));
    const rateCheck = (): void => {
      const secs = (Date.now() - started) / 1000;
      const received = req.socket.bytesRead - base;
      if (!req.complete && received / secs < l.uploadMinBytesPerSec) return kill();
      timers.push(setTimeout(rateCheck, l.requestTimeoutMs).unref());
    };
    timers.push(setTimeout(rateCheck, l.requestTimeoutMs));
  }
  for (const t of timers) t.unref();
  req.once('end', done);
  req.once('close', done);
}

function applyLimits(server: HttpsServer | HttpServer, l: ConnectionLimits, log: (m: string, meta?: Record<string, unknown>) => void): void {
  server.headersTimeout = l.headersTimeoutMs;
  // Node's requestTimeout is one deadline for every request; firmware
  // uploads need a longer one, so the deadline is kept per request here.
  server.requestTimeout = 0;
  server.on('request', (req: IncomingMessage) => requestDeadline(req, l));
  server.keepAliveTimeout = l.keepAliveTimeoutMs;
  server.maxHeadersCount = 100;
  server.maxConnections = l.maxConnections;
  // Socket inactivity: a connection that neither sends nor reads for this long is closed.
  server.setTimeout(l.idleTimeoutMs, (socket: Socket) => socket.destroy());
  limitPerAddress(server, l.maxPerAddress, log);
}

export function parseHostPort(s: string, what: string): HostPort {
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:[\]]+):(\d{1,5})$/.exec(s);
  if (!m || Number(m[2]) > 65535) throw new Error(`${what}: expected HOST:PORT or [IPv6]:PORT, got '${s}'`);
  return { host: m[1]!, port: Number(m[2]) };
}

const stderrLog = (msg: string, meta?: Record<string, unknown>) =>
  process.stderr.write(JSON.stringify({ ts: new Date().toISOString(), component: 'webui', msg, ...(meta ?? {}) }) + '\n');

function listen(server: HttpsServer | HttpServer, hp: HostPort): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(hp.port, hp.host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** uid/gid of a user (and optionally a group) from /etc/passwd and /etc/group. */
export function lookupIds(user: string, group?: string): { uid: number; gid: number } {
  const pw = readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':'));
  const u = pw.find((f) => f[0] === user || f[2] === user);
  if (!u) throw new Error(`--user: no user '${user}' in /etc/passwd`);
  let gid = Number(u[3]);
  if (group !== undefined) {
    const g = readFileSync('/etc/group', 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[0] === group || f[2] === group);
    if (!g) throw new Error(`--group: no group '${group}' in /etc/group`);
    gid = Number(g[2]);
  }
  return { uid: Number(u[2]), gid };
}

function chownTree(dir: string, uid: number, gid: number): void {
  chownSync(dir, uid, gid);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) chownTree(p, uid, gid);
    else if (e.isFile()) chownSync(p, uid, gid);
  }
}

function dropPrivileges(user: string, group: string | undefined, dataDir: string, log: (m: string, meta?: Record<string, unknown>) => void): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) throw new Error('--user needs the server to start as root');
  const { uid, gid } = lookupIds(user, group);
  if (uid === 0) throw new Error('--user must not be root');
  chownTree(dataDir, uid, gid);
  // Supplementary groups from /etc/group (e.g. the group that may use the control socket).
  (process as unknown as { initgroups(u: string, g: number): void }).initgroups(user, gid);
  process.setgid!(gid);
  process.setuid!(uid);
  if (process.getuid!() !== uid || process.geteuid!() !== uid || process.getgid!() !== gid) throw new Error('dropping privileges failed');
  log('dropped privileges', { uid, gid, groups: process.getgroups?.() });
}

export async function startWebServer(opts: ServerOptions): Promise<RunningServer> {
  const log = opts.log ?? stderrLog;
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  chmodSync(opts.dataDir, 0o700);
  // The certificate maker (tls.ts: key generation and the X.509 writer, which
  // pull in the firmware's key module and its ML-DSA tables) is loaded only on
  // a first start: at boot this process shares a small CPU with the daemon
  // (issue 7, docs/webui.md "Start-up before the daemon").
  const stored = loadTls(opts.dataDir);
  const tls = stored ? { ...stored, generated: false } : await import('./tls.js').then((t) => t.loadOrCreateTls(opts.dataDir, t.defaultNames(opts.listen.host)));
  if (tls.generated) log('generated a self-signed HTTPS certificate', { fingerprint256: tlsInfo(tls.cert).fingerprint256 });
  let current: TlsMaterial = { cert: tls.cert, key: tls.key };

  // What the application keeps on disk is prepared now, as root (the data
  // directory's parent may be closed to the web user); express and the pages
  // are loaded after the privilege drop, and until then page requests get
  // the "starting" page and everything else waits for the application.
  const state = prepareAppState({ dataDir: opts.dataDir, spoolDir: opts.app?.spoolDir, now: opts.app?.now });
  const now = opts.app?.now ?? Date.now;
  let app: Express | undefined;
  let appFailed = false;
  // Set once privileges are dropped: no request is answered by a process that still holds root.
  let serving = false;
  const waiting: Array<[IncomingMessage, ServerResponse]> = [];
  const dispatch = (req: IncomingMessage, res: ServerResponse): void => {
    if (app) app(req, res);
    else if (appFailed) req.socket.destroy();
    // Only while the daemon's socket does not exist yet (boot): a restarted web
    // admin next to a running daemon lets its visitors wait the second for the real page.
    else if (serving && !opts.daemon && !existsSync(opts.socket) && answerStarting(req, res, now())) return;
    else waiting.push([req, res]);
  };

  const limits: ConnectionLimits = { ...DEFAULT_CONNECTION_LIMITS, ...opts.connections };
  const httpsServer = createHttpsServer(
    { cert: current.cert, key: current.key, minVersion: 'TLSv1.2', handshakeTimeout: limits.handshakeTimeoutMs, connectionsCheckingInterval: limits.checkIntervalMs },
    dispatch,
  );
  applyLimits(httpsServer, limits, log);
  const port = await listen(httpsServer, opts.listen);

  let httpServer: HttpServer | undefined;
  let httpPort: number | undefined;
  if (opts.httpListen) {
    httpServer = createHttpServer((req, res) => {
      // Redirect to the same host name on the HTTPS port; a Host header that is not a plain host name falls back to the listen address.
      const hostHeader = String(req.headers.host ?? '');
      const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(?::\d{1,5})?$/.exec(hostHeader);
      const host = m ? m[1]! : opts.listen.host.includes(':') ? `[${opts.listen.host}]` : opts.listen.host;
      const path = (req.url ?? '/').startsWith('/') ? req.url! : '/';
      res.writeHead(308, { Location: `https://${host}${port === 443 ? '' : `:${port}`}${path}`, 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' });
      res.end('Use HTTPS.\n');
    });
    applyLimits(httpServer, { ...limits, headersTimeoutMs: Math.min(limits.headersTimeoutMs, 10_000), requestTimeoutMs: Math.min(limits.requestTimeoutMs, 10_000) }, log);
    httpPort = await listen(httpServer, opts.httpListen);
  }

  if (opts.user) dropPrivileges(opts.user, opts.group, opts.dataDir, log);
  serving = true;
  if (!opts.daemon)
    try {
      accessSync(opts.socket, constants.R_OK | constants.W_OK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // At boot the daemon starts alongside: its socket appears a few seconds later.
      if (code === 'ENOENT') log('control socket not there yet: pages say the gateway is starting until the daemon answers', { socket: opts.socket });
      else
        log('warning: cannot use the control socket yet (daemon not running, or the socket is not group-accessible to this user)', {
          socket: opts.socket,
          error: code,
        });
    }

  const urlHost = opts.listen.host.includes(':') ? `[${opts.listen.host}]` : opts.listen.host;
  log('listening', { https: `https://${urlHost}:${port}`, ...(httpPort !== undefined ? { httpRedirect: httpPort } : {}) });
  const close = async (): Promise<void> => {
    httpsServer.closeAllConnections();
    await new Promise<void>((r) => httpsServer.close(() => r()));
    if (httpServer) {
      httpServer.closeAllConnections();
      await new Promise<void>((r) => httpServer!.close(() => r()));
    }
  };

  let ctx: WebContext;
  try {
    // Dynamic imports: the image's bundle evaluates these modules (express and its dependencies) only here.
    const [{ createApp }, { DaemonClient }] = await Promise.all([import('./app.js'), import('./daemon-client.js')]);
    ({ app, ctx } = createApp({
      daemon: opts.daemon ?? new DaemonClient({ socketPath: opts.socket, startupWaitMs: opts.startupWaitMs ?? DEFAULT_STARTUP_WAIT_MS }),
      dataDir: opts.dataDir,
      log,
      ...opts.app,
      state,
      tls: {
        info: () => tlsInfo(current.cert),
        replace: (m) => {
          saveTls(opts.dataDir, m);
          httpsServer.setSecureContext({ cert: m.cert, key: m.key, minVersion: 'TLSv1.2' });
          current = m;
        },
      },
    }));
  } catch (e) {
    appFailed = true;
    for (const [req] of waiting.splice(0)) req.socket.destroy();
    await close();
    throw e;
  }
  for (const [req, res] of waiting.splice(0)) app(req, res);
  log('pages ready', { uptimeMs: Math.round(process.uptime() * 1000) });
  if (opts.readyFile) {
    try {
      writeFileSync(opts.readyFile, `${process.pid}\n`);
    } catch (e) {
      log('warning: cannot write the ready file', { file: opts.readyFile, error: (e as NodeJS.ErrnoException).code ?? String(e) });
    }
  }
  return {
    app,
    ctx,
    https: httpsServer,
    http: httpServer,
    url: `https://${urlHost}:${port}`,
    port,
    httpPort,
    certificate: () => current.cert,
    close,
  };
}

export const USAGE = `usage: node dist/webui/server.js --socket PATH --listen HOST:PORT --data DIR [--http-listen HOST:PORT] [--user NAME [--group NAME]] [--ready-file PATH]

  --socket PATH        the daemon's web admin socket (default /run/pqgate-web/web.sock;
                       the owner-only /run/pqgate/control.sock works too when run as root)
  --listen HOST:PORT   HTTPS address (default 127.0.0.1:8443)
  --http-listen H:P    also listen for plain HTTP and redirect it to HTTPS
  --data DIR           the web admin's own state: HTTPS certificate, API tokens (default /var/lib/pqgate-web)
  --user NAME          when started as root: drop to this user after binding (e.g. pqgate-web)
  --group NAME         primary group after dropping (default: the user's)
  --ready-file PATH    write this process's pid to PATH once the pages are ready
`;

export function parseArgs(argv: string[]): ServerOptions | 'help' {
  const o: ServerOptions = { socket: '/run/pqgate-web/web.sock', listen: { host: '127.0.0.1', port: 8443 }, dataDir: '/var/lib/pqgate-web' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--socket':
        o.socket = val();
        break;
      case '--listen':
        o.listen = parseHostPort(val(), '--listen');
        break;
      case '--http-listen':
        o.httpListen = parseHostPort(val(), '--http-listen');
        break;
      case '--data':
        o.dataDir = val();
        break;
      case '--user':
        o.user = val();
        break;
      case '--group':
        o.group = val();
        break;
      case '--ready-file':
        o.readyFile = val();
        break;
      case '-h':
      case '--help':
        return 'help';
      default:
        throw new Error(`unknown option ${a}`);
    }
  }
  return o;
}

/**
 * The image build's code cache (lib/run.cjs --write-cache) holds what was
 * compiled by the time it is written. The parts this server loads on first
 * use (the application after binding, the certificate maker on a first
 * start) are evaluated here too, so the cache covers them as it did when they
 * were loaded with the bundle: without them in the cache, V8 would compile
 * express from source at every boot. And the first pages a browser (or the
 * boot benchmark) asks for are served once, so that their request path
 * (express's router, the session, the page layout) is in the cache as well:
 * at boot it runs while the daemon is still starting (docs/image.md
 * "Round 6").
 *
 * Nothing outside a throwaway directory is touched: no daemon (a stand-in
 * that answers "setup required" and then "users exist"), no data directory,
 * plain HTTP on an ephemeral port of 127.0.0.1. Returns the status codes of
 * the warm-up requests.
 */
export async function prepareCodeCache(): Promise<number[]> {
  const [{ createApp }] = await Promise.all([import('./app.js'), import('./daemon-client.js'), import('./tls.js')]);
  const spoolDir = mkdtempSync(join(tmpdir(), 'pqgate-code-cache-'));
  let setupRequired = true;
  const daemon: DaemonApi = {
    starting: false,
    call: ((method: string) =>
      method === 'users.setupRequired' ? Promise.resolve({ setupRequired }) : Promise.reject(new Error('no daemon while making the code cache'))) as DaemonApi['call'],
  };
  const server = createHttpServer();
  try {
    const { app } = createApp({ daemon, spoolDir });
    server.on('request', app);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const { port } = server.address() as AddressInfo;
    const statuses: number[] = [];
    // First boot: /login redirects to /setup, which renders; later boots: /login renders.
    for (const [path, setup] of [['/login', true], ['/setup', true], ['/login', false]] as const) {
      setupRequired = setup;
      statuses.push(
        await new Promise<number>((resolve, reject) => {
          httpGet({ host: '127.0.0.1', port, path, agent: false }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          }).on('error', reject);
        }),
      );
    }
    return statuses;
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(spoolDir, { recursive: true, force: true });
  }
}

export async function main(): Promise<RunningServer | undefined> {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (opts === 'help') {
    process.stdout.write(USAGE);
    return undefined;
  }
  const server = await startWebServer(opts);
  const stop = () => {
    void server.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return server;
}

const entry = process.argv[1];
if (entry && import.meta.url === pathToFileURL(realpathSync(entry)).href) {
  main().catch((e) => {
    stderrLog('fatal', { error: (e as Error).message });
    process.exit(1);
  });
}
