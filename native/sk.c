/*
 * SK payload protection contexts (RFC 7296 §3.14), one per IKE SA direction,
 * for crypto/sk-cipher.ts: keyed once when the IKE SA's keys are derived,
 * cleansed and freed by skAeadFree / skCbcFree (SkCipher.destroy()) or by
 * the GC finalizer of a forgotten handle. Handles carry a magic number, so
 * a foreign or freed handle is a TypeError, never a crash.
 *
 *   skAeadNew(alg, key, salt, icvLen) -> handle    AES-GCM (RFC 5282 via RFC 4106), ChaCha20-Poly1305 (RFC 7634)
 *   skAeadSeal(handle, aad, iv, plain, out)        out = C | tag
 *   skAeadOpen(handle, aad, iv, ctAndIcv, out) -> boolean
 *   skCbcNew(encKey, macAlg, macKey, icvLen)       AES-CBC (RFC 3602) + HMAC-SHA2 (RFC 4868), encrypt-then-MAC
 *   skCbcSeal / skCbcOpen                          the same shapes (16-octet IV)
 *   skAeadFree(handle), skCbcFree(handle)
 */
#include "pqcrypto.h"

/*
 * The context behind a handle: `v` must be an external whose struct starts
 * with `magic` (both context structs below begin with their uint32_t magic).
 * Otherwise a TypeError `what` and NULL. A freed context is still returned:
 * the callers decide whether that is an error (use) or not (free twice).
 */
static void *handle_of(napi_env env, napi_value v, uint32_t magic, const char *what) {
  napi_valuetype t;
  void *p = NULL;
  if (napi_typeof(env, v, &t) != napi_ok) return NULL;
  if (t != napi_external || napi_get_value_external(env, v, &p) != napi_ok || p == NULL || *(const uint32_t *)p != magic) {
    type_error(env, what);
    return NULL;
  }
  return p;
}

/* ------------------------------------------------------------------ SK AEAD */

#define SKAEAD_MAGIC 0x70717361u /* "pqsa" */

typedef struct {
  uint32_t magic;
  EVP_CIPHER_CTX *ctx; /* NULL once freed */
  unsigned char salt[4];
  int icv;
} skaead;

static void skaead_release(skaead *a) {
  if (a->ctx != NULL) EVP_CIPHER_CTX_free(a->ctx); /* cleanses the key schedule */
  a->ctx = NULL;
  OPENSSL_cleanse(a->salt, sizeof a->salt);
}

static void skaead_finalize(napi_env env, void *data, void *hint) {
  skaead *a = (skaead *)data;
  (void)env;
  (void)hint;
  skaead_release(a);
  a->magic = 0;
  free(a);
}

static skaead *get_skaead(napi_env env, napi_value v) {
  skaead *a = handle_of(env, v, SKAEAD_MAGIC, "handle: expected a skAeadNew() handle");
  if (a == NULL) return NULL;
  if (a->ctx == NULL) {
    type_error(env, "handle: freed");
    return NULL;
  }
  return a;
}

/* skAeadNew(alg, key, salt, icvLen): alg 0..2 = AES-GCM-128/192/256 (RFC 5282), 3 = ChaCha20-Poly1305 (RFC 7634). */
static napi_value n_skaead_new(napi_env env, napi_callback_info info) {
  size_t argc = 4, klen, slen;
  napi_value argv[4], ext;
  int32_t alg, icv;
  unsigned char *key, *salt;
  const EVP_CIPHER *cipher;
  skaead *a;
  static const size_t keylen[4] = {16, 24, 32, 32};
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return type_error(env, "skAeadNew(alg, key, salt, icvLen)");
  if (!small_int(env, argv[0], 3, "alg: expected 0..3", &alg)) return NULL;
  if (!u8(env, argv[1], "key: expected a Uint8Array", &key, &klen)) return NULL;
  if (!u8(env, argv[2], "salt: expected a Uint8Array", &salt, &slen)) return NULL;
  if (!small_int(env, argv[3], 16, "icvLen: expected 8, 12 or 16", &icv)) return NULL;
  if (klen != keylen[alg]) return range_error(env, "key: wrong length for alg");
  if (slen != 4) return range_error(env, "salt: expected 4 octets");
  /* RFC 5282 §3 (via RFC 4106): ICV 8, 12 or 16; RFC 7634 §2: 16. */
  if (alg == 3 ? icv != 16 : icv != 8 && icv != 12 && icv != 16) return range_error(env, "icvLen: 8, 12 or 16 (16 for ChaCha20-Poly1305)");
  cipher = pq_aead_cipher(env, alg);
  if (cipher == NULL) cipher = alg == 0 ? EVP_aes_128_gcm() : alg == 1 ? EVP_aes_192_gcm() : alg == 2 ? EVP_aes_256_gcm() : EVP_chacha20_poly1305();
  a = calloc(1, sizeof *a);
  if (a == NULL) return crypto_error(env, "out of memory");
  a->magic = SKAEAD_MAGIC;
  a->icv = icv;
  memcpy(a->salt, salt, 4);
  a->ctx = EVP_CIPHER_CTX_new();
  /* 12-octet nonce (salt | IV) is the default for both ciphers; the direction is chosen per call. */
  if (a->ctx == NULL || EVP_CipherInit_ex(a->ctx, cipher, NULL, key, NULL, 1) != 1) {
    skaead_release(a);
    free(a);
    return crypto_error(env, "OpenSSL: cannot initialise the cipher");
  }
  if (napi_create_external(env, a, skaead_finalize, NULL, &ext) != napi_ok) {
    skaead_release(a);
    free(a);
    return NULL;
  }
  return ext;
}

static int sk_common(napi_env env, napi_callback_info info, const char *usage, skaead **a, unsigned char **aad, size_t *aadlen,
                     unsigned char **iv, unsigned char **in, size_t *inlen, unsigned char **out, size_t *outlen) {
  size_t argc = 5, ivlen;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  if (argc < 5) {
    type_error(env, usage);
    return 0;
  }
  if ((*a = get_skaead(env, argv[0])) == NULL) return 0;
  if (!u8(env, argv[1], "aad: expected a Uint8Array", aad, aadlen) || !u8(env, argv[2], "iv: expected a Uint8Array", iv, &ivlen) ||
      !u8(env, argv[3], "data: expected a Uint8Array", in, inlen) || !u8(env, argv[4], "out: expected a Uint8Array", out, outlen))
    return 0;
  if (ivlen != 8) {
    range_error(env, "iv: expected 8 octets");
    return 0;
  }
  if (*aadlen > INT32_MAX || *inlen > INT32_MAX - 64) {
    range_error(env, "aad/data: too long");
    return 0;
  }
  return 1;
}

/* skAeadSeal(handle, aad, iv, plain, out): out.length = plain.length + icvLen; out may be plain's buffer only if identical. */
static napi_value n_skaead_seal(napi_env env, napi_callback_info info) {
  skaead *a;
  unsigned char *aad, *iv, *plain, *out, nonce[12];
  size_t aadlen, plen, olen;
  int n, m;
  if (!sk_common(env, info, "skAeadSeal(handle, aad, iv, plain, out)", &a, &aad, &aadlen, &iv, &plain, &plen, &out, &olen)) return NULL;
  if (olen != plen + (size_t)a->icv) return range_error(env, "out: length must be plain.length + icvLen");
  if (out != plain && plen > 0 && out < plain + plen && plain < out + olen) return range_error(env, "out: overlaps plain");
  memcpy(nonce, a->salt, 4);
  memcpy(nonce + 4, iv, 8);
  if (EVP_CipherInit_ex(a->ctx, NULL, NULL, NULL, nonce, 1) != 1 || EVP_CipherUpdate(a->ctx, NULL, &n, aad, (int)aadlen) != 1 ||
      EVP_CipherUpdate(a->ctx, out, &n, plain, (int)plen) != 1 || EVP_CipherFinal_ex(a->ctx, out + n, &m) != 1 ||
      EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_GET_TAG, a->icv, out + plen) != 1) {
    OPENSSL_cleanse(nonce, sizeof nonce);
    return crypto_error(env, "OpenSSL: AEAD encryption failed");
  }
  OPENSSL_cleanse(nonce, sizeof nonce);
  return NULL;
}

/*
 * skAeadOpen(handle, aad, iv, ctAndIcv, out): boolean. out.length = ctAndIcv.length - icvLen.
 * False (out wiped) when the tag does not verify or ctAndIcv is shorter than the ICV: the caller
 * turns both into one AuthTagError (RFC 7296 §2.21.2: no reason is given).
 */
static napi_value n_skaead_open(napi_env env, napi_callback_info info) {
  skaead *a;
  unsigned char *aad, *iv, *in, *out, nonce[12], tag[16];
  size_t aadlen, inlen, olen, ct;
  int n = 0, m, ok;
  napi_value result;
  if (!sk_common(env, info, "skAeadOpen(handle, aad, iv, ctAndIcv, out)", &a, &aad, &aadlen, &iv, &in, &inlen, &out, &olen)) return NULL;
  if (inlen < (size_t)a->icv) {
    CALL(env, napi_get_boolean(env, false, &result));
    return result;
  }
  ct = inlen - (size_t)a->icv;
  if (olen != ct) return range_error(env, "out: length must be ctAndIcv.length - icvLen");
  if (out != in && ct > 0 && out < in + inlen && in < out + olen) return range_error(env, "out: overlaps ctAndIcv");
  memcpy(nonce, a->salt, 4);
  memcpy(nonce + 4, iv, 8);
  memcpy(tag, in + ct, (size_t)a->icv);
  ok = EVP_CipherInit_ex(a->ctx, NULL, NULL, NULL, nonce, 0) == 1 && EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_TAG, a->icv, tag) == 1 &&
       EVP_CipherUpdate(a->ctx, NULL, &n, aad, (int)aadlen) == 1 && EVP_CipherUpdate(a->ctx, out, &n, in, (int)ct) == 1 &&
       EVP_CipherFinal_ex(a->ctx, out + n, &m) == 1; /* verifies the tag in constant time */
  if (!ok) OPENSSL_cleanse(out, ct);
  OPENSSL_cleanse(nonce, sizeof nonce);
  CALL(env, napi_get_boolean(env, ok, &result));
  return result;
}

/* skAeadFree(handle): idempotent; the handle is unusable afterwards. */
static napi_value n_skaead_free(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  skaead *a;
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return type_error(env, "skAeadFree(handle)");
  if ((a = handle_of(env, argv[0], SKAEAD_MAGIC, "handle: expected a skAeadNew() handle")) == NULL) return NULL;
  skaead_release(a);
  return NULL;
}

/* ------------------------------------------------------------------ SK AES-CBC + HMAC */

/*
 * Encrypt-then-MAC SK payloads (RFC 7296 §3.14 with RFC 3602 AES-CBC and
 * RFC 4868 HMAC-SHA2-*-{128,192,256}): one context per IKE SA direction with
 * the AES key schedule and the HMAC ipad/opad states (hmac_key) kept.
 *   ICV = leftmost icvLen octets of HMAC(integKey, aad | IV | C)
 * No cipher-level padding: the SK padding is the codec's (plain is a
 * multiple of 16). open() verifies the ICV (CRYPTO_memcmp, constant time)
 * before decrypting anything.
 */
#define SKCBC_MAGIC 0x70717363u /* "pqsc" */

typedef struct {
  uint32_t magic;
  /* AES-CBC decryption runs the inverse key schedule: one context per direction of the cipher. NULL once freed. */
  EVP_CIPHER_CTX *ctx, *dctx;
  hmac_key mac;
  int icv;
} skcbc;

static void skcbc_release(skcbc *c) {
  if (c->ctx != NULL) EVP_CIPHER_CTX_free(c->ctx);
  if (c->dctx != NULL) EVP_CIPHER_CTX_free(c->dctx);
  c->ctx = NULL;
  c->dctx = NULL;
  OPENSSL_cleanse(&c->mac, sizeof c->mac);
}

static void skcbc_finalize(napi_env env, void *data, void *hint) {
  skcbc *c = (skcbc *)data;
  (void)env;
  (void)hint;
  skcbc_release(c);
  c->magic = 0;
  free(c);
}

static skcbc *get_skcbc(napi_env env, napi_value v) {
  skcbc *c = handle_of(env, v, SKCBC_MAGIC, "handle: expected a skCbcNew() handle");
  if (c == NULL) return NULL;
  if (c->ctx == NULL) {
    type_error(env, "handle: freed");
    return NULL;
  }
  return c;
}

/* skCbcNew(encKey, macAlg, macKey, icvLen): AES-128/192/256-CBC by key length; macAlg 1..3 = SHA-256/384/512. */
static napi_value n_skcbc_new(napi_env env, napi_callback_info info) {
  size_t argc = 4, klen, mlen;
  napi_value argv[4], ext;
  unsigned char *key, *mkey;
  int32_t alg, icv;
  const EVP_CIPHER *cipher;
  skcbc *c;
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return type_error(env, "skCbcNew(encKey, macAlg, macKey, icvLen)");
  if (!u8(env, argv[0], "encKey: expected a Uint8Array", &key, &klen)) return NULL;
  if (!small_int(env, argv[1], ALG_SHA512, "macAlg: expected 1..3 (SHA-256, SHA-384, SHA-512)", &alg)) return NULL;
  if (!u8(env, argv[2], "macKey: expected a Uint8Array", &mkey, &mlen)) return NULL;
  if (!small_int(env, argv[3], MAX_MD, "icvLen: expected an integer", &icv)) return NULL;
  if (alg < ALG_SHA256) return range_error(env, "macAlg: SHA-256, SHA-384 or SHA-512 (RFC 4868)");
  if (klen != 16 && klen != 24 && klen != 32) return range_error(env, "encKey: 16, 24 or 32 octets");
  /* RFC 4868 §2.1.1 / §2.1.2: key = hash length, ICV = half of it. */
  if (mlen != pq_md_size[alg] || (size_t)icv != pq_md_size[alg] / 2) return range_error(env, "macKey/icvLen: RFC 4868 sizes for macAlg");
  cipher = klen == 16 ? EVP_aes_128_cbc() : klen == 24 ? EVP_aes_192_cbc() : EVP_aes_256_cbc();
  c = calloc(1, sizeof *c);
  if (c == NULL) return crypto_error(env, "out of memory");
  c->magic = SKCBC_MAGIC;
  c->icv = icv;
  hmac_setkey(&c->mac, alg, mkey, mlen);
  c->ctx = EVP_CIPHER_CTX_new();
  c->dctx = EVP_CIPHER_CTX_new();
  if (c->ctx == NULL || c->dctx == NULL || EVP_CipherInit_ex(c->ctx, cipher, NULL, key, NULL, 1) != 1 ||
      EVP_CIPHER_CTX_set_padding(c->ctx, 0) != 1 || EVP_CipherInit_ex(c->dctx, cipher, NULL, key, NULL, 0) != 1 ||
      EVP_CIPHER_CTX_set_padding(c->dctx, 0) != 1) {
    skcbc_release(c);
    free(c);
    return crypto_error(env, "OpenSSL: cannot initialise the cipher");
  }
  if (napi_create_external(env, c, skcbc_finalize, NULL, &ext) != napi_ok) {
    skcbc_release(c);
    free(c);
    return NULL;
  }
  return ext;
}

static int cbc_args(napi_env env, napi_callback_info info, const char *usage, skcbc **c, unsigned char **aad, size_t *aadlen,
                    unsigned char **iv, unsigned char **in, size_t *inlen, unsigned char **out, size_t *outlen) {
  size_t argc = 5, ivlen;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  if (argc < 5) {
    type_error(env, usage);
    return 0;
  }
  if ((*c = get_skcbc(env, argv[0])) == NULL) return 0;
  if (!u8(env, argv[1], "aad: expected a Uint8Array", aad, aadlen) || !u8(env, argv[2], "iv: expected a Uint8Array", iv, &ivlen) ||
      !u8(env, argv[3], "data: expected a Uint8Array", in, inlen) || !u8(env, argv[4], "out: expected a Uint8Array", out, outlen))
    return 0;
  if (ivlen != 16) {
    range_error(env, "iv: expected 16 octets");
    return 0;
  }
  if (*inlen > INT32_MAX - 64) {
    range_error(env, "data: too long");
    return 0;
  }
  return 1;
}

/* skCbcSeal(handle, aad, iv, plain, out): plain.length % 16 == 0, out.length = plain.length + icvLen. */
static napi_value n_skcbc_seal(napi_env env, napi_callback_info info) {
  skcbc *c;
  unsigned char *aad, *iv, *plain, *out, mac[MAX_MD];
  size_t aadlen, plen, olen;
  int n, m;
  part parts[3];
  if (!cbc_args(env, info, "skCbcSeal(handle, aad, iv, plain, out)", &c, &aad, &aadlen, &iv, &plain, &plen, &out, &olen)) return NULL;
  if (plen % 16 != 0) return range_error(env, "plain: not a multiple of the AES block size");
  if (olen != plen + (size_t)c->icv) return range_error(env, "out: length must be plain.length + icvLen");
  if (out != plain && plen > 0 && out < plain + plen && plain < out + olen) return range_error(env, "out: overlaps plain");
  if (EVP_CipherInit_ex(c->ctx, NULL, NULL, NULL, iv, 1) != 1 || EVP_CipherUpdate(c->ctx, out, &n, plain, (int)plen) != 1 ||
      EVP_CipherFinal_ex(c->ctx, out + n, &m) != 1)
    return crypto_error(env, "OpenSSL: AES-CBC encryption failed");
  parts[0].p = aad; parts[0].n = aadlen;
  parts[1].p = iv; parts[1].n = 16;
  parts[2].p = out; parts[2].n = plen;
  hmac_run(&c->mac, parts, 3, mac);
  memcpy(out + plen, mac, (size_t)c->icv);
  OPENSSL_cleanse(mac, sizeof mac);
  return NULL;
}

/* skCbcOpen(handle, aad, iv, ctAndIcv, out): boolean; false if the ICV does not verify or the length is not ICV + n·16. */
static napi_value n_skcbc_open(napi_env env, napi_callback_info info) {
  skcbc *c;
  unsigned char *aad, *iv, *in, *out, mac[MAX_MD];
  size_t aadlen, inlen, olen, ct;
  int n, m, ok;
  part parts[3];
  napi_value result;
  if (!cbc_args(env, info, "skCbcOpen(handle, aad, iv, ctAndIcv, out)", &c, &aad, &aadlen, &iv, &in, &inlen, &out, &olen)) return NULL;
  if (inlen < (size_t)c->icv || (inlen - (size_t)c->icv) % 16 != 0) {
    CALL(env, napi_get_boolean(env, false, &result));
    return result;
  }
  ct = inlen - (size_t)c->icv;
  if (olen != ct) return range_error(env, "out: length must be ctAndIcv.length - icvLen");
  if (out != in && ct > 0 && out < in + inlen && in < out + olen) return range_error(env, "out: overlaps ctAndIcv");
  parts[0].p = aad; parts[0].n = aadlen;
  parts[1].p = iv; parts[1].n = 16;
  parts[2].p = in; parts[2].n = ct;
  hmac_run(&c->mac, parts, 3, mac);
  /* Verify before decrypting (encrypt-then-MAC): no padding or decryption oracle. */
  ok = CRYPTO_memcmp(mac, in + ct, (size_t)c->icv) == 0;
  OPENSSL_cleanse(mac, sizeof mac);
  if (ok) {
    ok = EVP_CipherInit_ex(c->dctx, NULL, NULL, NULL, iv, 0) == 1 && EVP_CipherUpdate(c->dctx, out, &n, in, (int)ct) == 1 &&
         EVP_CipherFinal_ex(c->dctx, out + n, &m) == 1;
    if (!ok) {
      OPENSSL_cleanse(out, ct);
      return crypto_error(env, "OpenSSL: AES-CBC decryption failed");
    }
  }
  CALL(env, napi_get_boolean(env, ok, &result));
  return result;
}

/* skCbcFree(handle): idempotent. */
static napi_value n_skcbc_free(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  skcbc *c;
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return type_error(env, "skCbcFree(handle)");
  if ((c = handle_of(env, argv[0], SKCBC_MAGIC, "handle: expected a skCbcNew() handle")) == NULL) return NULL;
  skcbc_release(c);
  return NULL;
}

/* ------------------------------------------------------------------ registration */

napi_status pqsk_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"skAeadNew", NULL, n_skaead_new, NULL, NULL, NULL, napi_enumerable, NULL},
      {"skAeadSeal", NULL, n_skaead_seal, NULL, NULL, NULL, napi_enumerable, NULL},
      {"skAeadOpen", NULL, n_skaead_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"skAeadFree", NULL, n_skaead_free, NULL, NULL, NULL, napi_enumerable, NULL},
      {"skCbcNew", NULL, n_skcbc_new, NULL, NULL, NULL, napi_enumerable, NULL},
      {"skCbcSeal", NULL, n_skcbc_seal, NULL, NULL, NULL, napi_enumerable, NULL},
      {"skCbcOpen", NULL, n_skcbc_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"skCbcFree", NULL, n_skcbc_free, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
