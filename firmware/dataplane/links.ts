/**
 * Interface plumbing for the userspace data plane, behind a small interface
 * so tests can fake it: create a TUN device, give it its inside address and
 * MTU, bring it up, and point routes at it. The real implementation runs
 * iproute2 (`ip`); netlink proper can replace it without touching the
 * pipeline.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { PqError } from '../util/errors.js';
import type { TunDevice } from './tun/device.js';
import { KernelTun, type TunOptions } from './tun/tun.js';

export interface LinkConfig {
  mtu: number;
  /** Inside addresses in CIDR form, e.g. "10.100.0.9/31". */
  addresses: string[];
  /**
   * Queue of packets the host routed into the device that the data plane has
   * not read yet (the kernel's TUN default is 500; a full queue drops, which
   * TCP sees as loss). Unset = leave the kernel's default.
   */
  txQueueLen?: number;
}

export interface Links {
  /** Create the TUN device `name` (synchronous: the fd is needed at once). */
  openTun(name: string): TunDevice;
  /** Set MTU and addresses, then bring the link up. */
  configure(name: string, cfg: LinkConfig): Promise<void>;
  /** Route `cidr` into the device (idempotent). */
  addRoute(name: string, cidr: string): Promise<void>;
  delRoute(name: string, cidr: string): Promise<void>;
}

export class LinkError extends PqError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_LINK', message, options);
  }
}

const run = promisify(execFile);

/**
 * Links through iproute2 (the firmware image ships it). With `netns`, the
 * TUN devices are created here and moved into that network namespace before
 * they are configured (the fd keeps working across the move); every command
 * then runs there (`ip -n`). Tests use it to run real kernels on both ends.
 */
export class IpLinks implements Links {
  constructor(private readonly opts: { ipPath?: string; tun?: TunOptions; netns?: string } = {}) {}

  private async ip(args: string[]): Promise<void> {
    const full = this.opts.netns ? ['-n', this.opts.netns, ...args] : args;
    try {
      await run(this.opts.ipPath ?? 'ip', full, { timeout: 10_000 });
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new LinkError(`ip ${full.join(' ')}: ${(err.stderr || err.message).trim()}`, { cause: e });
    }
  }

  openTun(name: string): TunDevice {
    return KernelTun.open(name, this.opts.tun);
  }

  async configure(name: string, cfg: LinkConfig): Promise<void> {
    if (this.opts.netns) {
      try {
        await run(this.opts.ipPath ?? 'ip', ['link', 'set', 'dev', name, 'netns', this.opts.netns], { timeout: 10_000 });
      } catch (e) {
        // Already there (configure called again): fine; anything else surfaces below.
        if (!/No such device|Cannot find device/.test(String((e as { stderr?: string }).stderr))) throw new LinkError(`move ${name} to ${this.opts.netns}: ${(e as Error).message}`, { cause: e });
      }
    }
    await this.ip(['link', 'set', 'dev', name, 'mtu', String(cfg.mtu), ...(cfg.txQueueLen ? ['txqueuelen', String(cfg.txQueueLen)] : [])]);
    for (const a of cfg.addresses) await this.ip(['addr', 'replace', a, 'dev', name]);
    await this.ip(['link', 'set', 'dev', name, 'up']);
  }

  async addRoute(name: string, cidr: string): Promise<void> {
    await this.ip([cidr.includes(':') ? '-6' : '-4', 'route', 'replace', cidr, 'dev', name]);
  }

  async delRoute(name: string, cidr: string): Promise<void> {
    await this.ip([cidr.includes(':') ? '-6' : '-4', 'route', 'del', cidr, 'dev', name]);
  }
}
