/*
 * pqtun: the few syscalls the userspace ESP data plane needs that Node lacks.
 *
 *   open(name?, vnetHdr?)             -> { fd, name }   TUN device, IFF_TUN|IFF_NO_PI(|IFF_VNET_HDR), O_NONBLOCK
 *   readBatch(fd, buffers, lengths, vnetHdr?) -> count  read() until EAGAIN or buffers.length packets
 *   writeBatch(fd, buffers, lengths, count, vnetHdrs?) -> count   one write() per packet (writev with a virtio_net_hdr)
 *   close(fd)
 *   setUdpEncap(socketFd, type)                         setsockopt(SOL_UDP, UDP_ENCAP, type) (RFC 3948)
 *   watch(fd, callback)               -> handle         uv_poll on readability; callback(status) per wakeup
 *   unwatch(handle)
 *   sendBatch(fd, buffers, lengths, count, addr, port, gso) -> count  sendmmsg() (+ UDP GSO): datagrams to one destination
 *   setSocketBuffers(fd, rcvbuf, sndbuf)                          SO_RCVBUFFORCE / SO_SNDBUFFORCE
 *   recvBatch(fd, arena, slotSize, slots, meta) -> count          recvmmsg() with sources and UDP GRO sizes
 *   setUdpGro(fd, on)                                             UDP_GRO socket option
 *   dup(fd) -> fd                                                 F_DUPFD_CLOEXEC
 *   aeadNew(alg, key, salt, icvLen, encrypt) -> handle            one OpenSSL AEAD context per ESP SA direction
 *   aeadSeal(handle, pkt, plainLen, seqHi)                        ESP AEAD encrypt in place (RFC 4106, RFC 7634)
 *   aeadOpen(handle, pkt, len, seqHi, out) -> boolean             ESP AEAD verify + decrypt into out
 *   aeadFree(handle)
 *   hmac, prfPlus, hash, skAead*, x25519*                       IKE crypto fast path: native/pqcrypto.c
 *
 * The AEAD functions exist only because node:crypto builds a new cipher
 * object per packet (~4 µs, more than the encryption of 1400 bytes); here
 * one EVP_CIPHER_CTX per SA keeps the key schedule and each packet only
 * sets the nonce. They are linked against the OpenSSL that node itself
 * exports (headers in <nodedir>/include/node/openssl), so no second copy of
 * OpenSSL is loaded. firmware/dataplane/esp/transforms.ts (node:crypto)
 * stays the reference implementation; test/dataplane/native-aead.test.ts
 * checks this path against it byte for byte.
 *
 * Design: everything runs on the JS thread. A TUN fd is non-blocking, so a read
 * either returns a packet or EAGAIN immediately; the event loop learns about
 * readability through a libuv poll handle (level-triggered), and JS drains the
 * fd with readBatch. No thread-pool hop per packet (wireguard-go's batched
 * tun.Read is the model).
 *
 * Every failed syscall becomes a JS Error with .code (e.g. "EPERM"), .errno
 * (positive errno) and .syscall, like Node's own errors.
 */
#define _GNU_SOURCE /* strerrorname_np */
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/udp.h>
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_ENCAP
#define UDP_ENCAP 100
#endif

/* sizeof(struct virtio_net_hdr): the IFF_VNET_HDR prefix (TUNSETVNETHDRSZ left at its default). */
#define VNET_HDR_LEN 10

/* Bail out of a napi function if a napi call fails (the pending exception propagates). */
#define NAPI_CALL(env, call)                         \
  do {                                               \
    if ((call) != napi_ok) return NULL;              \
  } while (0)

/* "EPERM", "EBADFD", ...: glibc knows every errno's name; libuv only the portable ones. */
static const char *errno_name(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *n = strerrorname_np(err);
  if (n != NULL) return n;
#endif
  return uv_err_name(uv_translate_sys_error(err));
}

/* Throw Error("<syscall>: <strerror>") with .code/.errno/.syscall; returns NULL for `return`. */
static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char msg[160];
  napi_value message, error, v;
  const char *name = errno_name(err);
  snprintf(msg, sizeof msg, "%s: %s (%s)", syscall, strerror(err), name);
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok) return NULL;
  if (napi_create_error(env, NULL, message, &error) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, error, "code", v);
  if (napi_create_int32(env, err, &v) == napi_ok) napi_set_named_property(env, error, "errno", v);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, error, "syscall", v);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

static int get_fd(napi_env env, napi_value v, int *fd) {
  if (napi_get_value_int32(env, v, fd) != napi_ok || *fd < 0) {
    throw_type(env, "fd: expected a non-negative integer");
    return 0;
  }
  return 1;
}

/*
 * open(name?: string, vnetHdr?: boolean): { fd, name, vnetHdr }
 * vnetHdr: IFF_VNET_HDR — every packet read or written is preceded by a
 * 10-byte struct virtio_net_hdr. Reads then carry plain packets (no offloads
 * are enabled, so the kernel segments and checksums before handing them
 * over); writes may carry TCP GSO super-packets (GRO done by the caller).
 */
static napi_value tun_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result, v;
  struct ifreq ifr;
  int fd;
  bool vnet = false;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  memset(&ifr, 0, sizeof ifr);
  /* IFF_NO_PI: packets are bare IP, no 4-byte protocol-information prefix. */
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (argc >= 2) {
    napi_valuetype t;
    NAPI_CALL(env, napi_typeof(env, argv[1], &t));
    if (t == napi_boolean) NAPI_CALL(env, napi_get_value_bool(env, argv[1], &vnet));
    else if (t != napi_undefined) return throw_type(env, "vnetHdr: expected a boolean");
  }
  if (vnet) ifr.ifr_flags |= IFF_VNET_HDR;
  if (argc >= 1) {
    napi_valuetype t;
    NAPI_CALL(env, napi_typeof(env, argv[0], &t));
    if (t == napi_string) {
      size_t len;
      NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], NULL, 0, &len));
      if (len >= IFNAMSIZ) return throw_type(env, "name: at most 15 bytes");
      NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], ifr.ifr_name, IFNAMSIZ, &len));
    } else if (t != napi_undefined && t != napi_null) {
      return throw_type(env, "name: expected a string");
    }
  }
  fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "open /dev/net/tun", errno);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "ioctl TUNSETIFF", err);
  }
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_create_int32(env, fd, &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "fd", v));
  /* The kernel fills in the actual name (e.g. "tun0" for a "tun%d" template). */
  NAPI_CALL(env, napi_create_string_utf8(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ), &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "name", v));
  NAPI_CALL(env, napi_get_boolean(env, vnet, &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "vnetHdr", v));
  return result;
}

static int get_bytes(napi_env env, napi_value v, const char *what, unsigned char **data, size_t *len);

/* Fetch element i of a JS array of Buffers/Uint8Arrays. */
static int get_buffer(napi_env env, napi_value arr, uint32_t i, void **data, size_t *len) {
  napi_value el;
  bool is_typed;
  if (napi_get_element(env, arr, i, &el) != napi_ok) return 0;
  if (napi_is_typedarray(env, el, &is_typed) != napi_ok) return 0;
  if (!is_typed) {
    throw_type(env, "buffers: expected Uint8Array elements");
    return 0;
  }
  if (napi_get_typedarray_info(env, el, NULL, len, data, NULL, NULL) != napi_ok) return 0;
  return 1;
}

static int get_lengths(napi_env env, napi_value v, int32_t **lens, size_t *n) {
  napi_typedarray_type type;
  bool is_typed;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok) return 0;
  if (!is_typed) {
    throw_type(env, "lengths: expected Int32Array");
    return 0;
  }
  if (napi_get_typedarray_info(env, v, &type, n, (void **)lens, NULL, NULL) != napi_ok) return 0;
  if (type != napi_int32_array) {
    throw_type(env, "lengths: expected Int32Array");
    return 0;
  }
  return 1;
}

/*
 * readBatch(fd, buffers, lengths, vnetHdr?): number
 * Reads up to min(buffers.length, lengths.length) packets; lengths[i] gets each
 * packet's size. Stops at EAGAIN. A packet longer than its buffer is truncated
 * by the kernel (callers size buffers >= MTU). An error after some packets were
 * read returns the count; the error recurs (and throws) on the next call.
 * vnetHdr: the device was opened with IFF_VNET_HDR; the header is read into
 * a scratch area and dropped (no offloads enabled: it is all zero).
 */
static napi_value tun_read_batch(napi_env env, napi_callback_info info) {
  size_t argc = 4, nlens;
  napi_value argv[4], result;
  uint32_t nbufs, i;
  int32_t *lens;
  int fd;
  bool vnet = false;
  unsigned char hdr[VNET_HDR_LEN];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return throw_type(env, "readBatch(fd, buffers, lengths, vnetHdr?)");
  if (!get_fd(env, argv[0], &fd)) return NULL;
  NAPI_CALL(env, napi_get_array_length(env, argv[1], &nbufs));
  if (!get_lengths(env, argv[2], &lens, &nlens)) return NULL;
  if (argc >= 4) {
    napi_valuetype t;
    NAPI_CALL(env, napi_typeof(env, argv[3], &t));
    if (t == napi_boolean) NAPI_CALL(env, napi_get_value_bool(env, argv[3], &vnet));
  }
  if (nlens < nbufs) nbufs = (uint32_t)nlens;
  for (i = 0; i < nbufs; i++) {
    void *data;
    size_t cap;
    ssize_t n;
    if (!get_buffer(env, argv[1], i, &data, &cap)) return NULL;
    if (vnet) {
      struct iovec iov[2] = {{hdr, VNET_HDR_LEN}, {data, cap}};
      do n = readv(fd, iov, 2); while (n < 0 && errno == EINTR);
      if (n >= 0) n = n >= VNET_HDR_LEN ? n - VNET_HDR_LEN : 0;
    } else {
      do n = read(fd, data, cap); while (n < 0 && errno == EINTR);
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (i > 0) break;
      return throw_errno(env, "read", errno);
    }
    lens[i] = (int32_t)n;
  }
  NAPI_CALL(env, napi_create_uint32(env, i, &result));
  return result;
}

/*
 * writeBatch(fd, buffers, lengths, count, vnetHdrs?): number
 * Writes packets 0..count-1 (lengths[i] bytes of buffers[i]). A TUN write does
 * not block in practice; EAGAIN stops the batch and returns the count written.
 * Any other error throws with an extra .index naming the failed packet, so the
 * caller can drop that packet and continue with the rest.
 * vnetHdrs (IFF_VNET_HDR devices): a Uint8Array of count * 10 bytes, packet
 * i's struct virtio_net_hdr at i * 10, written in front of it (writev).
 */
static napi_value tun_write_batch(napi_env env, napi_callback_info info) {
  size_t argc = 5, nlens, hlen = 0;
  napi_value argv[5], result;
  uint32_t nbufs, count, i;
  int32_t *lens;
  int fd;
  unsigned char *hdrs = NULL;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_type(env, "writeBatch(fd, buffers, lengths, count, vnetHdrs?)");
  if (!get_fd(env, argv[0], &fd)) return NULL;
  NAPI_CALL(env, napi_get_array_length(env, argv[1], &nbufs));
  if (!get_lengths(env, argv[2], &lens, &nlens)) return NULL;
  NAPI_CALL(env, napi_get_value_uint32(env, argv[3], &count));
  if (count > nbufs || count > nlens) return throw_type(env, "count: exceeds buffers/lengths");
  if (argc >= 5) {
    napi_valuetype t;
    NAPI_CALL(env, napi_typeof(env, argv[4], &t));
    if (t != napi_undefined) {
      if (!get_bytes(env, argv[4], "vnetHdrs", &hdrs, &hlen)) return NULL;
      if (hlen < (size_t)count * VNET_HDR_LEN) return throw_type(env, "vnetHdrs: shorter than count * 10");
    }
  }
  for (i = 0; i < count; i++) {
    void *data;
    size_t cap;
    ssize_t n;
    if (!get_buffer(env, argv[1], i, &data, &cap)) return NULL;
    if (lens[i] < 0 || (size_t)lens[i] > cap) return throw_type(env, "lengths[i]: out of range for buffers[i]");
    if (hdrs != NULL) {
      struct iovec iov[2] = {{hdrs + (size_t)i * VNET_HDR_LEN, VNET_HDR_LEN}, {data, (size_t)lens[i]}};
      do n = writev(fd, iov, 2); while (n < 0 && errno == EINTR);
    } else {
      do n = write(fd, data, (size_t)lens[i]); while (n < 0 && errno == EINTR);
    }
    if (n < 0) {
      int err = errno;
      napi_value exc, idx;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      throw_errno(env, "write", err);
      /* Attach the failing index to the pending exception. */
      if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) {
        if (napi_create_uint32(env, i, &idx) == napi_ok) napi_set_named_property(env, exc, "index", idx);
        napi_throw(env, exc);
      }
      return NULL;
    }
  }
  NAPI_CALL(env, napi_create_uint32(env, i, &result));
  return result;
}

static napi_value tun_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !get_fd(env, argv[0], &fd)) return argc < 1 ? throw_type(env, "close(fd)") : NULL;
  /* Linux closes the fd even when close() reports EINTR: never retry. */
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, "close", errno);
  return NULL;
}

/*
 * setUdpEncap(socketFd, type): make the kernel strip/accept ESP-in-UDP on a
 * UDP socket (RFC 3948; type 2 = UDP_ENCAP_ESPINUDP). Only meaningful for the
 * kernel XFRM backend: the userspace data plane reads ESP from the socket itself.
 */
static napi_value udp_set_encap(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int fd, type;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_type(env, "setUdpEncap(socketFd, type)");
  if (!get_fd(env, argv[0], &fd)) return NULL;
  if (napi_get_value_int32(env, argv[1], &type) != napi_ok) return throw_type(env, "type: expected an integer");
  if (setsockopt(fd, SOL_UDP, UDP_ENCAP, &type, sizeof type) < 0) return throw_errno(env, "setsockopt UDP_ENCAP", errno);
  return NULL;
}

/*
 * A poll watcher. Two owners, freed when both let go: the libuv handle
 * (released in the close callback after unwatch) and the JS external
 * (released by its finalizer). While watching, the callback reference is
 * strong, so a forgotten handle keeps working until unwatch().
 */
#define WATCHER_MAGIC 0x70717477u /* "pqtw": rejects foreign externals in unwatch() */

typedef struct {
  uint32_t magic;
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  int refs;
  int closed;
} watcher_t;

static void watcher_release(watcher_t *w) {
  if (--w->refs == 0) {
    w->magic = 0;
    free(w);
  }
}

static void on_poll_closed(uv_handle_t *h) {
  watcher_release((watcher_t *)h->data);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  watcher_t *w = (watcher_t *)h->data;
  napi_handle_scope scope;
  napi_value cb, recv, arg, ret;
  (void)events;
  if (w->closed) return;
  if (napi_open_handle_scope(w->env, &scope) != napi_ok) return;
  if (napi_get_reference_value(w->env, w->callback, &cb) == napi_ok && cb != NULL &&
      /* MakeCallback needs an object receiver (it calls ToObject on it): use the global. */
      napi_get_global(w->env, &recv) == napi_ok && napi_create_int32(w->env, status, &arg) == napi_ok) {
    /* make_callback (not call_function) so process.nextTick and promise jobs run afterwards. */
    if (napi_make_callback(w->env, w->async, recv, cb, 1, &arg, &ret) == napi_pending_exception) {
      napi_value exc;
      napi_get_and_clear_last_exception(w->env, &exc);
      napi_fatal_exception(w->env, exc); /* same as an exception thrown from any event callback */
    }
  }
  napi_close_handle_scope(w->env, scope);
}

static void watcher_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  watcher_release((watcher_t *)data);
}

/* watch(fd, callback): handle */
static napi_value tun_watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], ext, name;
  napi_valuetype t;
  uv_loop_t *loop;
  watcher_t *w;
  int fd, rc;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_type(env, "watch(fd, callback)");
  if (!get_fd(env, argv[0], &fd)) return NULL;
  NAPI_CALL(env, napi_typeof(env, argv[1], &t));
  if (t != napi_function) return throw_type(env, "callback: expected a function");
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  w = calloc(1, sizeof *w);
  if (w == NULL) return throw_errno(env, "calloc", ENOMEM);
  w->magic = WATCHER_MAGIC;
  w->env = env;
  rc = uv_poll_init(loop, &w->poll, fd);
  if (rc < 0) {
    free(w);
    return throw_errno(env, "uv_poll_init", -rc); /* libuv errors are negated errnos on Unix */
  }
  w->poll.data = w;
  w->refs = 1; /* the uv handle */
  if (napi_create_reference(env, argv[1], 1, &w->callback) != napi_ok ||
      napi_create_string_utf8(env, "pqtun.watch", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &w->async) != napi_ok) {
    w->closed = 1;
    uv_close((uv_handle_t *)&w->poll, on_poll_closed);
    return NULL;
  }
  rc = uv_poll_start(&w->poll, UV_READABLE, on_poll);
  if (rc < 0) {
    w->closed = 1;
    napi_delete_reference(env, w->callback);
    napi_async_destroy(env, w->async);
    uv_close((uv_handle_t *)&w->poll, on_poll_closed);
    return throw_errno(env, "uv_poll_start", -rc);
  }
  w->refs = 2; /* + the JS external */
  if (napi_create_external(env, w, watcher_finalize, NULL, &ext) != napi_ok) {
    w->refs = 1;
    return NULL; /* still watching; nothing can unwatch it, but nothing leaks unsafely */
  }
  return ext;
}

/* unwatch(handle): stop polling; idempotent. Call before close(fd). */
static napi_value tun_unwatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype t;
  watcher_t *w;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "unwatch(handle)");
  NAPI_CALL(env, napi_typeof(env, argv[0], &t));
  if (t != napi_external) return throw_type(env, "handle: expected a watch() handle");
  NAPI_CALL(env, napi_get_value_external(env, argv[0], (void **)&w));
  if (w == NULL || w->magic != WATCHER_MAGIC) return throw_type(env, "handle: expected a watch() handle");
  if (w->closed) return NULL;
  w->closed = 1;
  uv_poll_stop(&w->poll);
  napi_delete_reference(env, w->callback);
  napi_async_destroy(env, w->async);
  uv_close((uv_handle_t *)&w->poll, on_poll_closed);
  return NULL;
}


/* ------------------------------------------------------------------ sendmmsg */

#define SEND_CHUNK 64   /* messages per sendmmsg() */
#define GSO_MAX_SEGS 64  /* datagrams per UDP GSO message (the kernel allows 64 or 128) */
#define GSO_MAX_BYTES 60000 /* UDP payload of one GSO message: below the 64 KiB IP limit */
#define SEND_IOV 1024

/*
 * sendBatch(fd, buffers, lengths, count, addr, port, gso): number
 * Sends datagrams 0..count-1 (lengths[i] bytes of buffers[i]) to addr:port
 * (addr: 4 or 16 bytes, network order) on the UDP socket fd with sendmmsg().
 * With gso, runs of equal-sized datagrams (the last of a run may be
 * shorter) go as one UDP GSO message (UDP_SEGMENT, Linux 4.18+): the kernel
 * builds the datagrams, one pass through the stack instead of one each.
 * Returns how many datagrams were sent: fewer than count when the socket
 * buffer is full (EAGAIN; the rest is dropped like a full NIC queue would).
 * Other errors throw with .index = the first datagram not sent.
 */
static napi_value udp_send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 7, nlens, alen;
  napi_value argv[7], result;
  uint32_t nbufs, count, done = 0, port;
  int32_t *lens;
  int fd;
  bool gso = false;
  void *addr;
  struct sockaddr_storage ss;
  socklen_t sslen;
  struct mmsghdr msgs[SEND_CHUNK];
  struct iovec iov[SEND_IOV];
  uint32_t segs[SEND_CHUNK];
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } ctl[SEND_CHUNK];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) return throw_type(env, "sendBatch(fd, buffers, lengths, count, addr, port, gso?)");
  if (!get_fd(env, argv[0], &fd)) return NULL;
  NAPI_CALL(env, napi_get_array_length(env, argv[1], &nbufs));
  if (!get_lengths(env, argv[2], &lens, &nlens)) return NULL;
  NAPI_CALL(env, napi_get_value_uint32(env, argv[3], &count));
  if (count > nbufs || count > nlens) return throw_type(env, "count: exceeds buffers/lengths");
  {
    bool is_typed;
    NAPI_CALL(env, napi_is_typedarray(env, argv[4], &is_typed));
    if (!is_typed) return throw_type(env, "addr: expected a Uint8Array of 4 or 16 bytes");
    NAPI_CALL(env, napi_get_typedarray_info(env, argv[4], NULL, &alen, &addr, NULL, NULL));
  }
  if (napi_get_value_uint32(env, argv[5], &port) != napi_ok || port == 0 || port > 65535) return throw_type(env, "port: expected 1..65535");
  if (argc >= 7 && napi_get_value_bool(env, argv[6], &gso) != napi_ok) return throw_type(env, "gso: expected a boolean");
  memset(&ss, 0, sizeof ss);
  if (alen == 4) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    memcpy(&sin->sin_addr, addr, 4);
    sslen = sizeof *sin;
  } else if (alen == 16) {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    memcpy(&sin6->sin6_addr, addr, 16);
    sslen = sizeof *sin6;
  } else {
    return throw_type(env, "addr: expected a Uint8Array of 4 or 16 bytes");
  }
  while (done < count) {
    uint32_t nmsg = 0, niov = 0, idx = done, sent = 0, i;
    int r;
    /* Build up to SEND_CHUNK messages; each takes a run of datagrams (one without gso). */
    while (nmsg < SEND_CHUNK && idx < count && niov + GSO_MAX_SEGS <= SEND_IOV) {
      struct msghdr *h = &msgs[nmsg].msg_hdr;
      int32_t seg = lens[idx];
      size_t total = 0;
      uint32_t n = 0;
      for (;;) {
        void *data;
        size_t cap;
        if (!get_buffer(env, argv[1], idx, &data, &cap)) return NULL;
        if (lens[idx] < 0 || (size_t)lens[idx] > cap) return throw_type(env, "lengths[i]: out of range for buffers[i]");
        iov[niov + n].iov_base = data;
        iov[niov + n].iov_len = (size_t)lens[idx];
        total += (size_t)lens[idx];
        n++;
        idx++;
        /* A run continues while all datagrams so far have the run's size and the next is not larger. */
        if (!gso || idx >= count || n >= GSO_MAX_SEGS || lens[idx - 1] != seg || lens[idx] > seg || lens[idx] <= 0 ||
            total + (size_t)lens[idx] > GSO_MAX_BYTES)
          break;
      }
      memset(h, 0, sizeof *h);
      h->msg_name = &ss;
      h->msg_namelen = sslen;
      h->msg_iov = &iov[niov];
      h->msg_iovlen = n;
      if (n > 1) {
        struct cmsghdr *cm;
        h->msg_control = ctl[nmsg].buf;
        h->msg_controllen = sizeof ctl[nmsg].buf;
        cm = CMSG_FIRSTHDR(h);
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        *(uint16_t *)(void *)CMSG_DATA(cm) = (uint16_t)seg;
      }
      segs[nmsg] = n;
      niov += n;
      nmsg++;
    }
    do r = sendmmsg(fd, msgs, nmsg, 0); while (r < 0 && errno == EINTR);
    if (r < 0) {
      int err = errno;
      napi_value exc, idxv;
      if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) break;
      throw_errno(env, "sendmmsg", err);
      if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) {
        if (napi_create_uint32(env, done, &idxv) == napi_ok) napi_set_named_property(env, exc, "index", idxv);
        napi_throw(env, exc);
      }
      return NULL;
    }
    for (i = 0; i < (uint32_t)r; i++) sent += segs[i];
    done += sent;
    if ((uint32_t)r < nmsg) break; /* partial: the next one would fail (EAGAIN, or an error reported next time) */
  }
  NAPI_CALL(env, napi_create_uint32(env, done, &result));
  return result;
}

/*
 * setSocketBuffers(fd, rcvbuf, sndbuf): SO_RCVBUFFORCE / SO_SNDBUFFORCE (need
 * CAP_NET_ADMIN; beyond net.core.rmem_max/wmem_max), falling back to
 * SO_RCVBUF / SO_SNDBUF. 0 leaves a buffer alone. ESP bursts (a TUN batch
 * or a UDP GSO message is dozens of datagrams) overflow the default 208 KiB.
 */
static napi_value udp_set_buffers(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int fd, rcv, snd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return throw_type(env, "setSocketBuffers(fd, rcvbuf, sndbuf)");
  if (!get_fd(env, argv[0], &fd)) return NULL;
  if (napi_get_value_int32(env, argv[1], &rcv) != napi_ok || napi_get_value_int32(env, argv[2], &snd) != napi_ok || rcv < 0 || snd < 0)
    return throw_type(env, "rcvbuf/sndbuf: expected non-negative integers");
  if (rcv > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) < 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv) < 0)
    return throw_errno(env, "setsockopt SO_RCVBUF", errno);
  if (snd > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd) < 0 &&
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd) < 0)
    return throw_errno(env, "setsockopt SO_SNDBUF", errno);
  return NULL;
}

/* ------------------------------------------------------------------ recvmmsg */

#define RECV_MAX 64

/*
 * recvBatch(fd, arena, slotSize, slots, meta): number
 * recvmmsg(MSG_DONTWAIT) of up to `slots` datagrams into arena, datagram i at
 * offset i*slotSize (arena.length >= slots*slotSize). meta (Int32Array,
 * 8 per datagram): [length, gsoSize (0 = one datagram; with UDP_GRO a run of
 * gsoSize-byte datagrams, the last possibly shorter), family (4/6), source
 * port, source address as 4 big-endian 32-bit words (IPv4: word 0)].
 * Returns the count (0 when nothing is queued). A datagram longer than its
 * slot is reported with length -1 (MSG_TRUNC) so the caller drops it.
 */
static napi_value udp_recv_batch(napi_env env, napi_callback_info info) {
  size_t argc = 5, alen, mlen;
  napi_value argv[5], result;
  int fd, r, i;
  uint32_t slot, slots;
  unsigned char *arena;
  int32_t *meta;
  napi_typedarray_type type;
  bool is_typed;
  struct mmsghdr msgs[RECV_MAX];
  struct iovec iov[RECV_MAX];
  struct sockaddr_storage from[RECV_MAX];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl[RECV_MAX];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return throw_type(env, "recvBatch(fd, arena, slotSize, slots, meta)");
  if (!get_fd(env, argv[0], &fd)) return NULL;
  if (!get_bytes(env, argv[1], "arena", &arena, &alen)) return NULL;
  if (napi_get_value_uint32(env, argv[2], &slot) != napi_ok || slot == 0) return throw_type(env, "slotSize: expected a positive integer");
  if (napi_get_value_uint32(env, argv[3], &slots) != napi_ok || slots == 0) return throw_type(env, "slots: expected a positive integer");
  NAPI_CALL(env, napi_is_typedarray(env, argv[4], &is_typed));
  if (!is_typed) return throw_type(env, "meta: expected an Int32Array");
  NAPI_CALL(env, napi_get_typedarray_info(env, argv[4], &type, &mlen, (void **)&meta, NULL, NULL));
  if (type != napi_int32_array) return throw_type(env, "meta: expected an Int32Array");
  if (slots > RECV_MAX) slots = RECV_MAX;
  if ((size_t)slots * slot > alen) return throw_type(env, "arena: shorter than slots * slotSize");
  if ((size_t)slots * 8 > mlen) return throw_type(env, "meta: shorter than 8 * slots");
  memset(msgs, 0, sizeof(struct mmsghdr) * slots);
  for (i = 0; i < (int)slots; i++) {
    iov[i].iov_base = arena + (size_t)i * slot;
    iov[i].iov_len = slot;
    msgs[i].msg_hdr.msg_name = &from[i];
    msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_control = ctl[i].buf;
    msgs[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
  }
  do r = recvmmsg(fd, msgs, slots, MSG_DONTWAIT, NULL); while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) r = 0;
    else return throw_errno(env, "recvmmsg", errno);
  }
  for (i = 0; i < r; i++) {
    struct msghdr *h = &msgs[i].msg_hdr;
    struct cmsghdr *cm;
    int32_t *m = meta + (size_t)i * 8;
    memset(m, 0, 8 * sizeof *m);
    m[0] = (h->msg_flags & MSG_TRUNC) ? -1 : (int32_t)msgs[i].msg_len;
    for (cm = CMSG_FIRSTHDR(h); cm != NULL; cm = CMSG_NXTHDR(h, cm)) {
      if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
        int g;
        memcpy(&g, CMSG_DATA(cm), sizeof g);
        m[1] = g;
      }
    }
    if (from[i].ss_family == AF_INET) {
      struct sockaddr_in *sin = (struct sockaddr_in *)&from[i];
      m[2] = 4;
      m[3] = ntohs(sin->sin_port);
      m[4] = (int32_t)ntohl(sin->sin_addr.s_addr);
    } else if (from[i].ss_family == AF_INET6) {
      struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&from[i];
      uint32_t w;
      int k;
      m[2] = 6;
      m[3] = ntohs(sin6->sin6_port);
      for (k = 0; k < 4; k++) {
        memcpy(&w, sin6->sin6_addr.s6_addr + 4 * k, 4);
        m[4 + k] = (int32_t)ntohl(w);
      }
    }
  }
  NAPI_CALL(env, napi_create_uint32(env, (uint32_t)r, &result));
  return result;
}

/* setUdpGro(fd, on): UDP_GRO: receive runs of equal-sized datagrams as one (Linux 5.0+). */
static napi_value udp_set_gro(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int fd, on;
  bool b;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_type(env, "setUdpGro(fd, on)");
  if (!get_fd(env, argv[0], &fd)) return NULL;
  if (napi_get_value_bool(env, argv[1], &b) != napi_ok) return throw_type(env, "on: expected a boolean");
  on = b ? 1 : 0;
  if (setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) < 0) return throw_errno(env, "setsockopt UDP_GRO", errno);
  return NULL;
}

/* dup(fd): a second descriptor of the same socket (close-on-exec), to poll it apart from libuv's own watcher. */
static napi_value fd_dup(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int fd, nfd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !get_fd(env, argv[0], &fd)) return argc < 1 ? throw_type(env, "dup(fd)") : NULL;
  nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (nfd < 0) return throw_errno(env, "fcntl F_DUPFD_CLOEXEC", errno);
  NAPI_CALL(env, napi_create_int32(env, nfd, &result));
  return result;
}

/* ------------------------------------------------------------------ ESP AEAD */

#define AEAD_MAGIC 0x70716165u /* "pqae" */

typedef struct {
  uint32_t magic;
  EVP_CIPHER_CTX *ctx; /* NULL once freed */
  unsigned char salt[4];
  int icv;
  int encrypt;
} aead_t;

static void aead_release(aead_t *a) {
  if (a->ctx != NULL) EVP_CIPHER_CTX_free(a->ctx); /* frees (and cleanses) the key schedule */
  a->ctx = NULL;
  OPENSSL_cleanse(a->salt, sizeof a->salt);
}

static void aead_finalize(napi_env env, void *data, void *hint) {
  aead_t *a = (aead_t *)data;
  (void)env;
  (void)hint;
  aead_release(a);
  a->magic = 0;
  free(a);
}

static int get_bytes(napi_env env, napi_value v, const char *what, unsigned char **data, size_t *len) {
  bool is_typed;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok) return 0;
  if (!is_typed) {
    char msg[64];
    snprintf(msg, sizeof msg, "%s: expected a Uint8Array", what);
    throw_type(env, msg);
    return 0;
  }
  if (napi_get_typedarray_info(env, v, &type, len, (void **)data, NULL, NULL) != napi_ok) return 0;
  if (type != napi_uint8_array) {
    char msg[64];
    snprintf(msg, sizeof msg, "%s: expected a Uint8Array", what);
    throw_type(env, msg);
    return 0;
  }
  return 1;
}

static aead_t *get_aead(napi_env env, napi_value v) {
  napi_valuetype t;
  aead_t *a;
  if (napi_typeof(env, v, &t) != napi_ok) return NULL;
  if (t != napi_external || napi_get_value_external(env, v, (void **)&a) != napi_ok || a == NULL || a->magic != AEAD_MAGIC) {
    throw_type(env, "handle: expected an aeadNew() handle");
    return NULL;
  }
  if (a->ctx == NULL) {
    throw_type(env, "handle: freed");
    return NULL;
  }
  return a;
}

/* aeadNew(alg, key, salt, icvLen, encrypt): handle */
static napi_value aead_new(napi_env env, napi_callback_info info) {
  size_t argc = 5, alglen, keylen, saltlen;
  napi_value argv[5], ext;
  char alg[32];
  unsigned char *key, *salt;
  int32_t icv;
  bool enc;
  const EVP_CIPHER *cipher;
  aead_t *a;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return throw_type(env, "aeadNew(alg, key, salt, icvLen, encrypt)");
  if (napi_get_value_string_utf8(env, argv[0], alg, sizeof alg, &alglen) != napi_ok) return throw_type(env, "alg: expected a string");
  if (!get_bytes(env, argv[1], "key", &key, &keylen) || !get_bytes(env, argv[2], "salt", &salt, &saltlen)) return NULL;
  if (napi_get_value_int32(env, argv[3], &icv) != napi_ok) return throw_type(env, "icvLen: expected an integer");
  if (napi_get_value_bool(env, argv[4], &enc) != napi_ok) return throw_type(env, "encrypt: expected a boolean");
  if (strcmp(alg, "aes-128-gcm") == 0 && keylen == 16) cipher = EVP_aes_128_gcm();
  else if (strcmp(alg, "aes-192-gcm") == 0 && keylen == 24) cipher = EVP_aes_192_gcm();
  else if (strcmp(alg, "aes-256-gcm") == 0 && keylen == 32) cipher = EVP_aes_256_gcm();
  else if (strcmp(alg, "chacha20-poly1305") == 0 && keylen == 32 && icv == 16) cipher = EVP_chacha20_poly1305();
  else return throw_type(env, "alg/key/icvLen: unsupported combination");
  /* RFC 4106 §6: ICV of 8, 12 or 16 octets; RFC 7634 §2: 16. */
  if (saltlen != 4 || (icv != 8 && icv != 12 && icv != 16)) return throw_type(env, "salt: 4 bytes; icvLen: 8, 12 or 16");
  a = calloc(1, sizeof *a);
  if (a == NULL) return throw_errno(env, "calloc", ENOMEM);
  a->magic = AEAD_MAGIC;
  a->icv = icv;
  a->encrypt = enc ? 1 : 0;
  memcpy(a->salt, salt, 4);
  a->ctx = EVP_CIPHER_CTX_new();
  /* Nonce length 12 (salt || 8-byte IV) is the default for both ciphers. */
  if (a->ctx == NULL || EVP_CipherInit_ex(a->ctx, cipher, NULL, key, NULL, a->encrypt) != 1) {
    aead_release(a);
    free(a);
    return throw_type(env, "OpenSSL: cannot initialise the cipher");
  }
  if (napi_create_external(env, a, aead_finalize, NULL, &ext) != napi_ok) {
    aead_release(a);
    free(a);
    return NULL;
  }
  return ext;
}

/* The AAD of ESP (RFC 4106 §5, RFC 7634 §2.1): SPI || Seq, or SPI || SeqHi || SeqLo with ESN. */
static int esp_aad(const unsigned char *pkt, double seq_hi, unsigned char aad[12]) {
  if (seq_hi < 0) {
    memcpy(aad, pkt, 8);
    return 8;
  } else {
    uint32_t hi = (uint32_t)seq_hi;
    memcpy(aad, pkt, 4);
    aad[4] = (unsigned char)(hi >> 24);
    aad[5] = (unsigned char)(hi >> 16);
    aad[6] = (unsigned char)(hi >> 8);
    aad[7] = (unsigned char)hi;
    memcpy(aad + 8, pkt + 4, 4);
    return 12;
  }
}

/*
 * aeadSeal(handle, pkt, plainLen, seqHi)
 * ESP packet layout: [0,8) SPI || Seq, [8,16) IV (already written),
 * [16, 16+plainLen) plaintext, encrypted in place; the ICV goes right after.
 * seqHi: the high 32 bits of the ESN, or -1 without ESN.
 */
static napi_value aead_seal(napi_env env, napi_callback_info info) {
  size_t argc = 4, len;
  napi_value argv[4];
  unsigned char *pkt, nonce[12], aad[12];
  uint32_t plain;
  double seq_hi;
  int n, m, aadlen;
  aead_t *a;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_type(env, "aeadSeal(handle, pkt, plainLen, seqHi)");
  if ((a = get_aead(env, argv[0])) == NULL) return NULL;
  if (!a->encrypt) return throw_type(env, "handle: a decryption context");
  if (!get_bytes(env, argv[1], "pkt", &pkt, &len)) return NULL;
  if (napi_get_value_uint32(env, argv[2], &plain) != napi_ok) return throw_type(env, "plainLen: expected a non-negative integer");
  if (napi_get_value_double(env, argv[3], &seq_hi) != napi_ok || seq_hi > 4294967295.0) return throw_type(env, "seqHi: expected -1 or a 32-bit integer");
  if ((size_t)plain > INT32_MAX - 64 || 16 + (size_t)plain + (size_t)a->icv > len) return throw_type(env, "pkt: too short for plainLen + ICV");
  memcpy(nonce, a->salt, 4);
  memcpy(nonce + 4, pkt + 8, 8);
  aadlen = esp_aad(pkt, seq_hi, aad);
  if (EVP_CipherInit_ex(a->ctx, NULL, NULL, NULL, nonce, 1) != 1 ||
      EVP_CipherUpdate(a->ctx, NULL, &n, aad, aadlen) != 1 ||
      EVP_CipherUpdate(a->ctx, pkt + 16, &n, pkt + 16, (int)plain) != 1 ||
      EVP_CipherFinal_ex(a->ctx, pkt + 16 + n, &m) != 1 ||
      EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_GET_TAG, a->icv, pkt + 16 + plain) != 1) {
    return throw_type(env, "OpenSSL: AEAD encryption failed");
  }
  return NULL;
}

/*
 * aeadOpen(handle, pkt, len, seqHi, out): boolean
 * Verifies the ICV of pkt[0, len) and writes the plaintext of
 * [16, len-icv) to out[0, ...). False when the ICV does not verify (out is
 * wiped then: unauthenticated plaintext never leaves this function).
 */
static napi_value aead_open(napi_env env, napi_callback_info info) {
  size_t argc = 5, plen, olen;
  napi_value argv[5], result;
  unsigned char *pkt, *out, nonce[12], aad[12], tag[16];
  uint32_t len;
  double seq_hi;
  int n, m, aadlen, ct, ok;
  aead_t *a;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return throw_type(env, "aeadOpen(handle, pkt, len, seqHi, out)");
  if ((a = get_aead(env, argv[0])) == NULL) return NULL;
  if (a->encrypt) return throw_type(env, "handle: an encryption context");
  if (!get_bytes(env, argv[1], "pkt", &pkt, &plen) || !get_bytes(env, argv[4], "out", &out, &olen)) return NULL;
  if (napi_get_value_uint32(env, argv[2], &len) != napi_ok || (size_t)len > plen || len > INT32_MAX) return throw_type(env, "len: out of range for pkt");
  if (napi_get_value_double(env, argv[3], &seq_hi) != napi_ok || seq_hi > 4294967295.0) return throw_type(env, "seqHi: expected -1 or a 32-bit integer");
  if ((size_t)len < 16 + (size_t)a->icv) return throw_type(env, "len: shorter than header + ICV");
  ct = (int)len - 16 - a->icv;
  if ((size_t)ct > olen) return throw_type(env, "out: too short");
  memcpy(nonce, a->salt, 4);
  memcpy(nonce + 4, pkt + 8, 8);
  memcpy(tag, pkt + len - a->icv, (size_t)a->icv);
  aadlen = esp_aad(pkt, seq_hi, aad);
  ok = EVP_CipherInit_ex(a->ctx, NULL, NULL, NULL, nonce, 0) == 1 &&
       EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_TAG, a->icv, tag) == 1 &&
       EVP_CipherUpdate(a->ctx, NULL, &n, aad, aadlen) == 1 &&
       EVP_CipherUpdate(a->ctx, out, &n, pkt + 16, ct) == 1 &&
       EVP_CipherFinal_ex(a->ctx, out + n, &m) == 1; /* verifies the tag */
  if (!ok) OPENSSL_cleanse(out, (size_t)ct);
  NAPI_CALL(env, napi_get_boolean(env, ok, &result));
  return result;
}

/* aeadFree(handle): release the context now (idempotent); the handle is unusable afterwards. */
static napi_value aead_free(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype t;
  aead_t *a;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "aeadFree(handle)");
  NAPI_CALL(env, napi_typeof(env, argv[0], &t));
  if (t != napi_external) return throw_type(env, "handle: expected an aeadNew() handle");
  NAPI_CALL(env, napi_get_value_external(env, argv[0], (void **)&a));
  if (a == NULL || a->magic != AEAD_MAGIC) return throw_type(env, "handle: expected an aeadNew() handle");
  aead_release(a);
  return NULL;
}

/* native/pqcrypto.c: the IKE crypto fast path (HMAC, prf+, hashes, SK AEAD, X25519) on the same exports. */
napi_status pqcrypto_init(napi_env env, napi_value exports);
/* native/mlkem.c: ML-KEM's NTT and base multiplication for crypto/mlkem/poly.ts. */
napi_status mlkem_init(napi_env env, napi_value exports);

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, tun_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readBatch", NULL, tun_read_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeBatch", NULL, tun_write_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, tun_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setUdpEncap", NULL, udp_set_encap, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watch", NULL, tun_watch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unwatch", NULL, tun_unwatch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendBatch", NULL, udp_send_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setSocketBuffers", NULL, udp_set_buffers, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvBatch", NULL, udp_recv_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setUdpGro", NULL, udp_set_gro, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dup", NULL, fd_dup, NULL, NULL, NULL, napi_enumerable, NULL},
      {"aeadNew", NULL, aead_new, NULL, NULL, NULL, napi_enumerable, NULL},
      {"aeadSeal", NULL, aead_seal, NULL, NULL, NULL, napi_enumerable, NULL},
      {"aeadOpen", NULL, aead_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"aeadFree", NULL, aead_free, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_value cap;
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  /* Feature flag for callers that may meet an older build: open/readBatch/writeBatch take vnetHdr. */
  NAPI_CALL(env, napi_get_boolean(env, true, &cap));
  NAPI_CALL(env, napi_set_named_property(env, exports, "vnetHdr", cap));
  NAPI_CALL(env, pqcrypto_init(env, exports));
  NAPI_CALL(env, mlkem_init(env, exports));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
