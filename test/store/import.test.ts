import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { tempStore, sampleDoc, PSK_A, PSK_B, type TempStore } from './helpers/fixtures.js';
import { ConfigValidationError } from '../../firmware/config/schema.js';
import { MAX_TUNNELS } from '../../firmware/store/validate.js';
import { SCHEMA_VERSION } from '../../firmware/store/schema.js';

type Mutate = (d: any) => unknown;

/** [description, mutation of a valid document (return a value to replace it), expected error paths]. */
const CASES: [string, Mutate, string[]][] = [
  ['not an object', () => [], ['(document)']],
  ['invalid JSON text', () => '{"version": 1, "tunnels": [', ['(document)']],
  ['unknown top-level key', (d) => void (d.listne = ['0.0.0.0']), ['listne']],
  ['unsupported version', (d) => void (d.version = 2), ['version']],
  ['listen not an IP', (d) => void (d.listen = ['not-an-ip', '0.0.0.0']), ['listen[0]']],
  ['duplicate listen address', (d) => void (d.listen = ['0.0.0.0', '0.0.0.0']), ['listen[1]']],
  ['ike_port out of range', (d) => void (d.ike_port = 70000), ['ike_port']],
  ['natt_port equal to ike_port', (d) => void (d.natt_port = 500), ['natt_port']],
  ['unknown log level', (d) => void (d.log_level = 'loud'), ['log_level']],
  ['control socket path too long', (d) => void (d.control_socket = '/run/' + 'x'.repeat(120)), ['control_socket']],
  ['tunnels not an array', (d) => void (d.tunnels = {}), ['tunnels']],
  ['tunnel not an object', (d) => void (d.tunnels[0] = 'cf1'), ['tunnels[0]']],
  ['tunnel without name', (d) => void delete d.tunnels[0].name, ['tunnels[0].name']],
  ['duplicate tunnel name', (d) => void (d.tunnels[1].name = 'cf1'), ['tunnels[1].name']],
  ['invalid tunnel name', (d) => void (d.tunnels[0].name = 'bad name!'), ['tunnels[0].name']],
  ['misspelt tunnel key', (d) => void (d.tunnels[0].remote_adr = '192.0.2.2'), ['tunnels[0].remote_adr']],
  ['host name as remote_addr', (d) => void (d.tunnels[0].remote_addr = 'gw.example.com'), ['tunnels[0].remote_addr']],
  ['local_addr not covered by listen', (d) => void (d.listen = ['192.0.2.1'], (d.tunnels[0].local_addr = '198.51.100.1')), ['tunnels[0].local_addr']],
  ['address families differ', (d) => void (d.tunnels[0].remote_addr = '2001:db8::1'), ['tunnels[0].remote_addr']],
  ['remote_port zero', (d) => void (d.tunnels[0].remote_port = 0), ['tunnels[0].remote_port']],
  ['local_id %any', (d) => void (d.tunnels[0].local_id = '%any'), ['tunnels[0].local_id']],
  ['PSK too short', (d) => void (d.tunnels[0].psk = 'short'), ['tunnels[0].psk']],
  ['PSK bad hex', (d) => void (d.tunnels[0].psk = '0xZZZZ'), ['tunnels[0].psk']],
  ['PSK not a string', (d) => void (d.tunnels[0].psk = 12345), ['tunnels[0].psk']],
  ['unknown IKE algorithm', (d) => void (d.tunnels[0].proposals = ['aes999-prfsha384-x25519']), ['tunnels[0].proposals[0]']],
  ['empty proposal list', (d) => void (d.tunnels[0].proposals = []), ['tunnels[0].proposals']],
  ['PRF in an ESP proposal', (d) => void (d.tunnels[0].esp_proposals = ['aes256gcm16', 'aes256gcm16-prfsha384']), ['tunnels[0].esp_proposals[1]']],
  ['prefix too long in selector', (d) => void (d.tunnels[0].local_ts = ['10.0.0.0/33']), ['tunnels[0].local_ts[0]']],
  ['dynamic selector without address', (d) => void (d.tunnels[1].remote_ts = ['dynamic']), ['tunnels[1].remote_ts[0]']],
  ['unknown mode', (d) => void (d.tunnels[0].mode = 'tunnel'), ['tunnels[0].mode']],
  ['inside_addr with policy mode', (d) => void (d.tunnels[1].inside_addr = '10.0.0.1/31'), ['tunnels[1].inside_addr']],
  ['inside_addr without prefix', (d) => void (d.tunnels[0].inside_addr = '10.0.0.1'), ['tunnels[0].inside_addr']],
  ['start on a responder-only tunnel', (d) => void (d.tunnels[1].start_action = 'start'), ['tunnels[1].start_action']],
  ['unknown fragmentation mode', (d) => void (d.tunnels[0].fragmentation = 'maybe'), ['tunnels[0].fragmentation']],
  ['fragment_size below minimum', (d) => void (d.tunnels[0].fragment_size = 100), ['tunnels[0].fragment_size']],
  ['rekey_time below 10 s', (d) => void (d.tunnels[0].rekey_time = 5), ['tunnels[0].rekey_time']],
  ['negative dpd_delay', (d) => void (d.tunnels[0].dpd_delay = -1), ['tunnels[0].dpd_delay']],
  ['replay_window too large', (d) => void (d.tunnels[0].replay_window = 5000), ['tunnels[0].replay_window']],
  ['mss below 536', (d) => void (d.tunnels[0].mss = 100), ['tunnels[0].mss']],
  ['encap not a boolean', (d) => void (d.tunnels[0].encap = 'yes'), ['tunnels[0].encap']],
  ['enabled not a boolean', (d) => void (d.tunnels[0].enabled = 'no'), ['tunnels[0].enabled']],
  ['new tunnel without PSK', (d) => void d.tunnels.push({ name: 'nokey', remote_addr: '198.51.100.9', local_id: 'fqdn:a.example' }), ['tunnels[2].psk']],
  ['three errors at once', (d) => void ((d.log_level = 'x'), (d.tunnels[0].mss = 1), (d.tunnels[1].psk = 'tiny')), ['log_level', 'tunnels[0].mss', 'tunnels[1].psk']],
  ['tunnel_presets without schema_version', (d) => void (d.tunnel_presets = { cf1: 'cloudflare' }), ['tunnel_presets']],
  ['backup from a newer schema', (d) => void (d.schema_version = SCHEMA_VERSION + 1), ['schema_version']],
  ['schema_version not an integer', (d) => void (d.schema_version = 'three'), ['schema_version']],
  ['unknown preset in backup', (d) => void ((d.schema_version = SCHEMA_VERSION), (d.tunnel_presets = { cf1: 'juniper' })), ['tunnel_presets.cf1']],
  ['preset for a missing tunnel', (d) => void ((d.schema_version = SCHEMA_VERSION), (d.tunnel_presets = { ghost: 'cloudflare' })), ['tunnel_presets.ghost']],
  ['tunnel_presets not an object', (d) => void ((d.schema_version = SCHEMA_VERSION), (d.tunnel_presets = ['cloudflare'])), ['tunnel_presets']],
  ['presets in a v1 backup', (d) => void ((d.schema_version = 1), (d.tunnel_presets = {})), ['tunnel_presets']],
  ['backup metadata error plus document error', (d) => void ((d.schema_version = 99), (d.tunnels[0].mss = 1)), ['schema_version', 'tunnels[0].mss']],
  [
    'too many tunnels',
    (d) =>
      void (d.tunnels = Array.from({ length: MAX_TUNNELS + 1 }, (_, i) => ({ name: `t${i}`, remote_addr: '198.51.100.1', local_id: 'fqdn:a.example', psk: PSK_A }))),
    ['tunnels'],
  ],
];

const PATCH_CASES: [string, unknown, string[]][] = [
  ['patch not an object', 'x', ['patch']],
  ['unknown patch key', { colour: 'red' }, ['patch.colour']],
  ['remove a missing tunnel', { tunnels: { ghost: null } }, ['patch.tunnels.ghost']],
  ['tunnel patch not an object', { tunnels: { cf1: 5 } }, ['patch.tunnels.cf1']],
  ['rename inside a patch', { tunnels: { cf1: { name: 'cf2' } } }, ['patch.tunnels.cf1.name']],
  ['patch makes the document invalid', { tunnels: { cf1: { mss: 2 } }, log_level: 'x' }, ['log_level', 'tunnels[0].mss']],
  ['patch with unknown preset', { tunnel_presets: { cf1: 'nope' } }, ['tunnel_presets.cf1']],
];

let t: TempStore;

/** Everything observable about the store, secrets included (read without writing an audit entry). */
function observe() {
  return {
    history: t.store.history(),
    backup: t.store.exportDocument({ backup: true }),
    presets: t.store.getPresets(),
    audit: t.store.auditLog({ limit: 10_000 }),
    keys: t.store.daemonConfig().tunnels.map((x) => [x.name, Buffer.from(x.psk).toString('hex')]),
    current: t.store.current(),
  };
}

function errorsOf(fn: () => unknown): ConfigValidationError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigValidationError) return e;
    throw e;
  }
  throw new Error('expected a ConfigValidationError');
}

describe('import of invalid documents', () => {
  beforeAll(() => {
    t = tempStore();
    t.store.apply(sampleDoc(), { author: 'setup' });
    t.store.apply({ patch: { tunnel_presets: { cf1: 'cloudflare' } } }, { author: 'setup' });
  });
  afterAll(() => t.cleanup());

  it(`has at least 30 cases`, () => expect(CASES.length).toBeGreaterThanOrEqual(30));

  it.each(CASES)('%s', (_name, mutate, paths) => {
    const before = observe();
    const doc = sampleDoc();
    const replaced = mutate(doc);
    const input = replaced === undefined ? doc : replaced;
    const e = errorsOf(() => t.store.importDocument(input, { author: 'tester' }));
    expect(e.errors.map((x) => x.path)).toEqual(paths);
    expect(e.code).toBe('ERR_CONFIG');
    // All-or-nothing: not one row changed (revisions, live config, presets, secrets, audit log).
    expect(observe()).toEqual(before);
    // The same document through apply() fails the same way.
    expect(errorsOf(() => t.store.apply(input, { author: 'tester' })).errors.map((x) => x.path)).toEqual(paths);
    expect(observe()).toEqual(before);
  });

  it.each(PATCH_CASES)('patch: %s', (_name, patch, paths) => {
    const before = observe();
    const e = errorsOf(() => t.store.apply({ patch }, { author: 'tester' }));
    expect(e.errors.map((x) => x.path)).toEqual(paths);
    expect(observe()).toEqual(before);
  });
});

describe('import and export', () => {
  let src: TempStore;
  let dst: TempStore;
  afterAll(() => {
    src?.cleanup();
    dst?.cleanup();
  });

  it('a backup with secrets restores the same configuration, presets and keys in another store', () => {
    src = tempStore();
    src.store.apply(sampleDoc(), { author: 'a' });
    src.store.apply({ patch: { tunnel_presets: { cf1: 'cloudflare' } } }, { author: 'a' });
    const backup = src.store.exportDocument({ includeSecrets: true, backup: true, actor: 'backup-job' });
    expect(backup).toMatchObject({ schema_version: SCHEMA_VERSION, tunnel_presets: { cf1: 'cloudflare' } });
    expect(backup.tunnels.map((x) => x.psk)).toEqual([PSK_A, PSK_B]);
    expect(src.store.auditLog()[0]).toMatchObject({ actor: 'backup-job', action: 'export-secrets' });

    dst = tempStore();
    const r = dst.store.importDocument(JSON.stringify(backup, null, 2), { author: 'restore', comment: 'from backup' });
    expect(r.revision).toMatchObject({ kind: 'import', author: 'restore', comment: 'from backup' });
    expect(dst.store.exportDocument({ includeSecrets: true, backup: true, actor: 'x' })).toEqual(backup);
    expect(dst.store.daemonConfig()).toEqual(src.store.daemonConfig());
  });

  it('the plain export is the docs/config.md document: parseDaemonConfig accepts it once keys are added', () => {
    const plain = src.store.exportDocument({ includeSecrets: true, actor: 'x' });
    expect(plain).not.toHaveProperty('schema_version');
    expect(plain).not.toHaveProperty('tunnel_presets');
    expect(Object.keys(plain)).toEqual(['version', 'listen', 'ike_port', 'natt_port', 'log_level', 'tunnels']);
    expect(Object.keys(plain.tunnels[0]!)).toEqual([
      'name', 'local_addr', 'remote_addr', 'local_id', 'psk', 'proposals', 'esp_proposals', 'mode', 'inside_addr', 'dpd_delay', 'replay_window', 'mss',
    ]);
    const noSecrets = src.store.exportDocument();
    expect(noSecrets.tunnels.every((x) => !('psk' in x))).toBe(true);
  });

  it('every field of docs/config.md round-trips through the tables unchanged', () => {
    const full = {
      version: 1,
      listen: ['0.0.0.0', '::'],
      ike_port: 1500,
      natt_port: 14500,
      control_socket: '/run/pqgate-test/control.sock',
      log_level: 'trace',
      keylog: '/tmp/pqgate-keylog.txt',
      tunnels: [
        {
          name: 'all', enabled: true, local_addr: '192.0.2.1', remote_addr: '192.0.2.2', remote_port: 4500, local_id: 'fqdn:branch.example', remote_id: '192.0.2.2',
          auth: 'psk', psk: PSK_A, proposals: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem768-ke1_mlkem1024', 'aes256gcm16-prfsha384-ecp384'],
          esp_proposals: ['aes256gcm16-ecp384-ke1_mlkem768', 'aes128gcm16'], local_ts: ['10.0.0.0/24', '10.0.1.0/24[tcp/443]'], remote_ts: ['0.0.0.0/0'],
          mode: 'route', inside_addr: '10.100.0.9/31', start_action: 'trap', fragmentation: 'accept', fragment_size: 1400, encap: true, rekey_time: 3600,
          child_rekey_time: 0, dpd_delay: 0, replay_window: 4096, mss: 1360,
        },
        { name: 'off', enabled: false, remote_addr: '%any', local_id: 'keyid:abc', psk: PSK_B, mode: 'policy', fragmentation: 'no', encap: false },
      ],
    };
    const s = tempStore();
    try {
      s.store.apply(full, { author: 'a' });
      expect(s.store.exportDocument({ includeSecrets: true, actor: 'x' })).toEqual(full);
      expect(Object.keys(s.store.exportDocument({ includeSecrets: true, actor: 'x' }).tunnels[0]!)).toEqual(Object.keys(full.tunnels[0]!));
      expect(s.store.getRevision(2).document).toEqual({ schema_version: SCHEMA_VERSION, ...full, tunnels: full.tunnels.map(({ psk: _p, ...r }) => r), tunnel_presets: {} });
    } finally {
      s.cleanup();
    }
  });

  it('importing a plain document replaces presets; a document equal to the current one still makes a revision', () => {
    const n = dst.store.history().length;
    dst.store.importDocument(dst.store.exportDocument(), { author: 'r' });
    expect(dst.store.history()).toHaveLength(n + 1);
    expect(dst.store.getPresets()).toEqual({});
  });
});
