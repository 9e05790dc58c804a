/**
 * Two (or more) sans-IO engines in one process over the in-memory
 * FakeNetwork with a fake clock (strongSwan's exchange tests / wireguard-go's
 * bindtest idea). Every action is recorded so tests can assert on installs,
 * key log lines and events.
 */
import { Engine } from '../../firmware/ikev2/engine.js';
import type { Action, InstallChildAction, IkeSaStatus } from '../../firmware/ikev2/engine-types.js';
import type { EngineOptions } from '../../firmware/ikev2/context.js';
import type { TunnelConfig } from '../../firmware/config/types.js';
import { FakeNetwork, type FakeNetworkOptions } from '../../firmware/net/fake.js';
import { FakeClock } from '../../firmware/util/clock.js';
import { TestRng } from '../../firmware/util/rng.js';
import { parseIdentity } from '../../firmware/ikev2/sa/identity.js';
import { parseTs } from '../../firmware/ikev2/sa/ts.js';
import type { TsConfig } from '../../firmware/config/types.js';

export interface Host {
  name: string;
  address: string;
  engine: Engine;
  actions: Action[];
  installs: InstallChildAction[];
  deletes: Action[];
  events: string[];
  keylog: string[];
}

export class Lab {
  readonly clock = new FakeClock(1_000_000);
  readonly net: FakeNetwork;
  readonly hosts = new Map<string, Host>();
  /** Addresses reached through a NAT: public address -> host. */
  constructor(netOpts: FakeNetworkOptions = {}) {
    this.net = new FakeNetwork({ clock: this.clock, ...netOpts });
  }

  addHost(name: string, address: string, opts: Partial<EngineOptions> = {}): Host {
    const engine = new Engine({ clock: this.clock, rng: new TestRng(`rng-${name}`), ikePort: 500, nattPort: 4500, ...opts });
    const h: Host = { name, address, engine, actions: [], installs: [], deletes: [], events: [], keylog: [] };
    this.hosts.set(name, h);
    for (const port of [500, 4500]) {
      this.net.attach({ address, port }, (data, from, to) => this.apply(h, engine.receive(data, from, to)));
    }
    return h;
  }

  apply(h: Host, actions: Action[]): void {
    for (const a of actions) {
      h.actions.push(a);
      switch (a.kind) {
        case 'send':
          this.net.send(a.from.address === '0.0.0.0' ? { address: h.address, port: a.from.port } : a.from, a.to, a.data);
          break;
        case 'install-child':
          h.installs.push(a);
          break;
        case 'delete-child':
          h.deletes.push(a);
          break;
        case 'event':
          h.events.push(`${a.level}: ${a.message}`);
          break;
        case 'keylog':
          h.keylog.push(a.line);
          break;
      }
    }
  }

  load(h: Host, tunnels: TunnelConfig[]): void {
    this.apply(h, h.engine.loadConfig(tunnels));
  }

  /** Deliver datagrams and fire timers until nothing is pending or `maxMs` of fake time passed. */
  run(maxMs = 60_000): void {
    const end = this.clock.now() + maxMs;
    for (let guard = 0; guard < 1_000_000; guard++) {
      this.net.deliverDue();
      for (const h of this.hosts.values()) {
        const t = h.engine.nextTimer();
        if (t !== undefined && t <= this.clock.now()) this.apply(h, h.engine.tick());
      }
      const candidates: number[] = [];
      const nd = this.net.nextDeliveryTime();
      if (nd !== undefined) candidates.push(nd);
      for (const h of this.hosts.values()) {
        const t = h.engine.nextTimer();
        if (t !== undefined) candidates.push(t);
      }
      if (this.net.pending() === 0 && this.allSettled()) return;
      if (candidates.length === 0) return;
      const next = Math.max(Math.min(...candidates), this.clock.now());
      if (next > end) return;
      if (next > this.clock.now()) this.clock.advance(next - this.clock.now());
    }
    throw new Error('lab did not settle');
  }

  /** Advance fake time by ms, running everything that happens meanwhile. */
  advance(ms: number): void {
    const end = this.clock.now() + ms;
    for (let guard = 0; guard < 1_000_000; guard++) {
      this.net.deliverDue();
      for (const h of this.hosts.values()) {
        const t = h.engine.nextTimer();
        if (t !== undefined && t <= this.clock.now()) this.apply(h, h.engine.tick());
      }
      const candidates = [end];
      const nd = this.net.nextDeliveryTime();
      if (nd !== undefined) candidates.push(nd);
      for (const h of this.hosts.values()) {
        const t = h.engine.nextTimer();
        if (t !== undefined) candidates.push(t);
      }
      const next = Math.max(Math.min(...candidates), this.clock.now());
      if (next >= end && this.net.pending() === 0) {
        this.clock.advance(end - this.clock.now());
        return;
      }
      if (next > this.clock.now()) this.clock.advance(next - this.clock.now());
      else if (this.net.pending() === 0 && !this.hosts.size) return;
      if (this.clock.now() >= end) {
        this.net.deliverDue();
        return;
      }
    }
    throw new Error('lab did not settle');
  }

  private allSettled(): boolean {
    // Settled when no SA has an outstanding request (every SA established or gone).
    for (const h of this.hosts.values()) for (const s of h.engine.status()) if (s.state !== 'ESTABLISHED') return false;
    return true;
  }

  status(h: Host): IkeSaStatus[] {
    return h.engine.status();
  }
}

function ts(list: string[]): TsConfig[] {
  return list.map((s) => {
    const t = parseTs(s);
    if (!('startAddr' in t)) throw new Error('dynamic TS not supported in harness');
    return t as TsConfig;
  });
}

export function tunnel(over: Partial<Omit<TunnelConfig, 'localId' | 'remoteId' | 'localTs' | 'remoteTs' | 'psk'>> & {
  name: string;
  localId: string;
  remoteId?: string;
  localTs?: string[];
  remoteTs?: string[];
  psk?: string;
}): TunnelConfig {
  const { localId, remoteId, localTs, remoteTs, psk, ...rest } = over;
  return {
    remotePort: 500,
    auth: 'psk',
    ikeProposals: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'],
    espProposals: ['aes256gcm16'],
    mode: 'policy',
    startAction: 'none',
    fragmentation: 'yes',
    fragmentSize: 1280,
    encap: false,
    rekeyTime: 0,
    childRekeyTime: 0,
    dpdDelay: 0,
    replayWindow: 64,
    mss: 0,
    ...rest,
    localId: parseIdentity(localId)!,
    remoteId: remoteId ? parseIdentity(remoteId) : undefined,
    psk: new TextEncoder().encode(psk ?? 'a-long-enough-test-psk-0123456789'),
    localTs: ts(localTs ?? ['10.1.0.0/16']),
    remoteTs: ts(remoteTs ?? ['10.2.0.0/16']),
  };
}

/** A standard pair: "a" (192.0.2.1, initiator) and "b" (192.0.2.2, responder). */
export function pair(
  iOver: Partial<Parameters<typeof tunnel>[0]> = {},
  rOver: Partial<Parameters<typeof tunnel>[0]> = {},
  netOpts: FakeNetworkOptions = {},
  engineOpts: { a?: Partial<EngineOptions>; b?: Partial<EngineOptions> } = {},
): { lab: Lab; a: Host; b: Host } {
  const lab = new Lab(netOpts);
  const a = lab.addHost('a', '192.0.2.1', engineOpts.a);
  const b = lab.addHost('b', '192.0.2.2', engineOpts.b);
  lab.load(a, [tunnel({ name: 't1', localAddr: '192.0.2.1', remoteAddr: '192.0.2.2', localId: 'a.example', remoteId: 'b.example', ...iOver })]);
  lab.load(b, [
    tunnel({ name: 't1', localAddr: '192.0.2.2', localId: 'b.example', remoteId: 'a.example', localTs: ['10.2.0.0/16'], remoteTs: ['10.1.0.0/16'], ...rOver }),
  ]);
  return { lab, a, b };
}

export function up(lab: Lab, h: Host, name = 't1'): void {
  lab.apply(h, h.engine.command({ kind: 'up', tunnel: name }));
}
