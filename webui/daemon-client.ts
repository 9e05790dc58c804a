/**
 * The web admin's only way to the daemon: the control socket
 * (firmware/control/protocol.ts framing), typed by the ControlApi contract
 * (firmware/control/api.ts).
 *
 * One short-lived connection per call: a unix-socket connect costs
 * microseconds, calls from concurrent HTTP requests do not queue behind each
 * other (the daemon answers one connection's requests in order), and a daemon
 * restart (reboot, factory reset, upgrade) never leaves a dead connection
 * behind. Nothing is retried: a state-changing request that may have
 * reached the daemon must not be sent twice.
 *
 * Start-up (`startupWaitMs`): at boot the web admin starts with the daemon,
 * not after it, and is serving long before the daemon's socket exists. Until
 * the daemon has answered once, a call whose *connection* fails (ENOENT,
 * ECONNREFUSED: nothing was sent) waits for the socket, bounded; after that
 * the error stands and the page says the gateway is starting (app.ts).
 */
import { ControlClient } from '../firmware/control/client.js';
import { ControlError, ControlErrorCode } from '../firmware/control/protocol.js';
import type { ControlMethod, ControlParams, ControlResult } from '../firmware/control/api.js';

export interface DaemonClientOptions {
  socketPath: string;
  /** Per call (default 15 s: config changes fsync, scrypt verification takes ~100 ms). */
  timeoutMs?: number;
  /** Until the first successful connection: how long a call waits for the socket (default 0: fail at once). */
  startupWaitMs?: number;
  /** Poll interval while waiting (default 100 ms). */
  startupPollMs?: number;
}

export interface DaemonApi {
  call<M extends ControlMethod>(method: M, params: ControlParams<M>): Promise<ControlResult<M>>;
  /** True while the daemon has not answered since the web admin started (boot). */
  readonly starting?: boolean;
}

export class DaemonClient implements DaemonApi {
  readonly socketPath: string;
  private readonly timeoutMs: number;
  private readonly startupWaitMs: number;
  private readonly startupPollMs: number;
  private connectedOnce = false;

  constructor(opts: DaemonClientOptions) {
    this.socketPath = opts.socketPath;
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.startupWaitMs = opts.startupWaitMs ?? 0;
    this.startupPollMs = opts.startupPollMs ?? 100;
  }

  /** The daemon has not answered since this process started (the gateway is still starting). */
  get starting(): boolean {
    return !this.connectedOnce;
  }

  private async connect(): Promise<ControlClient> {
    const deadline = Date.now() + (this.connectedOnce ? 0 : this.startupWaitMs);
    for (;;) {
      try {
        const c = await ControlClient.connect(this.socketPath, { timeoutMs: this.timeoutMs });
        this.connectedOnce = true;
        return c;
      } catch (e) {
        // Only a failed connect is retried: the request has not been sent.
        const left = deadline - Date.now();
        if (this.connectedOnce || !isConnectionError(e) || left <= 0) throw e;
        await new Promise((r) => setTimeout(r, Math.min(this.startupPollMs, left)));
      }
    }
  }

  async call<M extends ControlMethod>(method: M, params: ControlParams<M>): Promise<ControlResult<M>> {
    const c = await this.connect();
    try {
      return await c.call<ControlResult<M>>(method, params);
    } finally {
      c.close();
    }
  }
}

/** The daemon does not implement this method (older daemon): callers fall back or say so. */
export function isMethodMissing(e: unknown): boolean {
  return e instanceof ControlError && e.code === ControlErrorCode.METHOD_NOT_FOUND;
}

export function isConnectionError(e: unknown): boolean {
  return e instanceof ControlError && (e.code === ControlErrorCode.CONNECTION || e.code === ControlErrorCode.TIMEOUT);
}

export interface Issue {
  path: string;
  message: string;
}

/**
 * Validation issues from a daemon error. The daemon sends a
 * ConfigValidationError as `{code: "ERR_CONFIG", message}` whose message is
 * the CLI's text: a first line, then one "  <path>: <message>" line per
 * problem (config/schema.ts). Parsing that text shows the web user exactly
 * the lines the CLI prints. A single-line ERR_CONFIG is "<path>: <message>".
 */
export function issuesFromError(e: unknown): Issue[] | undefined {
  if (!(e instanceof ControlError) || e.code !== 'ERR_CONFIG') return undefined;
  const lines = e.message.split('\n');
  const body = /^invalid configuration \(\d+ errors?\):$/.test(lines[0] ?? '') ? lines.slice(1) : lines;
  const issues: Issue[] = [];
  for (const raw of body) {
    const line = raw.trim();
    if (!line) continue;
    const i = line.indexOf(': ');
    if (i > 0) issues.push({ path: line.slice(0, i), message: line.slice(i + 2) });
    else if (issues.length) issues[issues.length - 1]!.message += ` ${line}`;
    else issues.push({ path: '(document)', message: line });
  }
  return issues.length ? issues : [{ path: '(document)', message: e.message }];
}
