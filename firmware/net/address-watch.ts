/**
 * Local address changes: the daemon binds one IKE + NAT-T socket pair per
 * concrete local address (udp.ts: Node's dgram has no IP_PKTINFO), so an
 * address that appears after start (a DHCP lease on the WAN port that
 * arrives after the daemon, a renewal with a new address, a LAN address
 * added by hand) is served only once the daemon re-enumerates its
 * interfaces, and one that disappears must release its sockets and stop
 * being used as a source. strongSwan follows RTM_NEWADDR/RTM_DELADDR
 * (kernel-netlink) for the same reason; here the interface list is polled,
 * which costs one getifaddrs() per interval and needs no netlink socket.
 *
 * The watcher only reports a change; what to do with it (re-bind, re-derive
 * tunnel source addresses) is the owner's: the appliance runs its serialised
 * reconcile, the same path as a configuration change.
 */
import { systemInterfaceAddresses } from './udp.js';

export interface AddressWatchOptions {
  /** Poll interval (ms); default 2000. */
  intervalMs?: number;
  /** Current local addresses; default every address of os.networkInterfaces(). */
  read?: () => string[];
  /** Called with the new and the previous address set (sorted) after each change. */
  onChange: (now: string[], before: string[]) => void;
  /** Called when read() throws (the watcher keeps polling). */
  onError?: (e: unknown) => void;
}

export interface AddressWatch {
  /** Poll once now (e.g. when something else says the network changed). */
  check(): void;
  stop(): void;
}

export function watchLocalAddresses(opts: AddressWatchOptions): AddressWatch {
  const read = opts.read ?? systemInterfaceAddresses;
  const snapshot = (): string[] => [...new Set(read())].sort();
  let last = snapshot();
  let stopped = false;
  const check = (): void => {
    if (stopped) return;
    let now: string[];
    try {
      now = snapshot();
    } catch (e) {
      opts.onError?.(e);
      return;
    }
    if (now.length === last.length && now.every((a, i) => a === last[i])) return;
    const before = last;
    last = now;
    opts.onChange(now, before);
  };
  const timer = setInterval(check, opts.intervalMs ?? 2000);
  // Never keeps the process alive on its own.
  timer.unref();
  return {
    check,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
