/**
 * The sans-IO IKEv2 engine (boringtun / strongSwan charon roles in one
 * object): datagrams, time and commands in; datagrams, Child SA installs,
 * key log lines and events out. Owns the SA tables (demux by SPI, RFC 7296
 * §2.6 cookies for IKE_SA_INIT under load), tunnel configuration, always-on
 * re-initiation and the status view.
 */
import type { TunnelConfig } from '../config/types.js';
import type { Endpoint } from '../dataplane/types.js';
import { hex, equal, u16be, wipe } from '../util/bytes.js';
import { ExchangeType, KeMethodName, Notify, PayloadType, NATT_PORT, IKE_PORT } from './constants.js';
import type { IkeHeader, KePayload, Message, SaPayload } from './codec/types.js';
import { decodeHeaderOnly, decodePlain, encodePlain, InvalidMajorVersionError } from './codec/index.js';
import type { Action, Command, EngineApi, IkeSaStatus } from './engine-types.js';
import type { Ctx, EngineOptions, RetransmitPolicy } from './context.js';
import { IkeSa, spiIsZero } from './ike-sa.js';
import { formatIkev2DecryptionTableLine } from './sa/keymat.js';
import { parseProposalsCached } from './proposals-cache.js';
import { startInitiator, respondInit, selectInit, type InitHooks } from './exchanges/ike-init.js';
import { startAuth, registerAuthResponder, type AuthHooks } from './exchanges/ike-auth.js';
import { registerInformational, deleteIke, teardown, liveness } from './exchanges/informational.js';
import { registerCreateChild, rekeyChild, rekeyIke } from './exchanges/create-child.js';
import { installLifecycle, scheduleIkeLifetime, type LifecycleHooks } from './exchanges/lifecycle.js';
import { notify, findNotify, requirePayload, ProtocolError, notifyName } from './payload-util.js';
import { ikeSaStatus } from './status.js';
import { Admission, encodeCookieReply, scanInitRequest, type AdmissionStatus } from './admission.js';
import { trapPolicies, wantsTrap } from './traps.js';
import type { PolicySpec } from '../dataplane/types.js';
import { DeadlineIndex } from './deadlines.js';

const DEFAULT_RETRANSMIT: RetransmitPolicy = { timeout: 4000, base: 1.8, tries: 5, maxTimeout: 60_000 };

interface RetryState {
  at: number;
  delay: number;
}

export class Engine implements EngineApi {
  private readonly ctx: Ctx;
  private out: Action[] = [];
  private tunnels = new Map<string, TunnelConfig>();
  private readonly ifIds = new Map<string, number>();
  private readonly byOurSpi = new Map<string, IkeSa>();
  private readonly halfOpen = new Map<string, IkeSa>();
  private readonly espSpis = new Set<number>();
  private reqid = 0;
  private readonly retry = new Map<string, RetryState>();
  /** Installed trap policies per tunnel (traps.ts). */
  private readonly traps = new Map<string, PolicySpec[]>();
  /** Tunnels the operator took down: no automatic re-initiation. */
  private readonly adminDown = new Set<string>();
  /** IKE_SA_INIT admission: cookies, per-source and global half-open limits (admission.ts). */
  private readonly admission: Admission;
  private readonly retryDelay: number;
  private readonly maxRetryDelay: number;
  private readonly initHooks: InitHooks;
  private readonly authHooks: AuthHooks;
  private readonly lifeHooks: LifecycleHooks;
  /** Each SA's next deadline, kept up to date for the SAs an entry point touched (deadlines.ts). */
  private readonly deadlines = new DeadlineIndex();
  /** Counters for status/metrics. */
  readonly stats = { cookiesSent: 0, invalidKeSent: 0, noProposal: 0, droppedMalformed: 0, halfOpenRefused: 0, internalErrors: 0 };

  constructor(opts: EngineOptions) {
    const rt = { ...DEFAULT_RETRANSMIT, ...(opts.retransmit ?? {}) };
    this.ctx = {
      clock: opts.clock,
      wallClock: opts.wallClock ?? (() => new Date()),
      rng: opts.rng,
      opts: {
        ikePort: opts.ikePort ?? IKE_PORT,
        nattPort: opts.nattPort ?? NATT_PORT,
        forceEncap: opts.forceEncap ?? false,
        halfOpenTimeout: opts.halfOpenTimeout ?? 30_000,
        dataPlaneActivity: opts.dataPlaneActivity ?? false,
        retransmit: rt,
      },
      emit: (a) => {
        this.out.push(a);
        // A Child SA of a trapped tunnel is up: the trap has done its job.
        if (a.kind === 'install-child') this.untrap(a.tunnel);
      },
      log: (level, message, tunnel, ikeSa) => this.out.push({ kind: 'event', level, message, tunnel, ikeSa }),
      allocateEspSpi: () => {
        for (;;) {
          const b = opts.rng.bytes(4);
          const spi = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
          if (spi < 256 || this.espSpis.has(spi)) continue; // RFC 4303 §2.1: 1..255 reserved
          this.espSpis.add(spi);
          return spi;
        }
      },
      releaseEspSpi: (spi) => void this.espSpis.delete(spi),
      nextReqid: () => ++this.reqid,
      ifIdFor: (name) => {
        const t = this.tunnels.get(name);
        if (!t || t.mode !== 'route') return 0;
        let id = this.ifIds.get(name);
        if (id === undefined) {
          id = this.ifIds.size + 1;
          this.ifIds.set(name, id);
        }
        return id;
      },
    };
    this.admission = new Admission(opts.rng, opts.clock.now(), {
      cookieThreshold: opts.cookieThreshold,
      cookieThresholdIp: opts.cookieThresholdIp,
      blockThreshold: opts.halfOpenPerSource,
      initLimitHalfOpen: opts.halfOpenLimit,
      cookieSecretLifetime: opts.cookieSecretLifetime,
      cookieGrace: opts.cookieGrace,
    });
    this.retryDelay = opts.retryDelay ?? 2_000;
    this.maxRetryDelay = opts.maxRetryDelay ?? 60_000;
    this.initHooks = { keysFinal: (sa) => this.onKeysFinal(sa) };
    this.lifeHooks = this.makeLifeHooks();
    this.authHooks = {
      established: (sa) => {
        this.retry.delete(sa.tunnel.name);
        this.dropHalfOpen(sa);
        sa.lastInboundAt = this.ctx.clock.now();
        scheduleIkeLifetime(sa);
      },
      initialContact: (sa) => {
        // RFC 7296 §2.4: the peer lost all state; our other SAs with it are stale.
        for (const other of this.byOurSpi.values()) {
          if (other !== sa && other.tunnel.name === sa.tunnel.name && other.remoteIdText === sa.remoteIdText && other.state === 'ESTABLISHED') {
            other.log('info', 'INITIAL_CONTACT from peer: removing stale IKE SA');
            teardown(other);
          }
        }
      },
    };
  }

  private makeLifeHooks(): LifecycleHooks {
    return {
      newIkeSpi: () => this.newIkeSpi(),
      spawnIkeSa: (old, role, spiI, spiR) => {
        const sa = new IkeSa(this.ctx, old.tunnel, role, spiI, spiR, old.local, old.remote);
        this.register(sa);
        this.equip(sa);
        return sa;
      },
      rekeyedIke: (sa) => {
        this.keylogIke(sa);
        scheduleIkeLifetime(sa);
      },
      peerDead: (sa) => this.peerDead(sa),
    };
  }

  /** Handlers every IKE SA needs once it can be established. */
  private equip(sa: IkeSa): void {
    registerInformational(sa);
    registerCreateChild(sa, this.lifeHooks);
    installLifecycle(sa, this.lifeHooks);
  }

  private drain(): Action[] {
    const a = this.out;
    this.out = [];
    return a;
  }

  // ---------------------------------------------------------------- config & commands

  loadConfig(tunnels: TunnelConfig[]): Action[] {
    this.deadlines.invalidateAll();
    const next = new Map(tunnels.map((t) => [t.name, t]));
    for (const [name, old] of this.tunnels) {
      const nt = next.get(name);
      if (!nt || JSON.stringify(serializable(nt)) !== JSON.stringify(serializable(old))) {
        this.untrap(name);
        for (const sa of this.sasOf(name)) deleteIke(sa, nt ? 'configuration changed' : 'tunnel removed');
        this.retry.delete(name);
        if (!nt) this.ifIds.delete(name);
      }
    }
    const prev = this.tunnels;
    this.tunnels = next;
    for (const t of tunnels) {
      const old = prev.get(t.name);
      const changed = !old || JSON.stringify(serializable(old)) !== JSON.stringify(serializable(t));
      // Re-point live SAs at the new object (identical content) so status stays coherent.
      if (!changed) for (const sa of this.sasOf(t.name)) sa.tunnel = t;
      if (changed && t.startAction === 'start' && !this.adminDown.has(t.name)) this.initiate(t);
      if (changed && t.startAction === 'trap' && !this.adminDown.has(t.name) && this.sasOf(t.name).length === 0) this.trap(t);
    }
    return this.drain();
  }

  private trap(t: TunnelConfig): void {
    if (this.traps.has(t.name) || !t.remoteAddr) return;
    const policies = trapPolicies(t, this.ctx, this.ctx.nextReqid());
    this.traps.set(t.name, policies);
    this.ctx.log('info', 'trap installed: the first packet for the tunnel will initiate it', t.name);
    this.ctx.emit({ kind: 'trap', tunnel: t.name, install: true, policies });
  }

  private untrap(name: string): void {
    const policies = this.traps.get(name);
    if (!policies) return;
    this.traps.delete(name);
    this.out.push({ kind: 'trap', tunnel: name, install: false, policies });
  }

  command(cmd: Command): Action[] {
    // `up` only creates an IKE SA (registered, hence indexed); the others may change any SA of the tunnel.
    if (cmd.kind !== 'up') this.deadlines.invalidateAll();
    const t = this.tunnels.get(cmd.tunnel);
    if (!t) {
      this.ctx.log('error', `no such tunnel '${cmd.tunnel}'`);
      return this.drain();
    }
    switch (cmd.kind) {
      case 'up':
        this.adminDown.delete(t.name);
        if (!this.sasOf(t.name).some((s) => s.isInitiator || s.state === 'ESTABLISHED')) this.initiate(t);
        break;
      case 'down': {
        // One IKE SA (a responder tunnel may have several peers), or the whole tunnel.
        const sas = this.sasOf(t.name).filter((s) => cmd.sa === undefined || s.uid === cmd.sa);
        if (cmd.sa === undefined) {
          this.adminDown.add(t.name);
          this.retry.delete(t.name);
          this.untrap(t.name);
        } else if (sas.length === 0) this.ctx.log('error', `no IKE SA #${cmd.sa} in tunnel '${t.name}'`, t.name);
        for (const sa of sas) deleteIke(sa, 'operator request');
        break;
      }
      case 'dpd':
        for (const sa of this.sasOf(t.name)) if (sa.state === 'ESTABLISHED' && (cmd.sa === undefined || sa.uid === cmd.sa)) liveness(sa, () => this.peerDead(sa));
        break;
      case 'rekey-ike':
        for (const sa of this.sasOf(t.name)) if (sa.state === 'ESTABLISHED' && !sa.successor && (cmd.sa === undefined || sa.uid === cmd.sa)) rekeyIke(sa, this.lifeHooks);
        break;
      case 'rekey-child':
        for (const sa of this.sasOf(t.name)) {
          if (sa.state !== 'ESTABLISHED' || sa.successor || (cmd.sa !== undefined && sa.uid !== cmd.sa)) continue;
          for (const c of [...sa.children]) if (cmd.child === undefined || c.reqid === cmd.child) rekeyChild(sa, c);
        }
        break;
    }
    return this.drain();
  }

  private peerDead(sa: IkeSa): void {
    sa.log('warn', 'liveness check failed: peer is dead');
    sa.lastError = 'peer not responding to liveness checks';
    sa.deadPeer = true;
    teardown(sa);
  }

  private sasOf(name: string): IkeSa[] {
    const out: IkeSa[] = [];
    for (const sa of new Set([...this.byOurSpi.values(), ...this.halfOpen.values()])) if (sa.tunnel.name === name && sa.state !== 'DELETED' && sa.state !== 'FAILED') out.push(sa);
    return out;
  }

  private initiate(t: TunnelConfig): void {
    if (!t.remoteAddr) {
      this.ctx.log('error', 'cannot initiate: remote_addr is %any', t.name);
      return;
    }
    const local: Endpoint = { address: t.localAddr ?? (t.remoteAddr.includes(':') ? '::' : '0.0.0.0'), port: this.ctx.opts.ikePort };
    const remote: Endpoint = { address: t.remoteAddr, port: t.remotePort };
    const spiI = this.newIkeSpi();
    const others = this.sasOf(t.name).some((o) => o.state === 'ESTABLISHED');
    const sa = new IkeSa(this.ctx, t, 'initiator', spiI, new Uint8Array(8), local, remote);
    sa.sendInitialContact = !others;
    if (t.remotePort === this.ctx.opts.nattPort || t.remotePort === NATT_PORT) {
      // Starting directly on 4500 (Cloudflare's historic NAT-T mode): marker from the first message.
      sa.local = { address: local.address, port: this.ctx.opts.nattPort };
      sa.floated = true;
    }
    this.register(sa);
    this.equip(sa);
    sa.log('info', `initiating IKE SA to ${remote.address}:${remote.port}`);
    try {
      startInitiator(sa, parseProposalsCached(t.ikeProposals, 'ike'), this.initHooks);
    } catch (e) {
      sa.fail((e as Error).message);
    }
  }

  private newIkeSpi(): Uint8Array {
    for (;;) {
      const spi = this.ctx.rng.bytes(8);
      if (!spiIsZero(spi) && !this.byOurSpi.has(hex(spi))) return spi;
    }
  }

  /** One callback for every SA (not a closure per SA). */
  private readonly onDeadCb = (dead: IkeSa): void => this.onDead(dead);

  private register(sa: IkeSa): void {
    this.byOurSpi.set(hex(sa.ourSpi), sa);
    sa.onDead = this.onDeadCb;
    this.deadlines.touch(sa);
  }

  private onDead(sa: IkeSa): void {
    this.byOurSpi.delete(hex(sa.ourSpi));
    this.deadlines.remove(sa);
    this.dropHalfOpen(sa);
    for (const c of [...sa.children]) {
      sa.ctx.releaseEspSpi(c.spiIn);
      this.ctx.emit({ kind: 'delete-child', tunnel: sa.tunnel.name, inboundSpi: c.spiIn, outboundSpi: c.spiOut, policies: c.policies });
    }
    sa.children = [];
    this.ctx.emit({ kind: 'event', level: 'info', tunnel: sa.tunnel.name, ikeSa: sa.name, message: `IKE SA ${sa.state === 'FAILED' ? 'failed' : 'closed'}: ${sa.state === 'FAILED' ? sa.lastError : (sa.closeReason ?? sa.lastError ?? 'deleted')}` });
    // Always-on (keyingtries 0): an initiator tunnel comes back by itself;
    // after a dead peer the DPD action decides (strongSwan dpd_action).
    const t = this.tunnels.get(sa.tunnel.name);
    const dpdAction = t?.dpdAction ?? (t?.startAction === 'start' ? 'restart' : 'clear');
    // A restart chain (entry in `retry`) keeps going until the tunnel is up again.
    const comesBack = sa.deadPeer ? dpdAction === 'restart' && !!t?.remoteAddr : t?.startAction === 'start' || (!!t && this.retry.has(t.name));
    // dpd_action hold / start_action trap: no re-initiation now, a trap for the first packet instead.
    if (t && t === sa.tunnel && !this.adminDown.has(t.name) && wantsTrap(t, !!sa.deadPeer) && (sa.deadPeer || t.startAction === 'trap') && this.sasOf(t.name).length === 0) {
      if (sa.deadPeer) sa.log('info', 'dpd_action hold: SAs removed, trap waits for traffic');
      this.trap(t);
      return;
    }
    if (t && t === sa.tunnel && comesBack && !this.adminDown.has(t.name) && this.tunnels.has(t.name)) {
      const others = this.sasOf(t.name);
      if (others.length === 0) {
        const prev = this.retry.get(t.name);
        const failed = sa.state === 'FAILED' || sa.establishedAt === null;
        const delay = failed ? Math.min(prev ? prev.delay * 2 : this.retryDelay, this.maxRetryDelay) : 0;
        // Jitter (±20 %) so a hub's branches do not re-initiate in lockstep.
        const jitter = delay ? Math.floor(delay * 0.2 * (this.ctx.rng.bytes(1)[0]! / 255 - 0.5) * 2) : 0;
        this.retry.set(t.name, { at: this.ctx.clock.now() + delay + jitter, delay: delay || this.retryDelay / 2 });
      }
    }
  }

  private dropHalfOpen(sa: IkeSa): void {
    const key = sa.halfOpenKey;
    if (key && this.halfOpen.get(key) === sa) {
      this.halfOpen.delete(key);
      // Counted under the address the request came from (the key's), not sa.remote: that may have floated.
      this.admission.closed(key.split('|')[1]!);
    }
    sa.halfOpenKey = undefined;
  }

  private onKeysFinal(sa: IkeSa): void {
    this.keylogIke(sa);
    if (sa.isInitiator) startAuth(sa, this.authHooks);
  }

  private keylogIke(sa: IkeSa): void {
    const k = sa.keys!;
    const args = {
      spiI: sa.spiI.slice(),
      spiR: sa.spiR.slice(),
      skEi: k.skEi.slice(),
      skEr: k.skEr.slice(),
      encrId: sa.encr!.id,
      encrKeyBits: sa.encr!.keySize * 8,
      skAi: k.skAi.slice(),
      skAr: k.skAr.slice(),
      integId: sa.integ?.id ?? 0,
    };
    // Formatted only if the daemon has a key log to write it to (a getter):
    // hex-formatting keys on every handshake is measurable at hub scale.
    this.ctx.emit({
      kind: 'keylog',
      table: 'ikev2_decryption_table',
      get line() {
        return formatIkev2DecryptionTableLine(args);
      },
      dispose() {
        wipe(args.skEi, args.skEr, args.skAi, args.skAr);
      },
    });
  }

  // ---------------------------------------------------------------- datagrams

  receive(data: Uint8Array, from: Endpoint, to: Endpoint): Action[] {
    try {
      this.receiveInner(data, from, to);
    } catch (e) {
      this.deadlines.invalidateAll();
      // A bug, never a protocol condition: count it, keep serving the others.
      this.stats.internalErrors++;
      this.ctx.log('error', `internal error on datagram from ${from.address}:${from.port}: ${(e as Error).stack ?? e}`);
    }
    return this.drain();
  }

  private receiveInner(data: Uint8Array, from: Endpoint, to: Endpoint): void {
    let header: IkeHeader;
    try {
      header = decodeHeaderOnly(data);
    } catch (e) {
      if (e instanceof InvalidMajorVersionError && e.majorVersion > 2 && !e.header.response && e.header.exchange === ExchangeType.IKE_SA_INIT) {
        // RFC 7296 §2.5: answer with our version and INVALID_MAJOR_VERSION (unauthenticated, stateless).
        this.sendStateless({ ...e.header, nextPayload: 0, majorVersion: 2, minorVersion: 0, length: 0 }, from, to, [notify(Notify.INVALID_MAJOR_VERSION)]);
        return;
      }
      this.stats.droppedMalformed++;
      this.ctx.log('debug', `dropping malformed IKE datagram from ${from.address}:${from.port}: ${(e as Error).message}`);
      return;
    }
    if (header.exchange === ExchangeType.IKE_SA_INIT && !header.response && spiIsZero(header.spiR)) {
      this.onInitRequest(data, header, from, to);
      return;
    }
    this.deadlines.touchFor(this.byOurSpi.get(hex(header.initiator ? header.spiR : header.spiI)), header.exchange);
    // Our SPI: the responder's for messages from the original initiator.
    const ours = header.initiator ? header.spiR : header.spiI;
    const sa = this.byOurSpi.get(hex(ours));
    if (!sa || !equal(header.initiator ? sa.spiI : sa.spiR, header.initiator ? header.spiI : header.spiR)) {
      // IKE_SA_INIT responses carry the responder's new SPI: match on SPIi alone.
      if (sa && header.exchange === ExchangeType.IKE_SA_INIT && header.response && sa.isInitiator) {
        sa.receive(data, header, from, to);
      } else {
        this.ctx.log('debug', `no IKE SA for SPIs ${hex(header.spiI)}_${hex(header.spiR)} from ${from.address}:${from.port}`);
      }
      return;
    }
    sa.receive(data, header, from, to);
  }

  private sendStateless(header: IkeHeader, from: Endpoint, to: Endpoint, payloads: Message['payloads']): void {
    const msg: Message = {
      spiI: header.spiI,
      spiR: new Uint8Array(8),
      exchange: ExchangeType.IKE_SA_INIT,
      response: true,
      initiator: false,
      messageId: 0,
      encrypted: false,
      payloads,
    };
    this.ctx.emit({ kind: 'send', from: to, to: from, data: encodePlain(msg) });
  }

  private decodeInit(data: Uint8Array, from: Endpoint, header: IkeHeader): ReturnType<typeof decodePlain> | undefined {
    try {
      return decodePlain(data, { header });
    } catch (e) {
      this.stats.droppedMalformed++;
      this.ctx.log('debug', `dropping malformed IKE_SA_INIT from ${from.address}: ${(e as Error).message}`);
      return undefined;
    }
  }

  private onInitRequest(data: Uint8Array, header: IkeHeader, from: Endpoint, to: Endpoint): void {
    const key = `${hex(header.spiI)}|${from.address}|${from.port}`;
    const existing = this.halfOpen.get(key);
    if (existing) {
      this.deadlines.touch(existing);
      existing.receive(data, header, from, to); // retransmission: cached response
      return;
    }
    if (header.messageId !== 0) return;
    // Admission before anything costly (admission.ts): under load no DH/ML-KEM, no state and not even
    // a full decode without a valid cookie. The payload scan only finds Nonce and COOKIE; anything it
    // does not like goes through the strict decoder, which reports it.
    let msg: ReturnType<typeof decodePlain> | undefined;
    let scan = scanInitRequest(data);
    if (!scan) {
      msg = this.decodeInit(data, from, header);
      if (!msg) return;
      const n = msg.payloads.find((p) => p.type === PayloadType.NONCE) as { data: Uint8Array } | undefined;
      if (!n) return; // RFC 7296 §2.21.1: no response to a broken IKE_SA_INIT
      scan = { nonce: n.data, cookie: findNotify(msg, Notify.COOKIE)?.data };
    }
    const verdict = this.admission.check(this.ctx.clock.now(), scan.nonce, from.address, header.spiI, scan.cookie);
    if (verdict.kind === 'cookie') {
      this.stats.cookiesSent++;
      this.ctx.emit({ kind: 'send', from: to, to: from, data: encodeCookieReply(header.spiI, verdict.cookie) });
      return;
    }
    if (verdict.kind === 'drop') {
      this.stats.halfOpenRefused++;
      this.ctx.log('debug', `dropping IKE_SA_INIT from ${from.address}: ${verdict.reason === 'blocked' ? 'block_threshold' : 'init_limit_half_open'} reached`);
      return;
    }
    msg ??= this.decodeInit(data, from, header);
    if (!msg) return;
    const candidates = [...this.tunnels.values()].filter((t) => (!t.remoteAddr || t.remoteAddr === from.address) && (!t.localAddr || t.localAddr === to.address));
    if (candidates.length === 0) {
      this.ctx.log('info', `no tunnel configured for ${to.address}...${from.address}, sending NO_PROPOSAL_CHOSEN`);
      this.stats.noProposal++;
      this.sendStateless(header, from, to, [notify(Notify.NO_PROPOSAL_CHOSEN)]);
      return;
    }
    let saP: SaPayload;
    let keP: KePayload;
    try {
      saP = requirePayload<SaPayload>(msg, PayloadType.SA, 'SA');
      keP = requirePayload<KePayload>(msg, PayloadType.KE, 'KE');
    } catch {
      return;
    }
    const peerIntermediate = !!findNotify(msg, Notify.INTERMEDIATE_EXCHANGE_SUPPORTED);
    let invalidKe: number | undefined;
    let picked: { tunnel: TunnelConfig; sel: { chosen: import('./sa/proposal.js').ChosenAlgorithms; proposal: import('./codec/types.js').Proposal } } | undefined;
    for (const t of candidates) {
      const r = selectInit(saP.proposals, parseProposalsCached(t.ikeProposals, 'ike'), keP.method);
      if ('ok' in r) {
        // RFC 9370 §2.2.2: additional key exchanges need IKE_INTERMEDIATE support.
        if (r.ok.chosen.addKe.length > 0 && !peerIntermediate) continue;
        picked = { tunnel: t, sel: r.ok };
        break;
      }
      if ('invalidKe' in r && invalidKe === undefined) invalidKe = r.invalidKe;
    }
    if (!picked) {
      if (invalidKe !== undefined) {
        this.stats.invalidKeSent++;
        this.ctx.log('info', `peer ${from.address} sent KE ${KeMethodName[keP.method] ?? keP.method}, requesting ${KeMethodName[invalidKe] ?? invalidKe}`);
        this.sendStateless(header, from, to, [notify(Notify.INVALID_KE_PAYLOAD, u16be(invalidKe))]);
      } else {
        this.stats.noProposal++;
        this.ctx.log('info', `no acceptable IKE proposal from ${from.address}, sending NO_PROPOSAL_CHOSEN`);
        this.sendStateless(header, from, to, [notify(Notify.NO_PROPOSAL_CHOSEN)]);
      }
      return;
    }
    const sa = new IkeSa(this.ctx, picked.tunnel, 'responder', header.spiI.slice(), this.newIkeSpi(), to, from);
    // One candidate (the usual case) is the picked tunnel: the list is [picked]
    // whatever selectProposal1 says, so the second proposal selection is skipped.
    sa.candidates = candidates.length === 1 && candidates[0] === picked.tunnel ? [picked.tunnel] : candidates.filter((t) => selectProposal1(saP, t, picked!.sel.chosen));
    if (!sa.candidates.includes(picked.tunnel)) sa.candidates.unshift(picked.tunnel);
    try {
      respondInit(sa, msg, data, picked.sel, this.initHooks);
    } catch (e) {
      if (e instanceof ProtocolError) {
        this.ctx.log('info', `IKE_SA_INIT from ${from.address} refused: ${e.message}`);
        this.sendStateless(header, from, to, [notify(e.notifyType, e.data)]);
      } else {
        this.ctx.log('error', `IKE_SA_INIT from ${from.address} failed: ${(e as Error).message}`);
      }
      sa.destroy();
      return;
    }
    this.register(sa);
    registerAuthResponder(sa, this.authHooks);
    this.equip(sa);
    sa.halfOpenKey = key;
    this.halfOpen.set(key, sa);
    this.admission.opened(from.address);
    sa.log('info', `responding to IKE_SA_INIT from ${from.address}:${from.port} (${sa.keMethods.map((m) => KeMethodName[m]).join(' + ')}${picked.sel.chosen.addKe.length ? ' + ' + picked.sel.chosen.addKe.map((m) => KeMethodName[m]).join(' + ') : ''})`);
  }

  // ---------------------------------------------------------------- timers

  tick(): Action[] {
    this.deadlines.invalidateAll();
    const now = this.ctx.clock.now();
    for (const sa of [...this.byOurSpi.values()]) {
      const d = sa.nextDeadline();
      if (d !== undefined && d <= now) sa.onTimer(now);
    }
    for (const [name, r] of [...this.retry]) {
      if (r.at > now) continue;
      this.retry.set(name, { at: Number.POSITIVE_INFINITY, delay: r.delay });
      const t = this.tunnels.get(name);
      if (t && !this.adminDown.has(name) && this.sasOf(name).length === 0) this.initiate(t);
    }
    return this.drain();
  }

  nextTimer(): number | undefined {
    let next = this.deadlines.earliest(this.byOurSpi.values());
    for (const r of this.retry.values()) if (Number.isFinite(r.at) && (next === undefined || r.at < next)) next = r.at;
    return next;
  }

  activity(ikeSa: number, lastInboundAt: number | undefined): Action[] {
    for (const sa of this.byOurSpi.values()) if (sa.uid === ikeSa && sa.alive) sa.lifecycle?.activity(lastInboundAt, this.ctx.clock.now());
    return this.drain();
  }

  // ---------------------------------------------------------------- status

  /** Half-open SAs, cookie and drop counters (status.admission, metrics). */
  admissionStatus(): AdmissionStatus {
    return this.admission.status();
  }

  hasInstalledChild(tunnel: string): boolean {
    for (const sa of this.byOurSpi.values())
      if (sa.tunnel.name === tunnel && sa.state === 'ESTABLISHED' && sa.children.some((c) => c.state === 'INSTALLED' || c.state === 'REKEYING')) return true;
    return false;
  }

  status(): IkeSaStatus[] {
    const out: IkeSaStatus[] = [];
    for (const sa of this.byOurSpi.values()) out.push(ikeSaStatus(sa));
    out.sort((a, b) => a.tunnel.localeCompare(b.tunnel) || a.id - b.id);
    return out;
  }
}

/** Does tunnel t accept the algorithms chosen for this SA? (responder peer-config switching in IKE_AUTH) */
function selectProposal1(saP: SaPayload, t: TunnelConfig, chosen: import('./sa/proposal.js').ChosenAlgorithms): boolean {
  const r = selectInit(saP.proposals, parseProposalsCached(t.ikeProposals, 'ike'), chosen.ke ?? 0);
  return 'ok' in r && sameChosen(r.ok.chosen, chosen);
}

/** Field-by-field equality of two selections (what JSON.stringify equality meant, without the strings). */
function sameChosen(a: import('./sa/proposal.js').ChosenAlgorithms, b: import('./sa/proposal.js').ChosenAlgorithms): boolean {
  return (
    a.encr.id === b.encr.id &&
    a.encr.keyLength === b.encr.keyLength &&
    a.prf === b.prf &&
    a.integ === b.integ &&
    a.ke === b.ke &&
    a.esn === b.esn &&
    a.addKe.length === b.addKe.length &&
    a.addKe.every((m, i) => m === b.addKe[i])
  );
}

function serializable(t: TunnelConfig): unknown {
  return { ...t, psk: hex(t.psk), localId: t.localId.text, remoteId: t.remoteId?.text };
}

export { notifyName };
