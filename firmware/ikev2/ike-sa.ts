/**
 * One IKE SA: its keys, message-ID windows, the single outstanding request
 * with its retransmission schedule (RFC 7296 §2.1, §2.3: window size 1), the
 * cached last response for retransmitted requests, fragment reassembly
 * (RFC 7383) and endpoint floating (RFC 7296 §2.23, RFC 3948).
 *
 * Exchanges (ike-init, ike-auth, informational) queue requests here and
 * register request handlers; this class never decides protocol content.
 */
import type { Endpoint } from '../dataplane/types.js';
import type { TunnelConfig } from '../config/types.js';
import type { Prf, SkCipher, EncrInfo, IntegInfo, KeyExchange } from '../crypto/types.js';
import { createKeyExchange, createSkCipher } from '../crypto/registry.js';
import { sha256 } from '../crypto/hash.js';
import { hex, equal, wipe } from '../util/bytes.js';
import { ExchangeType, IKE_HEADER_LEN, NotifyName } from './constants.js';

/** Grace period for unauthenticated IKE_SA_INIT error responses (RFC 7296 §2.21.1). */
const INIT_ERROR_GRACE_MS = 1500;
import type { DecodedMessage, IkeHeader, Message, Payload } from './codec/types.js';
import { encodePlain, encodeProtected, decodePlain, decodeProtected, Reassembler, isAuthenticatedError, UnsupportedCriticalPayloadError, AuthTagError } from './codec/index.js';
import type { Ctx } from './context.js';
import type { ChosenAlgorithms } from './sa/proposal.js';
import type { IkeKeys } from './sa/keymat.js';
import type { ChildSa } from './child-sa.js';

export type IkeState =
  | 'CONNECTING'
  | 'INTERMEDIATE'
  | 'AUTHENTICATING'
  | 'ESTABLISHED'
  | 'DELETING'
  | 'DELETED'
  | 'FAILED';

export interface RequestSpec {
  exchange: number;
  /** Called at dispatch time with the message ID, so AUTH can cover it (RFC 9242 §3.3.2). */
  build(mid: number): Payload[];
  onResponse(msg: DecodedMessage, sent: SentInfo): void;
  /** Retransmissions exhausted. */
  onTimeout?(): void;
  /** Sent in the clear (IKE_SA_INIT only). */
  plain?: boolean;
}

export interface SentInfo {
  mid: number;
  /** RFC 9242 IntAuth_A / IntAuth_P of the request as sent. */
  intAuthA?: Uint8Array;
  intAuthP?: Uint8Array;
  /** Raw request bytes (plain messages: the RealMessage for AUTH). */
  raw?: Uint8Array;
}

interface Outstanding {
  spec: RequestSpec;
  sent: SentInfo;
  datagrams: Uint8Array[];
  from: Endpoint;
  to: Endpoint;
  retries: number;
  deadline: number;
}

interface CachedResponse {
  mid: number;
  /** SHA-256 of the request's first datagram: a retransmission is byte-identical. */
  requestHash: string;
  datagrams: Uint8Array[];
}

export type RequestHandler = (sa: IkeSa, msg: DecodedMessage) => void;

let nextSaId = 1;

const FIRST_EXCHANGE = ExchangeType.IKE_SA_INIT;
const LAST_EXCHANGE = ExchangeType.IKE_FOLLOWUP_KE;

/** Shared stand-ins for released per-SA state (never written to: zero length). */
const NO_BYTES = new Uint8Array(0);
const NO_CANDIDATES: TunnelConfig[] = [];

function sha256hex(b: Uint8Array): string {
  return hex(sha256(b));
}

export class IkeSa {
  readonly uid = nextSaId++;
  state: IkeState = 'CONNECTING';
  readonly role: 'initiator' | 'responder';
  tunnel: TunnelConfig;
  /** Responder before IKE_AUTH: the tunnels that could still match by identity. */
  candidates: TunnelConfig[] = [];
  spiI: Uint8Array;
  spiR: Uint8Array;
  local: Endpoint;
  remote: Endpoint;

  // negotiated
  chosen: ChosenAlgorithms | undefined;
  prf: Prf | undefined;
  encr: EncrInfo | undefined;
  integ: IntegInfo | undefined;
  keys: IkeKeys | undefined;
  private cipherIn: SkCipher | undefined;
  private cipherOut: SkCipher | undefined;
  private ivCounter = 0;
  /** Every key exchange method used, in order (status: ["CURVE_25519","ML_KEM_768"]). */
  keMethods: number[] = [];

  // IKE_SA_INIT state
  ni: Uint8Array | undefined;
  nr: Uint8Array | undefined;
  ke: KeyExchange | undefined;
  cookie: Uint8Array | undefined;
  initRetries = 0;
  initRequest: Uint8Array | undefined; // RealMessage1
  initResponse: Uint8Array | undefined; // RealMessage2
  /** draft-ietf-ipsecme-ikev2-downgrade-prevention §6 octets in use (both notifies exchanged). */
  fullTranscript = false;

  // RFC 9242 IntAuth chains and IKE_INTERMEDIATE progress
  intAuthI: Uint8Array | undefined;
  intAuthR: Uint8Array | undefined;
  intermediateDone = 0;

  // negotiated extensions
  /** The peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4); undefined if it sent none. */
  peerHashes: number[] | undefined;
  /** Signature schemes used in IKE_AUTH (status), when certificates were used. */
  localAuthScheme: string | undefined;
  remoteAuthScheme: string | undefined;
  /** The peer sent CERTREQ (it wants our certificate chain). */
  peerCertReq = false;
  fragmentation = false;
  peerFragmentation = false;
  intermediateSupported = false;
  natLocal = false;
  natRemote = false;
  /** Encapsulate ESP in UDP (NAT on either side, or forced). */
  encap = false;
  floated = false;

  localIdText: string | null = null;
  remoteIdText: string | null = null;
  establishedAt: number | null = null;
  readonly createdAt: number;
  lastError: string | null = null;
  /** Removed because the peer failed a liveness check (DPD action applies). */
  deadPeer = false;
  /** Why the SA went away (deleted, rekeyed, expired...), for the closing event. */
  closeReason: string | undefined;
  /** Send INITIAL_CONTACT in IKE_AUTH: only when no other IKE SA with this peer exists (RFC 7296 §2.4). */
  sendInitialContact = true;
  /** Engine bookkeeping: key in the half-open table while not yet established. */
  halfOpenKey: string | undefined;

  children: ChildSa[] = [];

  // lifecycle (RFC 7296 §2.8) and liveness (§2.4)
  rekeyAt: number | undefined;
  expireAt: number | undefined;
  /** Rekey generation of this IKE SA lineage. */
  rekeys = 0;
  /** Our CREATE_CHILD_SA rekey of this IKE SA is in flight (collision detection, RFC 7296 §2.8.2). */
  rekeyingIke: { nonces: Uint8Array[]; result?: IkeSa } | undefined;
  /** The peer rekeyed this IKE SA while ours was in flight: that exchange's nonces and (once keyed) its SA. */
  peerIkeRekey: { sa: IkeSa | undefined; nonces: Uint8Array[] } | undefined;
  /** Collision outcome (RFC 7296 §2.8.2): whose new IKE SA survives. */
  ikeCollisionWinner: 'ours' | 'theirs' | undefined;
  /** Replaced by a rekey: the successor to which the Child SAs moved. */
  successor: IkeSa | undefined;
  /** Clock ms of the last authenticated message from the peer. */
  lastInboundAt = 0;
  /** Responder side of IKE_FOLLOWUP_KE: state by link data (RFC 9370 §2.2.4); created on first use (a hub holds thousands of SAs that never rekey). */
  get followups(): Map<string, unknown> {
    return (this.followupMap ??= new Map());
  }
  private followupMap: Map<string, unknown> | undefined;
  /** Lifecycle timers, installed by the engine (rekeys, expiry, DPD). */
  lifecycle: { deadline(): number | undefined; run(now: number): void; activity(at: number | undefined, now: number): void } | undefined;

  /**
   * Inbound messages for this SA dropped without any effect (RFC 7296 §2.21:
   * unauthenticated or out-of-window input is discarded), by reason:
   *   replay      a request or response whose Message ID was already used
   *               (a retransmitted request byte-identical to the last one is
   *               answered from the cache instead and counted in `retransmits`)
   *   auth        ICV / AEAD tag did not verify (bit flips, wrong keys)
   *   malformed   structure wrong before or without authentication (truncated,
   *               bad lengths, SKF without negotiated fragmentation)
   *   unexpected  a Message ID ahead of the window, or a response to nothing
   * Shown in `pqgate status --json` (IkeSaStatus.drops).
   */
  readonly drops = { replay: 0, auth: 0, malformed: 0, unexpected: 0, retransmits: 0 };

  // message IDs (RFC 7296 §2.2)
  nextSendMid = 0;
  nextRecvMid = 0;
  private queue: RequestSpec[] = [];
  private outstanding: Outstanding | undefined;
  private lastResponse: CachedResponse | undefined;
  /** RFC 7383 reassembly, created with the first fragment. */
  private reassembler: Reassembler | undefined;
  /**
   * Request handlers by exchange type (IKE_SA_INIT = 34 ... IKE_FOLLOWUP_KE = 44
   * in slots 0..10): a small array, not a Map (whose table costs a hub
   * ~600 octets per SA).
   */
  private readonly handlers: (RequestHandler | undefined)[] = [];
  /** Invoked once when the SA reaches DELETED or FAILED (engine removes it from its tables). */
  onDead: ((sa: IkeSa) => void) | undefined;

  constructor(
    readonly ctx: Ctx,
    tunnel: TunnelConfig,
    role: 'initiator' | 'responder',
    spiI: Uint8Array,
    spiR: Uint8Array,
    local: Endpoint,
    remote: Endpoint,
  ) {
    this.tunnel = tunnel;
    this.role = role;
    // Both SPIs in one private 16-octet buffer (one allocation per SA, not two).
    const spis = new Uint8Array(16);
    spis.set(spiI, 0);
    spis.set(spiR, 8);
    this.spiI = spis.subarray(0, 8);
    this.spiR = spis.subarray(8, 16);
    this.local = { ...local };
    this.remote = { ...remote };
    this.createdAt = ctx.clock.now();
  }

  /** Not yet established (half-open): bounded by halfOpenTimeout. */
  get negotiating(): boolean {
    return this.state === 'CONNECTING' || this.state === 'INTERMEDIATE' || this.state === 'AUTHENTICATING';
  }

  /**
   * Retransmission schedule: the engine's (strongSwan's retransmit_timeout /
   * _base / _tries), with the tunnel's own timeout and tries if configured
   * (Cisco `dpd <interval> <retries>`, FortiOS dpd-retryinterval/-retrycount):
   * they bound how fast a dead peer is noticed.
   */
  get retransmitPolicy(): import('./context.js').RetransmitPolicy {
    const base = this.ctx.opts.retransmit;
    const t = this.tunnel;
    if (t.retransmitTimeout === undefined && t.retransmitTries === undefined) return base;
    return { ...base, timeout: t.retransmitTimeout !== undefined ? t.retransmitTimeout * 1000 : base.timeout, tries: t.retransmitTries ?? base.tries };
  }

  get alive(): boolean {
    return this.state !== 'DELETED' && this.state !== 'FAILED';
  }

  get isInitiator(): boolean {
    return this.role === 'initiator';
  }

  /** Our own SPI: the table key the engine uses for demux. */
  get ourSpi(): Uint8Array {
    return this.isInitiator ? this.spiI : this.spiR;
  }

  get name(): string {
    return `${hex(this.spiI)}_${hex(this.spiR)}`;
  }

  log(level: 'error' | 'warn' | 'info' | 'debug', msg: string): void {
    this.ctx.log(level, msg, this.tunnel.name, this.name);
  }

  on(exchange: number, h: RequestHandler): void {
    if (!Number.isInteger(exchange) || exchange < FIRST_EXCHANGE || exchange > LAST_EXCHANGE) throw new RangeError(`no handler slot for exchange ${exchange}`);
    this.handlers[exchange - FIRST_EXCHANGE] = h;
  }

  // ---------------------------------------------------------------- keys

  /**
   * Key exchanges and shared-secret lists of exchanges still in flight
   * (CREATE_CHILD_SA, IKE_FOLLOWUP_KE rounds). An exchange normally destroys
   * and wipes them itself when it completes or fails; these sets are what is
   * left when the IKE SA dies first (delete, expiry, DPD, failure), so
   * destroy() can still zero them (issue 9, docs/design.md "Secrets").
   */
  private readonly liveKes = new Set<KeyExchange>();
  private readonly heldSecrets = new Set<Uint8Array[]>();

  /** A key exchange that is destroyed with this SA if the exchange using it never finishes. */
  newKe(method: number): KeyExchange {
    const ke = createKeyExchange(method, this.ctx.rng);
    const live = this.liveKes;
    const destroy = ke.destroy.bind(ke);
    ke.destroy = () => {
      live.delete(ke);
      destroy();
    };
    live.add(ke);
    return ke;
  }

  /** Shared secrets collected across rounds: wiped with this SA unless released first. */
  holdSecrets(list: Uint8Array[]): void {
    this.heldSecrets.add(list);
  }
  releaseSecrets(list: Uint8Array[]): void {
    this.heldSecrets.delete(list);
  }

  /** Install a key set: the SK payload ciphers switch immediately. */
  setKeys(keys: IkeKeys): void {
    if (!this.encr) throw new Error('setKeys before algorithms were chosen');
    this.cipherIn?.destroy();
    this.cipherOut?.destroy();
    if (this.keys) wipe(this.keys.skD, this.keys.skAi, this.keys.skAr, this.keys.skEi, this.keys.skEr, this.keys.skPi, this.keys.skPr);
    this.keys = keys;
    const i = createSkCipher(this.encr, keys.skEi, this.integ, this.integ ? keys.skAi : undefined);
    const r = createSkCipher(this.encr, keys.skEr, this.integ, this.integ ? keys.skAr : undefined);
    this.cipherOut = this.isInitiator ? i : r;
    this.cipherIn = this.isInitiator ? r : i;
    this.ivCounter = 0;
  }

  get skPi(): Uint8Array {
    return this.keys!.skPi;
  }
  get skPr(): Uint8Array {
    return this.keys!.skPr;
  }

  /**
   * IV source: AEAD modes need uniqueness per key (RFC 5282 §3, RFC 7634 §2)
   * so a counter suffices; CBC needs unpredictability (RFC 7296 §3.14), so random.
   */
  private nextIv(n: number): Uint8Array {
    if (this.cipherOut && !this.cipherOut.aead) return this.ctx.rng.bytes(n);
    const iv = new Uint8Array(n);
    // A Number counter (exact to 2^53 messages per key, far beyond any SA's
    // life): a BigInt one allocated on every step of this per-message loop.
    let c = ++this.ivCounter;
    for (let k = n - 1; k >= 0 && c > 0; k--) {
      iv[k] = c % 256;
      c = Math.floor(c / 256);
    }
    return iv;
  }

  // ---------------------------------------------------------------- sending

  private fragmentSize(): number | undefined {
    // 'accept' (strongSwan): take fragments, never fragment our own messages.
    if (!this.fragmentation || this.tunnel.fragmentation !== 'yes') return undefined;
    return this.tunnel.fragmentSize;
  }

  private encode(msg: Message): { datagrams: Uint8Array[]; intAuthA?: Uint8Array; intAuthP?: Uint8Array } {
    if (!msg.encrypted) return { datagrams: [encodePlain(msg)] };
    if (!this.cipherOut) throw new Error('no keys to protect a message');
    const v6 = this.remote.address.includes(':');
    const r = encodeProtected(msg, this.cipherOut, (n) => this.nextIv(n), {
      fragmentSize: this.fragmentSize(),
      ipOverhead: v6 ? 40 : 20,
      marker: this.local.port !== this.ctx.opts.ikePort || this.floated,
    });
    return r;
  }

  private header(exchange: number, mid: number, response: boolean, encrypted: boolean, payloads: Payload[]): Message {
    return {
      spiI: this.spiI,
      spiR: this.spiR,
      exchange,
      response,
      initiator: this.isInitiator,
      messageId: mid,
      encrypted,
      payloads,
    };
  }

  queueRequest(spec: RequestSpec, front = false): void {
    if (front) this.queue.unshift(spec);
    else this.queue.push(spec);
    this.pump();
  }

  get busy(): boolean {
    return this.outstanding !== undefined;
  }

  /** Dispatch the next queued request if the window (size 1) is free. */
  pump(): void {
    if (this.outstanding || this.state === 'DELETED' || this.state === 'FAILED') return;
    const spec = this.queue.shift();
    if (!spec) return;
    const mid = this.nextSendMid;
    let payloads: Payload[];
    try {
      payloads = spec.build(mid);
    } catch (e) {
      this.fail(`building ${exchangeName(spec.exchange)} request failed: ${(e as Error).message}`);
      return;
    }
    const msg = this.header(spec.exchange, mid, false, !spec.plain, payloads);
    const enc = this.encode(msg);
    const sent: SentInfo = { mid, intAuthA: enc.intAuthA, intAuthP: enc.intAuthP, raw: spec.plain ? enc.datagrams[0] : undefined };
    const rt = this.retransmitPolicy;
    this.outstanding = {
      spec,
      sent,
      datagrams: enc.datagrams,
      from: { ...this.local },
      to: { ...this.remote },
      retries: 0,
      deadline: this.ctx.clock.now() + rt.timeout,
    };
    this.transmit(enc.datagrams, this.local, this.remote);
  }

  private transmit(datagrams: Uint8Array[], from: Endpoint, to: Endpoint): void {
    for (const d of datagrams) this.ctx.emit({ kind: 'send', from: { ...from }, to: { ...to }, data: d });
  }

  /** Send a response to the request with message ID `mid` and cache it for retransmissions. */
  respond(request: DecodedMessage, requestRaw: Uint8Array, payloads: Payload[], opts: { plain?: boolean } = {}): SentInfo {
    const msg = this.header(request.exchange, request.messageId, true, !opts.plain, payloads);
    const enc = this.encode(msg);
    this.lastResponse = { mid: request.messageId, requestHash: sha256hex(requestRaw), datagrams: enc.datagrams };
    this.transmit(enc.datagrams, this.local, this.remote);
    return { mid: request.messageId, intAuthA: enc.intAuthA, intAuthP: enc.intAuthP, raw: opts.plain ? enc.datagrams[0] : undefined };
  }

  /** Clear the window after a final response without a handler (e.g. restart of IKE_SA_INIT). */
  resetInitExchange(): void {
    this.outstanding = undefined;
    this.pendingInitError = undefined;
    this.nextSendMid = 0;
  }

  // ---------------------------------------------------------------- timers

  nextDeadline(): number | undefined {
    let d = this.outstanding?.deadline;
    const l = this.lifecycle?.deadline();
    if (l !== undefined) d = d === undefined ? l : Math.min(d, l);
    if (this.pendingInitError && this.outstanding) d = Math.min(d!, this.pendingInitError.deadline);
    if (this.negotiating) {
      const ho = this.createdAt + this.ctx.opts.halfOpenTimeout;
      d = d === undefined ? ho : Math.min(d, ho);
    }
    return d;
  }

  onTimer(now: number): void {
    if (this.lifecycle && this.alive) {
      const l = this.lifecycle.deadline();
      if (l !== undefined && l <= now) this.lifecycle.run(now);
      if (!this.alive) return;
    }
    if (this.negotiating && now >= this.createdAt + this.ctx.opts.halfOpenTimeout) {
      // A responder's half-open SA, or an initiator stuck for too long.
      const o = this.outstanding;
      this.outstanding = undefined;
      if (o?.spec.onTimeout) o.spec.onTimeout();
      if (this.alive) this.fail('negotiation timed out');
      return;
    }
    const o = this.outstanding;
    if (o && this.pendingInitError && now >= this.pendingInitError.deadline) {
      this.outstanding = undefined;
      this.fail(this.pendingInitError.why);
      return;
    }
    if (!o || now < o.deadline) return;
    const rt = this.retransmitPolicy;
    if (o.retries >= rt.tries) {
      this.outstanding = undefined;
      this.log('warn', `giving up ${exchangeName(o.spec.exchange)} request after ${o.retries} retransmits`);
      if (o.spec.onTimeout) o.spec.onTimeout();
      else this.fail(`peer not responding (${exchangeName(o.spec.exchange)})`);
      return;
    }
    o.retries++;
    const timeout = Math.min(rt.timeout * Math.pow(rt.base, o.retries), rt.maxTimeout);
    o.deadline = now + timeout;
    this.log('debug', `retransmit ${o.retries} of ${exchangeName(o.spec.exchange)} mid ${o.sent.mid}`);
    // Retransmit to the current remote (it may have floated meanwhile only via our own request path).
    this.transmit(o.datagrams, o.from, o.to);
  }

  // ---------------------------------------------------------------- receiving

  /**
   * A datagram for this SA. `header` was decoded by the engine for demux.
   * Malformed or unauthenticated input is dropped (RFC 7296 §2.21).
   */
  receive(data: Uint8Array, header: IkeHeader, from: Endpoint, to: Endpoint): void {
    if (this.state === 'DELETED' || this.state === 'FAILED') return;
    if (header.response) this.receiveResponse(data, header, from, to);
    else this.receiveRequest(data, header, from, to);
  }

  private decrypt(data: Uint8Array, header: IkeHeader): DecodedMessage | undefined {
    if (header.exchange === ExchangeType.IKE_SA_INIT) return decodePlain(data, { header });
    if (!this.cipherIn) return undefined;
    const r = decodeProtected(data, this.cipherIn, { header });
    if ('kind' in r && r.kind === 'fragment') {
      if (!this.fragmentation) throw new Error('SKF received but fragmentation was not negotiated');
      const st = (this.reassembler ??= new Reassembler()).addDetailed(`${header.response ? 'r' : 'q'}${header.messageId}`, r);
      // A fragment we already hold (RFC 7383 §2.6: first copy wins) is a replay; so is a smaller Total Fragments.
      if (st.status === 'dropped') this.drops.replay++;
      return st.status === 'complete' ? st.message : undefined;
    }
    return r as DecodedMessage;
  }

  private receiveResponse(data: Uint8Array, header: IkeHeader, from: Endpoint, to: Endpoint): void {
    const o = this.outstanding;
    if (!o || header.messageId !== o.sent.mid || header.exchange !== o.spec.exchange) {
      if (header.messageId < (o ? o.sent.mid : this.nextSendMid)) this.drops.replay++;
      else this.drops.unexpected++;
      this.log('debug', `dropping unexpected response mid ${header.messageId}`);
      return;
    }
    let msg: DecodedMessage | undefined;
    try {
      msg = this.decrypt(data, header);
    } catch (e) {
      this.countDrop(e);
      this.log('debug', `dropping response mid ${header.messageId}: ${(e as Error).message}`);
      return;
    }
    if (!msg) return; // waiting for more fragments
    if (header.exchange === ExchangeType.IKE_SA_INIT && this.isUnauthenticatedError(msg)) return;
    this.noteAuthenticatedPeer(from, to, header.exchange);
    this.outstanding = undefined;
    this.nextSendMid = o.sent.mid + 1;
    try {
      o.spec.onResponse(msg, o.sent);
      this.releaseHandshake();
    } catch (e) {
      const why = `processing ${exchangeName(header.exchange)} response failed: ${(e as Error).message}`;
      if (o.spec.plain && this.state === 'CONNECTING' && !this.outstanding && this.alive) {
        // Unauthenticated (IKE_SA_INIT): possibly forged; keep waiting (RFC 7296 §2.21.1).
        this.outstanding = o;
        this.nextSendMid = o.sent.mid;
        this.notePendingInitError(why);
        return;
      }
      this.fail(why);
      return;
    }
    this.pump();
  }

  /**
   * RFC 7296 §2.21.1: IKE_SA_INIT responses are unauthenticated, so an error
   * notify in one may be forged. Keep the request outstanding (and
   * retransmitting) for a short grace period in case the genuine response
   * follows; fail with the error only if nothing better arrives.
   */
  private isUnauthenticatedError(msg: DecodedMessage): boolean {
    const err = msg.payloads.find(
      (p) => p.type === 41 && (p as { notifyType: number }).notifyType < 16384 && (p as { notifyType: number }).notifyType !== 17,
    ) as { notifyType: number } | undefined;
    if (!err || msg.payloads.some((p) => p.type === 33)) return false;
    this.notePendingInitError(`peer answered ${NotifyName[err.notifyType] ?? err.notifyType}`);
    return true;
  }

  private notePendingInitError(why: string): void {
    if (this.pendingInitError === undefined) this.pendingInitError = { why, deadline: this.ctx.clock.now() + INIT_ERROR_GRACE_MS };
    this.log('debug', `${why}; waiting ${INIT_ERROR_GRACE_MS} ms for a genuine IKE_SA_INIT response`);
  }
  private pendingInitError: { why: string; deadline: number } | undefined;

  private receiveRequest(data: Uint8Array, header: IkeHeader, from: Endpoint, to: Endpoint): void {
    const mid = header.messageId;
    const lr = this.lastResponse;
    if (lr && mid === lr.mid) {
      // RFC 7296 §2.1: retransmit the response to a retransmitted request. A
      // retransmission is byte-identical; for fragmented requests, react to
      // fragment 1 only (RFC 7383 §2.6.1) so we do not amplify.
      if (sha256hex(data) === lr.requestHash) {
        this.drops.retransmits++;
        this.transmit(lr.datagrams, this.local, from);
      } else this.drops.replay++; // same Message ID, other bytes: a tampered or forged copy
      return;
    }
    if (mid !== this.nextRecvMid) {
      if (mid < this.nextRecvMid) this.drops.replay++;
      else this.drops.unexpected++;
      this.log('debug', `dropping request with unexpected mid ${mid} (want ${this.nextRecvMid})`);
      return;
    }
    if (!REQUEST_EXCHANGES.has(header.exchange)) {
      // IKE_SA_INIT requests only reach an SA as retransmissions (handled
      // above); anything else would be parsed unprotected. Drop it.
      this.drops.malformed++;
      this.log('debug', `dropping ${exchangeName(header.exchange)} request inside an IKE SA`);
      return;
    }
    let msg: DecodedMessage | undefined;
    try {
      msg = this.decrypt(data, header);
    } catch (e) {
      if (isAuthenticatedError(e)) {
        // RFC 7296 §2.21.2: authentic but malformed inside: answer with an
        // error notify (the message ID is consumed), never act on it.
        const crit = e instanceof UnsupportedCriticalPayloadError;
        this.log('warn', `malformed ${exchangeName(header.exchange)} request mid ${mid}: ${(e as Error).message}`);
        this.nextRecvMid = mid + 1;
        this.noteAuthenticatedPeer(from, to, header.exchange);
        this.respond({ exchange: header.exchange, messageId: mid } as DecodedMessage, data, [
          crit
            ? { type: 41, protocol: 0, spi: new Uint8Array(0), notifyType: 1, data: new Uint8Array([(e as UnsupportedCriticalPayloadError).payloadType]) }
            : { type: 41, protocol: 0, spi: new Uint8Array(0), notifyType: 7, data: new Uint8Array(0) },
        ] as Payload[]);
        return;
      }
      this.countDrop(e);
      this.log('debug', `dropping request mid ${mid}: ${(e as Error).message}`);
      return;
    }
    if (!msg) {
      // First fragment remembered as the retransmission fingerprint.
      const ff = (this.firstFragment ??= new Map());
      if (!ff.has(mid)) ff.set(mid, data);
      return;
    }
    const fingerprint = msg.fragments > 0 ? (this.firstFragment?.get(mid) ?? data) : data;
    this.firstFragment = undefined;
    this.noteAuthenticatedPeer(from, to, header.exchange);
    this.nextRecvMid = mid + 1;
    const h = header.exchange >= FIRST_EXCHANGE && header.exchange <= LAST_EXCHANGE ? this.handlers[header.exchange - FIRST_EXCHANGE] : undefined;
    if (!h) {
      this.log('warn', `no handler for ${exchangeName(header.exchange)} request; answering empty`);
      this.respond(msg, fingerprint, []);
      return;
    }
    this.currentRequestRaw = fingerprint;
    try {
      h(this, msg);
    } catch (e) {
      this.fail(`processing ${exchangeName(header.exchange)} request failed: ${(e as Error).message}`);
    }
    // Handlers read it synchronously; the cached response keeps its hash.
    this.currentRequestRaw = NO_BYTES;
    this.releaseHandshake();
    this.pump();
  }

  private countDrop(e: unknown): void {
    if (e instanceof AuthTagError) this.drops.auth++;
    else this.drops.malformed++;
  }

  private firstFragment: Map<number, Uint8Array> | undefined;
  /** Raw bytes (or first fragment) of the request being handled; handlers pass it to respond(). */
  currentRequestRaw: Uint8Array = NO_BYTES;

  /**
   * Once IKE_AUTH is done, the handshake transcript is dead weight: the
   * nonces, RealMessage1/2 and the RFC 9242 IntAuth chains are inputs of
   * the AUTH payloads only (RFC 7296 §2.15, RFC 9242 §3.3.2), the cookie
   * and the responder's candidate tunnels matter before AUTH only, and
   * SK_pi/SK_pr are used for nothing else (§2.14). Later key material comes
   * from SK_d and fresh nonces (§2.17, §2.18). A hub keeps thousands of
   * established SAs, so they are dropped (keys wiped) the moment the SA is
   * established and the IKE_AUTH exchange has been handled.
   */
  private releaseHandshake(): void {
    if (this.state !== 'ESTABLISHED' || this.handshakeReleased) return;
    this.handshakeReleased = true;
    this.ni = undefined;
    this.nr = undefined;
    this.initRequest = undefined;
    this.initResponse = undefined;
    this.intAuthI = undefined;
    this.intAuthR = undefined;
    this.cookie = undefined;
    this.peerHashes = undefined;
    this.candidates = NO_CANDIDATES;
    // IKE_INTERMEDIATE arrived in fragments; later fragmented messages (rare) get a new one.
    if (this.reassembler?.pending === 0) this.reassembler = undefined;
    if (this.keys) wipe(this.keys.skPi, this.keys.skPr);
  }
  private handshakeReleased = false;

  /**
   * RFC 7296 §2.23: an authenticated message from a new address/port updates
   * the peer's endpoint when a NAT sits in front of it (its mapping changed).
   */
  private noteAuthenticatedPeer(from: Endpoint, to: Endpoint, exchange: number): void {
    if (exchange === ExchangeType.IKE_SA_INIT) return;
    this.lastInboundAt = this.ctx.clock.now();
    if (from.address === this.remote.address && from.port === this.remote.port) return;
    if (this.natRemote || this.role === 'responder') {
      this.log('info', `peer endpoint moved ${this.remote.address}:${this.remote.port} -> ${from.address}:${from.port}`);
      this.remote = { ...from };
      this.local = { ...to };
      this.onEndpointChange?.(this);
    }
  }
  onEndpointChange: ((sa: IkeSa) => void) | undefined;

  /** RFC 3948 / RFC 7296 §2.23: move IKE to port 4500 (with the non-ESP marker). */
  floatToNatt(): void {
    if (this.floated) return;
    this.floated = true;
    const natt = this.ctx.opts.nattPort;
    this.local = { address: this.local.address, port: natt };
    if (this.remote.port === this.ctx.opts.ikePort || this.remote.port === 500) this.remote = { address: this.remote.address, port: natt };
  }

  /** Take over an already-negotiated state (the new IKE SA of a rekey, RFC 7296 §2.18). */
  adopt(from: IkeSa, chosen: ChosenAlgorithms, prf: Prf, encr: EncrInfo, integ: IntegInfo | undefined, keys: IkeKeys, keMethods: number[]): void {
    this.chosen = chosen;
    this.prf = prf;
    this.encr = encr;
    this.integ = integ;
    this.setKeys(keys);
    this.keMethods = keMethods;
    this.fragmentation = from.fragmentation;
    this.peerFragmentation = from.peerFragmentation;
    this.intermediateSupported = from.intermediateSupported;
    this.natLocal = from.natLocal;
    this.natRemote = from.natRemote;
    this.encap = from.encap;
    this.floated = from.floated;
    this.localIdText = from.localIdText;
    this.remoteIdText = from.remoteIdText;
    this.candidates = from.candidates;
    this.rekeys = from.rekeys + 1;
    this.state = 'ESTABLISHED';
    this.establishedAt = this.ctx.clock.now();
    this.lastInboundAt = this.ctx.clock.now();
  }

  // ---------------------------------------------------------------- teardown

  fail(reason: string): void {
    if (this.state === 'FAILED' || this.state === 'DELETED') return;
    this.lastError = reason;
    this.log('error', `IKE SA failed: ${reason}`);
    this.state = 'FAILED';
    this.destroy();
  }

  /** Drop everything without telling the peer. */
  destroy(): void {
    if (this.state !== 'FAILED') this.state = 'DELETED';
    this.outstanding = undefined;
    this.queue = [];
    this.cipherIn?.destroy();
    this.cipherOut?.destroy();
    this.ke?.destroy();
    if (this.keys) wipe(this.keys.skD, this.keys.skAi, this.keys.skAr, this.keys.skEi, this.keys.skEr, this.keys.skPi, this.keys.skPr);
    for (const ke of [...this.liveKes]) ke.destroy();
    for (const list of this.heldSecrets) wipe(...list);
    this.heldSecrets.clear();
    // Responder IKE_FOLLOWUP_KE state (followup.ts FollowupState) holds SK(0..n-1) until the last round.
    for (const st of this.followups.values()) {
      const secrets = (st as { secrets?: unknown }).secrets;
      if (Array.isArray(secrets)) for (const x of secrets) if (x instanceof Uint8Array) x.fill(0);
    }
    this.followups.clear();
    // The IKE_SA_INIT nonces are key input of every SKEYSEED and KEYMAT of
    // this SA (RFC 7296 §2.14, §2.17); they were public on the wire, but
    // nothing needs them any more either.
    wipe(this.ni, this.nr);
    const cb = this.onDead;
    this.onDead = undefined;
    cb?.(this);
  }
}

const REQUEST_EXCHANGES = new Set<number>([
  ExchangeType.IKE_AUTH,
  ExchangeType.CREATE_CHILD_SA,
  ExchangeType.INFORMATIONAL,
  ExchangeType.IKE_INTERMEDIATE,
  ExchangeType.IKE_FOLLOWUP_KE,
]);

export function exchangeName(x: number): string {
  for (const [k, v] of Object.entries(ExchangeType)) if (v === x) return k;
  return `EXCHANGE_${x}`;
}

export function spiIsZero(spi: Uint8Array): boolean {
  return equal(spi, new Uint8Array(8));
}

export const HEADER_LEN = IKE_HEADER_LEN;
