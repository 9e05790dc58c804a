/**
 * A layer-3 packet device as the data plane sees it (wireguard-go's
 * tun.Device): batches of bare IP packets in both directions. Implemented by
 * the kernel TUN device (tun.ts) and an in-memory fake (memory.ts).
 */
export interface TunDevice {
  /** Interface name as the kernel knows it. */
  readonly name: string;
  /**
   * Start delivering packets the host routed into the device. `pkts[0..count)`
   * are views of buffers that are reused once the callback returns: consume
   * or copy them synchronously.
   */
  start(onPackets: (pkts: Uint8Array[], count: number) => void): void;
  /** Hand packets to the host's IP stack. The device does not keep references. */
  write(pkts: Uint8Array[], count: number): void;
  /** Stop reading and release the device (a non-persistent TUN disappears). */
  close(): void;
}
