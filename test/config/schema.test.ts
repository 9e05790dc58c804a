import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseDaemonConfig, loadConfigFile, defaultConfig, configPermissionWarning, ConfigValidationError } from '../../firmware/config/schema.js';
import { DEFAULT_IKE_PROPOSALS, DEFAULT_ESP_PROPOSALS, TUNNEL_DEFAULTS } from '../../firmware/config/defaults.js';
import { ConfigError } from '../../firmware/util/errors.js';
import { IdType } from '../../firmware/ikev2/constants.js';

const PSK = 'Sup3r-Secret-Branch-Key-0042';

/** The document from the assignment, every field given. */
function fullDoc(): any {
  return {
    listen: ['0.0.0.0'],
    ike_port: 500,
    natt_port: 4500,
    control_socket: '/run/pqgate/control.sock',
    log_level: 'info',
    tunnels: [
      {
        name: 'cf1',
        local_addr: '192.0.2.1',
        remote_addr: '192.0.2.2',
        remote_port: 500,
        local_id: 'fqdn:branch.example',
        remote_id: '192.0.2.2',
        auth: 'psk',
        psk: PSK,
        proposals: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem768-ke1_mlkem1024'],
        esp_proposals: ['aes256gcm16'],
        local_ts: ['0.0.0.0/0'],
        remote_ts: ['0.0.0.0/0'],
        mode: 'route',
        inside_addr: '10.100.0.9/31',
        start_action: 'start',
        fragmentation: 'yes',
        fragment_size: 1280,
        encap: false,
        rekey_time: 86400,
        child_rekey_time: 28800,
        dpd_delay: 10,
        replay_window: 0,
        mss: 1360,
      },
    ],
  };
}

/** A second, minimal tunnel so cross-tunnel checks have something to compare with. */
function twoTunnels(): any {
  const d = fullDoc();
  d.tunnels.push({ name: 'branch2', local_addr: '192.0.2.1', remote_addr: '198.51.100.7', psk: PSK + '-2' });
  return d;
}

function errorsOf(doc: unknown): ConfigError[] {
  try {
    parseDaemonConfig(doc);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigValidationError);
    return (e as ConfigValidationError).errors;
  }
  throw new Error('document was accepted');
}

describe('config schema: valid documents', () => {
  it('parses the full example into the internal form', () => {
    const c = parseDaemonConfig(fullDoc());
    expect(c.listen).toEqual(['0.0.0.0']);
    expect(c.ikePort).toBe(500);
    expect(c.nattPort).toBe(4500);
    expect(c.controlSocket).toBe('/run/pqgate/control.sock');
    expect(c.logLevel).toBe('info');
    expect(c.tunnels).toHaveLength(1);
    const t = c.tunnels[0]!;
    expect(t.name).toBe('cf1');
    expect(t.localAddr).toBe('192.0.2.1');
    expect(t.remoteAddr).toBe('192.0.2.2');
    expect(t.localId.idType).toBe(IdType.FQDN);
    expect(new TextDecoder().decode(t.localId.data)).toBe('branch.example');
    expect(t.remoteId?.idType).toBe(IdType.IPV4_ADDR);
    expect([...t.remoteId!.data]).toEqual([192, 0, 2, 2]);
    expect(new TextDecoder().decode(t.psk)).toBe(PSK);
    expect(t.ikeProposals).toEqual(['aes256gcm16-prfsha384-ecp384-ke1_mlkem768-ke1_mlkem1024']);
    expect(t.espProposals).toEqual(['aes256gcm16']);
    expect(t.localTs[0]!.family).toBe(4);
    expect([...t.localTs[0]!.startAddr]).toEqual([0, 0, 0, 0]);
    expect([...t.localTs[0]!.endAddr]).toEqual([255, 255, 255, 255]);
    expect(t.insideAddr).toBe('10.100.0.9/31');
    expect(t).toMatchObject({ mode: 'route', startAction: 'start', fragmentation: 'yes', fragmentSize: 1280, encap: false });
    expect(t).toMatchObject({ rekeyTime: 86400, childRekeyTime: 28800, dpdDelay: 10, replayWindow: 0, mss: 1360, remotePort: 500 });
  });

  it('applies the documented defaults to a minimal tunnel', () => {
    const c = parseDaemonConfig({ tunnels: [{ name: 'min', remote_addr: '192.0.2.2', local_addr: '192.0.2.1', psk: PSK }] });
    expect(c.listen).toEqual(['0.0.0.0']);
    expect(c.ikePort).toBe(500);
    expect(c.nattPort).toBe(4500);
    expect(c.logLevel).toBe('info');
    const t = c.tunnels[0]!;
    expect(t.ikeProposals).toEqual([...DEFAULT_IKE_PROPOSALS]);
    expect(t.espProposals).toEqual([...DEFAULT_ESP_PROPOSALS]);
    // hybrid first, classical fallback second
    expect(t.ikeProposals[0]).toMatch(/ke1_mlkem768/);
    expect(t.ikeProposals[1]).not.toMatch(/mlkem/);
    expect(t).toMatchObject({
      remotePort: TUNNEL_DEFAULTS.remotePort,
      mode: 'route',
      startAction: 'start',
      fragmentation: 'yes',
      fragmentSize: 1280,
      encap: false,
      rekeyTime: 86400,
      childRekeyTime: 28800,
      dpdDelay: 30,
      replayWindow: 64,
      mss: 0,
    });
    // local_id defaults to the local address, remote_id to the remote address
    expect(t.localId.idType).toBe(IdType.IPV4_ADDR);
    expect([...t.localId.data]).toEqual([192, 0, 2, 1]);
    expect([...t.remoteId!.data]).toEqual([192, 0, 2, 2]);
    expect(t.localTs.map((x) => x.text)).toEqual(t.remoteTs.map((x) => x.text));
  });

  it('accepts a responder-only tunnel (%any peer) with start_action none by default', () => {
    const c = parseDaemonConfig({ tunnels: [{ name: 'rw', remote_addr: '%any', local_id: '@gw.example', psk: PSK }] });
    const t = c.tunnels[0]!;
    expect(t.remoteAddr).toBeUndefined();
    expect(t.remoteId).toBeUndefined();
    expect(t.startAction).toBe('none');
  });

  it('reads 0x-hex PSKs as bytes, and fragmentation booleans', () => {
    const d = fullDoc();
    d.tunnels[0].psk = '0x' + '00112233445566778899aabbccddeeff';
    d.tunnels[0].fragmentation = false;
    const t = parseDaemonConfig(d).tunnels[0]!;
    expect([...t.psk]).toEqual([0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
    expect(t.fragmentation).toBe('no');
  });

  it('resolves dynamic traffic selectors to the tunnel addresses', () => {
    const d = fullDoc();
    d.tunnels[0].local_ts = ['dynamic'];
    d.tunnels[0].remote_ts = ['dynamic[udp/4789]'];
    const t = parseDaemonConfig(d).tunnels[0]!;
    expect([...t.localTs[0]!.startAddr]).toEqual([192, 0, 2, 1]);
    expect([...t.remoteTs[0]!.endAddr]).toEqual([192, 0, 2, 2]);
    expect(t.remoteTs[0]!.ipProtocol).toBe(17);
  });

  it('drops disabled tunnels but still validates them', () => {
    const d = twoTunnels();
    d.tunnels[1].enabled = false;
    expect(parseDaemonConfig(d).tunnels.map((t) => t.name)).toEqual(['cf1']);
    d.tunnels[1].mode = 'tunnel';
    expect(errorsOf(d).map((e) => e.path)).toEqual(['tunnels[1].mode']);
  });

  it('canonicalises IPv6 listen addresses', () => {
    const c = parseDaemonConfig({ listen: ['2001:DB8:0:0::1', '0.0.0.0'] });
    expect(c.listen).toEqual(['2001:db8::1', '0.0.0.0']);
  });

  it('resolves relative paths against baseDir', () => {
    const c = parseDaemonConfig({ control_socket: 'run/ctl.sock', keylog: 'keys/ike' }, { baseDir: '/etc/pqgate' });
    expect(c.controlSocket).toBe('/etc/pqgate/run/ctl.sock');
    expect(c.keylog).toBe('/etc/pqgate/keys/ike');
  });

  it('the embedded default config is valid, listens everywhere and has no tunnels', () => {
    const c = defaultConfig();
    expect(c.listen).toEqual(['0.0.0.0']);
    expect(c.tunnels).toEqual([]);
    expect(c.ikePort).toBe(500);
    expect(c.nattPort).toBe(4500);
  });
});

type Mut = (d: any) => void;
const T = (f: (t: any) => void): Mut => (d) => f(d.tunnels[0]);

/** [what, mutation, expected path, expected message fragment] */
const MALFORMED: [string, Mut, string, RegExp][] = [
  ['listen not a list', (d) => (d.listen = 5), 'listen', /array of strings/],
  ['listen entry not an IP', (d) => (d.listen = ['0.0.0.0', 'eth0']), 'listen[1]', /not an IP address/],
  ['listen duplicate', (d) => (d.listen = ['0.0.0.0', '0.0.0.0']), 'listen[1]', /duplicate/],
  ['listen empty', (d) => (d.listen = []), 'listen', /must not be empty/],
  ['ike_port out of range', (d) => (d.ike_port = 70000), 'ike_port', /between 0 and 65535/],
  ['ike_port string', (d) => (d.ike_port = '500'), 'ike_port', /integer/],
  ['natt_port fractional', (d) => (d.natt_port = 4500.5), 'natt_port', /integer/],
  ['natt_port equal to ike_port', (d) => (d.natt_port = 500), 'natt_port', /differ/],
  ['control_socket too long', (d) => (d.control_socket = '/' + 'x'.repeat(200)), 'control_socket', /107 bytes/],
  ['control_socket empty', (d) => (d.control_socket = ''), 'control_socket', /empty/],
  ['log_level unknown', (d) => (d.log_level = 'verbose'), 'log_level', /one of/],
  ['unknown top-level key', (d) => (d.tunnel = []), 'tunnel', /unknown key.*tunnels/],
  ['unsupported version', (d) => (d.version = 2), 'version', /unsupported/],
  ['tunnels not an array', (d) => (d.tunnels = {}), 'tunnels', /must be an array/],
  ['tunnel not an object', (d) => (d.tunnels[0] = 'cf1'), 'tunnels[0]', /must be an object/],
  ['name missing', T((t) => delete t.name), 'tunnels[0].name', /required/],
  ['name with spaces', T((t) => (t.name = 'my tunnel')), 'tunnels[0].name', /not a valid tunnel name/],
  ['unknown tunnel key (typo)', T((t) => (t.remote_adr = '192.0.2.2')), 'tunnels[0].remote_adr', /did you mean 'remote_addr'/],
  ['local_addr a host name', T((t) => (t.local_addr = 'gw.example')), 'tunnels[0].local_addr', /not an IP address/],
  ['remote_addr a number', T((t) => (t.remote_addr = 3221225986)), 'tunnels[0].remote_addr', /must be a string/],
  ['address families differ', T((t) => (t.remote_addr = '2001:db8::2')), 'tunnels[0].remote_addr', /family/],
  ['local_addr not covered by listen', (d) => ((d.listen = ['198.51.100.1']), (d.tunnels[0].local_addr = '192.0.2.1')), 'tunnels[0].local_addr', /not covered by 'listen'/],
  ['remote_port zero', T((t) => (t.remote_port = 0)), 'tunnels[0].remote_port', /between 1 and 65535/],
  ['local_id a DN', T((t) => (t.local_id = 'C=CH, O=strongSwan, CN=gw')), 'tunnels[0].local_id', /distinguished names/],
  ['local_id %any', T((t) => (t.local_id = '%any')), 'tunnels[0].local_id', /not %any/],
  ['local_id missing without local_addr', T((t) => (delete t.local_id, delete t.local_addr)), 'tunnels[0].local_id', /required when local_addr/],
  ['remote_id bad prefix value', T((t) => (t.remote_id = 'ipv4:not-an-ip')), 'tunnels[0].remote_id', /not an IPv4 address/],
  ['auth unknown', T((t) => (t.auth = 'eap')), 'tunnels[0].auth', /'psk'.*'pubkey'|'pubkey'.*'psk'|psk, pubkey/],
  ['auth pubkey without cert', T((t) => ((t.auth = 'pubkey'), delete t.psk)), 'tunnels[0].cert', /required \(auth = pubkey\)/],
  ['auth pubkey with a psk', T((t) => ((t.auth = 'pubkey'), (t.cert = '/nonexistent/c.pem'), (t.key = '/nonexistent/k.pem'), (t.ca_certs = ['/nonexistent/ca.pem']))), 'tunnels[0].psk', /not used with auth 'pubkey'/],
  ['auth pubkey unreadable cert', T((t) => ((t.auth = 'pubkey'), delete t.psk, (t.cert = '/nonexistent/c.pem'), (t.key = '/nonexistent/k.pem'), (t.ca_certs = ['/nonexistent/ca.pem']))), 'tunnels[0].cert', /cannot read .*ENOENT/],
  ['cert with auth psk', T((t) => (t.cert = '/etc/x.pem')), 'tunnels[0].cert', /only used with auth 'pubkey'/],
  ['allowed_schemes unknown', T((t) => ((t.auth = 'pubkey'), delete t.psk, (t.cert = '/nonexistent/c.pem'), (t.key = '/nonexistent/k.pem'), (t.ca_certs = ['/nonexistent/ca.pem']), (t.allowed_schemes = ['dsa']))), 'tunnels[0].allowed_schemes[0]', /unknown signature scheme/],
  ['full_transcript_auth bad', T((t) => (t.full_transcript_auth = 'maybe')), 'tunnels[0].full_transcript_auth', /'required'|required/],
  ['psk missing', T((t) => delete t.psk), 'tunnels[0].psk', /required/],
  ['psk too short', T((t) => (t.psk = 'short-key')), 'tunnels[0].psk', /at least 16 characters/],
  ['psk bad hex', T((t) => (t.psk = '0xzz112233445566778899aabbccddeeff')), 'tunnels[0].psk', /invalid hex/],
  ['psk hex too short', T((t) => (t.psk = '0x0011223344')), 'tunnels[0].psk', /16 bytes/],
  ['psk a number', T((t) => (t.psk = 1234567890123456789)), 'tunnels[0].psk', /must be a string/],
  ['unknown IKE algorithm', T((t) => (t.proposals = ['aes999-prfsha384-x25519'])), 'tunnels[0].proposals[0]', /aes999/],
  ['second proposal bad', T((t) => (t.proposals = ['aes256gcm16-prfsha384-x25519', 'aes256gcm16-prfsha384-x25519-ke9_mlkem768'])), 'tunnels[0].proposals[1]', /ke9|unknown|invalid/i],
  ['proposals empty list', T((t) => (t.proposals = [])), 'tunnels[0].proposals', /must not be empty/],
  ['proposal entry not a string', T((t) => (t.proposals = [42])), 'tunnels[0].proposals[0]', /must be a string/],
  ['PRF in an ESP proposal', T((t) => (t.esp_proposals = ['aes256gcm16-prfsha256'])), 'tunnels[0].esp_proposals[0]', /PRF/],
  ['local_ts bad prefix', T((t) => (t.local_ts = ['10.0.0.0/33'])), 'tunnels[0].local_ts[0]', /prefix length/],
  ['remote_ts garbage', T((t) => (t.remote_ts = ['0.0.0.0/0', 'everything'])), 'tunnels[0].remote_ts[1]', /everything/],
  ['dynamic ts without remote_addr', T((t) => ((t.remote_addr = '%any'), (t.start_action = 'none'), (t.remote_ts = ['dynamic']))), 'tunnels[0].remote_ts[0]', /needs remote_addr/],
  ['mode unknown', T((t) => (t.mode = 'transport')), 'tunnels[0].mode', /'route', 'policy'/],
  ['inside_addr without prefix', T((t) => (t.inside_addr = '10.100.0.9')), 'tunnels[0].inside_addr', /prefix length/],
  ['inside_addr with policy mode', T((t) => (t.mode = 'policy')), 'tunnels[0].inside_addr', /only valid with mode 'route'/],
  ['start_action unknown', T((t) => (t.start_action = 'restart')), 'tunnels[0].start_action', /one of/],
  ['start_action start without peer', T((t) => (t.remote_addr = '%any')), 'tunnels[0].start_action', /needs remote_addr/],
  ['fragmentation unknown', T((t) => (t.fragmentation = 'force')), 'tunnels[0].fragmentation', /one of/],
  ['fragment_size below 576', T((t) => (t.fragment_size = 500)), 'tunnels[0].fragment_size', /between 576/],
  [
    'fragment_size below IPv6 minimum',
    (d) => {
      d.listen = ['0.0.0.0', '::'];
      Object.assign(d.tunnels[0], { local_addr: '2001:db8::1', remote_addr: '2001:db8::2', remote_id: '2001:db8::2', fragment_size: 1000 });
    },
    'tunnels[0].fragment_size',
    /IPv6 minimum MTU/,
  ],
  ['encap not boolean', T((t) => (t.encap = 'yes')), 'tunnels[0].encap', /true or false/],
  ['rekey_time negative', T((t) => (t.rekey_time = -1)), 'tunnels[0].rekey_time', /between 0/],
  ['child_rekey_time too small', T((t) => (t.child_rekey_time = 5)), 'tunnels[0].child_rekey_time', /at least 10 seconds/],
  ['dpd_delay too large', T((t) => (t.dpd_delay = 100000)), 'tunnels[0].dpd_delay', /between 0 and 86400/],
  ['replay_window too large', T((t) => (t.replay_window = 100000)), 'tunnels[0].replay_window', /between 0 and 4096/],
  ['mss too small', T((t) => (t.mss = 100)), 'tunnels[0].mss', /at least 536/],
  ['enabled not boolean', T((t) => (t.enabled = 'no')), 'tunnels[0].enabled', /true or false/],
  ['duplicate tunnel name', (d) => ((d.tunnels = twoTunnels().tunnels), (d.tunnels[1].name = 'cf1')), 'tunnels[1].name', /duplicate tunnel name 'cf1'/],
];
describe('config schema: malformed documents', () => {
  it('has a big enough table', () => {
    expect(MALFORMED.length).toBeGreaterThanOrEqual(30);
  });

  it.each(MALFORMED)('%s → %s', (_what, mutate, path, msg) => {
    const d = fullDoc();
    mutate(d);
    const errs = errorsOf(d);
    const hit = errs.find((e) => e.path === path);
    expect(hit, `errors were: ${errs.map((e) => e.message).join(' | ')}`).toBeDefined();
    expect(hit!.message).toMatch(msg);
    expect(hit!.message.startsWith(`${path}: `)).toBe(true);
    // the PSK is never echoed, in any message
    for (const e of errs) expect(e.message).not.toContain(PSK);
  });

  it('rejects a non-object document', () => {
    for (const d of [null, [], 'x', 3]) expect(errorsOf(d)[0]!.path).toBe('(document)');
  });

  it('collects every error in one pass', () => {
    const d = twoTunnels();
    d.ike_port = -1;
    d.tunnels[0].proposals = ['aes999'];
    d.tunnels[0].mss = 7;
    d.tunnels[1].psk = 'short';
    d.tunnels[1].frobnicate = true;
    let err: ConfigValidationError | undefined;
    try {
      parseDaemonConfig(d);
    } catch (e) {
      err = e as ConfigValidationError;
    }
    expect(err).toBeInstanceOf(ConfigValidationError);
    expect(err!.code).toBe('ERR_CONFIG');
    expect(err!.errors.map((e) => e.path).sort()).toEqual(
      ['ike_port', 'tunnels[0].proposals[0]', 'tunnels[0].mss', 'tunnels[1].psk', 'tunnels[1].frobnicate'].sort(),
    );
    expect(err!.message).toMatch(/5 errors/);
    for (const e of err!.errors) expect(err!.message).toContain(e.message);
  });

  it('never echoes a PSK, even when it is put in the wrong field', () => {
    const d = fullDoc();
    d.tunnels[0].local_id = 'C=' + PSK; // a DN: the identity parser quotes its input
    d.tunnels[0].proposals = [PSK]; // the proposal parser quotes its input
    d.tunnels[0].mode = PSK;
    const errs = errorsOf(d);
    expect(errs.length).toBeGreaterThanOrEqual(3);
    for (const e of errs) expect(e.message).not.toContain(PSK);
    const hexDoc = fullDoc();
    hexDoc.tunnels[0].psk = '0x00112233';
    for (const e of errorsOf(hexDoc)) expect(e.message).not.toContain('00112233');
  });
});

describe('config files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pqgate-config-'));

  it('reports invalid JSON with a position and without quoting the text', () => {
    const f = join(dir, 'bad.json');
    writeFileSync(f, `{\n  "tunnels": [ { "psk": "${PSK}", } ]\n}\n`);
    let err: ConfigValidationError | undefined;
    try {
      loadConfigFile(f);
    } catch (e) {
      err = e as ConfigValidationError;
    }
    expect(err).toBeInstanceOf(ConfigValidationError);
    expect(err!.message).toMatch(/invalid JSON( at line 2, column \d+)?/);
    expect(err!.message).not.toContain(PSK);
  });

  it('reports an unreadable file', () => {
    expect(() => loadConfigFile(join(dir, 'missing.json'))).toThrow(/cannot read: ENOENT/);
  });

  it('resolves relative paths against the file and warns about loose permissions', () => {
    const f = join(dir, 'ok.json');
    writeFileSync(f, JSON.stringify({ control_socket: 'ctl.sock', tunnels: [] }));
    chmodSync(f, 0o644);
    expect(loadConfigFile(f).controlSocket).toBe(join(dir, 'ctl.sock'));
    expect(configPermissionWarning(f)).toMatch(/chmod 600/);
    chmodSync(f, 0o600);
    expect(configPermissionWarning(f)).toBeUndefined();
  });

  it('cleans up', () => {
    rmSync(dir, { recursive: true, force: true });
  });
});
