/**
 * multipart/form-data (RFC 7578) for the two upload forms (backup restore,
 * HTTPS certificate). The body arrives as one Buffer already bounded by the
 * route's size limit (express.raw), so this parser never streams or spools
 * to disk, and nothing in it ever uses a client-supplied file name as a
 * path. File names are still checked and a name that tries to climb
 * directories or carries separators/control characters is refused, so a
 * traversal attempt is visible instead of silently ignored.
 */

export interface Part {
  name: string;
  filename?: string;
  contentType: string;
  data: Buffer;
}

export class MultipartError extends Error {
  readonly status: number;
  constructor(message: string, status = 400) {
    super(message);
    this.status = status;
  }
}

const MAX_PARTS = 16;
const MAX_HEADER_BYTES = 4096;

/** Boundary from a Content-Type header, or undefined if not multipart/form-data. */
export function boundaryOf(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\/form-data\b/i.test(contentType)) return undefined;
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** A file name the client sent: base name only, no "..", no separators, no control characters. */
export function checkFileName(name: string): string {
  if (name.length > 255 || /[\u0000-\u001f\u007f/\\]/.test(name) || name === '.' || name === '..' || name.includes('..'))
    throw new MultipartError(`file name not allowed: ${JSON.stringify(name.slice(0, 80))}`);
  return name;
}

function parseDisposition(v: string): { name?: string; filename?: string } {
  const out: { name?: string; filename?: string } = {};
  if (!/^form-data\s*(;|$)/i.test(v)) throw new MultipartError('part without Content-Disposition: form-data');
  const re = /;\s*([a-z*]+)=(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/gi;
  for (let m = re.exec(v); m; m = re.exec(v)) {
    const key = m[1]!.toLowerCase();
    const val = (m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1');
    if (key === 'name') out.name = val;
    else if (key === 'filename') out.filename = val;
    else if (key === 'filename*') throw new MultipartError('filename* is not supported'); // RFC 7578 §4.2: senders must not use it
  }
  return out;
}

export function parseMultipart(body: Buffer, contentType: string | undefined): Part[] {
  const boundary = boundaryOf(contentType);
  if (!boundary) throw new MultipartError('expected multipart/form-data with a boundary', 415);
  const delim = Buffer.from(`--${boundary}`);
  const parts: Part[] = [];
  let pos = body.indexOf(delim);
  if (pos < 0) throw new MultipartError('multipart body without its boundary');
  for (;;) {
    pos += delim.length;
    if (body.subarray(pos, pos + 2).toString() === '--') break; // close delimiter
    if (body.subarray(pos, pos + 2).toString() !== '\r\n') throw new MultipartError('malformed multipart delimiter');
    pos += 2;
    const headEnd = body.indexOf('\r\n\r\n', pos);
    if (headEnd < 0 || headEnd - pos > MAX_HEADER_BYTES) throw new MultipartError('malformed multipart part headers');
    const headers = new Map<string, string>();
    for (const line of body.subarray(pos, headEnd).toString('utf8').split('\r\n')) {
      const i = line.indexOf(':');
      if (i <= 0) throw new MultipartError('malformed multipart header line');
      headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
    }
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delim]), headEnd + 4);
    if (next < 0) throw new MultipartError('multipart part not terminated');
    const disp = parseDisposition(headers.get('content-disposition') ?? '');
    if (!disp.name) throw new MultipartError('multipart part without a name');
    if (parts.length >= MAX_PARTS) throw new MultipartError('too many multipart parts', 413);
    const part: Part = { name: disp.name, contentType: headers.get('content-type') ?? 'text/plain', data: body.subarray(headEnd + 4, next) };
    if (disp.filename !== undefined && disp.filename !== '') part.filename = checkFileName(disp.filename);
    parts.push(part);
    pos = next + 2;
  }
  return parts;
}

/** Text fields and files of a parsed form. */
export function formOf(parts: Part[]): { fields: Record<string, string>; files: Record<string, Part> } {
  const fields: Record<string, string> = {};
  const files: Record<string, Part> = {};
  for (const p of parts) {
    if (p.filename !== undefined) files[p.name] = p;
    else fields[p.name] = p.data.toString('utf8');
  }
  return { fields, files };
}
