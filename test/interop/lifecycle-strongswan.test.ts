/**
 * SA lifecycle against Debian's strongSwan 6.1 in network namespaces, with
 * real traffic through pqgate's userspace ESP:
 *  - hybrid rekeys: pqgate rekeys the IKE SA and the Child SA every 10 s for
 *    two minutes, each time repeating x25519 + ML-KEM-768 (IKE: RFC 9370
 *    CREATE_CHILD_SA + IKE_FOLLOWUP_KE; Child: PFS x25519 + ML-KEM-768),
 *    while a host behind it pings a host behind strongSwan 5 times a second:
 *    zero packets lost; strongSwan's own `--list-sas` shows ML-KEM on the
 *    rekeyed IKE and Child SAs;
 *  - DPD restart: the strongSwan peer is killed; pqgate's liveness checks
 *    declare it dead, the always-on tunnel retries with backoff and comes
 *    back by itself once a new strongSwan starts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { cleanupAll, interopSkipReason, sweepStale } from './lib/netns.js';
import { makeInstanceDir, peerMissingReason, sweepStaleDirs } from './lib/rootfs.js';
import { pskConnections, Strongswan } from './lib/strongswan.js';
import { Pqgate } from './lib/pqgate.js';
import { sleep } from './lib/proc.js';
import { createSite, pingUntilReply, type Site } from './lib/traffic.js';
import { lostPingReport, parsePingReplies, slowestReplies } from './lib/rekey-report.js';

const PSK = 'pqgate-lifecycle-psk-0123456789';
const PQ_ID = 'gw.pqgate.test';
const SS_ID = 'peer.strongswan.test';
const IKE = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
const ESP = 'aes256gcm16-x25519-ke1_mlkem768';

const skip = interopSkipReason() ?? peerMissingReason('sid-strongswan');
if (skip) console.warn(`[interop] lifecycle-strongswan skipped: ${skip}`);

function ssConn(site: Site) {
  return pskConnections(site.outerR, '%any', SS_ID, PQ_ID, {
    proposals: [IKE],
    espProposals: [ESP],
    psk: PSK,
    localTs: [site.lanR],
    remoteTs: [site.lanL],
  });
}

function gwTunnel(site: Site, over: Record<string, unknown>) {
  return {
    listen: [site.outerL],
    tunnels: [
      {
        name: 'ss',
        local_addr: site.outerL,
        remote_addr: site.outerR,
        local_id: PQ_ID,
        remote_id: SS_ID,
        psk: PSK,
        proposals: [IKE],
        esp_proposals: [ESP],
        local_ts: [site.lanL],
        remote_ts: [site.lanR],
        mode: 'policy',
        ...over,
      },
    ],
  };
}

describe.skipIf(!!skip)('lifecycle: pqgate <-> strongSwan 6.1', () => {
  beforeAll(() => {
    sweepStale();
    sweepStaleDirs();
  });
  afterAll(() => cleanupAll());

  // No retry: the one failure in ~5 runs is explained by ping's end-of-run wait (TAIL below;
  // docs/testing.md). Any loss now prints each lost ping against both daemons' rekey events.
  it('hybrid IKE and Child rekeys every 10 s for 2 minutes under 5 pps ping: zero loss', { timeout: 240_000 }, async () => {
    const site = await createSite('rk');
    let ss: Strongswan | undefined;
    let gw: Pqgate | undefined;
    try {
      ss = await Strongswan.start({ ns: site.gwR, label: 'ss', ...ssConn(site) });
      gw = await Pqgate.start({ ns: site.gwL, config: gwTunnel(site, { start_action: 'start', rekey_time: 10, child_rekey_time: 10 }) });
      await gw.waitFor((s) => s.state === 'ESTABLISHED' && s.children.length === 1, 20_000);
      await pingUntilReply(site.cl, site.crAddr);
      const first = await gw.status();
      const seconds = 120;
      // -D: a wall-clock stamp on every reply line, so a lost sequence number can be placed
      // against the rekey events of both daemons (lostPingReport). TAIL extra pings: iputils
      // ping, once it has sent its count, waits only max(2 × the largest RTT so far, interval)
      // = ~200 ms for outstanding replies (-W applies only when nothing came back;
      // ping_common.c schedule_exit), so a final reply delayed by a busy event loop was
      // counted lost although it arrived. Loss is judged on the first seconds × 5 sequence
      // numbers, each of which then has ≥ 1 s to come back.
      const TAIL = 5;
      const pingStart = Date.now();
      const count = seconds * 5;
      const r = await site.cl.exec('ping', ['-n', '-D', '-i', '0.2', '-c', String(count + TAIL), '-W', '2', site.crAddr], { check: false, timeoutMs: (seconds + 30) * 1000 });
      const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(r.stdout);
      expect(m, r.stdout + r.stderr).not.toBeNull();
      const tx = Math.min(Number(m![1]), count);
      const replied = parsePingReplies(r.stdout);
      const rx = [...replied.keys()].filter((seq) => seq <= count).length;
      const slow = slowestReplies(r.stdout, 3);
      console.log(`[lifecycle] ${/rtt [^\n]*/.exec(r.stdout)?.[0] ?? 'no rtt summary'}; slowest: ${slow.map((x) => `seq ${x.seq} ${x.ms} ms`).join(', ')}`);
      if (rx !== tx) console.log(lostPingReport(r.stdout, pingStart, tx, gw.log(), ss.log()));
      const st = await gw.status();
      const live = st.filter((s) => s.state === 'ESTABLISHED' && !s.children.every((c) => c.state !== 'INSTALLED'));
      expect(live.length).toBeGreaterThanOrEqual(1);
      const sa = live.sort((a, b) => b.rekeys - a.rekeys)[0]!;
      console.log(`[lifecycle] ${tx} pings, ${rx} replies; IKE rekeys ${sa.rekeys}, child rekeys ${sa.children.map((c) => c.rekeys).join(',')}`);
      expect(tx).toBe(count);
      expect(rx).toBe(tx); // make-before-break: not one packet lost while keys rolled
      expect(sa.rekeys).toBeGreaterThanOrEqual(6);
      expect(sa.spiI).not.toBe(first[0]!.spiI);
      expect(sa.keyExchanges).toEqual(['CURVE_25519', 'ML_KEM_768']);
      const child = sa.children.find((c) => c.state === 'INSTALLED')!;
      expect(child.rekeys).toBeGreaterThanOrEqual(6);
      expect(child.keyExchanges).toEqual(['CURVE_25519', 'ML_KEM_768']);
      // strongSwan's own view of the rekeyed SAs.
      const sas = (await ss.listSas()).filter((s) => s.state === 'ESTABLISHED');
      expect(sas.length).toBeGreaterThanOrEqual(1);
      const ssSa = sas.find((s) => s.spiI === sa.spiI)!;
      expect(ssSa, JSON.stringify(sas.map((s) => s.spiI))).toBeDefined();
      expect(ssSa.dhGroup).toBe('CURVE_25519');
      expect(ssSa.additionalKe).toEqual(['ML_KEM_768']);
      const ssChild = ssSa.children.find((c) => c.state === 'INSTALLED' && parseInt(c.spiOut, 16) === parseInt(child.spiIn, 16));
      expect(ssChild, JSON.stringify(ssSa.children.map((c) => [c.state, c.spiIn, c.spiOut]))).toBeDefined();
      expect(ssChild!.dhGroup).toBe('CURVE_25519');
      expect(ssChild!.additionalKe).toEqual(['ML_KEM_768']);
    } catch (e) {
      (e as Error).message += `\n--- pqgate ---\n${gw?.log().split('\n').filter((l) => !/debug/.test(l)).slice(-40).join('\n')}`;
      throw e;
    } finally {
      await ss?.stop();
      await gw?.stop();
      await site.destroy();
    }
  });

  it('DPD declares a killed peer dead and the always-on tunnel comes back when it returns', async () => {
    const site = await createSite('dp');
    let ss: Strongswan | undefined;
    let gw: Pqgate | undefined;
    try {
      ss = await Strongswan.start({ ns: site.gwR, label: 'ss1', ...ssConn(site) });
      gw = await Pqgate.start({ ns: site.gwL, config: gwTunnel(site, { start_action: 'start', dpd_delay: 2, retransmit_timeout: 1, retransmit_tries: 2 }) });
      const before = await gw.waitFor((s) => s.state === 'ESTABLISHED' && s.children.length === 1, 20_000);
      await pingUntilReply(site.cl, site.crAddr);
      // The peer dies without a word (SIGKILL: no Delete is sent, its state is gone).
      process.kill(ss.pid, 'SIGKILL');
      await ss.stop();
      ss = undefined;
      const t0 = Date.now();
      for (;;) {
        const st = await gw.status();
        if (!st.some((s) => s.spiI === before.spiI)) break;
        if (Date.now() - t0 > 30_000) throw new Error(`dead peer not detected: ${JSON.stringify(st)}`);
        await sleep(250);
      }
      const detectedAfter = (Date.now() - t0) / 1000;
      expect(gw.log()).toMatch(/peer is dead|not responding/);
      await sleep(3000); // a few failed re-initiations against the dead address
      ss = await Strongswan.start({ ns: site.gwR, label: 'ss2', ...ssConn(site) });
      const after = await gw.waitFor((s) => s.state === 'ESTABLISHED' && s.children.length === 1 && s.spiI !== before.spiI, 60_000, 're-established IKE SA');
      await ss.waitEstablished('c', 'k', 10_000);
      await pingUntilReply(site.cl, site.crAddr);
      console.log(`[lifecycle] dead peer detected after ${detectedAfter.toFixed(1)} s; re-established as ${after.spiI}`);
      expect(after.keyExchanges).toEqual(['CURVE_25519', 'ML_KEM_768']);
    } catch (e) {
      (e as Error).message += `\n--- pqgate ---\n${gw?.log().split('\n').filter((l) => !/debug/.test(l)).slice(-40).join('\n')}`;
      throw e;
    } finally {
      await ss?.stop();
      await gw?.stop();
      await site.destroy();
    }
  }, 180_000);

  it("dpd_action hold: a killed peer leaves a trap, nothing is sent while no traffic wants the tunnel, and a ping re-establishes it", async () => {
    const site = await createSite('hd');
    let ss: Strongswan | undefined;
    let gw: Pqgate | undefined;
    try {
      ss = await Strongswan.start({ ns: site.gwR, label: 'ss1', ...ssConn(site) });
      gw = await Pqgate.start({ ns: site.gwL, config: gwTunnel(site, { start_action: 'start', dpd_delay: 2, dpd_action: 'hold', retransmit_timeout: 1, retransmit_tries: 2 }) });
      const before = await gw.waitFor((s) => s.state === 'ESTABLISHED' && s.children.length === 1, 20_000);
      await pingUntilReply(site.cl, site.crAddr);
      process.kill(ss.pid, 'SIGKILL');
      await ss.stop();
      ss = undefined;
      const t0 = Date.now();
      while ((await gw.status()).length > 0) {
        if (Date.now() - t0 > 30_000) throw new Error('dead peer not detected');
        await sleep(250);
      }
      expect(gw.log()).toMatch(/dpd_action hold/);
      expect(gw.log()).toMatch(/trap installed/);
      ss = await Strongswan.start({ ns: site.gwR, label: 'ss2', ...ssConn(site) });
      // Hold, not restart: with no traffic nothing is initiated even though the peer is back.
      await sleep(6000);
      expect(await gw.status()).toEqual([]);
      // The first packets hit the trap (dropped and counted), the acquire initiates, pings then pass.
      await pingUntilReply(site.cl, site.crAddr, { timeoutMs: 30_000 });
      const after = await gw.waitFor((s) => s.state === 'ESTABLISHED' && s.children.length === 1, 10_000);
      expect(after.spiI).not.toBe(before.spiI);
      expect(after.keyExchanges).toEqual(['CURVE_25519', 'ML_KEM_768']);
      await ss.waitEstablished('c', 'k', 10_000);
      console.log(`[lifecycle] hold: re-established on traffic as ${after.spiI}`);
    } catch (e) {
      (e as Error).message += `\n--- pqgate ---\n${gw?.log().split('\n').filter((l) => !/debug/.test(l)).slice(-40).join('\n')}`;
      throw e;
    } finally {
      await ss?.stop();
      await gw?.stop();
      await site.destroy();
    }
  }, 180_000);

  it('on-idle DPD counts ESP: no liveness check while pings flow; periodic DPD sends them anyway', async () => {
    const counts: Record<string, number> = {};
    for (const mode of ['on-idle', 'periodic'] as const) {
      const site = await createSite(mode === 'on-idle' ? 'oi' : 'pd');
      let ss: Strongswan | undefined;
      let gw: Pqgate | undefined;
      try {
        ss = await Strongswan.start({ ns: site.gwR, label: `ss-${mode}`, ...ssConn(site) });
        gw = await Pqgate.start({ ns: site.gwL, config: gwTunnel(site, { start_action: 'start', dpd_delay: 2, dpd_mode: mode }) });
        await gw.waitFor((s) => s.state === 'ESTABLISHED' && s.children.length === 1, 20_000);
        await pingUntilReply(site.cl, site.crAddr);
        const before = (ss.log().match(/parsed INFORMATIONAL request \d+ \[ \]/g) ?? []).length;
        // 10 s of ESP both ways (5 pps): 5 DPD intervals.
        const r = await site.cl.exec('ping', ['-n', '-q', '-i', '0.2', '-c', '50', '-W', '2', site.crAddr], { check: false, timeoutMs: 40_000 });
        expect(r.stdout).toMatch(/50 packets transmitted, 50 (?:packets )?received/);
        counts[mode] = (ss.log().match(/parsed INFORMATIONAL request \d+ \[ \]/g) ?? []).length - before;
      } catch (e) {
        (e as Error).message += `\n--- pqgate ---\n${gw?.log().split('\n').filter((l) => !/debug/.test(l)).slice(-40).join('\n')}`;
        throw e;
      } finally {
        await ss?.stop();
        await gw?.stop();
        await site.destroy();
      }
    }
    console.log(`[lifecycle] DPD requests seen by charon during 10 s of pings: ${JSON.stringify(counts)}`);
    expect(counts['on-idle']).toBe(0); // ESP proved the peer alive: strongSwan semantics
    expect(counts['periodic']).toBeGreaterThanOrEqual(4); // every 2 s regardless
  }, 180_000);

  it('health_check: the active probe through the tunnel reports up with an RTT, and down once the peer is gone', async () => {
    const site = await createSite('hc');
    let ss: Strongswan | undefined;
    let gw: Pqgate | undefined;
    try {
      ss = await Strongswan.start({ ns: site.gwR, label: 'ss', ...ssConn(site) });
      // Source: the gateway's own LAN address (inside local_ts), so the probe matches the tunnel's policy.
      const hc = { target: site.crAddr, source: '198.51.100.1', interval: 1, timeout: 1, failures: 2 };
      gw = await Pqgate.start({ ns: site.gwL, config: gwTunnel(site, { start_action: 'start', dpd_delay: 0, health_check: hc }) });
      await gw.waitFor((s) => s.state === 'ESTABLISHED' && s.children.length === 1, 20_000);
      const up = await gw.waitFor((s) => s.health?.state === 'up', 20_000, 'health up');
      expect(up.health).toMatchObject({ state: 'up', target: site.crAddr, failures: 0 });
      expect(up.health!.rttMs).toBeGreaterThan(0);
      expect(up.health!.lastOkAt).toBeGreaterThan(0);
      process.kill(ss.pid, 'SIGKILL');
      await ss.stop();
      ss = undefined;
      const down = await gw.waitFor((s) => s.health?.state === 'down', 20_000, 'health down');
      expect(down.health!.failures).toBeGreaterThanOrEqual(2);
      expect(gw.log()).toMatch(/health probe down/);
      console.log(`[lifecycle] health probe: up with RTT ${up.health!.rttMs} ms, down after ${down.health!.failures} misses`);
    } catch (e) {
      (e as Error).message += `\n--- pqgate ---\n${gw?.log().split('\n').filter((l) => !/debug/.test(l)).slice(-40).join('\n')}`;
      throw e;
    } finally {
      await ss?.stop();
      await gw?.stop();
      await site.destroy();
    }
  }, 120_000);
});
