/**
 * In-memory model of IKEv2 messages (RFC 7296 §3). The codec (encode.ts /
 * decode.ts) maps between these objects and wire bytes; the engine never
 * touches raw offsets. All byte fields are copies (never views into a
 * receive buffer).
 */

export interface Attribute {
  type: number; // without the AF bit
  /** TV-form value (AF=1) or TLV value (AF=0). Key Length (14) is always TV. */
  value: number | Uint8Array;
}

export interface Transform {
  type: number; // TransformType
  id: number;
  /** Key length in bits (Attribute 14), if present. */
  keyLength?: number;
  /** Attributes other than key length, preserved for round trips. */
  otherAttributes?: Attribute[];
}

export interface Proposal {
  num: number; // 1-based
  protocol: number; // ProtocolId
  spi: Uint8Array; // 0, 4 or 8 bytes
  transforms: Transform[];
}

export interface SaPayload {
  type: 33;
  critical?: boolean;
  proposals: Proposal[];
}

export interface KePayload {
  type: 34;
  critical?: boolean;
  method: number;
  data: Uint8Array;
}

export interface IdPayload {
  type: 35 | 36;
  critical?: boolean;
  idType: number;
  data: Uint8Array;
}

export interface CertPayload {
  type: 37;
  critical?: boolean;
  encoding: number;
  data: Uint8Array;
}

export interface CertReqPayload {
  type: 38;
  critical?: boolean;
  encoding: number;
  data: Uint8Array; // concatenated 20-octet SHA-1 hashes of CA SPKIs
}

export interface AuthPayload {
  type: 39;
  critical?: boolean;
  method: number;
  data: Uint8Array;
}

export interface NoncePayload {
  type: 40;
  critical?: boolean;
  data: Uint8Array;
}

export interface NotifyPayload {
  type: 41;
  critical?: boolean;
  protocol: number; // 0 for none
  spi: Uint8Array;
  notifyType: number;
  data: Uint8Array;
}

export interface DeletePayload {
  type: 42;
  critical?: boolean;
  protocol: number;
  spiSize: number;
  spis: Uint8Array[];
}

export interface VendorPayload {
  type: 43;
  critical?: boolean;
  data: Uint8Array;
}

export interface TrafficSelector {
  tsType: number; // 7 (IPv4) or 8 (IPv6)
  ipProtocol: number; // 0 = any
  startPort: number;
  endPort: number;
  startAddr: Uint8Array; // 4 or 16 bytes
  endAddr: Uint8Array;
}

export interface TsPayload {
  type: 44 | 45;
  critical?: boolean;
  selectors: TrafficSelector[];
}

export interface CpAttribute {
  type: number;
  value: Uint8Array;
}

export interface CpPayload {
  type: 47;
  critical?: boolean;
  cfgType: number;
  attributes: CpAttribute[];
}

export interface EapPayload {
  type: 48;
  critical?: boolean;
  data: Uint8Array;
}

/** A payload type this implementation does not understand (kept for the critical-bit check). */
export interface UnknownPayload {
  type: number;
  critical?: boolean;
  unknown: true;
  data: Uint8Array;
}

export type Payload =
  | SaPayload
  | KePayload
  | IdPayload
  | CertPayload
  | CertReqPayload
  | AuthPayload
  | NoncePayload
  | NotifyPayload
  | DeletePayload
  | VendorPayload
  | TsPayload
  | CpPayload
  | EapPayload
  | UnknownPayload;

export interface IkeHeader {
  spiI: Uint8Array; // 8
  spiR: Uint8Array; // 8
  nextPayload: number;
  majorVersion: number;
  minorVersion: number;
  exchange: number;
  response: boolean;
  initiator: boolean; // I flag: sent by the original initiator
  messageId: number;
  length: number;
}

/**
 * A message as the engine sees it. `encrypted` says whether `payloads` travel
 * inside an SK payload (everything but IKE_SA_INIT). For IKE_SA_INIT all
 * payloads are in the clear.
 */
export interface Message {
  spiI: Uint8Array;
  spiR: Uint8Array;
  exchange: number;
  response: boolean;
  initiator: boolean;
  messageId: number;
  encrypted: boolean;
  payloads: Payload[];
}

/** Result of decrypting an SK/SKF message, with what RFC 9242 IntAuth needs. */
export interface DecodedMessage extends Message {
  /**
   * RFC 9242 IntAuth_A for this message: header .. SK generic header, with the
   * IKE header Length and SK Payload Length adjusted to |A|+|P| and 4+|P|, and
   * Next Payload SKF rewritten to SK for fragmented messages.
   */
  intAuthA?: Uint8Array;
  /** RFC 9242 IntAuth_P: the plaintext inner payloads (no IV, padding, ICV). */
  intAuthP?: Uint8Array;
  /** Raw bytes as received (IKE_SA_INIT: needed for AUTH's RealMessage). Fragmented: undefined. */
  raw?: Uint8Array;
  /** Number of SKF fragments it arrived in (0 if unfragmented). */
  fragments: number;
}
