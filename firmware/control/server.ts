/**
 * Control socket server (protocol in protocol.ts).
 *
 * Access control is the file system's: the socket is created mode 0600 and
 * its directory, when we create it, 0700, so only the daemon's user (root on
 * the router) can connect. The umask is narrowed around listen() so there is
 * no window in which the socket exists with looser permissions. A socket for
 * a group (the unprivileged web admin's, docs/cli.md "Permissions") is
 * created the same way, then chowned to that group and opened up to it
 * (0660; directory 0750 with the same group) once it exists.
 *
 * Robustness: malformed JSON and bad requests get an error reply and the
 * connection stays open; a line longer than maxRequestBytes gets an
 * ERR_TOO_LARGE reply and the connection is closed (the rest of that line
 * cannot be resynchronised safely). Handler exceptions become ERR_INTERNAL
 * (or the ControlError's code) replies. Nothing a client sends can throw out
 * of this module.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { mkdirSync, chmodSync, chownSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  ControlError,
  ControlErrorCode,
  LineSplitter,
  MAX_REQUEST_BYTES_DEFAULT,
  checkRequest,
  type ControlResponse,
  type RequestId,
} from './protocol.js';
import { nullLogger, type Logger } from '../log.js';
import { PqError } from '../util/errors.js';

export type MethodHandler = (params: unknown) => unknown | Promise<unknown>;

export interface ControlServerOptions {
  path: string;
  methods: Record<string, MethodHandler>;
  logger?: Logger;
  maxRequestBytes?: number;
  maxConnections?: number;
  /** Close connections idle for this long (ms). 0 = never. */
  idleTimeoutMs?: number;
  /**
   * Open the socket to this group (gid): socket 0660 and, when we create or
   * own the directory, directory 0750, both with this group. Default: owner only.
   */
  group?: number;
}

/** Is something answering on this unix socket path? */
function probe(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class ControlServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly opts: Required<Omit<ControlServerOptions, 'logger' | 'group'>> & { logger: Logger; group?: number };

  constructor(opts: ControlServerOptions) {
    this.opts = {
      maxRequestBytes: MAX_REQUEST_BYTES_DEFAULT,
      maxConnections: 32,
      idleTimeoutMs: 5 * 60_000,
      ...opts,
      logger: opts.logger ?? nullLogger,
    };
  }

  get path(): string {
    return this.opts.path;
  }

  async listen(): Promise<void> {
    const path = this.opts.path;
    const dir = dirname(path);
    const group = this.opts.group;
    const dirMode = group === undefined ? 0o700 : 0o750;
    // recursive mkdir returns the first directory it created (undefined if it existed).
    const created = mkdirSync(dir, { recursive: true, mode: dirMode });
    const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
    if (created !== undefined || (group !== undefined && statSync(dir).uid === uid)) {
      if (group !== undefined) chownSync(dir, uid, group);
      chmodSync(dir, dirMode);
    }
    await this.removeStale(path);
    const server = createServer((s) => this.onConnection(s));
    server.maxConnections = this.opts.maxConnections;
    // Worker threads cannot change the umask; there the chmod below is the only guard.
    let old: number | undefined;
    try {
      old = process.umask(0o177);
    } catch {
      old = undefined;
    }
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      if (old !== undefined) process.umask(old);
    }
    if (group !== undefined) {
      chownSync(path, uid, group);
      chmodSync(path, 0o660);
    } else chmodSync(path, 0o600);
    server.on('error', (e) => this.opts.logger.error('control socket error', { error: e }));
    this.server = server;
  }

  /** A socket file left by a crashed daemon is removed; a live one (another daemon) or a non-socket file is an error. */
  private async removeStale(path: string): Promise<void> {
    let st;
    try {
      st = lstatSync(path);
    } catch {
      return;
    }
    if (!st.isSocket()) throw new PqError('ERR_CONTROL_SOCKET', `${path} exists and is not a socket; refusing to replace it`);
    if (await probe(path)) throw new PqError('ERR_CONTROL_SOCKET', `${path}: another daemon is already listening`);
    unlinkSync(path);
  }

  private onConnection(s: Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => {}); // client vanished mid-reply: nothing to do
    if (this.opts.idleTimeoutMs > 0) {
      s.setTimeout(this.opts.idleTimeoutMs);
      s.on('timeout', () => s.destroy());
    }
    const splitter = new LineSplitter(this.opts.maxRequestBytes);
    // Requests on one connection are answered in order, one at a time.
    let chain: Promise<void> = Promise.resolve();
    s.on('data', (chunk: Buffer) => {
      const lines = splitter.push(chunk);
      for (const line of lines) chain = chain.then(() => this.handleLine(s, line));
      if (splitter.overflowed) {
        s.pause();
        chain = chain.then(() => {
          this.reply(s, { id: null, error: { code: ControlErrorCode.TOO_LARGE, message: `request exceeds ${this.opts.maxRequestBytes} bytes` } });
          s.end();
        });
      }
    });
  }

  private reply(s: Socket, r: ControlResponse): void {
    if (s.destroyed || !s.writable) return;
    let text: string;
    try {
      text = JSON.stringify(r);
    } catch (e) {
      text = JSON.stringify({ id: r.id, error: { code: ControlErrorCode.INTERNAL, message: `unserialisable result: ${(e as Error).message}` } });
    }
    s.write(text + '\n');
  }

  private async handleLine(s: Socket, line: string): Promise<void> {
    if (line.trim() === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (e) {
      this.reply(s, { id: null, error: { code: ControlErrorCode.PARSE, message: `malformed JSON: ${(e as Error).message}` } });
      return;
    }
    const c = checkRequest(parsed);
    if (!c.ok) {
      this.reply(s, { id: c.id, error: c.error });
      return;
    }
    const { id, method, params } = c.req;
    const h = Object.prototype.hasOwnProperty.call(this.opts.methods, method) ? this.opts.methods[method] : undefined;
    if (!h) {
      this.reply(s, { id, error: { code: ControlErrorCode.METHOD_NOT_FOUND, message: `unknown method ${JSON.stringify(method.slice(0, 40))}` } });
      return;
    }
    this.reply(s, await this.invoke(id, method, h, params));
  }

  private async invoke(id: RequestId, method: string, h: MethodHandler, params: unknown): Promise<ControlResponse> {
    try {
      const result = await h(params);
      return { id, result: result === undefined ? null : result };
    } catch (e) {
      if (e instanceof ControlError || e instanceof PqError) return { id, error: { code: e.code, message: e.message } };
      this.opts.logger.error('control method failed', { method, error: e });
      return { id, error: { code: ControlErrorCode.INTERNAL, message: e instanceof Error ? e.message : String(e) } };
    }
  }

  /** Stop accepting, drop open connections, remove the socket file. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    // net.Server unlinks its unix socket on close(); make sure of it anyway.
    try {
      if (lstatSync(this.opts.path).isSocket()) unlinkSync(this.opts.path);
    } catch {
      // gone already
    }
  }
}
