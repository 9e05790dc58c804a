/**
 * Real traffic through pqgate's userspace ESP data plane against strongSwan
 * 6.1 (kernel-libipsec, encap = yes) in network namespaces:
 *
 *   cl ─ gwL: pqgate ══ ESP in UDP ══ gwR: strongSwan ─ cr
 *
 * Per case: the hosts behind the gateways ping each other both ways and
 * run iperf3 both ways; route-based cases also ping between the tunnel's
 * inside /31 addresses (Cloudflare-style health probes, both directions,
 * no policy routing on pqgate's side). The ESP on pqgate's outer link is
 * captured (pqgate's UDP GSO super-frames split into the datagrams the wire
 * carries); for AES-GCM tshark decrypts it with pqgate's esp_sa key log and
 * the TCP SYN that left pqgate carries the clamped MSS (ChaCha20-Poly1305:
 * Wireshark 4.0 cannot decrypt it, so the SYN is checked where it arrives
 * behind strongSwan). A captured ESP datagram from strongSwan, sent again,
 * is dropped and counted as a replay in `pqgate status` (replay window on),
 * or accepted (replay window 0, as Cloudflare requires).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupAll, interopSkipReason, sweepStale } from './lib/netns.js';
import { peerMissingReason, sweepStaleDirs } from './lib/rootfs.js';
import { pskConnections, Strongswan } from './lib/strongswan.js';
import { Capture, espFrames, tsharkFields } from './lib/tshark.js';
import { Pqgate } from './lib/pqgate.js';
import { sleep } from './lib/proc.js';
import { createSite, espDatagrams, injectUdp, iperfClient, iperfServer, ping, pingUntilReply, pqgateEspKeylog, readPcapUdp, splitGsoPcap, type Site } from './lib/traffic.js';
import type { ChildSaStatus, IkeSaStatus } from '../../firmware/ikev2/engine-types.js';

const PSK = 'pqgate-traffic-psk-0123456789';
const PQ_ID = 'gw.pqgate.test';
const SS_ID = 'peer.strongswan.test';
const MSS = 1360;
const IPERF_SECONDS = 2;

const skip = interopSkipReason() ?? peerMissingReason('sid-strongswan');
if (skip) console.warn(`[interop] traffic-strongswan skipped: ${skip}`);

interface Case {
  name: string;
  pqInitiates: boolean;
  esp: 'aes256gcm16' | 'chacha20poly1305';
  mode: 'route' | 'policy';
  /** Cloudflare-style: 0.0.0.0/0 selectors on both sides, replay protection off. */
  anyTs?: boolean;
}

const CASES: Case[] = [
  { name: 'AES-GCM-256, route-based', pqInitiates: true, esp: 'aes256gcm16', mode: 'route' },
  { name: 'ChaCha20-Poly1305, policy-based', pqInitiates: false, esp: 'chacha20poly1305', mode: 'policy' },
  { name: 'ChaCha20-Poly1305, route-based', pqInitiates: false, esp: 'chacha20poly1305', mode: 'route' },
  { name: 'AES-GCM-256, policy-based', pqInitiates: true, esp: 'aes256gcm16', mode: 'policy' },
  { name: 'Cloudflare-style: 0.0.0.0/0, route-based, replay window 0, AES-GCM-256', pqInitiates: true, esp: 'aes256gcm16', mode: 'route', anyTs: true },
];

interface Setup {
  site: Site;
  gw: Pqgate;
  ss: Strongswan;
  cap: Capture;
  dir: string;
}

async function setup(c: Case, tag: string): Promise<Setup> {
  const site = await createSite(tag);
  const dir = mkdtempSync(join(tmpdir(), 'pqg-traffic-'));
  const cap = await Capture.start(site.gwL, 'eth0', join(dir, 'outer.pcap'));
  const route = c.mode === 'route';
  // pqgate's view; strongSwan's is the mirror image. Route-based tunnels carry the inside /31 too.
  const localTs = c.anyTs ? ['0.0.0.0/0'] : [site.lanL, ...(route ? [`${site.insideL}/32`] : [])];
  const remoteTs = c.anyTs ? ['0.0.0.0/0'] : [site.lanR, ...(route ? [`${site.insideR}/32`] : [])];
  const gw = await Pqgate.start({
    ns: site.gwL,
    label: 'gw',
    config: {
      listen: [site.outerL],
      tunnels: [
        {
          name: 'ss',
          local_addr: site.outerL,
          ...(c.pqInitiates ? { remote_addr: site.outerR } : {}),
          local_id: PQ_ID,
          remote_id: SS_ID,
          psk: PSK,
          proposals: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'],
          esp_proposals: [c.esp],
          local_ts: localTs,
          remote_ts: remoteTs,
          mode: c.mode,
          ...(route ? { inside_addr: `${site.insideL}/31` } : {}),
          mss: MSS,
          replay_window: c.anyTs ? 0 : 64,
          start_action: 'none',
        },
      ],
    },
  });
  if (route) await site.gwR.addAddr('lo', `${site.insideR}/32`);
  if (c.anyTs) {
    // strongSwan's libipsec routes 0/0 into its TUN (table 220): keep its peer and its own LAN out of it.
    await site.gwR.ip(['rule', 'add', 'to', `${site.outerL}/32`, 'lookup', 'main', 'pref', '100']);
    await site.gwR.ip(['rule', 'add', 'to', site.lanR, 'lookup', 'main', 'pref', '101']);
  }
  const conn = pskConnections(site.outerR, c.pqInitiates ? '%any' : site.outerL, SS_ID, PQ_ID, {
    proposals: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'],
    espProposals: [c.esp],
    psk: PSK,
    localTs: remoteTs,
    remoteTs: localTs,
  });
  const ss = await Strongswan.start({ ns: site.gwR, label: 'ss', ...conn });
  return { site, gw, ss, cap, dir };
}

function child(st: IkeSaStatus[]): ChildSaStatus {
  const sa = st.find((s) => s.state === 'ESTABLISHED' && s.children.length > 0);
  if (!sa) throw new Error(`no established Child SA: ${JSON.stringify(st)}`);
  return sa.children[0]!;
}

describe.skipIf(!!skip)('traffic through pqgate <-> strongSwan 6.1 (userspace ESP)', () => {
  beforeAll(() => {
    sweepStale();
    sweepStaleDirs();
  });
  afterAll(() => {
    cleanupAll();
  });

  CASES.forEach((c, i) => {
    it(`${c.name}: pqgate ${c.pqInitiates ? 'initiates' : 'responds'}`, async () => {
      const { site, gw, ss, cap, dir } = await setup(c, `t${i}`);
      let crCap: Capture | undefined;
      const servers: { stop(): Promise<void> }[] = [];
      try {
        if (c.pqInitiates) await gw.up('ss');
        else await ss.initiate('k', 'c');
        await ss.waitEstablished('c', 'k', 20_000);
        const pqSa = await gw.waitFor((s) => s.state === 'ESTABLISHED' && s.children.length === 1, 10_000);
        expect(pqSa.encap).toBe(true);
        expect(pqSa.children[0]!.encr).toMatch(c.esp === 'aes256gcm16' ? /AES_GCM_16.*256|AES_GCM_16_256/ : /CHACHA20_POLY1305/);
        if (c.anyTs) {
          // 0/0 on a route-based tunnel: pqgate added no route; like a VTI, the user routes the far LAN into the interface.
          const routes = await site.gwL.ip(['-4', 'route', 'show', 'dev', 'pqss']);
          expect(routes.stdout).not.toMatch(/^default|0\.0\.0\.0\/0/m);
          await site.gwL.ip(['route', 'add', site.lanR, 'dev', 'pqss']);
        }

        // Health probes between the inside /31 addresses, both directions.
        if (c.mode === 'route') {
          await pingUntilReply(site.gwL, site.insideR, { src: site.insideL });
          expect((await ping(site.gwL, site.insideR, { src: site.insideL })).received).toBe(3);
          expect((await ping(site.gwR, site.insideL, { src: site.insideR })).received).toBe(3);
        }
        // Hosts behind the gateways, both directions.
        await pingUntilReply(site.cl, site.crAddr);
        expect((await ping(site.cl, site.crAddr, { count: 5 })).received).toBe(5);
        expect((await ping(site.cr, site.clAddr, { count: 5 })).received).toBe(5);
        // Full-size packets (DF): 1400-byte TUN MTU minus headers.
        expect((await ping(site.cl, site.crAddr, { count: 2, size: 1400 - 28 })).received).toBe(2);

        // A short TCP transfer while capturing (the SYNs for the MSS checks, ESP to replay), then bulk TCP both ways uncaptured.
        crCap = await Capture.start(site.cr, 'eth0', join(dir, 'cr.pcap'));
        const srv = await iperfServer(site.cr, site.crAddr, join(dir, 'iperf-cr.log'));
        servers.push(srv);
        const small = await iperfClient(site.cl, site.crAddr, { bytes: 300_000 });
        expect(small.sentBytes).toBeGreaterThanOrEqual(300_000);
        expect(small.bytes).toBeGreaterThan(0);
        await crCap.stop();
        await cap.stop();
        const synsAtCr = await tsharkFields(crCap.file, ['tcp.options.mss_val'], { filter: 'tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport == 5201' });
        expect(synsAtCr.length).toBeGreaterThanOrEqual(2);
        for (const s of synsAtCr) expect(s['tcp.options.mss_val']).toEqual([String(MSS)]);

        const up = await iperfClient(site.cl, site.crAddr, { seconds: IPERF_SECONDS });
        const down = await iperfClient(site.cl, site.crAddr, { seconds: IPERF_SECONDS, reverse: true });
        console.log(`[traffic] ${c.name}: cl->cr ${(up.bitsPerSecond / 1e6).toFixed(0)} Mbit/s, cr->cl ${(down.bitsPerSecond / 1e6).toFixed(0)} Mbit/s`);
        expect(up.bytes).toBeGreaterThan(1_000_000);
        expect(down.bytes).toBeGreaterThan(1_000_000);
        await srv.stop();

        // Replay: send an ESP datagram strongSwan sent us earlier once more, once the tunnel is quiet
        // (so the counters move only because of it).
        let before = child(await gw.status());
        for (let quiet = 0, t0 = Date.now(); quiet < 3 && Date.now() - t0 < 10_000; ) {
          await sleep(250);
          const now = child(await gw.status());
          quiet = now.packetsIn === before.packetsIn ? quiet + 1 : 0;
          before = now;
        }
        const spiIn = parseInt(before.spiIn, 16);
        const fromSs = espDatagrams(readPcapUdp(cap.file), spiIn).filter((r) => r.src === site.outerR);
        expect(fromSs.length).toBeGreaterThan(10);
        const replayed = fromSs[Math.floor(fromSs.length / 2)]!;
        await injectUdp(site.gwR, site.outerR, site.outerL, 4500, replayed.payload);
        await sleep(300);
        const after = child(await gw.status());
        expect(after.spiIn).toBe(before.spiIn);
        if (c.anyTs) {
          expect(after.replayDrops).toBe(0);
          expect(after.packetsIn).toBe(before.packetsIn! + 1);
        } else {
          expect(after.replayDrops).toBe(before.replayDrops! + 1);
          expect(after.packetsIn).toBe(before.packetsIn);
        }
        expect(after.authFailures).toBe(0);
        expect(after.packetsOut).toBeGreaterThan(1000);
        expect(after.bytesIn).toBeGreaterThan(1_000_000);

        // pqgate sends runs of equal-sized ESP packets as UDP GSO messages; the capture on its own
        // link shows them unsegmented: split them as the wire does.
        const wire = join(dir, 'outer-wire.pcap');
        expect(splitGsoPcap(cap.file, wire), 'UDP GSO super-frames from pqgate').toBeGreaterThan(0);
        // tshark decrypts pqgate's ESP with the exported keys (AES-GCM; Wireshark 4.0 has no ChaCha20 for ESP).
        if (c.esp === 'aes256gcm16') {
          const table = pqgateEspKeylog(gw.keylog);
          expect(table).toContain(`0x${before.spiOut}`);
          const frames = await espFrames(wire, table);
          const out = frames.filter((f) => parseInt(f.spi, 16) === parseInt(before.spiOut, 16));
          const inn = frames.filter((f) => parseInt(f.spi, 16) === spiIn);
          expect(out.length).toBeGreaterThan(10);
          expect(inn.length).toBeGreaterThan(10);
          // Every outbound frame must decrypt. The frames once reported undecrypted (seq 1, later 137/180/196
          // under load) were the kernel's IPv6 router solicitations from the route-based TUN, sealed into the
          // IPv4-only SA (the data plane now drops traffic outside the interface's policies) and not recognised
          // as decrypted (espFrames looked only for an inner IPv4 header): docs/testing.md. On a failure the
          // capture and key table stay in test-artifacts for analysis.
          const bad = out.filter((f) => !f.decrypted);
          const offSelector = out.filter((f) => f.decrypted && f.inner!.family !== 4);
          if (bad.length > 0 || offSelector.length > 0) {
            const keepDir = join(process.cwd(), 'test-artifacts', 'esp-undecrypted');
            const stamp = Date.now();
            mkdirSync(keepDir, { recursive: true });
            copyFileSync(cap.file, join(keepDir, `${stamp}-outer.pcap`));
            writeFileSync(join(keepDir, `${stamp}-esp.keys`), table);
            console.warn(`[traffic] ${c.name}: outbound ESP undecrypted ${JSON.stringify(bad)}, outside the IPv4 selectors ${JSON.stringify(offSelector)}; capture kept in ${keepDir}`);
          }
          expect(bad, 'outbound ESP frames tshark could not decrypt').toEqual([]);
          // The Child SA's selectors are IPv4 only: nothing else may travel in it (RFC 4301 §5.1).
          expect(offSelector, 'outbound ESP frames carrying traffic outside the selectors').toEqual([]);
          expect(inn.filter((f) => !f.decrypted), 'inbound ESP frames tshark could not decrypt').toEqual([]);
          // Inside the tunnel: the SYN left pqgate with its MSS clamped.
          const syns = await tsharkFields(wire, ['tcp.options.mss_val', 'ip.src'], {
            espTable: table,
            filter: `esp && tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport == 5201`,
          });
          expect(syns.length).toBeGreaterThanOrEqual(2);
          for (const s of syns) expect(s['tcp.options.mss_val']).toEqual([String(MSS)]);
        }
      } finally {
        for (const s of servers) await s.stop().catch(() => undefined);
        await crCap?.stop().catch(() => undefined);
        await cap.stop().catch(() => undefined);
        await ss.stop();
        await gw.stop();
        await site.destroy();
        if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
        else console.log("kept", dir);
      }
    });
  });
});
