/**
 * Control socket client (protocol in protocol.ts), used by the CLI and the
 * web UI. One connection, requests pipelined and matched by id.
 */
import { connect, type Socket } from 'node:net';
import {
  ControlError,
  ControlErrorCode,
  LineSplitter,
  MAX_RESPONSE_BYTES_DEFAULT,
  type ControlResponse,
} from './protocol.js';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class ControlClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly splitter: LineSplitter;
  private closedError: Error | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly timeoutMs: number,
    maxResponseBytes: number,
  ) {
    this.splitter = new LineSplitter(maxResponseBytes);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.failAll(new ControlError(ControlErrorCode.CONNECTION, `control socket: ${e.message}`)));
    socket.on('close', () => this.failAll(new ControlError(ControlErrorCode.CONNECTION, 'control connection closed by the daemon')));
  }

  static connect(path: string, opts: { timeoutMs?: number; maxResponseBytes?: number } = {}): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      const onErr = (e: NodeJS.ErrnoException) => {
        const hint =
          e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
            ? ' (is the daemon running? start it with `pqgate daemon`)'
            : e.code === 'EACCES'
              ? ' (the control socket is owner-only: run as the daemon\'s user, normally root)'
              : '';
        reject(new ControlError(ControlErrorCode.CONNECTION, `cannot connect to ${path}: ${e.code ?? e.message}${hint}`));
      };
      s.once('error', onErr);
      s.once('connect', () => {
        s.off('error', onErr);
        resolve(new ControlClient(s, opts.timeoutMs ?? 10_000, opts.maxResponseBytes ?? MAX_RESPONSE_BYTES_DEFAULT));
      });
    });
  }

  private failAll(e: Error): void {
    this.closedError ??= e;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(e);
      this.pending.delete(id);
    }
  }

  private onData(chunk: Buffer): void {
    for (const line of this.splitter.push(chunk)) {
      let r: ControlResponse;
      try {
        r = JSON.parse(line) as ControlResponse;
      } catch {
        this.failAll(new ControlError(ControlErrorCode.PARSE, 'malformed reply from the daemon'));
        this.socket.destroy();
        return;
      }
      if (typeof r !== 'object' || r === null) continue;
      const p = typeof r.id === 'number' ? this.pending.get(r.id) : undefined;
      if (!p) {
        // A reply with id null is a connection-level error (e.g. request too large): fail everything.
        if ('error' in r && r.id === null) this.failAll(new ControlError(r.error.code, r.error.message));
        continue;
      }
      this.pending.delete(r.id as number);
      clearTimeout(p.timer);
      if ('error' in r) p.reject(new ControlError(String(r.error?.code ?? ControlErrorCode.INTERNAL), String(r.error?.message ?? 'error')));
      else p.resolve(r.result);
    }
    if (this.splitter.overflowed) {
      this.failAll(new ControlError(ControlErrorCode.TOO_LARGE, 'reply from the daemon too large'));
      this.socket.destroy();
    }
  }

  call<T = unknown>(method: string, params?: unknown): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ControlError(ControlErrorCode.TIMEOUT, `no reply to ${method} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.socket.write(JSON.stringify(params === undefined ? { id, method } : { id, method, params }) + '\n');
    });
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }
}

/** Connect, make one call, disconnect. */
export async function controlCall<T = unknown>(path: string, method: string, params?: unknown, opts?: { timeoutMs?: number }): Promise<T> {
  const c = await ControlClient.connect(path, opts);
  try {
    return await c.call<T>(method, params);
  } finally {
    c.close();
  }
}
