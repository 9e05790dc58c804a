/*
 * ML-KEM polynomial arithmetic (FIPS 203 §4.3, Algorithms 9-12) for
 * firmware/crypto/mlkem/poly.ts: the same integer operations in the same
 * order as the JS (which stays the reference and the fallback), so the
 * outputs are identical coefficient for coefficient, lazy reductions
 * included; the bounds are argued in poly.ts. Branch-free on coefficient
 * values like the JS: secret polynomials go through here.
 *
 *   mlkemTables(zb, zbShoup, zetas, gammas, invnttF, invnttZf)   once, from poly.ts's tables
 *   mlkemNtt(f)        f: Int16Array(256), in place
 *   mlkemInvNtt(f)
 *   mlkemBasemulAcc(r, a, aOff, b, k)
 *   mlkemKeygen(k, seed, ek, dk, aT?)   the whole KEM, see "the whole KEM" below
 *   mlkemEncaps(k, ek, m, ct, ss)       -> false: ek fails the §7.2 modulus check
 *   mlkemDecaps(k, ct, dk, ss, aT?)     -> false: dk fails the §7.3 hash check
 *
 * JS's Math.imul is a 32-bit wrapping multiply and Int16Array stores wrap
 * to 16 bits; here products are done in uint32 (defined wrap-around in C)
 * and stores cast to int16_t. The bounds keep every value inside the
 * ranges where both agree with exact integer arithmetic anyway.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>

/* native/pqcrypto.c (declared in pqcrypto.h, whose static helpers clash with this file's). */
int pq_keccak(napi_env env, int alg, const unsigned char *a, size_t an, const unsigned char *b, size_t bn, unsigned char *out, size_t olen);
#define K_SHA3_256 4
#define K_SHA3_512 5
#define K_SHAKE128 6
#define K_SHAKE256 7

#define N 256
#define Q 3329
#define QINV (-3327)
#define BARRETT_V 20159
#define MONT2 1353 /* R^2 mod q, R = 2^16 (poly.ts) */

static int32_t ZB[128], ZB_SHOUP[128], ZETAS[128], GAMMAS[128];
static int32_t INVNTT_F, INVNTT_ZF;
static int tables_set;

static inline int32_t imul(int32_t a, int32_t b) { return (int32_t)((uint32_t)a * (uint32_t)b); }

/* a·2^-16 mod q for |a| < q·2^15 (poly.ts mred). */
static inline int32_t mred(int32_t a) {
  int32_t t = (int16_t)(uint16_t)(uint32_t)imul(a, QINV);
  return (a - imul(t, Q)) >> 16;
}

/* Centered Barrett reduction of |a| < 2^15 (poly.ts bred). */
static inline int32_t bred(int32_t a) {
  int32_t t = (imul(BARRETT_V, a) + (1 << 25)) >> 26;
  return a - imul(t, Q);
}

/* a·z mod q with zp = round(z·2^16/q) (poly.ts mulConst). */
static inline int32_t mul_const(int32_t a, int32_t z, int32_t zp) {
  return imul(a, z) - imul((imul(a, zp) + 0x8000) >> 16, Q);
}

static void ntt(int16_t *f) {
  int len, b, start, j;
  for (len = 128; len >= 8; len >>= 2) {
    int h = len >> 1;
    for (b = 0, start = 0; start < N; b++, start += 2 * len) {
      int k1 = 128 / len + b, k2 = 256 / len + 2 * b;
      int32_t z1 = ZB[k1], z1p = ZB_SHOUP[k1], z2 = ZB[k2], z2p = ZB_SHOUP[k2], z3 = ZB[k2 + 1], z3p = ZB_SHOUP[k2 + 1];
      for (j = start; j < start + h; j++) {
        int32_t a0 = f[j], a1 = f[j + h], a2 = f[j + len], a3 = f[j + len + h], t;
        t = mul_const(a2, z1, z1p);
        a2 = a0 - t;
        a0 = a0 + t;
        t = mul_const(a3, z1, z1p);
        a3 = a1 - t;
        a1 = a1 + t;
        t = mul_const(a1, z2, z2p);
        a1 = a0 - t;
        a0 = a0 + t;
        t = mul_const(a3, z3, z3p);
        a3 = a2 - t;
        a2 = a2 + t;
        f[j] = (int16_t)a0;
        f[j + h] = (int16_t)a1;
        f[j + len] = (int16_t)a2;
        f[j + len + h] = (int16_t)a3;
      }
    }
  }
  for (b = 0, j = 0; j < N; b++, j += 4) {
    int32_t z = ZB[64 + b], zp = ZB_SHOUP[64 + b];
    int32_t a0 = f[j], a1 = f[j + 1];
    int32_t t0 = mul_const(f[j + 2], z, zp), t1 = mul_const(f[j + 3], z, zp);
    f[j] = (int16_t)bred(a0 + t0);
    f[j + 1] = (int16_t)bred(a1 + t1);
    f[j + 2] = (int16_t)bred(a0 - t0);
    f[j + 3] = (int16_t)bred(a1 - t1);
  }
}

static void inv_ntt(int16_t *f) {
  int len, b, start, j;
  for (len = 2; len <= 32; len <<= 2) {
    int len2 = 2 * len;
    for (b = 0, start = 0; start < N; b++, start += 2 * len2) {
      int32_t z2 = ZETAS[256 / len - 1 - 2 * b], z3 = ZETAS[256 / len - 2 - 2 * b], z1 = ZETAS[256 / len2 - 1 - b];
      for (j = start; j < start + len; j++) {
        int32_t a0 = f[j], a1 = f[j + len], a2 = f[j + len2], a3 = f[j + len2 + len], t;
        t = a0;
        a0 = t + a1;
        a1 = mred(imul(z2, a1 - t));
        t = a2;
        a2 = t + a3;
        a3 = mred(imul(z3, a3 - t));
        t = a0;
        a0 = bred(t + a2);
        a2 = mred(imul(z1, a2 - t));
        t = a1;
        a1 = bred(t + a3);
        a3 = mred(imul(z1, a3 - t));
        f[j] = (int16_t)a0;
        f[j + len] = (int16_t)a1;
        f[j + len2] = (int16_t)a2;
        f[j + len2 + len] = (int16_t)a3;
      }
    }
  }
  for (j = 0; j < 128; j++) {
    int32_t t = f[j], u = f[j + 128];
    f[j] = (int16_t)mred(imul(t + u, INVNTT_F));
    f[j + 128] = (int16_t)mred(imul(u - t, INVNTT_ZF));
  }
}

static void basemul_acc(int16_t *r, const int16_t *a, const int16_t *b, int k) {
  int p, i, span = N * k;
  for (p = 0, i = 0; p < 128; p++, i += 2) {
    int32_t g = GAMMAS[p], c0 = 0, c1 = 0;
    int o;
    for (o = i; o < i + span; o += N) {
      int32_t a0 = a[o], a1 = a[o + 1], b0 = b[o], b1 = b[o + 1];
      c0 += imul(a0, b0) + imul(mred(imul(a1, b1)), g);
      c1 += imul(a0, b1) + imul(a1, b0);
    }
    r[i] = (int16_t)mred(c0);
    r[i + 1] = (int16_t)mred(c1);
  }
}

static napi_value type_error(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

static napi_value range_error(napi_env env, const char *msg) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return NULL;
}

static int typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len, const char *err) {
  bool is;
  napi_typedarray_type t;
  if (napi_is_typedarray(env, v, &is) != napi_ok) return 0;
  if (is && napi_get_typedarray_info(env, v, &t, len, data, NULL, NULL) == napi_ok && t == want) return 1;
  type_error(env, err);
  return 0;
}

static napi_value n_tables(napi_env env, napi_callback_info info) {
  size_t argc = 6, len;
  napi_value argv[6];
  int32_t *src[4], f, zf;
  int i;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 6) return type_error(env, "mlkemTables(zb, zbShoup, zetas, gammas, invnttF, invnttZf)");
  for (i = 0; i < 4; i++) {
    if (!typed(env, argv[i], napi_int32_array, (void **)&src[i], &len, "tables: expected Int32Array(128)")) return NULL;
    if (len != 128) return range_error(env, "tables: expected Int32Array(128)");
  }
  if (napi_get_value_int32(env, argv[4], &f) != napi_ok || napi_get_value_int32(env, argv[5], &zf) != napi_ok)
    return type_error(env, "invnttF, invnttZf: expected integers");
  memcpy(ZB, src[0], sizeof ZB);
  memcpy(ZB_SHOUP, src[1], sizeof ZB_SHOUP);
  memcpy(ZETAS, src[2], sizeof ZETAS);
  memcpy(GAMMAS, src[3], sizeof GAMMAS);
  INVNTT_F = f;
  INVNTT_ZF = zf;
  tables_set = 1;
  return NULL;
}

static int16_t *poly_arg(napi_env env, napi_callback_info info, napi_value *argv, size_t *argc) {
  int16_t *f;
  size_t len;
  if (napi_get_cb_info(env, info, argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (!tables_set) {
    napi_throw_error(env, "ERR_NATIVE_CRYPTO", "mlkem: mlkemTables() not called");
    return NULL;
  }
  if (*argc < 1) {
    type_error(env, "expected an Int16Array(256)");
    return NULL;
  }
  if (!typed(env, argv[0], napi_int16_array, (void **)&f, &len, "f: expected an Int16Array(256)")) return NULL;
  if (len != N) {
    range_error(env, "f: expected 256 coefficients");
    return NULL;
  }
  return f;
}

static napi_value n_ntt(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int16_t *f = poly_arg(env, info, argv, &argc);
  if (f != NULL) ntt(f);
  return NULL;
}

static napi_value n_inv_ntt(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int16_t *f = poly_arg(env, info, argv, &argc);
  if (f != NULL) inv_ntt(f);
  return NULL;
}

/* mlkemBasemulAcc(r, a, aOff, b, k): r = R^-1 · Σ_l a_l ∘ b_l (poly.ts basemulAcc), k in 1..4. */
static napi_value n_basemul_acc(napi_env env, napi_callback_info info) {
  size_t argc = 5, alen, blen;
  napi_value argv[5];
  int16_t *r, *a, *b;
  int32_t off, k;
  if ((r = poly_arg(env, info, argv, &argc)) == NULL) return NULL;
  if (argc < 5) return type_error(env, "mlkemBasemulAcc(r, a, aOff, b, k)");
  if (!typed(env, argv[1], napi_int16_array, (void **)&a, &alen, "a: expected an Int16Array") ||
      !typed(env, argv[3], napi_int16_array, (void **)&b, &blen, "b: expected an Int16Array"))
    return NULL;
  if (napi_get_value_int32(env, argv[2], &off) != napi_ok || napi_get_value_int32(env, argv[4], &k) != napi_ok)
    return type_error(env, "aOff, k: expected integers");
  if (k < 1 || k > 4 || off < 0 || (size_t)off + (size_t)N * (size_t)k > alen || (size_t)N * (size_t)k > blen)
    return range_error(env, "aOff/k: out of range for a or b");
  basemul_acc(r, a + off, b, k);
  return NULL;
}

/* ================================================================ the whole KEM
 *
 * ML-KEM.KeyGen_internal / Encaps_internal / Decaps_internal (FIPS 203
 * Algorithms 16-18 over K-PKE, Algorithms 13-15) for k = 2, 3, 4 (Table 2),
 * one N-API call each, written from FIPS 203 on the arithmetic above, so
 * firmware/crypto/mlkem/kem.ts crosses into C three times per handshake
 * instead of a few hundred times. Same conventions as kem.ts (which stays
 * the reference): Â[i][j] = SampleNTT(ρ‖j‖i), basemul_acc leaves ·R^-1 that
 * keygen undoes with fromMont, everything canonical before encoding.
 *
 * Secret data (s, e, y, m, G outputs, K̄, the re-encryption) lives in one
 * stack scratch that is OPENSSL_cleanse'd before every return. No branch or
 * table index depends on a secret: CBD, Compress (division by the constant
 * q compiles to a multiplication), the message bits and the decaps
 * comparison/selection (§6.3 / Algorithm 18 lines 9-12) are branch-free.
 * SampleNTT's rejection loop depends only on the public ρ.
 */

#define KMAX 4
#define SHAKE128_RATE 168

typedef struct {
  int k, eta1, eta2, du, dv;
  size_t ek, dk, ct;
} kem_params;

typedef struct {
  napi_env env;
  int16_t a[KMAX * KMAX * N]; /* Â (keygen) or Âᵀ (encrypt), entry [i][j] at (k·i + j)·N */
  int16_t s[KMAX * N];        /* ŝ / ŷ */
  int16_t e[KMAX * N];        /* ê / NTT(u') */
  int16_t t[KMAX * N];        /* t̂ */
  int16_t p1[N], p2[N];
  unsigned char prf[64 * 3];  /* PRF_η output, η ≤ 3 */
  unsigned char g[64], gin[64], kbar[32], z[32];
  unsigned char seed[34];     /* ρ ‖ j ‖ i */
  unsigned char sig[33];      /* σ or r ‖ N */
  unsigned char ct2[1568];    /* decaps re-encryption c' (largest ct: ML-KEM-1024) */
  unsigned char xof[SHAKE128_RATE * 12];
} kem_scratch;

/* FIPS 203 Table 2. */
static int kem_params_for(int32_t k, kem_params *p) {
  if (k < 2 || k > 4) return 0;
  p->k = k;
  p->eta1 = k == 2 ? 3 : 2;
  p->eta2 = 2;
  p->du = k == 4 ? 11 : 10;
  p->dv = k == 4 ? 5 : 4;
  p->ek = 384 * (size_t)k + 32;
  p->dk = 768 * (size_t)k + 96;
  p->ct = 32 * (size_t)(p->du * k + p->dv);
  return 1;
}

/* poly.ts canon / fromMont. */
static inline int32_t canon(int32_t a) {
  int32_t r = bred(a);
  return r + ((r >> 31) & Q);
}
static inline int32_t from_mont(int32_t x) { return mred(imul(x, MONT2)); }

/* ByteEncode_d (Algorithm 5), coefficients already < 2^d: 32·d octets. */
static void byte_encode(const int16_t *f, int d, unsigned char *out) {
  uint32_t acc = 0;
  int bits = 0, j;
  for (j = 0; j < N; j++) {
    acc |= (uint32_t)(uint16_t)f[j] << bits;
    bits += d;
    while (bits >= 8) {
      *out++ = (unsigned char)acc;
      acc >>= 8;
      bits -= 8;
    }
  }
}

/* ByteDecode_d (Algorithm 6) without the mod q of d = 12 (callers check or canonicalise). */
static void byte_decode(const unsigned char *in, int d, int16_t *f) {
  uint32_t acc = 0, mask = (1u << d) - 1;
  int bits = 0, j;
  for (j = 0; j < N; j++) {
    while (bits < d) {
      acc |= (uint32_t)*in++ << bits;
      bits += 8;
    }
    f[j] = (int16_t)(acc & mask);
    acc >>= d;
    bits -= d;
  }
}

/* Compress_d (§4.2.1) of every coefficient after canonicalisation, then ByteEncode_d. In place. */
static void compress_encode(int16_t *f, int d, unsigned char *out) {
  int j;
  for (j = 0; j < N; j++) {
    uint32_t x = (uint32_t)canon(f[j]);
    f[j] = (int16_t)((((x << d) + Q / 2) / Q) & ((1u << d) - 1));
  }
  byte_encode(f, d, out);
}

/* ByteDecode_d then Decompress_d (§4.2.1): round(q·y / 2^d). */
static void decode_decompress(const unsigned char *in, int d, int16_t *f) {
  int j;
  byte_decode(in, d, f);
  for (j = 0; j < N; j++) f[j] = (int16_t)(((uint32_t)(uint16_t)f[j] * Q + (1u << (d - 1))) >> d);
}

/*
 * SampleNTT (Algorithm 7) from XOF(ρ‖j‖i). SHAKE's output for a longer
 * length extends the shorter one, so when three blocks run out (< 1 % of
 * the time) the XOF is re-run longer and sampling continues where it
 * stopped: the result is that of the endless stream. The loop depends only
 * on the public seed. 0: hash failure or (practically impossible) > 12 blocks.
 */
static int sample_ntt(kem_scratch *sc, int16_t *f) {
  size_t len = 3 * SHAKE128_RATE, pos = 0;
  int j = 0;
  for (;;) {
    if (!pq_keccak(sc->env, K_SHAKE128, sc->seed, 34, NULL, 0, sc->xof, len)) return 0;
    for (; pos + 3 <= len && j < N; pos += 3) {
      const unsigned char *b = sc->xof + pos;
      int32_t d1 = b[0] | ((b[1] & 15) << 8), d2 = (b[1] >> 4) | (b[2] << 4);
      if (d1 < Q) f[j++] = (int16_t)d1;
      if (d2 < Q && j < N) f[j++] = (int16_t)d2;
    }
    if (j == N) return 1;
    if (len == sizeof sc->xof) return 0;
    len += 3 * SHAKE128_RATE;
  }
}

/* Â (transposed = 0) or Âᵀ from ρ in seed[0..32] (Algorithm 13 lines 3-7, 14 lines 4-8). */
static int expand_matrix(kem_scratch *sc, int k, int transposed) {
  int i, j;
  for (i = 0; i < k; i++) {
    for (j = 0; j < k; j++) {
      sc->seed[32] = (unsigned char)(transposed ? i : j);
      sc->seed[33] = (unsigned char)(transposed ? j : i);
      if (!sample_ntt(sc, sc->a + (k * i + j) * N)) return 0;
    }
  }
  return 1;
}

/* f (+)= SamplePolyCBD_η(PRF_η(sig, n)) (Algorithm 8), branch-free on the bits. */
static int noise(kem_scratch *sc, int16_t *f, int eta, int n, int add) {
  uint32_t acc = 0, mask = (1u << (2 * eta)) - 1;
  const unsigned char *b = sc->prf;
  int bits = 0, j;
  sc->sig[32] = (unsigned char)n;
  if (!pq_keccak(sc->env, K_SHAKE256, sc->sig, 33, NULL, 0, sc->prf, 64 * (size_t)eta)) return 0;
  for (j = 0; j < N; j++) {
    uint32_t v, x, y;
    while (bits < 2 * eta) {
      acc |= (uint32_t)*b++ << bits;
      bits += 8;
    }
    v = acc & mask;
    acc >>= 2 * eta;
    bits -= 2 * eta;
    /* eta is public: 2 or 3 */
    x = (v & 1) + ((v >> 1) & 1) + (eta == 3 ? ((v >> 2) & 1) : 0);
    y = ((v >> eta) & 1) + ((v >> (eta + 1)) & 1) + (eta == 3 ? ((v >> 5) & 1) : 0);
    f[j] = (int16_t)((add ? f[j] : 0) + (int32_t)x - (int32_t)y);
  }
  return 1;
}

/* K-PKE.KeyGen (Algorithm 13) + Algorithm 16's dk layout; d‖z = seed. */
static int kem_keygen(kem_scratch *sc, const kem_params *p, const unsigned char *seed, unsigned char *ek, unsigned char *dk, int16_t *aT) {
  int k = p->k, i, j;
  memcpy(sc->gin, seed, 32);
  memcpy(sc->z, seed + 32, 32);
  sc->gin[32] = (unsigned char)k; /* domain separator (Algorithm 13 line 1) */
  if (!pq_keccak(sc->env, K_SHA3_512, sc->gin, 33, NULL, 0, sc->g, 0)) return 0;
  memcpy(sc->seed, sc->g, 32);
  memcpy(sc->sig, sc->g + 32, 32);
  if (!expand_matrix(sc, k, 0)) return 0;
  for (i = 0; i < k; i++) {
    if (!noise(sc, sc->s + i * N, p->eta1, i, 0)) return 0;
    ntt(sc->s + i * N);
  }
  for (i = 0; i < k; i++) {
    if (!noise(sc, sc->e + i * N, p->eta1, k + i, 0)) return 0;
    ntt(sc->e + i * N);
  }
  for (i = 0; i < k; i++) { /* t̂ = Â∘ŝ + ê (line 18) */
    int16_t *t = sc->t + i * N, *e = sc->e + i * N;
    basemul_acc(sc->p1, sc->a + k * N * i, sc->s, k);
    for (j = 0; j < N; j++) t[j] = (int16_t)canon(from_mont(sc->p1[j]) + e[j]);
    byte_encode(t, 12, ek + 384 * i);
  }
  memcpy(ek + 384 * k, sc->seed, 32);
  for (i = 0; i < k; i++) {
    int16_t *s = sc->s + i * N;
    for (j = 0; j < N; j++) s[j] = (int16_t)canon(s[j]);
    byte_encode(s, 12, dk + 384 * i);
  }
  memcpy(dk + 384 * k, ek, p->ek); /* dk = dk_PKE ‖ ek ‖ H(ek) ‖ z (Algorithm 16 line 3) */
  if (!pq_keccak(sc->env, K_SHA3_256, ek, p->ek, NULL, 0, dk + 768 * k + 32, 0)) return 0;
  memcpy(dk + 768 * k + 64, sc->z, 32);
  if (aT != NULL) /* Âᵀ for later decaps (public: a function of ρ) */
    for (i = 0; i < k; i++)
      for (j = 0; j < k; j++) memcpy(aT + (k * i + j) * N, sc->a + (k * j + i) * N, N * sizeof(int16_t));
  return 1;
}

/*
 * K-PKE.Encrypt (Algorithm 14): t̂ in sc->t, m in gin[0..32], r in sig[0..32].
 * aT: Âᵀ for ek's ρ kept by the caller since keygen (kem.ts rememberMatrix),
 * saving the k² SampleNTT of the decaps re-encryption; NULL: expand from ρ.
 */
static int kpke_encrypt(kem_scratch *sc, const kem_params *p, const unsigned char *ek, const int16_t *aT, unsigned char *ct) {
  int k = p->k, i, j;
  const int16_t *a = sc->a;
  if (aT != NULL) a = aT;
  else {
    memcpy(sc->seed, ek + 384 * k, 32);
    if (!expand_matrix(sc, k, 1)) return 0;
  }
  for (i = 0; i < k; i++) { /* ŷ (lines 9-12) */
    if (!noise(sc, sc->s + i * N, p->eta1, i, 0)) return 0;
    ntt(sc->s + i * N);
  }
  for (i = 0; i < k; i++) { /* u = NTT^-1(Âᵀ∘ŷ) + e1, compressed into c1 (lines 13-16, 19, 22) */
    basemul_acc(sc->p1, a + k * N * i, sc->s, k);
    inv_ntt(sc->p1);
    if (!noise(sc, sc->p1, p->eta2, k + i, 1)) return 0;
    compress_encode(sc->p1, p->du, ct + 32 * p->du * i);
  }
  /* v = NTT^-1(t̂ᵀ∘ŷ) + e2 + Decompress_1(m) (lines 17, 20-21, 23) */
  basemul_acc(sc->p1, sc->t, sc->s, k);
  inv_ntt(sc->p1);
  if (!noise(sc, sc->p1, p->eta2, 2 * k, 1)) return 0;
  for (j = 0; j < N; j++) sc->p1[j] = (int16_t)(sc->p1[j] + (-(int32_t)((sc->gin[j >> 3] >> (j & 7)) & 1) & ((Q + 1) / 2)));
  compress_encode(sc->p1, p->dv, ct + 32 * p->du * k);
  return 1;
}

/* 1 ok, 0 hash failure, -1 ek fails the §7.2 modulus check (nothing written). */
static int kem_encaps(kem_scratch *sc, const kem_params *p, const unsigned char *ek, const unsigned char *m, unsigned char *ct, unsigned char *ss) {
  int k = p->k, i, j, bad = 0;
  for (i = 0; i < k; i++) { /* ByteEncode12(ByteDecode12(ek)) = ek  ⇔  every coefficient < q */
    int16_t *t = sc->t + i * N;
    byte_decode(ek + 384 * i, 12, t);
    for (j = 0; j < N; j++) bad |= t[j] >= Q;
  }
  if (bad) return -1;
  memcpy(sc->gin, m, 32);
  if (!pq_keccak(sc->env, K_SHA3_256, ek, p->ek, NULL, 0, sc->gin + 32, 0)) return 0;
  if (!pq_keccak(sc->env, K_SHA3_512, sc->gin, 64, NULL, 0, sc->g, 0)) return 0; /* (K, r) = G(m ‖ H(ek)) */
  memcpy(sc->sig, sc->g + 32, 32);
  if (!kpke_encrypt(sc, p, ek, NULL, ct)) return 0;
  memcpy(ss, sc->g, 32);
  return 1;
}

/* 1 ok, 0 hash failure, -1 dk fails the §7.3 hash check (nothing written). */
static int kem_decaps(kem_scratch *sc, const kem_params *p, const unsigned char *ct, const unsigned char *dk, const int16_t *aT, unsigned char *ss) {
  int k = p->k, i, j;
  const unsigned char *ek = dk + 384 * k, *h = dk + 768 * k + 32, *z = dk + 768 * k + 64;
  unsigned char diff = 0, mask;
  if (!pq_keccak(sc->env, K_SHA3_256, ek, p->ek, NULL, 0, sc->g, 0)) return 0;
  if (CRYPTO_memcmp(sc->g, h, 32) != 0) return -1;
  /* K-PKE.Decrypt (Algorithm 15): w = v' - NTT^-1(ŝᵀ∘NTT(u')), m' = ByteEncode1(Compress1(w)) */
  for (i = 0; i < k; i++) {
    decode_decompress(ct + 32 * p->du * i, p->du, sc->e + i * N);
    ntt(sc->e + i * N);
    byte_decode(dk + 384 * i, 12, sc->s + i * N);
  }
  basemul_acc(sc->p1, sc->s, sc->e, k);
  inv_ntt(sc->p1);
  decode_decompress(ct + 32 * p->du * k, p->dv, sc->p2);
  memset(sc->gin, 0, 32);
  for (j = 0; j < N; j++) {
    uint32_t w = (uint32_t)canon(sc->p2[j] - sc->p1[j]);
    sc->gin[j >> 3] |= (unsigned char)(((((w << 1) + Q / 2) / Q) & 1) << (j & 7));
  }
  memcpy(sc->gin + 32, h, 32);
  if (!pq_keccak(sc->env, K_SHA3_512, sc->gin, 64, NULL, 0, sc->g, 0)) return 0; /* (K', r') = G(m' ‖ h) */
  if (!pq_keccak(sc->env, K_SHAKE256, z, 32, ct, p->ct, sc->kbar, 32)) return 0; /* K̄ = J(z ‖ c) */
  memcpy(sc->sig, sc->g + 32, 32);
  for (i = 0; i < k; i++) byte_decode(ek + 384 * i, 12, sc->t + i * N);
  if (!kpke_encrypt(sc, p, ek, aT, sc->ct2)) return 0; /* c' (line 9) */
  /* Lines 10-12: K' if c = c' else K̄, without a branch on the secret comparison. */
  for (i = 0; i < (int)p->ct; i++) diff |= ct[i] ^ sc->ct2[i];
  mask = (unsigned char)(((uint32_t)diff - 1) >> 8); /* 0xff if equal, 0 if not */
  for (i = 0; i < 32; i++) ss[i] = sc->kbar[i] ^ ((sc->kbar[i] ^ sc->g[i]) & mask);
  return 1;
}

/* Common argument handling: k and Uint8Arrays of exact lengths. */
static int kem_args(napi_env env, napi_callback_info info, size_t want, size_t max, size_t *got, napi_value *argv, kem_params *p, const char *usage) {
  size_t argc = max;
  int32_t k;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  if (!tables_set) {
    napi_throw_error(env, "ERR_NATIVE_CRYPTO", "mlkem: mlkemTables() not called");
    return 0;
  }
  if (argc < want) {
    type_error(env, usage);
    return 0;
  }
  *got = argc;
  if (napi_get_value_int32(env, argv[0], &k) != napi_ok) {
    type_error(env, "k: expected 2, 3 or 4");
    return 0;
  }
  if (!kem_params_for(k, p)) {
    range_error(env, "k: expected 2, 3 or 4");
    return 0;
  }
  return 1;
}

static int bytes_arg(napi_env env, napi_value v, size_t want, unsigned char **data, const char *name) {
  size_t len;
  if (!typed(env, v, napi_uint8_array, (void **)data, &len, name)) return 0;
  if (len != want) {
    range_error(env, name);
    return 0;
  }
  return 1;
}

/* Optional Int16Array(k²·256) argument at argv[i] (undefined: none). 1 ok (maybe *aT = NULL), 0 thrown. */
static int matrix_arg(napi_env env, size_t argc, napi_value *argv, size_t i, const kem_params *p, int16_t **aT) {
  napi_valuetype t;
  size_t len;
  *aT = NULL;
  if (argc <= i || napi_typeof(env, argv[i], &t) != napi_ok || t == napi_undefined) return 1;
  if (!typed(env, argv[i], napi_int16_array, (void **)aT, &len, "aT: expected an Int16Array(k·k·256)")) return 0;
  if (len != (size_t)(p->k * p->k * N)) {
    range_error(env, "aT: expected an Int16Array(k·k·256)");
    return 0;
  }
  return 1;
}

static napi_value kem_done(napi_env env, kem_scratch *sc, int r, unsigned char *o1, size_t n1, unsigned char *o2, size_t n2) {
  napi_value result;
  OPENSSL_cleanse(sc, sizeof *sc);
  if (r == 0) {
    OPENSSL_cleanse(o1, n1);
    if (o2 != NULL) OPENSSL_cleanse(o2, n2);
    napi_throw_error(env, "ERR_NATIVE_CRYPTO", "mlkem: SHA3/SHAKE failed");
    return NULL;
  }
  if (napi_get_boolean(env, r == 1, &result) != napi_ok) return NULL;
  return result;
}

/* mlkemKeygen(k, seed: d ‖ z (64), ek, dk, aT?): aT receives Âᵀ if given. */
static napi_value n_kem_keygen(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  kem_params p;
  kem_scratch sc;
  unsigned char *seed, *ek, *dk;
  int16_t *aT;
  size_t argc;
  if (!kem_args(env, info, 4, 5, &argc, argv, &p, "mlkemKeygen(k, seed, ek, dk, aT?)")) return NULL;
  if (!bytes_arg(env, argv[1], 64, &seed, "seed: expected a Uint8Array(64)") ||
      !bytes_arg(env, argv[2], p.ek, &ek, "ek: expected a Uint8Array(384k + 32)") ||
      !bytes_arg(env, argv[3], p.dk, &dk, "dk: expected a Uint8Array(768k + 96)"))
    return NULL;
  if (!matrix_arg(env, argc, argv, 4, &p, &aT)) return NULL;
  sc.env = env;
  return kem_done(env, &sc, kem_keygen(&sc, &p, seed, ek, dk, aT), ek, p.ek, dk, p.dk);
}

/* mlkemEncaps(k, ek, m (32), ct, ss (32)) -> false if ek fails the §7.2 modulus check. */
static napi_value n_kem_encaps(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  kem_params p;
  kem_scratch sc;
  unsigned char *ek, *m, *ct, *ss;
  size_t argc;
  if (!kem_args(env, info, 5, 5, &argc, argv, &p, "mlkemEncaps(k, ek, m, ct, ss)")) return NULL;
  if (!bytes_arg(env, argv[1], p.ek, &ek, "ek: expected a Uint8Array(384k + 32)") ||
      !bytes_arg(env, argv[2], 32, &m, "m: expected a Uint8Array(32)") ||
      !bytes_arg(env, argv[3], p.ct, &ct, "ct: expected a Uint8Array(ciphertext size)") ||
      !bytes_arg(env, argv[4], 32, &ss, "ss: expected a Uint8Array(32)"))
    return NULL;
  sc.env = env;
  return kem_done(env, &sc, kem_encaps(&sc, &p, ek, m, ct, ss), ct, p.ct, ss, 32);
}

/*
 * mlkemDecaps(k, ct, dk, ss (32), aT?) -> false if dk fails the §7.3 hash
 * check. aT: Âᵀ from mlkemKeygen for this dk's ρ (the caller checks ρ; a
 * wrong one only makes the re-encryption differ, i.e. implicit rejection).
 */
static napi_value n_kem_decaps(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  kem_params p;
  kem_scratch sc;
  unsigned char *ct, *dk, *ss;
  int16_t *aT;
  size_t argc;
  if (!kem_args(env, info, 4, 5, &argc, argv, &p, "mlkemDecaps(k, ct, dk, ss, aT?)")) return NULL;
  if (!bytes_arg(env, argv[1], p.ct, &ct, "ct: expected a Uint8Array(ciphertext size)") ||
      !bytes_arg(env, argv[2], p.dk, &dk, "dk: expected a Uint8Array(768k + 96)") ||
      !bytes_arg(env, argv[3], 32, &ss, "ss: expected a Uint8Array(32)"))
    return NULL;
  if (!matrix_arg(env, argc, argv, 4, &p, &aT)) return NULL;
  sc.env = env;
  return kem_done(env, &sc, kem_decaps(&sc, &p, ct, dk, aT, ss), ss, 32, NULL, 0);
}

napi_status mlkem_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"mlkemTables", NULL, n_tables, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mlkemNtt", NULL, n_ntt, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mlkemInvNtt", NULL, n_inv_ntt, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mlkemBasemulAcc", NULL, n_basemul_acc, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mlkemKeygen", NULL, n_kem_keygen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mlkemEncaps", NULL, n_kem_encaps, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mlkemDecaps", NULL, n_kem_decaps, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
