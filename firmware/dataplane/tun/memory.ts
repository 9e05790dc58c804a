/**
 * In-memory stand-ins for the TUN device and the link plumbing
 * (wireguard-go's tuntest): two data planes can exchange traffic inside one
 * process. Exported from the firmware tree so daemon-level tests can use
 * them too.
 */
import type { LinkConfig, Links } from '../links.js';
import type { TunDevice } from './device.js';

export class MemoryTun implements TunDevice {
  /** Packets the data plane wrote, i.e. delivered to the host stack (copies). */
  readonly delivered: Uint8Array[] = [];
  onDeliver: ((pkt: Uint8Array) => void) | undefined;
  closed = false;
  private sink: ((pkts: Uint8Array[], count: number) => void) | undefined;
  private readonly scratch: Uint8Array[] = [];

  constructor(readonly name: string) {}

  start(onPackets: (pkts: Uint8Array[], count: number) => void): void {
    this.sink = onPackets;
  }

  /**
   * The host routes packets into the device: they reach the data plane as
   * one batch. Like the kernel device, the batch lives in reused buffers,
   * which are scribbled over after the callback so that a consumer that
   * keeps a reference is caught by the tests.
   */
  inject(...pkts: Uint8Array[]): void {
    if (!this.sink || this.closed) return;
    const views: Uint8Array[] = [];
    pkts.forEach((p, i) => {
      if (!this.scratch[i] || this.scratch[i]!.length < p.length) this.scratch[i] = new Uint8Array(Math.max(2048, p.length));
      this.scratch[i]!.set(p);
      views.push(this.scratch[i]!.subarray(0, p.length));
    });
    this.sink(views, views.length);
    for (const v of views) v.fill(0xee);
  }

  write(pkts: Uint8Array[], count: number): void {
    if (this.closed) return;
    for (let i = 0; i < count; i++) {
      const copy = new Uint8Array(pkts[i]!); // a copy (Buffer#slice would be a view)
      this.delivered.push(copy);
      this.onDeliver?.(copy);
    }
  }

  close(): void {
    this.closed = true;
    this.sink = undefined;
  }
}

export class MemoryLinks implements Links {
  readonly devices = new Map<string, MemoryTun>();
  readonly configs = new Map<string, LinkConfig>();
  readonly routes = new Map<string, Set<string>>();
  /** Every call in order, for assertions. */
  readonly log: string[] = [];

  openTun(name: string): MemoryTun {
    const existing = this.devices.get(name);
    if (existing && !existing.closed) throw new Error(`${name}: device busy`);
    const t = new MemoryTun(name);
    this.devices.set(name, t);
    this.routes.set(name, new Set());
    this.log.push(`open ${name}`);
    return t;
  }

  async configure(name: string, cfg: LinkConfig): Promise<void> {
    this.configs.set(name, cfg);
    this.log.push(`configure ${name} mtu ${cfg.mtu}${cfg.addresses.map((a) => ` addr ${a}`).join('')}`);
  }

  async addRoute(name: string, cidr: string): Promise<void> {
    this.routes.get(name)?.add(cidr);
    this.log.push(`route add ${cidr} dev ${name}`);
  }

  async delRoute(name: string, cidr: string): Promise<void> {
    this.routes.get(name)?.delete(cidr);
    this.log.push(`route del ${cidr} dev ${name}`);
  }

  device(name: string): MemoryTun {
    const d = this.devices.get(name);
    if (!d) throw new Error(`no device ${name}`);
    return d;
  }
}
