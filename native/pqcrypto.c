/*
 * pqcrypto: the IKE key schedule's hot primitives on Node's own OpenSSL, one
 * N-API call each (issue 2). Registered on the pqtun addon's exports by
 * pqtun.c's init(), so one .node file and one loader serve both.
 *
 *   hmac(alg, key, out, p0, p1?, p2?, p3?, p4?)   HMAC (RFC 2104) of p0|p1|..., truncated to out.length
 *   prfPlus(alg, key, seed, out)                   prf+ (RFC 7296 §2.13) of HMAC, out.length octets
 *   hash(alg, out, p0, p1?, p2?, p3?, p4?)         SHA-1/2, SHA3-256/512, SHAKE128/256 of p0|p1|...
 *   skAead*, skCbc*                                the SK payload contexts: native/sk.c
 *   x25519Public(priv, out)                        RFC 7748 §5: X25519(k, 9)
 *   x25519Derive(priv, peer, out) -> boolean       false for an all-zero result (RFC 7748 §6.1)
 *
 * Why: every node:crypto call builds a JS object, a C++ BaseObject and a
 * fresh OpenSSL context, and resolves the algorithm by name (docs/benchmarks.md
 * "Where the time goes": ~7 % of a handshake in malloc/free alone).
 *
 *  - SHA-1/SHA-2 and HMAC use OpenSSL's low-level SHA*_Init/Update/Final on
 *    contexts that live on the C stack (plain structs, no allocation, no
 *    provider dispatch). They are deprecated in OpenSSL 3 but exported by
 *    every Node build (checked for Node 20 / OpenSSL 3.0 and Node 22 /
 *    OpenSSL 3.5), and they run the same assembler block functions as EVP.
 *    HMAC keeps the ipad/opad states (RFC 2104 §4 "precomputed") and copies
 *    them per message, so prf+ keys once for all its blocks.
 *  - SHA3/SHAKE (ML-KEM's Keccak, FIPS 203 §4.1) go through EVP with the
 *    EVP_MD fetched once per environment and one reused EVP_MD_CTX.
 *  - X25519: see x25519() below.
 *
 * Arguments are checked here (types, lengths, handles): a bad call throws a
 * TypeError / RangeError with a `code`, never touches memory out of bounds.
 * firmware/crypto/native.ts is the typed wrapper; node:crypto and @noble stay
 * the reference (test/crypto/native.test.ts).
 */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include "pqcrypto.h"

#include <dlfcn.h>

/* ------------------------------------------------------------------ SHA-1/2 and HMAC */

const size_t pq_md_size[4] = {20, 32, 48, 64};
static const size_t md_block[4] = {64, 64, 128, 128};

static void sha_init(int alg, sha_ctx *c) {
  switch (alg) {
    case ALG_SHA1: SHA1_Init(&c->s1); break;
    case ALG_SHA256: SHA256_Init(&c->s256); break;
    case ALG_SHA384: SHA384_Init(&c->s512); break;
    default: SHA512_Init(&c->s512); break;
  }
}

static void sha_update(int alg, sha_ctx *c, const unsigned char *p, size_t n) {
  if (n == 0) return;
  switch (alg) {
    case ALG_SHA1: SHA1_Update(&c->s1, p, n); break;
    case ALG_SHA256: SHA256_Update(&c->s256, p, n); break;
    default: SHA512_Update(&c->s512, p, n); break; /* SHA-384 shares SHA-512's update */
  }
}

static void sha_final(int alg, sha_ctx *c, unsigned char *out) {
  switch (alg) {
    case ALG_SHA1: SHA1_Final(out, &c->s1); break;
    case ALG_SHA256: SHA256_Final(out, &c->s256); break;
    case ALG_SHA384: SHA384_Final(out, &c->s512); break;
    default: SHA512_Final(out, &c->s512); break;
  }
}


void hmac_setkey(hmac_key *h, int alg, const unsigned char *key, size_t klen) {
  unsigned char k0[MAX_BLOCK], pad[MAX_BLOCK];
  size_t b = md_block[alg], i;
  memset(k0, 0, sizeof k0);
  if (klen > b) { /* RFC 2104 §2: keys longer than B are hashed first */
    sha_ctx c;
    sha_init(alg, &c);
    sha_update(alg, &c, key, klen);
    sha_final(alg, &c, k0);
    OPENSSL_cleanse(&c, sizeof c);
  } else {
    memcpy(k0, key, klen);
  }
  h->alg = alg;
  for (i = 0; i < b; i++) pad[i] = k0[i] ^ 0x36;
  sha_init(alg, &h->in);
  sha_update(alg, &h->in, pad, b);
  for (i = 0; i < b; i++) pad[i] = k0[i] ^ 0x5c;
  sha_init(alg, &h->out);
  sha_update(alg, &h->out, pad, b);
  OPENSSL_cleanse(k0, sizeof k0);
  OPENSSL_cleanse(pad, sizeof pad);
}


/* mac = H(K0^opad | H(K0^ipad | parts)), full length into mac[MAX_MD]. */
void hmac_run(const hmac_key *h, const part *parts, int nparts, unsigned char *mac) {
  sha_ctx c;
  unsigned char inner[MAX_MD];
  int i;
  c = h->in;
  for (i = 0; i < nparts; i++) sha_update(h->alg, &c, parts[i].p, parts[i].n);
  sha_final(h->alg, &c, inner);
  c = h->out;
  sha_update(h->alg, &c, inner, pq_md_size[h->alg]);
  sha_final(h->alg, &c, mac);
  OPENSSL_cleanse(&c, sizeof c);
  OPENSSL_cleanse(inner, sizeof inner);
}

#define MAX_PARTS 5

/* Collect argv[from .. argc) as message parts (at least one). */
static int get_parts(napi_env env, napi_value *argv, size_t argc, size_t from, part *parts, int *n) {
  size_t i;
  *n = 0;
  if (argc <= from) {
    type_error(env, "data: expected at least one Uint8Array");
    return 0;
  }
  if (argc - from > MAX_PARTS) {
    type_error(env, "data: at most 5 parts");
    return 0;
  }
  for (i = from; i < argc; i++) {
    unsigned char *d;
    size_t l;
    if (!u8(env, argv[i], "data: expected Uint8Array parts", &d, &l)) return 0;
    parts[*n].p = d;
    parts[*n].n = l;
    (*n)++;
  }
  return 1;
}

/* hmac(alg, key, out, p0, ...p4): out.length in [1, macLen]; RFC 2104 §5 truncation to the leftmost octets. */
static napi_value n_hmac(napi_env env, napi_callback_info info) {
  size_t argc = 3 + MAX_PARTS + 1, klen, olen;
  napi_value argv[3 + MAX_PARTS + 1];
  int32_t alg;
  unsigned char *key, *out, mac[MAX_MD];
  part parts[MAX_PARTS];
  int n;
  hmac_key h;
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return type_error(env, "hmac(alg, key, out, ...data)");
  if (!small_int(env, argv[0], ALG_SHA512, "alg: expected 0..3 (SHA-1, SHA-256, SHA-384, SHA-512)", &alg)) return NULL;
  if (!u8(env, argv[1], "key: expected a Uint8Array", &key, &klen)) return NULL;
  if (!u8(env, argv[2], "out: expected a Uint8Array", &out, &olen)) return NULL;
  if (olen == 0 || olen > pq_md_size[alg]) return range_error(env, "out: length must be 1..MAC length");
  if (!get_parts(env, argv, argc, 3, parts, &n)) return NULL;
  hmac_setkey(&h, alg, key, klen);
  hmac_run(&h, parts, n, mac);
  memcpy(out, mac, olen);
  OPENSSL_cleanse(&h, sizeof h);
  OPENSSL_cleanse(mac, sizeof mac);
  return NULL;
}

/*
 * prfPlus(alg, key, seed, out): RFC 7296 §2.13 with prf = HMAC-<alg>
 *   T1 = prf(K, S | 0x01), Tn = prf(K, T(n-1) | S | n), out = (T1 | T2 | ...)[0, out.length)
 * "not defined beyond 255 times the size of the prf function output": a longer out is a RangeError.
 * out must not overlap key or seed (checked: the blocks are written as they are made).
 */
static napi_value n_prf_plus(napi_env env, napi_callback_info info) {
  size_t argc = 4, klen, slen, olen, hl, done = 0;
  napi_value argv[4];
  int32_t alg;
  unsigned char *key, *seed, *out, t[MAX_MD], ctr;
  hmac_key h;
  part parts[3];
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return type_error(env, "prfPlus(alg, key, seed, out)");
  if (!small_int(env, argv[0], ALG_SHA512, "alg: expected 0..3 (SHA-1, SHA-256, SHA-384, SHA-512)", &alg)) return NULL;
  if (!u8(env, argv[1], "key: expected a Uint8Array", &key, &klen)) return NULL;
  if (!u8(env, argv[2], "seed: expected a Uint8Array", &seed, &slen)) return NULL;
  if (!u8(env, argv[3], "out: expected a Uint8Array", &out, &olen)) return NULL;
  hl = pq_md_size[alg];
  if (olen > 255 * hl) return range_error(env, "out: prf+ is not defined beyond 255 PRF blocks (RFC 7296 §2.13)");
  if (olen > 0 && ((out < key + klen && key < out + olen) || (out < seed + slen && seed < out + olen)))
    return range_error(env, "out: overlaps key or seed");
  hmac_setkey(&h, alg, key, klen);
  for (ctr = 1; done < olen; ctr++) {
    int np = 0;
    if (ctr > 1) { parts[np].p = t; parts[np].n = hl; np++; }
    parts[np].p = seed; parts[np].n = slen; np++;
    parts[np].p = &ctr; parts[np].n = 1; np++;
    hmac_run(&h, parts, np, t);
    memcpy(out + done, t, olen - done < hl ? olen - done : hl);
    done += hl;
  }
  OPENSSL_cleanse(&h, sizeof h);
  OPENSSL_cleanse(t, sizeof t);
  return NULL;
}

/* ------------------------------------------------------------------ hashes */

#define ALG_SHA3_256 4
#define ALG_SHA3_512 5
#define ALG_SHAKE128 6
#define ALG_SHAKE256 7

/* Per-environment state (worker threads each load the addon into their own env). */
typedef struct {
  EVP_MD *md[4]; /* SHA3-256, SHA3-512, SHAKE128, SHAKE256; fetched once */
  EVP_MD_CTX *ctx;
  /* AES-128/192/256-GCM, ChaCha20-Poly1305: fetched once (EVP_aes_256_gcm() & co. are
     looked up by name again on every EVP_CipherInit_ex in OpenSSL 3). */
  EVP_CIPHER *cipher[4];
} env_state;

static void env_state_free(napi_env env, void *data, void *hint) {
  env_state *s = (env_state *)data;
  int i;
  (void)env;
  (void)hint;
  for (i = 0; i < 4; i++) EVP_MD_free(s->md[i]);
  for (i = 0; i < 4; i++) EVP_CIPHER_free(s->cipher[i]);
  EVP_MD_CTX_free(s->ctx);
  free(s);
}

static env_state *get_state(napi_env env) {
  env_state *s = NULL;
  if (napi_get_instance_data(env, (void **)&s) != napi_ok || s == NULL) crypto_error(env, "pqcrypto: not initialised");
  return s;
}

const EVP_CIPHER *pq_aead_cipher(napi_env env, int alg) {
  env_state *s = NULL;
  if (alg < 0 || alg > 3 || napi_get_instance_data(env, (void **)&s) != napi_ok || s == NULL) return NULL;
  return s->cipher[alg];
}

/*
 * SHA3-256 / SHA3-512 / SHAKE128 / SHAKE256 (alg 4..7) of a | b into out, for
 * native/mlkem.c (FIPS 203 §4.1 H, G, J, PRF, XOF). No exception thrown:
 * returns 1 on success, 0 if the state or digest is missing or EVP fails.
 */
int pq_keccak(napi_env env, int alg, const unsigned char *a, size_t an, const unsigned char *b, size_t bn, unsigned char *out, size_t olen) {
  env_state *s = NULL;
  const EVP_MD *md;
  int ok;
  if (alg < ALG_SHA3_256 || alg > ALG_SHAKE256 || napi_get_instance_data(env, (void **)&s) != napi_ok || s == NULL) return 0;
  md = s->md[alg - ALG_SHA3_256];
  if (md == NULL) return 0;
  ok = EVP_DigestInit_ex(s->ctx, md, NULL) == 1 && EVP_DigestUpdate(s->ctx, a, an) == 1 && (bn == 0 || EVP_DigestUpdate(s->ctx, b, bn) == 1);
  if (ok) ok = alg >= ALG_SHAKE128 ? EVP_DigestFinalXOF(s->ctx, out, olen) == 1 : EVP_DigestFinal_ex(s->ctx, out, NULL) == 1;
  return ok;
}

/* hash(alg, out, p0, ...p4): fixed-length digests need out.length = digest size; SHAKE any length >= 1. */
static napi_value n_hash(napi_env env, napi_callback_info info) {
  size_t argc = 2 + MAX_PARTS + 1, olen;
  napi_value argv[2 + MAX_PARTS + 1];
  int32_t alg;
  unsigned char *out;
  part parts[MAX_PARTS];
  int n, i;
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return type_error(env, "hash(alg, out, ...data)");
  if (!small_int(env, argv[0], ALG_SHAKE256, "alg: expected 0..7", &alg)) return NULL;
  if (!u8(env, argv[1], "out: expected a Uint8Array", &out, &olen)) return NULL;
  if (!get_parts(env, argv, argc, 2, parts, &n)) return NULL;
  if (alg <= ALG_SHA512) {
    sha_ctx c;
    if (olen != pq_md_size[alg]) return range_error(env, "out: length must be the digest size");
    sha_init(alg, &c);
    for (i = 0; i < n; i++) sha_update(alg, &c, parts[i].p, parts[i].n);
    sha_final(alg, &c, out);
    OPENSSL_cleanse(&c, sizeof c);
    return NULL;
  } else {
    env_state *s = get_state(env);
    const EVP_MD *md;
    int xof = alg >= ALG_SHAKE128, ok;
    if (s == NULL) return NULL;
    md = s->md[alg - ALG_SHA3_256];
    if (md == NULL) return crypto_error(env, "pqcrypto: digest not available in this OpenSSL");
    if (xof ? olen == 0 || olen > (1u << 24) : olen != (size_t)EVP_MD_get_size(md))
      return range_error(env, xof ? "out: SHAKE output must be 1..16 MiB" : "out: length must be the digest size");
    ok = EVP_DigestInit_ex(s->ctx, md, NULL) == 1;
    for (i = 0; ok && i < n; i++) ok = EVP_DigestUpdate(s->ctx, parts[i].p, parts[i].n) == 1;
    if (ok) ok = xof ? EVP_DigestFinalXOF(s->ctx, out, olen) == 1 : EVP_DigestFinal_ex(s->ctx, out, NULL) == 1;
    if (!ok) return crypto_error(env, "OpenSSL: digest failed");
    return NULL;
  }
}

/* ------------------------------------------------------------------ X25519 */

/*
 * The EVP_PKEY path costs two scalar multiplications per derive: importing a
 * raw private key computes its public key. OpenSSL's own X25519 function
 * (ossl_x25519 / ossl_x25519_public_from_private, crypto/ec/curve25519.c,
 * the same code EVP ends in) does one. It is not in the public headers, so
 * it is looked up at load time (both Node 20's OpenSSL 3.0 and Node 22's 3.5
 * export it) and the EVP path is the fallback when it is missing.
 */
typedef int (*x25519_fn)(uint8_t out[32], const uint8_t priv[32], const uint8_t peer[32]);
typedef void (*x25519_pub_fn)(uint8_t out[32], const uint8_t priv[32]);
static x25519_fn x25519_direct;
static x25519_pub_fn x25519_pub_direct;

/* X25519(priv, peer) through the public EVP_PKEY raw-key API (RFC 7748 §5). */
static int x25519_evp(unsigned char out[32], const unsigned char priv[32], const unsigned char *peer) {
  EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32), *p = NULL;
  EVP_PKEY_CTX *c = NULL;
  size_t len = 32;
  int ok = 0;
  if (k == NULL) return -1;
  if (peer == NULL) { /* public key = X25519(k, 9) */
    ok = EVP_PKEY_get_raw_public_key(k, out, &len) == 1 && len == 32 ? 1 : -1;
  } else {
    p = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, 32);
    c = p != NULL ? EVP_PKEY_CTX_new(k, NULL) : NULL;
    /* OpenSSL refuses an all-zero result itself (derive fails): that is ok = 0, not an error. */
    ok = c != NULL && EVP_PKEY_derive_init(c) == 1 && EVP_PKEY_derive_set_peer(c, p) == 1 ? 0 : -1;
    if (ok == 0 && EVP_PKEY_derive(c, out, &len) == 1 && len == 32) ok = 1;
  }
  EVP_PKEY_CTX_free(c);
  EVP_PKEY_free(p);
  EVP_PKEY_free(k); /* cleanses the private key copy */
  return ok;
}

/* 1: done, 0: all-zero result (refused), -1: error. peer NULL: the public key. */
static int x25519(unsigned char out[32], const unsigned char priv[32], const unsigned char *peer) {
  if (peer == NULL && x25519_pub_direct != NULL) {
    x25519_pub_direct(out, priv);
    return 1;
  }
  if (peer != NULL && x25519_direct != NULL) return x25519_direct(out, priv, peer) == 1 ? 1 : 0;
  return x25519_evp(out, priv, peer);
}

static napi_value n_x25519_public(napi_env env, napi_callback_info info) {
  size_t argc = 2, plen, olen;
  napi_value argv[2];
  unsigned char *priv, *out;
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return type_error(env, "x25519Public(priv, out)");
  if (!u8(env, argv[0], "priv: expected a Uint8Array", &priv, &plen) || !u8(env, argv[1], "out: expected a Uint8Array", &out, &olen)) return NULL;
  if (plen != 32 || olen != 32) return range_error(env, "priv, out: 32 octets each");
  if (x25519(out, priv, NULL) != 1) return crypto_error(env, "OpenSSL: X25519 public key failed");
  return NULL;
}

static napi_value n_x25519_derive(napi_env env, napi_callback_info info) {
  size_t argc = 3, plen, qlen, olen, i;
  napi_value argv[3], result;
  unsigned char *priv, *peer, *out, acc = 0;
  int r;
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return type_error(env, "x25519Derive(priv, peer, out)");
  if (!u8(env, argv[0], "priv: expected a Uint8Array", &priv, &plen) || !u8(env, argv[1], "peer: expected a Uint8Array", &peer, &qlen) ||
      !u8(env, argv[2], "out: expected a Uint8Array", &out, &olen))
    return NULL;
  if (plen != 32 || qlen != 32 || olen != 32) return range_error(env, "priv, peer, out: 32 octets each");
  r = x25519(out, priv, peer);
  if (r < 0) return crypto_error(env, "OpenSSL: X25519 failed");
  /* RFC 7748 §6.1 / RFC 8031 §2.3: reject the all-zero shared secret (low-order peer point). */
  for (i = 0; r == 1 && i < 32; i++) acc |= out[i];
  if (r != 1 || acc == 0) OPENSSL_cleanse(out, 32);
  CALL(env, napi_get_boolean(env, r == 1 && acc != 0, &result));
  return result;
}

/* ------------------------------------------------------------------ registration */

napi_status pqcrypto_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"hmac", NULL, n_hmac, NULL, NULL, NULL, napi_enumerable, NULL},
      {"prfPlus", NULL, n_prf_plus, NULL, NULL, NULL, napi_enumerable, NULL},
      {"hash", NULL, n_hash, NULL, NULL, NULL, napi_enumerable, NULL},
      {"x25519Public", NULL, n_x25519_public, NULL, NULL, NULL, napi_enumerable, NULL},
      {"x25519Derive", NULL, n_x25519_derive, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  static const char *names[4] = {"SHA3-256", "SHA3-512", "SHAKE128", "SHAKE256"};
  static const char *ciphers[4] = {"AES-128-GCM", "AES-192-GCM", "AES-256-GCM", "ChaCha20-Poly1305"};
  env_state *s = calloc(1, sizeof *s);
  napi_status st;
  int i;
  napi_value flag;
  if (s == NULL) return napi_generic_failure;
  if (getenv("PQGATE_X25519_EVP") == NULL) { /* set: force the public EVP path (tests compare both) */
    x25519_direct = (x25519_fn)dlsym(RTLD_DEFAULT, "ossl_x25519");
    x25519_pub_direct = (x25519_pub_fn)dlsym(RTLD_DEFAULT, "ossl_x25519_public_from_private");
    if (x25519_direct == NULL || x25519_pub_direct == NULL) x25519_direct = NULL, x25519_pub_direct = NULL;
  }
  for (i = 0; i < 4; i++) s->md[i] = EVP_MD_fetch(NULL, names[i], NULL);
  for (i = 0; i < 4; i++) s->cipher[i] = EVP_CIPHER_fetch(NULL, ciphers[i], NULL);
  s->ctx = EVP_MD_CTX_new();
  if (s->ctx == NULL || (st = napi_set_instance_data(env, s, env_state_free, NULL)) != napi_ok) {
    env_state_free(env, s, NULL);
    return napi_generic_failure;
  }
  st = napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  if (st != napi_ok) return st;
  st = pqsk_init(env, exports);
  if (st != napi_ok) return st;
  /* Which X25519 path is in use: "direct" or "evp" (reported by the benchmarks and tests). */
  st = napi_create_string_utf8(env, x25519_direct != NULL ? "direct" : "evp", NAPI_AUTO_LENGTH, &flag);
  if (st != napi_ok) return st;
  return napi_set_named_property(env, exports, "x25519Impl", flag);
}
