/**
 * ML-KEM-512 / 768 / 1024 (FIPS 203 Table 2), hashing through node:crypto's
 * OpenSSL SHA-3/SHAKE and polynomial arithmetic in typed arrays. Same call
 * shape as @noble/post-quantum's ml_kem512/768/1024 (keygen(seed?),
 * encapsulate(ek, m?), decapsulate(ct, dk)), which the tests cross-check
 * byte for byte.
 */
import { MlKem } from './kem.js';

export { MlKem } from './kem.js';
export type { MlKemLengths, MlKemParams } from './kem.js';

export const mlkem512 = new MlKem({ name: 'ML-KEM-512', k: 2, eta1: 3, eta2: 2, du: 10, dv: 4 });
export const mlkem768 = new MlKem({ name: 'ML-KEM-768', k: 3, eta1: 2, eta2: 2, du: 10, dv: 4 });
export const mlkem1024 = new MlKem({ name: 'ML-KEM-1024', k: 4, eta1: 2, eta2: 2, du: 11, dv: 5 });
