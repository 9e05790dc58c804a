/**
 * What a configuration change means for a running tunnel (used by
 * Daemon.applyConfig): the engine re-establishes a tunnel whose
 * TunnelConfig changed (engine.loadConfig), but some fields only concern the
 * data plane's tunnel interface. A change limited to them reconfigures the
 * interface and leaves the IKE and Child SAs alone.
 */
import type { TunnelConfig } from '../config/types.js';
import type { DataPlane } from '../dataplane/types.js';
import type { TunnelOptions } from '../dataplane/userspace.js';

/** Tunnel fields only the data plane uses: changing them reconfigures the interface, never the IKE SA. */
export const DATA_PLANE_ONLY: readonly (keyof TunnelConfig)[] = ['mss', 'mtu', 'insideAddr'];

/** a and b differ only in data-plane fields (or not at all). */
export function sameForEngine(a: TunnelConfig, b: TunnelConfig): boolean {
  const strip = (t: TunnelConfig) => JSON.stringify({ ...t, ...Object.fromEntries(DATA_PLANE_ONLY.map((k) => [k, null])), psk: Buffer.from(t.psk).toString('hex') });
  return strip(a) === strip(b);
}

export function tunnelOptions(t: TunnelConfig): TunnelOptions {
  // Explicit undefined: a removed inside address / MTU is removed from the interface too (setTunnelOptions merges).
  return { mss: t.mss, insideAddr: t.mode === 'route' ? t.insideAddr : undefined, mtu: t.mtu };
}

/** The interface plumbing of data planes that have tunnel interfaces (userspace TUN, kernel XFRM). */
export interface TunnelInterfaces {
  setTunnelOptions(tunnel: string, o: TunnelOptions): Promise<void>;
  removeTunnel?(tunnel: string): Promise<void>;
}

export function tunnelInterfaces(dp: DataPlane): TunnelInterfaces | undefined {
  return typeof (dp as Partial<TunnelInterfaces>).setTunnelOptions === 'function' ? (dp as unknown as TunnelInterfaces) : undefined;
}
