/**
 * The kernel (XFRM) data plane: see xfrm.ts. `createKernelDataPlane` wires it
 * to iproute2 and the pqtun addon's setUdpEncap for the daemon.
 */
import { setUdpEncap } from '../tun/tun.js';
import { LinuxXfrmSystem } from './system.js';
import { XfrmDataPlane, type XfrmDataPlaneOptions } from './xfrm.js';

export { XfrmDataPlane, type XfrmDataPlaneOptions } from './xfrm.js';
export { XfrmError, xfrmCrypto } from './algorithms.js';
export { probeKernelXfrm, type XfrmProbe } from './probe.js';
export { LinuxXfrmSystem, IprouteRunner, type IpRunner, type XfrmSystem } from './system.js';

/** The XFRM data plane on this machine's kernel (or in network namespace `netns`). */
export function createKernelDataPlane(opts: Omit<XfrmDataPlaneOptions, 'system'> & { ipPath?: string; netns?: string } = {}): XfrmDataPlane {
  const { ipPath, netns, ...rest } = opts;
  const system = new LinuxXfrmSystem({ ...(ipPath ? { ipPath } : {}), ...(netns ? { netns } : {}), setUdpEncap: (fd, type) => setUdpEncap(fd, type) });
  return new XfrmDataPlane({ ...rest, system });
}
