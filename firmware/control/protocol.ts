/**
 * The local control protocol (used by the CLI and the web UI): newline-
 * delimited JSON over a unix stream socket.
 *
 *   request:  {"id": 1, "method": "status", "params": {...}}\n
 *   response: {"id": 1, "result": ...}\n
 *          or {"id": 1, "error": {"code": "ERR_...", "message": "..."}}\n
 *
 * `id` is echoed verbatim (number, string or null). One connection may carry
 * many requests; they are answered in order.
 */

export const MAX_REQUEST_BYTES_DEFAULT = 64 * 1024;
/** Responses (status of many SAs) can be large; the client still bounds them. */
export const MAX_RESPONSE_BYTES_DEFAULT = 16 * 1024 * 1024;

export const ControlErrorCode = {
  PARSE: 'ERR_PARSE_JSON',
  INVALID_REQUEST: 'ERR_INVALID_REQUEST',
  METHOD_NOT_FOUND: 'ERR_METHOD_NOT_FOUND',
  INVALID_PARAMS: 'ERR_INVALID_PARAMS',
  TOO_LARGE: 'ERR_TOO_LARGE',
  INTERNAL: 'ERR_INTERNAL',
  NO_SUCH_TUNNEL: 'ERR_NO_SUCH_TUNNEL',
  TIMEOUT: 'ERR_TIMEOUT',
  CONNECTION: 'ERR_CONNECTION',
} as const;

export type RequestId = number | string | null;

export interface ControlRequest {
  id: RequestId;
  method: string;
  params?: unknown;
}

export interface ControlErrorBody {
  code: string;
  message: string;
}

export type ControlResponse = { id: RequestId; result: unknown } | { id: RequestId; error: ControlErrorBody };

/** Thrown by method handlers to send a specific error code; by the client when a reply carries an error. */
export class ControlError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = 'ControlError';
  }
}

/**
 * Splits a byte stream into lines with a bound on the line length. Data
 * beyond the bound is never buffered: the splitter reports overflow once and
 * the caller closes the connection.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  overflowed = false;

  constructor(private readonly maxLine: number) {}

  /** Feed a chunk; returns complete lines (without '\n', '\r\n' tolerated). Sets `overflowed` instead of growing past maxLine. */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    if (this.overflowed) return lines;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      if (this.size + piece.length > this.maxLine) {
        this.overflowed = true;
        return lines;
      }
      const all = this.parts.length ? Buffer.concat([...this.parts, piece]) : piece;
      this.parts = [];
      this.size = 0;
      let s = all.toString('utf8');
      if (s.endsWith('\r')) s = s.slice(0, -1);
      lines.push(s);
      start = nl + 1;
    }
    const rest = chunk.subarray(start);
    if (this.size + rest.length > this.maxLine) {
      this.overflowed = true;
      return lines;
    }
    if (rest.length) {
      this.parts.push(Buffer.from(rest));
      this.size += rest.length;
    }
    return lines;
  }
}

/** Validate the shape of a parsed request; returns an error body if it is not one. */
export function checkRequest(v: unknown): { ok: true; req: ControlRequest } | { ok: false; id: RequestId; error: ControlErrorBody } {
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    return { ok: false, id: null, error: { code: ControlErrorCode.INVALID_REQUEST, message: 'request must be a JSON object' } };
  const o = v as Record<string, unknown>;
  const rawId = o.id;
  const id: RequestId = typeof rawId === 'number' || typeof rawId === 'string' ? rawId : null;
  if (rawId !== undefined && rawId !== null && typeof rawId !== 'number' && typeof rawId !== 'string')
    return { ok: false, id: null, error: { code: ControlErrorCode.INVALID_REQUEST, message: 'id must be a number, a string or null' } };
  if (typeof o.method !== 'string' || o.method === '')
    return { ok: false, id, error: { code: ControlErrorCode.INVALID_REQUEST, message: 'method must be a non-empty string' } };
  for (const k of Object.keys(o))
    if (k !== 'id' && k !== 'method' && k !== 'params')
      return { ok: false, id, error: { code: ControlErrorCode.INVALID_REQUEST, message: `unknown request member ${JSON.stringify(k.slice(0, 40))}` } };
  return { ok: true, req: { id, method: o.method, params: o.params } };
}
