/** Sample payloads and messages shared by the codec tests. */
import { fixedKey } from './fake-cipher.js';
import { AuthMethod, CfgType, ExchangeType, IdType, KeMethod, Notify, PayloadType, ProtocolId, TransformType, TsType } from '../../firmware/ikev2/constants.js';
import type { Message, Payload } from '../../firmware/ikev2/codec/types.js';

export const SPI_I = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
export const SPI_R = Uint8Array.from([9, 10, 11, 12, 13, 14, 15, 16]);
export const ZERO_SPI = new Uint8Array(8);

export const saIke: Payload = {
  type: PayloadType.SA,
  proposals: [
    {
      num: 1,
      protocol: ProtocolId.IKE,
      spi: new Uint8Array(0),
      transforms: [
        { type: TransformType.ENCR, id: 20, keyLength: 256 },
        { type: TransformType.PRF, id: 7 },
        { type: TransformType.KE, id: KeMethod.CURVE_25519 },
        { type: TransformType.ADDKE1, id: KeMethod.ML_KEM_768 },
        { type: TransformType.ADDKE1, id: 0 },
      ],
    },
    {
      num: 2,
      protocol: ProtocolId.IKE,
      spi: new Uint8Array(0),
      transforms: [
        { type: TransformType.ENCR, id: 12, keyLength: 128, otherAttributes: [{ type: 17, value: 5 }, { type: 18, value: Uint8Array.from([1, 2, 3]) }] },
        { type: TransformType.INTEG, id: 12 },
        { type: TransformType.PRF, id: 5 },
        { type: TransformType.KE, id: KeMethod.ECP_256 },
      ],
    },
  ],
};

export const saEsp: Payload = {
  type: PayloadType.SA,
  proposals: [{ num: 1, protocol: ProtocolId.ESP, spi: Uint8Array.from([0xc0, 0, 0, 1]), transforms: [{ type: TransformType.ENCR, id: 20, keyLength: 256 }, { type: TransformType.ESN, id: 0 }] }],
};

export const ke = (method: number, len: number, seed = 3): Payload => ({ type: PayloadType.KE, method, data: fixedKey(len, seed) });
export const nonce = (len = 32, seed = 4): Payload => ({ type: PayloadType.NONCE, data: fixedKey(len, seed) });
export const notify = (notifyType: number, data: Uint8Array = new Uint8Array(0), protocol = 0, spi: Uint8Array = new Uint8Array(0)): Payload => ({ type: PayloadType.NOTIFY, protocol, spi, notifyType, data });

export const tsV4 = (type: 44 | 45): Payload => ({
  type,
  selectors: [
    { tsType: TsType.IPV4_ADDR_RANGE, ipProtocol: 0, startPort: 0, endPort: 65535, startAddr: Uint8Array.from([192, 0, 2, 0]), endAddr: Uint8Array.from([192, 0, 2, 255]) },
    { tsType: TsType.IPV6_ADDR_RANGE, ipProtocol: 17, startPort: 500, endPort: 500, startAddr: Uint8Array.from([0x20, 1, 0xd, 0xb8, ...new Array(12).fill(0)]), endAddr: Uint8Array.from([0x20, 1, 0xd, 0xb8, ...new Array(12).fill(0xff)]) },
    { tsType: TsType.IPV4_ADDR_RANGE, ipProtocol: 1, startPort: 65535, endPort: 0, startAddr: Uint8Array.from([0, 0, 0, 0]), endAddr: Uint8Array.from([255, 255, 255, 255]) },
  ],
});

/** One payload of every modelled type plus an unknown one. */
export const everyPayload: Payload[] = [
  saIke,
  saEsp,
  ke(KeMethod.ML_KEM_768, 1184),
  { type: PayloadType.IDi, idType: IdType.FQDN, data: new TextEncoder().encode('gw.example.org') },
  { type: PayloadType.IDr, idType: IdType.IPV4_ADDR, data: Uint8Array.from([198, 51, 100, 7]) },
  { type: PayloadType.CERT, encoding: 4, data: fixedKey(300, 5) },
  { type: PayloadType.CERTREQ, encoding: 4, data: fixedKey(40, 6) },
  { type: PayloadType.AUTH, method: AuthMethod.PSK, data: fixedKey(32, 7) },
  nonce(16),
  nonce(256, 8),
  notify(Notify.NAT_DETECTION_SOURCE_IP, fixedKey(20, 9)),
  notify(Notify.REKEY_SA, new Uint8Array(0), ProtocolId.ESP, Uint8Array.from([1, 2, 3, 4])),
  { type: PayloadType.DELETE, protocol: ProtocolId.ESP, spiSize: 4, spis: [Uint8Array.from([1, 1, 1, 1]), Uint8Array.from([2, 2, 2, 2])] },
  { type: PayloadType.DELETE, protocol: ProtocolId.IKE, spiSize: 0, spis: [] },
  { type: PayloadType.VENDOR, data: new TextEncoder().encode('pqgate') },
  tsV4(PayloadType.TSi),
  tsV4(PayloadType.TSr),
  { type: PayloadType.CP, cfgType: CfgType.REQUEST, attributes: [{ type: 1, value: new Uint8Array(0) }, { type: 8, value: fixedKey(17, 10) }] },
  { type: PayloadType.EAP, data: Uint8Array.from([1, 7, 0, 6, 1, 0x41]) },
  { type: 200, unknown: true, data: fixedKey(9, 11) },
  { type: 201, critical: true, unknown: true, data: new Uint8Array(0) },
  { type: PayloadType.VENDOR, critical: true, data: Uint8Array.from([1]) },
];

const base = { spiI: SPI_I, spiR: SPI_R, initiator: true, response: false };

export function initRequest(keLen = 32, method: number = KeMethod.CURVE_25519): Message {
  return {
    ...base,
    spiR: ZERO_SPI,
    exchange: ExchangeType.IKE_SA_INIT,
    messageId: 0,
    encrypted: false,
    payloads: [saIke, ke(method, keLen), nonce(), notify(Notify.NAT_DETECTION_SOURCE_IP, fixedKey(20, 12)), notify(Notify.IKEV2_FRAGMENTATION_SUPPORTED), notify(Notify.INTERMEDIATE_EXCHANGE_SUPPORTED)],
  };
}

export function intermediateRequest(keLen = 1184, messageId = 1): Message {
  return { ...base, exchange: ExchangeType.IKE_INTERMEDIATE, messageId, encrypted: true, payloads: [ke(KeMethod.ML_KEM_768, keLen)] };
}

export function authRequest(messageId = 2): Message {
  return {
    ...base,
    exchange: ExchangeType.IKE_AUTH,
    messageId,
    encrypted: true,
    payloads: [
      { type: PayloadType.IDi, idType: IdType.FQDN, data: new TextEncoder().encode('branch1.example.org') },
      notify(Notify.INITIAL_CONTACT),
      { type: PayloadType.AUTH, method: AuthMethod.PSK, data: fixedKey(48, 13) },
      saEsp,
      tsV4(PayloadType.TSi),
      tsV4(PayloadType.TSr),
    ],
  };
}

export function emptyInformational(response = false, messageId = 5): Message {
  return { ...base, response, initiator: !response, exchange: ExchangeType.INFORMATIONAL, messageId, encrypted: true, payloads: [] };
}

/** Bytes of the generic payload header of payload `index` in a plain message's chain. */
export function payloadOffset(msg: Uint8Array, index: number): number {
  let off = 28;
  for (let i = 0; i < index; i++) off += (msg[off + 2]! << 8) | msg[off + 3]!;
  return off;
}
