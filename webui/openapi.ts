/**
 * OpenAPI 3.1 description of the REST API in api.ts, served at
 * /api/v1/openapi.json. Written by hand next to the routes; the route
 * table test (test/webui/routes.test.ts) fails when an operation exists in
 * one and not the other.
 */
import { SESSION_COOKIE } from './security.js';

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({ type: 'object', properties, ...(required.length ? { required } : {}) });
const str: Schema = { type: 'string' };
const int: Schema = { type: 'integer' };
const anyObj: Schema = { type: 'object', additionalProperties: true };

interface Op {
  method: 'get' | 'post' | 'put' | 'delete';
  path: string;
  summary: string;
  tag: string;
  body?: Schema;
  result?: Schema;
  query?: [string, Schema, string][];
  status?: number;
  text?: boolean;
}

const changeProps = {
  comment: str,
  confirmTimeoutSec: { type: 'integer', minimum: 1, maximum: 604800, description: 'commit confirmed: rolled back unless confirmed within this many seconds' },
};

export const OPERATIONS: Op[] = [
  { method: 'get', path: '/api/v1/openapi.json', summary: 'This document', tag: 'meta', result: anyObj },
  { method: 'get', path: '/api/v1/session', summary: 'Who is calling (and the CSRF token of a cookie session)', tag: 'meta', result: obj({ user: str, via: { enum: ['session', 'token'] }, csrfToken: str }) },
  { method: 'get', path: '/api/v1/status', summary: 'Dashboard model: tunnels, IKE and Child SAs, health, counters', tag: 'status', result: ref('Dashboard') },
  { method: 'get', path: '/api/v1/config', summary: 'Running configuration (secrets as "<set>")', tag: 'config', result: obj({ revision: int, document: anyObj }) },
  { method: 'post', path: '/api/v1/config/validate', summary: 'Validate a document without applying it', tag: 'config', body: obj({ document: anyObj }, ['document']), result: obj({ ok: { type: 'boolean' }, issues: { type: 'array', items: ref('Issue') } }) },
  { method: 'get', path: '/api/v1/presets', summary: 'Tunnel presets (Cloudflare, Cisco 8000, FortiOS, strongSwan)', tag: 'config', result: { type: 'array', items: anyObj } },
  { method: 'get', path: '/api/v1/tunnels', summary: 'Configured tunnels (secrets as "<set>")', tag: 'config', result: { type: 'array', items: anyObj } },
  {
    method: 'put',
    path: '/api/v1/tunnels/{name}',
    summary: 'Create or change a tunnel (merge: null removes a field); optional preset and commit confirmed',
    tag: 'config',
    body: obj({ tunnel: anyObj, preset: str, params: { type: 'object', additionalProperties: str }, ...changeProps }, ['tunnel']),
    result: obj({ revision: ref('Revision') }),
  },
  { method: 'delete', path: '/api/v1/tunnels/{name}', summary: 'Delete a tunnel', tag: 'config', query: [['confirmTimeoutSec', int, 'commit confirmed'], ['comment', str, 'revision comment']], result: obj({ revision: ref('Revision') }) },
  { method: 'post', path: '/api/v1/tunnels/{name}/actions/{action}', summary: 'SA action: up, down, rekey-ike, rekey-child, reset', tag: 'status', result: obj({ ok: { type: 'boolean' } }) },
  { method: 'get', path: '/api/v1/config/history', summary: 'Revisions, newest first', tag: 'config', query: [['limit', int, '1-1000'], ['beforeId', int, 'page before this revision']], result: { type: 'array', items: ref('Revision') } },
  { method: 'get', path: '/api/v1/config/diff', summary: 'Differences between two revisions', tag: 'config', query: [['from', int, 'revision'], ['to', int, 'revision']], result: obj({ text: str, entries: { type: 'array', items: anyObj } }) },
  { method: 'get', path: '/api/v1/config/pending', summary: 'The revision awaiting confirmation, if any', tag: 'config', result: obj({ revision: { oneOf: [ref('Revision'), { type: 'null' }] } }) },
  { method: 'post', path: '/api/v1/config/confirm', summary: 'Confirm the pending revision', tag: 'config', result: obj({ revision: ref('Revision') }) },
  { method: 'post', path: '/api/v1/config/cancel', summary: 'Roll the pending revision back now', tag: 'config', result: obj({ revision: ref('Revision') }) },
  { method: 'post', path: '/api/v1/config/rollback', summary: 'Restore a revision as a new revision', tag: 'config', body: obj({ revision: int, ...changeProps }, ['revision']), result: obj({ revision: ref('Revision') }) },
  { method: 'get', path: '/api/v1/config/backup', summary: 'Backup document without secrets', tag: 'maintenance', result: anyObj },
  { method: 'post', path: '/api/v1/config/restore', summary: 'Validate a backup and restore it (nothing changes if invalid: 422 with issues)', tag: 'maintenance', body: obj({ document: anyObj, comment: str }, ['document']), result: obj({ revision: ref('Revision') }) },
  { method: 'get', path: '/api/v1/system', summary: 'Device information', tag: 'system', result: anyObj },
  { method: 'post', path: '/api/v1/system/reboot', summary: 'Reboot the gateway', tag: 'maintenance', status: 202, result: obj({ ok: { type: 'boolean' } }) },
  { method: 'get', path: '/api/v1/firmware', summary: 'Firmware slots, versions, development flag, last upgrade outcome, install progress', tag: 'maintenance', result: anyObj },
  { method: 'post', path: '/api/v1/firmware', summary: 'Upload a firmware bundle (.pqb as application/octet-stream; ?reboot=1): verified, then installed in the inactive slot; progress in GET /api/v1/firmware', tag: 'maintenance', status: 202, query: [['reboot', { enum: ['0', '1'] }, 'reboot into it once installed']], result: obj({ id: int, bytes: int, status: str }) },
  { method: 'post', path: '/api/v1/system/factory-reset', summary: 'Erase everything; back to first-boot setup', tag: 'maintenance', body: obj({ confirm: { const: 'FACTORY RESET' } }, ['confirm']), result: obj({ ok: { type: 'boolean' } }) },
  { method: 'get', path: '/api/v1/logs', summary: 'Event log, newest first', tag: 'logs', query: [['tunnel', str, 'tunnel name'], ['level', { enum: ['error', 'warn', 'info', 'debug'] }, 'level'], ['limit', int, '1-1000'], ['beforeId', int, 'page before this event']], result: { type: 'array', items: ref('Event') } },
  { method: 'get', path: '/api/v1/logs/audit', summary: 'Audit log: who changed what', tag: 'logs', query: [['limit', int, '1-1000'], ['beforeId', int, 'page']], result: { type: 'array', items: anyObj } },
  { method: 'get', path: '/api/v1/certs', summary: 'IPsec certificates (no private keys)', tag: 'system', result: { type: 'array', items: anyObj } },
  { method: 'get', path: '/api/v1/metrics', summary: 'Prometheus metrics', tag: 'status', text: true },
  { method: 'get', path: '/api/v1/account/sessions', summary: "The caller's sessions", tag: 'account', result: { type: 'array', items: anyObj } },
  { method: 'delete', path: '/api/v1/account/sessions/{id}', summary: 'Revoke a session', tag: 'account', result: obj({ ok: { type: 'boolean' } }) },
  { method: 'get', path: '/api/v1/account/tokens', summary: "The caller's API tokens (never the token text)", tag: 'account', result: { type: 'array', items: anyObj } },
  { method: 'post', path: '/api/v1/account/tokens', summary: 'Create an API token: the only response that contains it', tag: 'account', status: 201, body: obj({ name: str }, ['name']), result: obj({ token: str, id: str, name: str }) },
  { method: 'delete', path: '/api/v1/account/tokens/{id}', summary: 'Revoke an API token', tag: 'account', result: obj({ ok: { type: 'boolean' } }) },
  { method: 'post', path: '/api/v1/account/password', summary: 'Change the password (ends the other sessions)', tag: 'account', body: obj({ currentPassword: str, newPassword: str }, ['currentPassword', 'newPassword']), result: obj({ ok: { type: 'boolean' } }) },
];

const ERRORS = {
  '400': { description: 'Bad request', content: { 'application/json': { schema: ref('Error') } } },
  '401': { description: 'No session or API token' },
  '403': { description: 'Cross-site request or missing CSRF token (cookie sessions)' },
  '409': { description: 'A commit-confirmed revision is pending, or another conflict', content: { 'application/json': { schema: ref('Error') } } },
  '422': { description: 'Invalid configuration: every issue with its path; nothing was changed', content: { 'application/json': { schema: ref('Error') } } },
  '503': { description: 'The daemon does not answer on its control socket', content: { 'application/json': { schema: ref('Error') } } },
};

export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) {
    const params = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: str }));
    for (const [name, schema, description] of op.query ?? []) params.push({ name, in: 'query', required: false, schema, description } as never);
    const ok = op.text
      ? { description: 'OK', content: { 'text/plain': { schema: str } } }
      : { description: 'OK', content: { 'application/json': { schema: op.result ?? anyObj } } };
    (paths[op.path] ??= {})[op.method] = {
      summary: op.summary,
      tags: [op.tag],
      operationId: `${op.method}${op.path.replace('/api/v1', '').replace(/[{}]/g, '').replace(/[/.-](\w)/g, (_m, c: string) => c.toUpperCase())}`,
      ...(params.length ? { parameters: params } : {}),
      ...(op.body ? { requestBody: { required: true, content: { 'application/json': { schema: op.body } } } } : {}),
      responses: { [String(op.status ?? 200)]: ok, ...ERRORS },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'pqgate web admin API',
      version: '1',
      description:
        'REST API of the pqgate web admin. Authenticate with `Authorization: Bearer <token>` (tokens from the Account page) or the session cookie; cookie-authenticated state changes need the `X-CSRF-Token` header (GET /api/v1/session) and a same-origin request. Secrets never appear in responses.',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }, { session: [] }],
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'API token (pqg_...) created on the Account page' },
        session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'browser session; state changes also need X-CSRF-Token' },
      },
      schemas: {
        Error: obj({ error: obj({ code: str, message: str, issues: { type: 'array', items: ref('Issue') } }, ['code', 'message']) }, ['error']),
        Issue: obj({ path: { type: 'string', description: 'field path as the CLI prints it, e.g. tunnels[0].mss' }, message: str }, ['path', 'message']),
        Revision: obj(
          { id: int, author: str, comment: str, createdAt: int, confirmDeadline: { type: ['integer', 'null'] }, state: { enum: ['committed', 'pending', 'rolled-back'] } },
          ['id', 'author', 'comment', 'createdAt', 'confirmDeadline', 'state'],
        ),
        Event: obj({ id: int, ts: int, level: { enum: ['error', 'warn', 'info', 'debug'] }, tunnel: str, message: str }, ['id', 'ts', 'level', 'message']),
        Dashboard: obj(
          {
            generatedAt: int,
            daemon: { enum: ['ok', 'unreachable'] },
            summary: anyObj,
            tunnels: {
              type: 'array',
              items: obj({
                name: str,
                health: { enum: ['up', 'degraded', 'down', 'connecting', 'disabled'] },
                reason: str,
                sas: { type: 'array', items: obj({ id: int, state: str, pq: { type: 'string', description: 'ML-KEM-768, ML-KEM-1024 or none' }, health: str, children: { type: 'array', items: anyObj } }) },
              }),
            },
          },
          ['daemon', 'tunnels'],
        ),
      },
    },
  };
}
