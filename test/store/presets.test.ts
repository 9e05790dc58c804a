import { describe, it, expect, afterEach } from 'vitest';
import { applyPreset, checkPresetData, getPreset, presetNames } from '../../firmware/presets/presets.js';
import { ConfigValidationError } from '../../firmware/config/schema.js';
import { parseProposal } from '../../firmware/ikev2/sa/proposal.js';
import { EsnId, IdType, KeMethod, TransformType } from '../../firmware/ikev2/constants.js';
import { tempStore, PSK_A, type TempStore } from './helpers/fixtures.js';

const TID = 'c4a7362d577a6c3019a474fd6f485821';
const AID = '023e105f4ecef8ad9ca31a8372d0c353';

function errorPaths(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigValidationError) return e.errors.map((x) => x.path);
    throw e;
  }
  throw new Error('expected a ConfigValidationError');
}

const ids = (ts: { id: number }[] | undefined) => (ts ?? []).map((x) => x.id);

function cloudflare(overrides: Record<string, unknown> = {}) {
  return applyPreset('cloudflare', { name: 'cf1', remote_addr: '203.0.113.10', psk: PSK_A, inside_addr: '10.100.0.9/31', ...overrides }, { params: { tunnel_id: TID, account_id: AID } });
}

describe('preset data', () => {
  it('ships cloudflare, cisco-8000, fortios and strongswan', () => {
    expect(presetNames().sort()).toEqual(['cisco-8000', 'cloudflare', 'fortios', 'strongswan']);
  });

  it.each(['cloudflare', 'cisco-8000', 'fortios', 'strongswan'])('%s: a source per field and at least one marked disagreement', (name) => {
    const p = getPreset(name)!;
    expect(Object.keys(p.sources).sort()).toEqual(Object.keys(p.tunnel).sort());
    for (const s of Object.values(p.sources)) {
      expect(s.source.length).toBeGreaterThan(20);
      expect(['doc', '3p', 'gap']).toContain(s.confidence);
    }
    expect(Object.values(p.sources).filter((s) => s.disagreement).length).toBeGreaterThan(0);
  });

  it('rejects preset data without a source for a field or with a non-presettable field', () => {
    const p = getPreset('fortios')! as any;
    delete p.sources.mss;
    p.tunnel.mss = 1300;
    expect(() => checkPresetData(p)).toThrow(/sources\.mss/);
    const q = getPreset('fortios')! as any;
    q.tunnel.psk = 'x';
    q.sources.psk = { source: 'a long enough source text', confidence: 'doc' };
    expect(() => checkPresetData(q)).toThrow(/tunnel\.psk/);
  });
});

describe('applyPreset', () => {
  it('cloudflare: every field as Cloudflare documents it', () => {
    const { tunnel, config } = cloudflare();
    expect(config.localId.idType).toBe(IdType.FQDN);
    expect(config.localId.text).toContain(`${TID}.${AID}.ipsec.cloudflare.com`);
    expect(tunnel.local_id).toBe(`fqdn:${TID}.${AID}.ipsec.cloudflare.com`);
    expect(config.remoteId?.text).toBe('203.0.113.10'); // Cloudflare presents its anycast address
    expect(config.ikeProposals).toEqual(['aes256gcm16-prfsha384-ecp384-ke1_mlkem768-ke1_mlkem1024']);
    const ike = parseProposal(config.ikeProposals[0]!, 'ike');
    expect(ids(ike.transforms[TransformType.KE])).toEqual([KeMethod.ECP_384]);
    expect(ids(ike.transforms[TransformType.ADDKE1])).toEqual([KeMethod.ML_KEM_768, KeMethod.ML_KEM_1024]); // 1024 accepted too
    expect(config.espProposals).toEqual(['aes256gcm16']);
    expect(ids(parseProposal(config.espProposals[0]!, 'esp').transforms[TransformType.ESN])).toEqual([EsnId.NO]); // ESN off
    expect(config).toMatchObject({
      auth: 'psk',
      remotePort: 500,
      mode: 'route',
      startAction: 'start',
      fragmentation: 'yes',
      replayWindow: 0,
      dpdDelay: 10,
      mss: 1360,
      rekeyTime: 86400,
      childRekeyTime: 28800,
      insideAddr: '10.100.0.9/31',
    });
    expect(config.localTs.map((x) => x.text)).toEqual(['0.0.0.0/0']);
    expect(config.remoteTs.map((x) => x.text)).toEqual(['0.0.0.0/0']);
    expect(Buffer.from(config.psk).toString()).toBe(PSK_A);
  });

  it('cisco-8000: ECP-384 + ML-KEM-1024 only, 24 h / 1 h, DPD 10 s', () => {
    const { config } = applyPreset('cisco-8000', { name: 'c8k', remote_addr: '198.51.100.20', local_id: 'fqdn:branch.example', psk: PSK_A });
    const ike = parseProposal(config.ikeProposals[0]!, 'ike');
    expect(ids(ike.transforms[TransformType.KE])).toEqual([KeMethod.ECP_384]);
    expect(ids(ike.transforms[TransformType.ADDKE1])).toEqual([KeMethod.ML_KEM_1024]);
    expect(config).toMatchObject({ rekeyTime: 86400, childRekeyTime: 3600, dpdDelay: 10, mode: 'route', fragmentation: 'yes' });
  });

  it('fortios: ECP-384 + ML-KEM-768 or 1024, keylife 86400, phase2 28800', () => {
    const { config } = applyPreset('fortios', { name: 'fgt', remote_addr: '198.51.100.30', local_id: 'fqdn:branch.example', psk: PSK_A });
    const ike = parseProposal(config.ikeProposals[0]!, 'ike');
    expect(ids(ike.transforms[TransformType.KE])).toEqual([KeMethod.ECP_384]);
    expect(ids(ike.transforms[TransformType.ADDKE1])).toEqual([KeMethod.ML_KEM_768, KeMethod.ML_KEM_1024]);
    expect(config).toMatchObject({ rekeyTime: 86400, childRekeyTime: 28800, dpdDelay: 30 });
  });

  it('strongswan: X25519 with ML-KEM-768 preferred and a classical fallback, 4 h / 1 h', () => {
    const { config } = applyPreset('strongswan', { name: 'sw', remote_addr: '198.51.100.40', local_id: 'fqdn:branch.example', psk: PSK_A });
    const [hybrid, classic] = config.ikeProposals.map((p) => parseProposal(p, 'ike'));
    expect(ids(hybrid!.transforms[TransformType.KE])).toEqual([KeMethod.CURVE_25519]);
    expect(ids(hybrid!.transforms[TransformType.ADDKE1])).toEqual([KeMethod.ML_KEM_768]);
    expect(classic!.transforms[TransformType.ADDKE1]).toBeUndefined();
    expect(config).toMatchObject({ rekeyTime: 14400, childRekeyTime: 3600 });
  });

  it("the user's fields win; null drops a preset field so the daemon default applies", () => {
    const { tunnel, config } = cloudflare({ mss: 1300, dpd_delay: 20, replay_window: null, local_id: 'ipsec@t.a.ipsec.cloudflare.com' });
    expect(config).toMatchObject({ mss: 1300, dpdDelay: 20, replayWindow: 64 });
    expect(config.localId.idType).toBe(IdType.RFC822_ADDR);
    expect(tunnel).not.toHaveProperty('replay_window');
    expect(Object.keys(tunnel)[0]).toBe('name'); // documented key order
  });

  it('reports an invalid override with its path, every problem at once', () => {
    expect(errorPaths(() => cloudflare({ mss: 100 }))).toEqual(['mss']);
    expect(errorPaths(() => cloudflare({ proposals: ['aes256gcm16-prfsha384-bogus'], replay_window: 99999, fragmentation: 'sometimes' }))).toEqual([
      'proposals[0]',
      'fragmentation',
      'replay_window',
    ]);
    expect(errorPaths(() => cloudflare({ colour: 'blue' }))).toEqual(['colour']);
  });

  it('reports missing required fields and template parameters', () => {
    expect(errorPaths(() => applyPreset('cloudflare', { name: 'cf1', remote_addr: '203.0.113.10', psk: PSK_A }))).toEqual([
      'params.tunnel_id',
      'params.account_id',
      'inside_addr',
    ]);
    expect(errorPaths(() => cloudflare({ psk: undefined }))).toEqual(['psk']);
    expect(errorPaths(() => applyPreset('cloudflare', { name: 'cf1', remote_addr: '203.0.113.10', psk: PSK_A, inside_addr: '10.0.0.1/31' }, { params: { tunnel_id: 'bad id!', account_id: AID, extra: 'x' } }))).toEqual([
      'params.tunnel_id',
      'params.extra',
    ]);
    // Giving the field that uses the template makes its parameters unnecessary.
    expect(applyPreset('cloudflare', { name: 'cf1', remote_addr: '203.0.113.10', psk: PSK_A, inside_addr: '10.0.0.1/31', local_id: 'keyid:acct_tun' }).config.localId.idType).toBe(IdType.KEY_ID);
    expect(errorPaths(() => applyPreset('juniper', {}))).toEqual(['preset']);
  });
});

describe('presets in the store', () => {
  let t: TempStore;
  afterEach(() => t?.cleanup());

  it('addTunnelFromPreset stores the merged tunnel and remembers its preset', () => {
    t = tempStore();
    const r = t.store.addTunnelFromPreset('cloudflare', { name: 'cf1', remote_addr: '203.0.113.10', psk: PSK_A, inside_addr: '10.100.0.9/31', mss: 1350 }, { author: 'ui', params: { tunnel_id: TID, account_id: AID } });
    expect(r.revision.diff.map((d) => d.path)).toEqual(['tunnels[0]', 'tunnel_presets.cf1']);
    expect(t.store.getPresets()).toEqual({ cf1: 'cloudflare' });
    const doc = t.store.getDocument();
    expect(doc.tunnels[0]).toMatchObject({ name: 'cf1', mss: 1350, replay_window: 0, local_id: `fqdn:${TID}.${AID}.ipsec.cloudflare.com` });
    expect(t.store.daemonConfig().tunnels[0]!.mss).toBe(1350);
    expect(errorPaths(() => t.store.addTunnelFromPreset('cloudflare', { name: 'cf1', remote_addr: '203.0.113.11', psk: PSK_A, inside_addr: '10.100.0.11/31' }, { author: 'ui', params: { tunnel_id: TID, account_id: AID } }))).toEqual(['name']);
    // Removing the tunnel forgets its preset.
    t.store.apply({ patch: { tunnels: { cf1: null } } }, { author: 'ui' });
    expect(t.store.getPresets()).toEqual({});
  });
});
