/**
 * A DataPlane that records what it is asked to do and forwards no packets:
 * the daemon's default until the userspace ESP data plane (dataplane/esp)
 * is wired in, and a test double for the daemon. Counters are always zero.
 * Keys handed to addSa are kept only as lengths (never the bytes), so a
 * recording can be logged or printed safely.
 */
import type { DataPlane, DataPlaneEvent, Endpoint, PolicySpec, SaCounters, SaSpec } from './types.js';

export interface RecordedSa {
  spi: number;
  direction: 'in' | 'out';
  tunnel: string;
  reqid: number;
  src: Endpoint;
  dst: Endpoint;
  encap: boolean;
  encrId: number;
  encrKeyBits: number;
  encrKeyLength: number;
  integId: number;
  integKeyLength: number;
  esn: boolean;
  replayWindow: number;
  ifId: number;
}

export type RecordedOp =
  | { op: 'addSa'; sa: RecordedSa }
  | { op: 'updateSa'; spi: number; direction: 'in' | 'out'; src: Endpoint; dst: Endpoint }
  | { op: 'deleteSa'; spi: number; direction: 'in' | 'out' }
  | { op: 'addPolicy'; policy: PolicySpec }
  | { op: 'deletePolicy'; policy: PolicySpec };

const saKey = (spi: number, dir: 'in' | 'out') => `${dir}:${spi >>> 0}`;

export class RecordingDataPlane implements DataPlane {
  readonly name = 'recording';
  readonly ops: RecordedOp[] = [];
  private readonly sas = new Map<string, RecordedSa>();
  private readonly policies: PolicySpec[] = [];
  private readonly listeners: ((e: DataPlaneEvent) => void)[] = [];
  private closed = false;

  async addSa(sa: SaSpec): Promise<void> {
    this.assertOpen();
    const r: RecordedSa = {
      spi: sa.spi >>> 0,
      direction: sa.direction,
      tunnel: sa.tunnel,
      reqid: sa.reqid,
      src: { ...sa.src },
      dst: { ...sa.dst },
      encap: sa.encap,
      encrId: sa.encrId,
      encrKeyBits: sa.encrKeyBits,
      encrKeyLength: sa.encrKey.length,
      integId: sa.integId,
      integKeyLength: sa.integKey.length,
      esn: sa.esn,
      replayWindow: sa.replayWindow,
      ifId: sa.ifId,
    };
    const k = saKey(sa.spi, sa.direction);
    if (this.sas.has(k)) throw new Error(`recording data plane: SA ${k} already installed`);
    this.sas.set(k, r);
    this.ops.push({ op: 'addSa', sa: r });
  }

  async updateSa(spi: number, direction: 'in' | 'out', src: Endpoint, dst: Endpoint): Promise<void> {
    this.assertOpen();
    const sa = this.sas.get(saKey(spi, direction));
    if (!sa) throw new Error(`recording data plane: no SA ${saKey(spi, direction)}`);
    sa.src = { ...src };
    sa.dst = { ...dst };
    this.ops.push({ op: 'updateSa', spi: spi >>> 0, direction, src: { ...src }, dst: { ...dst } });
  }

  async deleteSa(spi: number, direction: 'in' | 'out'): Promise<void> {
    this.assertOpen();
    this.sas.delete(saKey(spi, direction));
    this.ops.push({ op: 'deleteSa', spi: spi >>> 0, direction });
  }

  async addPolicy(p: PolicySpec): Promise<void> {
    this.assertOpen();
    this.policies.push(p);
    this.ops.push({ op: 'addPolicy', policy: p });
  }

  async deletePolicy(p: PolicySpec): Promise<void> {
    this.assertOpen();
    const i = this.policies.findIndex((x) => x.reqid === p.reqid && x.direction === p.direction && x.tunnel === p.tunnel);
    if (i >= 0) this.policies.splice(i, 1);
    this.ops.push({ op: 'deletePolicy', policy: p });
  }

  async querySa(spi: number, direction: 'in' | 'out'): Promise<SaCounters | undefined> {
    if (!this.sas.has(saKey(spi, direction))) return undefined;
    return { bytes: 0, packets: 0, replayDrops: 0, authFailures: 0, lastUsed: 0 };
  }

  onEvent(cb: (e: DataPlaneEvent) => void): void {
    this.listeners.push(cb);
  }

  /** Tests: raise a data-plane event (expire / acquire) as a real data plane would. */
  emit(e: DataPlaneEvent): void {
    for (const l of this.listeners) l(e);
  }

  installedSas(): RecordedSa[] {
    return [...this.sas.values()];
  }

  installedPolicies(): PolicySpec[] {
    return [...this.policies];
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('recording data plane: closed');
  }
}
