/**
 * Volume-based Child SA lifetimes (strongSwan rekey_packets / rekey_bytes):
 * the engine hands the soft (configured) and hard (+10 %) limits to the data
 * plane, the userspace data plane reports the soft expiry, and the daemon
 * rekeys the Child SA before the hard limit; traffic keeps flowing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Daemon } from '../../firmware/daemon.js';
import { parseDaemonConfig } from '../../firmware/config/schema.js';
import { FakeNetwork, FakeTransport } from '../../firmware/net/fake.js';
import { MemoryLinks } from '../../firmware/dataplane/tun/memory.js';
import { icmpEcho } from './helpers.js';

const PSK = 'volume-rekey-psk-0123456789';
const A = '192.0.2.1';
const B = '192.0.2.2';
let daemons: Daemon[] = [];
let pumps: NodeJS.Timeout[] = [];
afterEach(async () => {
  for (const p of pumps.splice(0)) clearInterval(p);
  for (const d of daemons.splice(0)) await d.stop('test end');
});
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(f: () => T | undefined | false, ms = 5000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await wait(5);
  }
}

async function side(net: FakeNetwork, addr: string, remote: string | undefined, extra: object) {
  const config = parseDaemonConfig({
    listen: [addr],
    log_level: 'error',
    control_socket: '/nonexistent/ctl.sock',
    tunnels: [
      {
        name: 't',
        local_addr: addr,
        remote_addr: remote ?? '%any',
        local_id: `fqdn:${addr === A ? 'a' : 'b'}.example`,
        remote_id: `fqdn:${addr === A ? 'b' : 'a'}.example`,
        psk: PSK,
        proposals: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'],
        esp_proposals: ['aes256gcm16'],
        mode: 'policy',
        local_ts: [addr === A ? '198.51.100.0/25' : '198.51.100.128/25'],
        remote_ts: [addr === A ? '198.51.100.128/25' : '198.51.100.0/25'],
        start_action: 'none',
        ...extra,
      },
    ],
  });
  const links = new MemoryLinks();
  const d = await Daemon.start({ config, noControl: true, links, transportFactory: async () => new FakeTransport(net, { addresses: [addr] }), sourceAddressFor: null });
  daemons.push(d);
  return { d, links };
}

describe('volume-based Child SA rekeys', () => {
  it('rekeys after child_rekey_packets and keeps traffic flowing', async () => {
    const net = new FakeNetwork();
    pumps.push(setInterval(() => net.deliverDue(), 1));
    const a = await side(net, A, B, { child_rekey_packets: 20 });
    const b = await side(net, B, undefined, {});
    a.d.command({ kind: 'up', tunnel: 't' });
    const first = await until(() => a.d.status().find((s) => s.state === 'ESTABLISHED' && s.children.length === 1), 5000, 'established');
    const spi0 = first.children[0]!.spiOut;
    const tunA = a.links.device('pqpol0');
    const tunB = b.links.device('pqpol0');
    let delivered = 0;
    for (let i = 0; i < 60; i++) {
      tunA.inject(icmpEcho('198.51.100.10', '198.51.100.130', 9, i));
      await until(() => tunB.delivered.length > delivered, 2000, `packet ${i}`);
      delivered = tunB.delivered.length;
      await wait(2);
    }
    // 60 packets with a 20-packet soft limit: at least two rekeys, none of the packets lost.
    const now = a.d.status().find((s) => s.state === 'ESTABLISHED')!;
    const child = now.children.find((c) => c.state === 'INSTALLED')!;
    expect(child.spiOut).not.toBe(spi0);
    expect(child.rekeys).toBeGreaterThanOrEqual(2);
    expect(delivered).toBe(60);
  });
});
