/**
 * Server-side HTML with escaping by default: the `html` tagged template
 * escapes every interpolated value unless it is itself SafeHtml (the result
 * of another `html` template). There is no "raw string" door for request or
 * daemon data; `trusted()` exists only for compile-time constants.
 *
 * Escaping covers the five characters that matter in element content and
 * quoted attribute values (& < > " '). Attribute values are always written
 * in double quotes by the templates; URLs are built with `href()` from our
 * own paths and encodeURIComponent'ed parts, so no `javascript:` URL can be
 * formed from data. Pages carry no inline script or style (the CSP forbids
 * both): behaviour lives in /static/app.js, looks in /static/app.css.
 */

export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function esc(v: unknown): string {
  return String(v).replace(/[&<>"']/g, (c) => ESC[c]!);
}

function render(v: unknown): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  return esc(v);
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new SafeHtml(out);
}

/** For string constants written in this code base only (never data). */
export function trusted(s: string): SafeHtml {
  return new SafeHtml(s);
}

/** A path of ours with encoded segments and query: href('/tunnels', name, 'edit'), href('/logs', { level: 'warn' }). */
export function href(base: string, ...parts: (string | number | Record<string, string | number | undefined>)[]): string {
  let path = base;
  let query = '';
  for (const p of parts) {
    if (typeof p === 'object') {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(p)) if (v !== undefined && v !== '') q.set(k, String(v));
      const s = q.toString();
      if (s) query = `?${s}`;
    } else path += `/${encodeURIComponent(String(p))}`;
  }
  return path + query;
}

export function fmtBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function fmtCount(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  return n.toLocaleString('en-US');
}

/** Milliseconds → "3 s", "4 min 10 s", "2 h 5 min", "3 d 4 h". */
export function fmtDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  let s = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${s} s`;
  return `${s} s`;
}

export function fmtTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}
