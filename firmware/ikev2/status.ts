/** The status view of an IKE SA and its Child SAs (pqgate status, the web admin). */
import type { ChildSaStatus, IkeSaStatus } from './engine-types.js';
import type { IkeSa } from './ike-sa.js';
import { KeMethodName } from './constants.js';
import { hex } from '../util/bytes.js';
import { encrName, prfName, integName, keInfo } from '../crypto/registry.js';
import { formatTs } from './sa/ts.js';
import { spiToHex } from './child-sa.js';

export function ikeSaStatus(sa: IkeSa): IkeSaStatus {
  const kes = sa.chosen ? sa.keMethods.map((m) => KeMethodName[m] ?? String(m)) : [];
  const pq = sa.keMethods.filter((m) => keInfo(m).postQuantum).map((m) => KeMethodName[m] ?? String(m));
  const children: ChildSaStatus[] = sa.children.map((c) => ({
    name: c.name,
    state: c.state,
    reqid: c.reqid,
    spiIn: spiToHex(c.spiIn),
    spiOut: spiToHex(c.spiOut),
    encr: c.encrName,
    integ: c.integName,
    keyExchanges: c.keMethods.map((m) => KeMethodName[m] ?? String(m)),
    esn: c.esn,
    localTs: c.tsLocal.map(formatTs),
    remoteTs: c.tsRemote.map(formatTs),
    encap: c.encap,
    installedAt: c.installedAt,
    rekeyAt: c.rekeyAt ?? null,
    rekeys: c.rekeys,
  }));
  return {
    tunnel: sa.tunnel.name,
    id: sa.uid,
    state: sa.state,
    role: sa.role,
    local: { ...sa.local },
    remote: { ...sa.remote },
    spiI: hex(sa.spiI),
    spiR: hex(sa.spiR),
    localId: sa.localIdText,
    remoteId: sa.remoteIdText,
    encr: sa.encr ? encrName(sa.encr.id, sa.encr.keySize * 8) : null,
    prf: sa.prf ? prfName(sa.prf.id) : null,
    integ: sa.integ ? integName(sa.integ.id) : null,
    keyExchanges: kes,
    postQuantum: pq.length ? pq.join(' + ') : null,
    authLocal: sa.state === 'ESTABLISHED' ? (sa.tunnel.auth === 'psk' ? 'psk' : (sa.localAuthScheme ?? null)) : null,
    authRemote: sa.state === 'ESTABLISHED' ? (sa.tunnel.auth === 'psk' ? 'psk' : (sa.remoteAuthScheme ?? null)) : null,
    fragmentation: sa.fragmentation,
    natLocal: sa.natLocal,
    natRemote: sa.natRemote,
    encap: sa.encap,
    establishedAt: sa.establishedAt,
    rekeyAt: sa.rekeyAt ?? null,
    rekeys: sa.rekeys,
    lastError: sa.lastError,
    drops: { ...sa.drops },
    children,
  };
}
