/**
 * IKEv2 wire codec: header (RFC 7296 §3.1), payloads (§3.2-§3.16), SK
 * protection (§3.14, RFC 5282), SKF fragmentation and reassembly (RFC 7383),
 * RFC 9242 IntAuth inputs, and per-exchange payload rules.
 */
export type * from './types.js';
export * from './errors.js';
// Re-exported so codec users can catch everything the codec throws from one module.
export { ParseError, AuthTagError } from '../../util/errors.js';
export { decodeHeader, encodeHeader, IKE_MAJOR_VERSION, IKE_MINOR_VERSION, GENERIC_HEADER_LEN, CRITICAL_BIT, type HeaderFields } from './header.js';
export {
  decodePayloadBody,
  encodePayloadBody,
  encodeChain,
  encodePayloads,
  decodeChain,
  isUnknownPayload,
  MODELED_PAYLOADS,
  NONCE_MIN,
  NONCE_MAX,
  type ChainResult,
  type EncryptedPayloadRef,
} from './payloads.js';
export { decodeSaBody, encodeSaBody } from './sa.js';
export { MESSAGE_RULES, findRule, exchangeIsEncrypted, validateMessage, checkUnprotected, type MessageRule, type PayloadRule, type ValidateInput } from './rules.js';
export {
  encodePlain,
  encodeProtected,
  decodeHeaderOnly,
  decodePlain,
  decodeProtected,
  isFragment,
  reassembledIntAuthA,
  type ProtectOptions,
  type ProtectedMessage,
  type DecodeOptions,
  type FragmentInfo,
} from './message.js';
export { Reassembler, type ReassemblerOptions, type ReassemblyResult } from './fragment.js';
