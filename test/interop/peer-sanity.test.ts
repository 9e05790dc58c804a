/**
 * Sanity of the real-peer machinery (test/interop/lib), proven with
 * strongSwan <-> strongSwan before pqgate is put in place of one side:
 *  - sid 6.1 <-> 6.1, PSK, x25519 + ML-KEM-768 (RFC 9370 IKE_INTERMEDIATE),
 *    encap = yes, kernel-libipsec; ESP traffic through the tunnel;
 *  - capture + decryption: IKE_SA_INIT decoded in clear, IKE_INTERMEDIATE and
 *    IKE_AUTH decrypted with keys taken from charon's log, ESP decrypted;
 *    fragment_size = 576 splits the ML-KEM-768 IKE_INTERMEDIATE request into
 *    3 Encrypted Fragment payloads (RFC 7383);
 *  - the same with the initiator behind an nftables masquerade NAT;
 *  - bookworm 5.9.8 <-> sid 6.1 classical, both directions (6.1 offers the
 *    hybrid proposal first and a classical one after it);
 *  - libreswan 5.2 (trixie) as responder: IKE SA established, Child SA
 *    refused with TEMPORARY_FAILURE (no ESP on this kernel).
 * Needs root and the peer roots (test/peers/setup.sh); skips otherwise.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  addInnerAddresses,
  cleanupAll,
  createPair,
  interopSkipReason,
  ownNamespaces,
  RUN_PREFIX,
  sendUdp,
  sweepStale,
  type Pair,
} from './lib/netns.js';
import { pendingCleanups, runSync } from './lib/proc.js';
import { mountsUnder, peerMissingReason, sweepStaleDirs } from './lib/rootfs.js';
import { KEY_LOG_LEVELS, pskConnections, Strongswan, type IkeSa, type PskPairOptions } from './lib/strongswan.js';
import { Libreswan } from './lib/libreswan.js';
import { Capture, espFrames, ikeDecryptionReport } from './lib/tshark.js';
import { espTableFromCharon, ikev2TablesFromCharon } from './lib/charon-keys.js';

const HYBRID = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
const CLASSIC = 'aes256gcm16-prfsha384-x25519';
const PSK = 'pqgate-interop-psk-0123456789';

const skip =
  interopSkipReason() ??
  peerMissingReason('sid-strongswan') ??
  peerMissingReason('bookworm-strongswan') ??
  peerMissingReason('trixie-libreswan');
if (skip) console.warn(`[interop] peer-sanity skipped: ${skip}`);

/** Start a strongSwan pair: `left` responds (remote %any), `right` initiates to left. */
async function ssPair(
  pair: Pair,
  o: { left?: Partial<PskPairOptions>; right?: Partial<PskPairOptions>; leftPeer?: 'sid-strongswan' | 'bookworm-strongswan'; rightPeer?: 'sid-strongswan' | 'bookworm-strongswan'; keysOnLeft?: boolean; rightFragmentSize?: number },
): Promise<{ resp: Strongswan; init: Strongswan }> {
  const base: PskPairOptions = { proposals: [HYBRID], psk: PSK, localTs: [pair.leftInner.net], remoteTs: [pair.rightInner.net] };
  const resp = await Strongswan.start({
    ns: pair.left,
    peer: o.leftPeer ?? 'sid-strongswan',
    label: 'resp',
    ...(o.keysOnLeft ? { charon: { logLevels: KEY_LOG_LEVELS } } : {}),
    ...pskConnections(pair.leftAddr, '%any', 'left.pqgate.test', 'right.pqgate.test', { ...base, ...o.left }),
  });
  const init = await Strongswan.start({
    ns: pair.right,
    peer: o.rightPeer ?? 'sid-strongswan',
    label: 'init',
    ...(o.rightFragmentSize ? { charon: { fragmentSize: o.rightFragmentSize } } : {}),
    ...pskConnections(pair.rightAddr, pair.leftAddr, 'right.pqgate.test', 'left.pqgate.test', { ...base, ...o.right }, true),
  });
  return { resp, init };
}

function onlySa(sas: IkeSa[]): IkeSa {
  expect(sas).toHaveLength(1);
  return sas[0]!;
}

/** Send UDP both ways through the tunnel and check the Child SA counters moved on both peers. */
async function expectEspBothWays(pair: Pair, init: Strongswan, resp: Strongswan): Promise<void> {
  await sendUdp(pair.right, pair.leftInner.addr, 9, 3);
  await sendUdp(pair.left, pair.rightInner.addr, 9, 2);
  const i = await init.waitFor(async () => {
    const c = onlySa(await init.listSas()).children[0];
    return c && c.packetsOut >= 3 && c.packetsIn >= 2 ? c : undefined;
  }, 5000, 'ESP counters on the initiator');
  const r = onlySa(await resp.listSas()).children[0]!;
  expect(r.packetsIn).toBeGreaterThanOrEqual(3);
  expect(r.packetsOut).toBeGreaterThanOrEqual(2);
  expect(i.encap).toBe(true);
}

describe.skipIf(!!skip)('real-peer machinery: strongSwan / libreswan in namespaces', () => {
  beforeAll(() => {
    sweepStale();
    sweepStaleDirs();
  });
  afterAll(() => {
    cleanupAll();
  });

  it('sid 6.1 <-> 6.1: x25519 + ML-KEM-768 PSK, encap, ESP through kernel-libipsec; capture decrypts', async () => {
    const pair = await createPair({ tag: 'hy' });
    await addInnerAddresses(pair);
    const { resp, init } = await ssPair(pair, { keysOnLeft: true, rightFragmentSize: 576 });
    expect(resp.version).toMatch(/^6\.1\./);
    const capDir = mkdtempSync(join(tmpdir(), `${RUN_PREFIX}cap-`));
    const cap = await Capture.start(pair.left, 'eth0', join(capDir, 'hybrid.pcap'));

    const out = await init.initiate('k');
    expect(out.stdout).toMatch(/IKE_SA c\[\d+\] established/);
    // fragment_size = 576: the 1184-octet ML-KEM-768 public key needs 3 fragments.
    expect(out.stdout).toMatch(/generating IKE_INTERMEDIATE request 1 \[ EF\(3\/3\) \]/);

    for (const ss of [init, resp]) {
      const sa = onlySa(await ss.listSas());
      expect(sa.state).toBe('ESTABLISHED');
      expect(sa.dhGroup).toBe('CURVE_25519');
      expect(sa.additionalKe).toEqual(['ML_KEM_768']);
      expect(sa.algorithms).toBe('AES_GCM_16-256/PRF_HMAC_SHA2_384/CURVE_25519/KE1_ML_KEM_768');
      expect(sa.natAny).toBe(true); // encap = yes fakes a NAT so ESP goes in UDP
      expect(sa.children).toHaveLength(1);
      expect(sa.children[0]!.state).toBe('INSTALLED');
      // The first Child SA comes from IKE_AUTH: no key exchange of its own.
      expect(sa.children[0]!.dhGroup).toBeUndefined();
    }
    expect(await init.listSasText()).toContain('KE1_ML_KEM_768');
    await expectEspBothWays(pair, init, resp);
    const pcap = await cap.stop();

    // Keys from the responder's log (ike 4 / chd 4): generation 0 decrypts
    // IKE_INTERMEDIATE, generation 1 (after ML-KEM) decrypts IKE_AUTH.
    const sas = await resp.listSas();
    const tables = ikev2TablesFromCharon(resp.log(), sas);
    expect(tables).toHaveLength(2);
    const esp = espTableFromCharon(resp.log(), sas);
    const rep = await ikeDecryptionReport(pcap, tables, esp);
    const init0 = rep.messages.filter((m) => m.exchange === 'IKE_SA_INIT');
    expect(init0).toHaveLength(2);
    expect(init0.every((m) => !m.encrypted && m.payloadTypes.includes(34))).toBe(true); // KE in clear
    expect(rep.intermediate.filter((m) => !m.response)).toHaveLength(3); // 3 fragments
    expect(rep.intermediate.every((m) => m.decrypted)).toBe(true);
    expect(rep.ikeAuth).toHaveLength(2);
    expect(rep.allIkeAuthDecrypted).toBe(true);
    // Without the second key generation IKE_AUTH must not decrypt (the check is real).
    const partial = await ikeDecryptionReport(pcap, [tables[0]!]);
    expect(partial.ikeAuth.some((m) => m.decrypted)).toBe(false);
    const espF = await espFrames(pcap, esp);
    expect(espF.length).toBeGreaterThanOrEqual(5);
    expect(espF.filter((f) => f.decrypted).map((f) => f.inner?.dst)).toContain(pair.leftInner.addr);
    expect((await espFrames(pcap)).some((f) => f.decrypted)).toBe(false);

    await init.stop();
    await resp.stop();
    runSync('rm', ['-rf', '--one-file-system', '--', capDir]);
    await pair.destroy();
  });

  it('sid 6.1 <-> 6.1 hybrid with the initiator behind an nftables masquerade NAT', async () => {
    const pair = await createPair({ tag: 'nat', nat: true });
    await addInnerAddresses(pair);
    const { resp, init } = await ssPair(pair, {});
    await init.initiate('k');
    const i = onlySa(await init.listSas());
    const r = await resp.waitEstablished('c', 'k');
    expect(i.state).toBe('ESTABLISHED');
    expect(i.additionalKe).toEqual(['ML_KEM_768']);
    expect(r.additionalKe).toEqual(['ML_KEM_768']);
    expect(i.natLocal).toBe(true); // initiator learns it is behind a NAT (NAT_DETECTION)
    expect(r.natRemote).toBe(true);
    expect(r.remoteHost).toBe(pair.rightSeenAs); // the NAT's public address
    expect(i.localHost).toBe(pair.rightAddr);
    expect(r.remotePort).toBe(4500);
    await expectEspBothWays(pair, init, resp);
    await init.stop();
    await resp.stop();
    await pair.destroy();
  });

  it('bookworm 5.9.8 <-> sid 6.1: classical, both directions (6.1 offers hybrid, then classical)', async () => {
    // 5.9.8 initiates, 6.1 responds.
    let pair = await createPair({ tag: 'bw1' });
    await addInnerAddresses(pair);
    let { resp, init } = await ssPair(pair, { rightPeer: 'bookworm-strongswan', right: { proposals: [CLASSIC] }, left: { proposals: [HYBRID, CLASSIC] } });
    expect(init.version).toMatch(/^5\.9\.8/);
    await init.initiate('k');
    let i = onlySa(await init.listSas());
    let r = onlySa(await resp.listSas());
    for (const sa of [i, r]) {
      expect(sa.state).toBe('ESTABLISHED');
      expect(sa.additionalKe).toEqual([]);
      expect(sa.algorithms).toBe('AES_GCM_16-256/PRF_HMAC_SHA2_384/CURVE_25519');
    }
    await expectEspBothWays(pair, init, resp);
    await init.stop();
    await resp.stop();
    await pair.destroy();

    // 6.1 initiates with [hybrid, classical]; 5.9.8 must pick the classical proposal.
    pair = await createPair({ tag: 'bw2' });
    await addInnerAddresses(pair);
    ({ resp, init } = await ssPair(pair, { leftPeer: 'bookworm-strongswan', left: { proposals: [CLASSIC] }, right: { proposals: [HYBRID, CLASSIC] } }));
    const out = await init.initiate('k');
    expect(out.stdout).toMatch(/selected proposal: IKE:AES_GCM_16_256\/PRF_HMAC_SHA2_384\/CURVE_25519\n/);
    i = onlySa(await init.listSas());
    r = onlySa(await resp.listSas());
    expect(i.state).toBe('ESTABLISHED');
    expect(r.state).toBe('ESTABLISHED');
    expect(i.additionalKe).toEqual([]);
    await init.stop();
    await resp.stop();
    await pair.destroy();
  });

  it('libreswan 5.2 responder: IKE SA established, Child SA refused (TEMPORARY_FAILURE)', async () => {
    const pair = await createPair({ tag: 'ls' });
    const ls = await Libreswan.start({
      ns: pair.left,
      conns: [
        {
          name: 'c',
          left: pair.leftAddr,
          right: '%any',
          leftid: '@left.pqgate.test',
          rightid: '@right.pqgate.test',
          leftsubnet: pair.leftInner.net,
          rightsubnet: pair.rightInner.net,
          ike: 'aes_gcm256-sha2_384-dh31',
          esp: 'aes_gcm256',
        },
      ],
      secrets: [{ ids: ['@left.pqgate.test', '@right.pqgate.test'], psk: PSK }],
    });
    expect(ls.version).toMatch(/^5\.2/);
    expect(await ls.status()).toMatch(/using kernel interface: xfrm/);
    const init = await Strongswan.start({
      ns: pair.right,
      label: 'init',
      ...pskConnections(pair.rightAddr, pair.leftAddr, 'right.pqgate.test', 'left.pqgate.test', {
        proposals: [HYBRID, CLASSIC], // libreswan has no ML-KEM: it must choose the second
        psk: PSK,
        localTs: [pair.rightInner.net],
        remoteTs: [pair.leftInner.net],
      }),
    });
    const out = await init.initiate('k', undefined, 15, { check: false });
    expect(out.stdout).toMatch(/selected proposal: IKE:AES_GCM_16_256\/PRF_HMAC_SHA2_384\/CURVE_25519\n/);
    expect(out.stdout).toMatch(/parsed IKE_AUTH response 1 \[ IDr AUTH N\(TEMP_FAIL\) \]/);
    const states = await ls.waitFor(async () => {
      const s = await ls.establishedIke('c');
      return s.length ? s : undefined;
    }, 5000, 'libreswan IKE SA');
    expect(states[0]!.state).toMatch(/ESTABLISHED_IKE_SA/);
    expect(await ls.trafficStatus()).not.toMatch(/type=ESP/);
    await init.stop();
    await ls.stop();
    await pair.destroy();
  });

  it('leaves no namespaces, processes, mounts or directories behind', () => {
    expect(pendingCleanups()).toEqual([]);
    expect(ownNamespaces()).toEqual([]);
    expect(mountsUnder(tmpdir()).filter((m) => m.includes(`/${RUN_PREFIX}`))).toEqual([]);
    expect(runSync('findmnt', ['-rn', '-o', 'TARGET']).stdout).not.toContain(RUN_PREFIX);
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith(RUN_PREFIX))).toEqual([]);
  });
});
