/**
 * A scripted EngineApi for daemon tests: records every call and returns the
 * actions the test queued. It exercises the daemon's wiring, not IKE.
 */
import type { Action, Command, EngineApi, IkeSaStatus } from '../../../firmware/ikev2/engine-types.js';
import type { TunnelConfig } from '../../../firmware/config/types.js';
import type { Endpoint } from '../../../firmware/dataplane/types.js';
import type { Clock } from '../../../firmware/util/clock.js';

export type Call =
  | { fn: 'receive'; data: number[]; from: Endpoint; to: Endpoint }
  | { fn: 'tick'; at: number }
  | { fn: 'command'; cmd: Command }
  | { fn: 'loadConfig'; tunnels: string[] }
  | { fn: 'activity'; ikeSa: number; at: number | undefined };

export class StubEngine implements EngineApi {
  readonly calls: Call[] = [];
  /** Actions returned by the next call of each entry point. */
  next: { receive: Action[][]; tick: Action[][]; command: Action[][]; loadConfig: Action[][] } = { receive: [], tick: [], command: [], loadConfig: [] };
  timer: number | undefined;
  statusValue: IkeSaStatus[] = [];
  throwOnReceive = false;
  tunnels: TunnelConfig[] = [];

  constructor(readonly clock: Clock) {}

  receive(data: Uint8Array, from: Endpoint, to: Endpoint): Action[] {
    this.calls.push({ fn: 'receive', data: [...data], from, to });
    if (this.throwOnReceive) throw new Error('engine bug');
    return this.next.receive.shift() ?? [];
  }
  tick(): Action[] {
    this.calls.push({ fn: 'tick', at: this.clock.now() });
    if (this.timer !== undefined && this.clock.now() >= this.timer) this.timer = undefined;
    return this.next.tick.shift() ?? [];
  }
  nextTimer(): number | undefined {
    return this.timer;
  }
  activity(ikeSa: number, at: number | undefined): Action[] {
    this.calls.push({ fn: 'activity', ikeSa, at });
    return [];
  }

  command(cmd: Command): Action[] {
    this.calls.push({ fn: 'command', cmd });
    return this.next.command.shift() ?? [];
  }
  loadConfig(tunnels: TunnelConfig[]): Action[] {
    this.tunnels = tunnels;
    this.calls.push({ fn: 'loadConfig', tunnels: tunnels.map((t) => t.name) });
    return this.next.loadConfig.shift() ?? [];
  }
  status(): IkeSaStatus[] {
    return this.statusValue;
  }
}

export function sampleStatus(tunnel: string, local: Endpoint, remote: Endpoint): IkeSaStatus {
  return {
    tunnel,
    id: 1,
    state: 'ESTABLISHED',
    role: 'initiator',
    local,
    remote,
    spiI: '0123456789abcdef',
    spiR: 'fedcba9876543210',
    localId: 'branch.example',
    remoteId: '192.0.2.2',
    encr: 'AES_GCM_16_256',
    prf: 'PRF_HMAC_SHA2_384',
    integ: null,
    keyExchanges: ['CURVE_25519', 'ML_KEM_768'],
    postQuantum: 'ML_KEM_768',
    fragmentation: true,
    natLocal: false,
    natRemote: true,
    encap: true,
    establishedAt: 1000,
    children: [
      {
        name: tunnel,
        state: 'INSTALLED',
        reqid: 1,
        spiIn: 'c1000001',
        spiOut: 'c2000002',
        encr: 'AES_GCM_16_256',
        integ: null,
        keyExchanges: [],
        esn: false,
        localTs: ['10.1.0.0/24'],
        remoteTs: ['0.0.0.0/0'],
        encap: true,
        installedAt: 1500,
      },
    ],
  };
}
