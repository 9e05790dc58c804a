/*
 * Shared between native/pqcrypto.c (hashes, HMAC, prf+, X25519, registration)
 * and native/sk.c (the SK payload contexts): argument checking that throws
 * typed errors, and the HMAC keyed state.
 */
#ifndef PQCRYPTO_H
#define PQCRYPTO_H

#define NAPI_VERSION 8
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA*_Init & co.: see pqcrypto.c */
#include <node_api.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#define CALL(env, call)                  \
  do {                                   \
    if ((call) != napi_ok) return NULL;  \
  } while (0)

static inline napi_value type_error(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

static inline napi_value range_error(napi_env env, const char *msg) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return NULL;
}

static inline napi_value crypto_error(napi_env env, const char *msg) {
  napi_throw_error(env, "ERR_NATIVE_CRYPTO", msg);
  return NULL;
}

/* A Uint8Array argument (any other typed array or value is a TypeError). */
static inline int u8(napi_env env, napi_value v, const char *err, unsigned char **data, size_t *len) {
  bool is;
  napi_typedarray_type t;
  if (napi_is_typedarray(env, v, &is) != napi_ok) return 0;
  if (is && napi_get_typedarray_info(env, v, &t, len, (void **)data, NULL, NULL) == napi_ok && t == napi_uint8_array) {
    if (*data == NULL) *data = (unsigned char *)""; /* zero-length views may have no backing store */
    return 1;
  }
  type_error(env, err);
  return 0;
}

static inline int small_int(napi_env env, napi_value v, int32_t max, const char *err, int32_t *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok || *out < 0 || *out > max) {
    type_error(env, err);
    return 0;
  }
  return 1;
}

#define ALG_SHA1 0
#define ALG_SHA256 1
#define ALG_SHA384 2
#define ALG_SHA512 3
#define MAX_MD 64
#define MAX_BLOCK 128

typedef union {
  SHA_CTX s1;
  SHA256_CTX s256;
  SHA512_CTX s512;
} sha_ctx;

/* Digest sizes by ALG_*. */
extern const size_t pq_md_size[4];

/* HMAC keyed state (RFC 2104 §2): H(K0 ^ ipad) and H(K0 ^ opad) after one block each. */
typedef struct {
  int alg;
  sha_ctx in, out;
} hmac_key;

typedef struct {
  const unsigned char *p;
  size_t n;
} part;

void hmac_setkey(hmac_key *h, int alg, const unsigned char *key, size_t klen);
/* mac = H(K0^opad | H(K0^ipad | parts)), full length into mac[MAX_MD]. */
void hmac_run(const hmac_key *h, const part *parts, int nparts, unsigned char *mac);

/* The per-environment pre-fetched SK AEAD cipher (0..3 = AES-128/192/256-GCM, ChaCha20-Poly1305), NULL if unavailable. */
const EVP_CIPHER *pq_aead_cipher(napi_env env, int alg);

/* SHA3/SHAKE (alg 4..7) of a | b; 1 ok, 0 failure (no exception). Used by native/mlkem.c. */
int pq_keccak(napi_env env, int alg, const unsigned char *a, size_t an, const unsigned char *b, size_t bn, unsigned char *out, size_t olen);

/* native/sk.c: skAead*, skCbc* on exports. */
napi_status pqsk_init(napi_env env, napi_value exports);

#endif
