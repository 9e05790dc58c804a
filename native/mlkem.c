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

#define N 256
#define Q 3329
#define QINV (-3327)
#define BARRETT_V 20159

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

napi_status mlkem_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"mlkemTables", NULL, n_tables, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mlkemNtt", NULL, n_ntt, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mlkemInvNtt", NULL, n_inv_ntt, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mlkemBasemulAcc", NULL, n_basemul_acc, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
