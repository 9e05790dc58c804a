/**
 * A recording two-engine lab for corpus generation: two sans-IO engines over
 * the in-memory FakeNetwork with a fake clock and deterministic RNGs. Every
 * datagram is recorded before delivery, every IKE key set the engines
 * install is captured (IkeSa.setKeys, so the IKE_INTERMEDIATE generation is
 * seen too), and every Child SA install is kept with its keys. The corpus is
 * thus made of what the real engine sends, never of hand-written bytes.
 */
import { Engine } from '../../firmware/ikev2/engine.js';
import { IkeSa } from '../../firmware/ikev2/ike-sa.js';
import type { Action, InstallChildAction } from '../../firmware/ikev2/engine-types.js';
import type { TunnelConfig, TsConfig } from '../../firmware/config/types.js';
import { FakeNetwork } from '../../firmware/net/fake.js';
import { FakeClock } from '../../firmware/util/clock.js';
import { TestRng } from '../../firmware/util/rng.js';
import { parseIdentity } from '../../firmware/ikev2/sa/identity.js';
import { parseTs } from '../../firmware/ikev2/sa/ts.js';
import type { Endpoint } from '../../firmware/dataplane/types.js';
import type { IkeKeys } from '../../firmware/ikev2/sa/keymat.js';

export interface RecordedDatagram {
  from: Endpoint;
  to: Endpoint;
  data: Uint8Array;
  /** Name of the receiving host. */
  host: string;
}

/** One IKE key generation (RFC 7296 §2.14; RFC 9370 §2.2.2 re-derives after each IKE_INTERMEDIATE). */
export interface RecordedIkeKeys {
  spiI: string;
  spiR: string;
  encrId: number;
  encrKeyBits: number;
  integId: number;
  skEi: string;
  skEr: string;
  skAi: string;
  skAr: string;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

let keySink: ((k: RecordedIkeKeys) => void) | undefined;
let patched = false;

/** Capture every key set an IkeSa installs (generation-time tooling only). */
function patchSetKeys(): void {
  if (patched) return;
  patched = true;
  const orig = IkeSa.prototype.setKeys;
  IkeSa.prototype.setKeys = function (this: IkeSa, keys: IkeKeys): void {
    orig.call(this, keys);
    keySink?.({
      spiI: hex(this.spiI),
      spiR: hex(this.spiR),
      encrId: this.encr!.id,
      encrKeyBits: this.encr!.keySize * 8,
      integId: this.integ?.id ?? 0,
      skEi: hex(keys.skEi),
      skEr: hex(keys.skEr),
      skAi: hex(keys.skAi),
      skAr: hex(keys.skAr),
    });
  };
}

export interface LabHost {
  name: string;
  address: string;
  engine: Engine;
  installs: InstallChildAction[];
}

export class RecordingLab {
  readonly clock = new FakeClock(1_000_000);
  readonly net = new FakeNetwork({ clock: this.clock });
  readonly hosts: LabHost[] = [];
  readonly datagrams: RecordedDatagram[] = [];
  readonly ikeKeys: RecordedIkeKeys[] = [];

  constructor() {
    patchSetKeys();
  }

  addHost(name: string, address: string): LabHost {
    const engine = new Engine({ clock: this.clock, rng: new TestRng(`fuzz-${name}`), ikePort: 500, nattPort: 4500 });
    const h: LabHost = { name, address, engine, installs: [] };
    this.hosts.push(h);
    for (const port of [500, 4500]) {
      this.net.attach({ address, port }, (data, from, to) => {
        this.datagrams.push({ from: { ...from }, to: { ...to }, data: data.slice(), host: name });
        this.apply(h, this.withKeys(() => engine.receive(data, from, to)));
      });
    }
    return h;
  }

  private withKeys<T>(fn: () => T): T {
    keySink = (k) => {
      if (!this.ikeKeys.some((x) => x.skEi === k.skEi)) this.ikeKeys.push(k);
    };
    try {
      return fn();
    } finally {
      keySink = undefined;
    }
  }

  apply(h: LabHost, actions: Action[]): void {
    for (const a of actions) {
      if (a.kind === 'send') this.net.send(a.from.address === '0.0.0.0' ? { address: h.address, port: a.from.port } : a.from, a.to, a.data);
      else if (a.kind === 'install-child') h.installs.push(a);
    }
  }

  load(h: LabHost, tunnels: TunnelConfig[]): void {
    this.apply(h, h.engine.loadConfig(tunnels));
  }

  command(h: LabHost, cmd: Parameters<Engine['command']>[0]): void {
    this.apply(h, this.withKeys(() => h.engine.command(cmd)));
  }

  /** Deliver and fire timers for `ms` of fake time. */
  advance(ms: number): void {
    const end = this.clock.now() + ms;
    for (let guard = 0; guard < 100_000; guard++) {
      this.net.deliverDue();
      for (const h of this.hosts) {
        const t = h.engine.nextTimer();
        if (t !== undefined && t <= this.clock.now()) this.apply(h, this.withKeys(() => h.engine.tick()));
      }
      const cands = [end];
      const nd = this.net.nextDeliveryTime();
      if (nd !== undefined) cands.push(nd);
      for (const h of this.hosts) {
        const t = h.engine.nextTimer();
        if (t !== undefined) cands.push(t);
      }
      const next = Math.max(Math.min(...cands), this.clock.now());
      if (this.clock.now() >= end && this.net.pending() === 0) return;
      if (next > this.clock.now()) this.clock.advance(next - this.clock.now());
      else if (this.clock.now() >= end) {
        this.net.deliverDue();
        if (this.net.pending() === 0) return;
      }
    }
    throw new Error('lab did not settle');
  }
}

function ts(list: string[]): TsConfig[] {
  return list.map((s) => parseTs(s) as TsConfig);
}

/** A PSK tunnel between 192.0.2.1 (a, initiator) and 192.0.2.2 (b, responder). */
export function labTunnel(side: 'a' | 'b', over: Partial<TunnelConfig> = {}): TunnelConfig {
  const a = side === 'a';
  return {
    name: 't1',
    localAddr: a ? '192.0.2.1' : '192.0.2.2',
    remoteAddr: a ? '192.0.2.2' : undefined,
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
    localId: parseIdentity(a ? 'a.example' : 'b.example')!,
    remoteId: parseIdentity(a ? 'b.example' : 'a.example')!,
    psk: new TextEncoder().encode('a-long-enough-fuzz-psk-0123456789'),
    localTs: ts(a ? ['10.1.0.0/16'] : ['10.2.0.0/16']),
    remoteTs: ts(a ? ['10.2.0.0/16'] : ['10.1.0.0/16']),
    ...over,
  } as TunnelConfig;
}
