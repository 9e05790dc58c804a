/**
 * The daemon's side of traps and on-idle DPD with a scripted engine and the
 * recording data plane: a `trap` action installs / removes its policies, an
 * acquire for the trap's reqid becomes `up` for its tunnel, and a
 * `query-activity` action is answered with the inbound SAs' last-use time
 * (converted from XFRM's wall clock when the data plane says so).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Daemon } from '../../firmware/daemon.js';
import { loadConfigFile } from '../../firmware/config/schema.js';
import { RecordingDataPlane } from '../../firmware/dataplane/recording.js';
import type { DataPlane, PolicySpec, SaCounters } from '../../firmware/dataplane/types.js';
import { Logger } from '../../firmware/log.js';
import { FakeClock } from '../../firmware/util/clock.js';
import { lastInboundAt } from '../../firmware/health/activity.js';
import { StubEngine } from './helpers/stub-engine.js';

let dir: string;
const daemons: Daemon[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pqgate-trap-'));
});
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop('test end');
  rmSync(dir, { recursive: true, force: true });
});

const PSK = 'daemon-trap-psk-0123456789';
const policy: PolicySpec = {
  reqid: 77,
  direction: 'out',
  local: [{ family: 4, startAddr: new Uint8Array([10, 1, 0, 0]), endAddr: new Uint8Array([10, 1, 255, 255]), ipProtocol: 0, startPort: 0, endPort: 65535 }],
  remote: [{ family: 4, startAddr: new Uint8Array([10, 2, 0, 0]), endAddr: new Uint8Array([10, 2, 255, 255]), ipProtocol: 0, startPort: 0, endPort: 65535 }],
  ifId: 0,
  tunnel: 'cf1',
  src: { address: '127.0.0.1', port: 500 },
  dst: { address: '127.0.0.1', port: 9 },
};

async function start(dp: DataPlane) {
  const configPath = join(dir, 'pqgate.json');
  const doc = {
    listen: ['127.0.0.1'], ike_port: 0, natt_port: 0, control_socket: join(dir, 'ctl.sock'), log_level: 'debug',
    tunnels: [{ name: 'cf1', local_addr: '127.0.0.1', remote_addr: '127.0.0.1', remote_port: 9, local_id: 'fqdn:branch.example', psk: PSK, start_action: 'trap' }],
  };
  writeFileSync(configPath, JSON.stringify(doc), { mode: 0o600 });
  let engine!: StubEngine;
  const d = await Daemon.start({ config: loadConfigFile(configPath), configPath, logger: new Logger({ level: 'error', sink: () => undefined }), engineFactory: ({ clock }) => (engine = new StubEngine(clock)), dataPlane: dp, noControl: true });
  daemons.push(d);
  return { d, engine };
}

const settle = () => new Promise((r) => setTimeout(r, 20));

describe('daemon: traps', () => {
  it('installs the trap policy, turns its acquire into up, and removes it on request', async () => {
    const dp = new RecordingDataPlane();
    const { d, engine } = await start(dp);
    engine.next.command.push([{ kind: 'trap', tunnel: 'cf1', install: true, policies: [policy] }]);
    d.command({ kind: 'dpd', tunnel: 'cf1' }); // any entry point: the stub returns the queued trap action
    await settle();
    expect(dp.ops.filter((o) => o.op === 'addPolicy').map((o) => (o as { policy: PolicySpec }).policy.reqid)).toEqual([77]);
    dp.emit({ kind: 'acquire', reqid: 77 });
    expect(engine.calls.filter((c) => c.fn === 'command').map((c) => (c as { cmd: unknown }).cmd)).toContainEqual({ kind: 'up', tunnel: 'cf1' });
    engine.next.command.push([{ kind: 'trap', tunnel: 'cf1', install: false, policies: [policy] }]);
    d.command({ kind: 'dpd', tunnel: 'cf1' });
    await settle();
    expect(dp.ops.filter((o) => o.op === 'deletePolicy').map((o) => (o as { policy: PolicySpec }).policy.reqid)).toEqual([77]);
  });
});

describe('daemon: query-activity', () => {
  it('answers with the latest inbound use time of the SAs', async () => {
    const dp = new RecordingDataPlane();
    const used = new Map<number, number>([[0x1001, 5_000], [0x1002, 9_000]]);
    dp.querySa = async (spi: number, dir: 'in' | 'out'): Promise<SaCounters | undefined> =>
      dir === 'in' && used.has(spi) ? { bytes: 1, packets: 1, replayDrops: 0, authFailures: 0, lastUsed: used.get(spi)! } : undefined;
    const { d, engine } = await start(dp);
    engine.next.command.push([{ kind: 'query-activity', tunnel: 'cf1', ikeSa: 3, inboundSpis: [0x1001, 0x1002, 0x9999] }]);
    d.command({ kind: 'dpd', tunnel: 'cf1' });
    await settle();
    expect(engine.calls.filter((c) => c.fn === 'activity')).toEqual([{ fn: 'activity', ikeSa: 3, at: 9_000 }]);
  });

  it('converts XFRM wall-clock use times to the daemon clock; none → undefined', async () => {
    const clock = new FakeClock(50_000);
    const dp = { lastUsedClock: 'wall', querySa: async () => ({ bytes: 1, packets: 1, replayDrops: 0, authFailures: 0, lastUsed: 1_700_000_000_000 - 3_000 }) } as unknown as DataPlane;
    expect(await lastInboundAt(dp, [1], clock, () => 1_700_000_000_000)).toBe(47_000);
    const none = { querySa: async () => ({ bytes: 0, packets: 0, replayDrops: 0, authFailures: 0, lastUsed: 0 }) } as unknown as DataPlane;
    expect(await lastInboundAt(none, [1, 2], clock)).toBeUndefined();
  });
});
