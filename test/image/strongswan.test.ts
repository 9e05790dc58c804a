/**
 * Scenario 3 (qemu/scenarios/strongswan): a gateway VM tunnels to strongSwan
 * 6.1 on the build machine. The peer runs in a network namespace (from the
 * cached sid root, test/interop/lib/strongswan.ts) with its addresses on lo;
 * QEMU runs inside that namespace, so the VM's user-mode network reaches
 * charon through QEMU's NAT — no tap, no bridge, nothing on the host network.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { runChecks, runSteps, type CheckHost } from '../../qemu/checks.js';
import { loadScenario, Testbed } from '../../qemu/scenario.js';
import { Netns, interopSkipReason } from '../interop/lib/netns.js';
import { Strongswan } from '../interop/lib/strongswan.js';
import { peerMissingReason } from '../interop/lib/rootfs.js';
import { cleanupAll } from '../interop/lib/proc.js';
import { assertChecks, assertCleanSerial, report, skipReason, workDir } from './lib.js';

interface PeerSpec {
  name: string;
  address: string;
  lan: string;
  id: string;
  remoteId: string;
  psk: string;
  proposals: string[];
  espProposals: string[];
  localTs: string[];
  remoteTs: string[];
}

const BOARD = (process.env.PQGATE_IMAGE_BOARD ?? 'x86_64') as 'x86_64' | 'arm64';
const skip = skipReason(BOARD) ?? interopSkipReason() ?? peerMissingReason('sid-strongswan');

describe.skipIf(skip !== undefined)(`${BOARD} gateway <-> strongSwan 6.1 on the host${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let ns: Netns;
  let ss: Strongswan;
  let bed: Testbed;
  const scenario = loadScenario('strongswan');
  const peer = (scenario.spec as unknown as { peer: PeerSpec }).peer;

  beforeAll(async () => {
    ns = await Netns.create('img-ss');
    // No dummy driver on this host: the peer's outer and LAN addresses live on lo.
    await ns.addAddr('lo', `${peer.address}/32`);
    await ns.addAddr('lo', `${peer.lan}/32`);
    ss = await Strongswan.start({
      ns,
      label: 'img-hq',
      connections: [
        {
          name: 'gw',
          localAddrs: [peer.address],
          remoteAddrs: ['%any'],
          proposals: peer.proposals,
          encap: true,
          local: { auth: 'psk', id: peer.id.replace(/^fqdn:/, '') },
          remote: { auth: 'psk', id: peer.remoteId.replace(/^fqdn:/, '') },
          children: [{ name: 'net', localTs: peer.localTs, remoteTs: peer.remoteTs, espProposals: peer.espProposals }],
        },
      ],
      secrets: [{ type: 'ike', secret: peer.psk, ids: [peer.id.replace(/^fqdn:/, ''), peer.remoteId.replace(/^fqdn:/, '')] }],
    });
    scenario.spec.hosts.gw!.netns = ns.name;
    bed = new Testbed(scenario, workDir(`strongswan-${BOARD}`), { board: BOARD });
    await bed.start();
  });

  afterAll(async () => {
    await bed?.stop();
    if (ss) report('strongSwan log', ss.logPath);
    await ss?.stop().catch(() => undefined);
    await ns?.destroy();
    cleanupAll();
  });

  it('establishes the hybrid tunnel through NAT and passes traffic both ways', async () => {
    const t0 = Date.now();
    const boot = await bed.waitBooted();
    report(`strongswan ${BOARD} boot (ms since QEMU start)`, boot);
    await bed.applyHostFiles();
    const hq: CheckHost = {
      exec: async (cmd, timeoutMs) => {
        const r = await ss.exec('sh', ['-c', cmd], { check: false, timeoutMs: timeoutMs ?? 60_000 });
        return { code: r.code, output: r.stdout + r.stderr };
      },
    };
    // The peer's namespace with the build machine's tools (ping), beside charon's own root.
    const hqns: CheckHost = {
      exec: async (cmd, timeoutMs) => {
        const r = await ns.sh(cmd, { check: false, timeoutMs: timeoutMs ?? 60_000 });
        return { code: r.code, output: r.stdout + r.stderr };
      },
    };
    const hosts = bed.checkHosts({ [peer.name]: hq, [`${peer.name}ns`]: hqns });
    await runSteps(scenario.pre, hosts);
    const results = await runChecks(scenario.checks, hosts, { retryMs: 90_000 });
    report('strongswan check times (ms)', Object.fromEntries(results.map((r) => [`${r.check.line}:${r.check.host}:${r.check.command.slice(0, 30)}`, r.ms])));
    assertChecks(results);
    assertCleanSerial(bed.vm('gw'));
    report('strongswan total (s)', Math.round((Date.now() - t0) / 1000));
  });
});
