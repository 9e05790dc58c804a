/**
 * The daemon starts before its WAN address exists (the image's rcS no longer
 * waits for the DHCP lease): `pqgate daemon --db` listening on 0.0.0.0 in a
 * namespace whose link has no address yet, with a tunnel to strongSwan 6.1
 * that names no local address. Once the address is added, the address watch
 * (firmware/net/address-watch.ts) reconciles: IKE sockets on the new address,
 * the tunnel's source address derived from the route, the hybrid tunnel up at
 * both ends. When the address goes away again, its sockets are released.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, createPair, interopSkipReason, sweepStale, type Pair } from './lib/netns.js';
import { peerMissingReason, sweepStaleDirs } from './lib/rootfs.js';
import { sleep } from './lib/proc.js';
import { Strongswan } from './lib/strongswan.js';
import { ApplianceGate, up } from '../appliance/gate.js';

const skip = interopSkipReason() ?? peerMissingReason('sid-strongswan');
if (skip) console.warn(`[interop] appliance-address-watch skipped: ${skip}`);

const PROPOSAL = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
const PSK = 'appliance-address-watch-psk-0123456789';

describe.skipIf(!!skip)('appliance: local address that appears after start', () => {
  let pair: Pair;
  let ss: Strongswan;
  let gw: ApplianceGate;

  beforeAll(async () => {
    sweepStale();
    sweepStaleDirs();
    pair = await createPair({ tag: 'aaw' });
    ss = await Strongswan.start({
      ns: pair.right,
      label: 'ss',
      connections: [
        {
          name: 'c1',
          localAddrs: [pair.rightAddr],
          remoteAddrs: [pair.leftAddr],
          proposals: [PROPOSAL],
          local: { auth: 'psk', id: 'peer.strongswan.test' },
          remote: { auth: 'psk', id: 'gw.pqgate.test' },
          children: [{ name: 'k1', localTs: [pair.rightInner.net], remoteTs: [pair.leftInner.net], espProposals: ['aes256gcm16'] }],
        },
      ],
      secrets: [{ type: 'ike', secret: PSK, ids: ['peer.strongswan.test', 'gw.pqgate.test'] }],
    });
    // The "WAN" has no address yet: the lease has not arrived.
    await pair.left.ip(['addr', 'del', `${pair.leftAddr}/24`, 'dev', pair.dev]);
    gw = await ApplianceGate.start({
      ns: pair.left,
      initial: {
        version: 1,
        listen: ['0.0.0.0'],
        log_level: 'debug',
        tunnels: [
          {
            name: 't1',
            remote_addr: pair.rightAddr,
            local_id: 'gw.pqgate.test',
            remote_id: 'peer.strongswan.test',
            psk: PSK,
            proposals: [PROPOSAL],
            esp_proposals: ['aes256gcm16'],
            local_ts: [pair.leftInner.net],
            remote_ts: [pair.rightInner.net],
            mode: 'policy',
            start_action: 'start',
          },
        ],
      },
    });
  }, 120_000);

  afterAll(async () => {
    await gw?.stop().catch(() => undefined);
    await ss?.stop().catch(() => undefined);
    await pair?.destroy();
    cleanupAll();
  });

  it('brings the tunnel up once the address appears, and releases the sockets when it goes', async () => {
    await sleep(2500);
    expect(up(await gw.status(), 't1')).toBeUndefined();
    expect(gw.log()).not.toContain('local addresses changed');

    await pair.left.ip(['addr', 'add', `${pair.leftAddr}/24`, 'dev', pair.dev]);
    const st = await gw.waitFor((s) => !!up(s, 't1'), 40_000, 't1 up after the address appeared');
    const sa = up(st, 't1')!;
    expect(sa.local.address).toBe(pair.leftAddr);
    expect(sa.keyExchanges).toEqual(['CURVE_25519', 'ML_KEM_768']);
    const ssSas = await ss.waitFor(async () => {
      const l = (await ss.listSas()).filter((s) => s.state === 'ESTABLISHED' && s.children.some((c) => c.state === 'INSTALLED'));
      return l.length === 1 ? l : undefined;
    }, 15_000, 'the SA at strongSwan');
    expect(ssSas[0]!.spiI).toBe(sa.spiI);
    const log = gw.log();
    expect(log).toMatch(/local addresses changed added=\["192\.0\.2\.1"\]/);
    expect(log).toMatch(/listen addresses changed added=\["192\.0\.2\.1"\]/);

    // The address goes (the lease is lost): its IKE sockets are closed within a poll or two.
    await pair.left.ip(['addr', 'del', `${pair.leftAddr}/24`, 'dev', pair.dev]);
    const deadline = Date.now() + 15_000;
    while (!/listen addresses changed added=\[\] removed=\["192\.0\.2\.1"\]/.test(gw.log())) {
      if (Date.now() > deadline) throw new Error(`no removal logged:\n${gw.log().split('\n').slice(-40).join('\n')}`);
      await sleep(200);
    }
  }, 120_000);
});
