/*
 * pqtun: the few syscalls the userspace ESP data plane needs that Node lacks.
 *
 *   open(name?)                       -> { fd, name }   TUN device, IFF_TUN|IFF_NO_PI, O_NONBLOCK
 *   readBatch(fd, buffers, lengths)   -> count          read() until EAGAIN or buffers.length packets
 *   writeBatch(fd, buffers, lengths, count) -> count    one write() per packet
 *   close(fd)
 *   setUdpEncap(socketFd, type)                         setsockopt(SOL_UDP, UDP_ENCAP, type) (RFC 3948)
 *   watch(fd, callback)               -> handle         uv_poll on readability; callback(status) per wakeup
 *   unwatch(handle)
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
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_ENCAP
#define UDP_ENCAP 100
#endif

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

/* open(name?: string): { fd, name } */
static napi_value tun_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, v;
  struct ifreq ifr;
  int fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  memset(&ifr, 0, sizeof ifr);
  /* IFF_NO_PI: packets are bare IP, no 4-byte protocol-information prefix. */
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
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
  return result;
}

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
 * readBatch(fd, buffers, lengths): number
 * Reads up to min(buffers.length, lengths.length) packets; lengths[i] gets each
 * packet's size. Stops at EAGAIN. A packet longer than its buffer is truncated
 * by the kernel (callers size buffers >= MTU). An error after some packets were
 * read returns the count; the error recurs (and throws) on the next call.
 */
static napi_value tun_read_batch(napi_env env, napi_callback_info info) {
  size_t argc = 3, nlens;
  napi_value argv[3], result;
  uint32_t nbufs, i;
  int32_t *lens;
  int fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return throw_type(env, "readBatch(fd, buffers, lengths)");
  if (!get_fd(env, argv[0], &fd)) return NULL;
  NAPI_CALL(env, napi_get_array_length(env, argv[1], &nbufs));
  if (!get_lengths(env, argv[2], &lens, &nlens)) return NULL;
  if (nlens < nbufs) nbufs = (uint32_t)nlens;
  for (i = 0; i < nbufs; i++) {
    void *data;
    size_t cap;
    ssize_t n;
    if (!get_buffer(env, argv[1], i, &data, &cap)) return NULL;
    do n = read(fd, data, cap); while (n < 0 && errno == EINTR);
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
 * writeBatch(fd, buffers, lengths, count): number
 * Writes packets 0..count-1 (lengths[i] bytes of buffers[i]). A TUN write does
 * not block in practice; EAGAIN stops the batch and returns the count written.
 * Any other error throws with an extra .index naming the failed packet, so the
 * caller can drop that packet and continue with the rest.
 */
static napi_value tun_write_batch(napi_env env, napi_callback_info info) {
  size_t argc = 4, nlens;
  napi_value argv[4], result;
  uint32_t nbufs, count, i;
  int32_t *lens;
  int fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_type(env, "writeBatch(fd, buffers, lengths, count)");
  if (!get_fd(env, argv[0], &fd)) return NULL;
  NAPI_CALL(env, napi_get_array_length(env, argv[1], &nbufs));
  if (!get_lengths(env, argv[2], &lens, &nlens)) return NULL;
  NAPI_CALL(env, napi_get_value_uint32(env, argv[3], &count));
  if (count > nbufs || count > nlens) return throw_type(env, "count: exceeds buffers/lengths");
  for (i = 0; i < count; i++) {
    void *data;
    size_t cap;
    ssize_t n;
    if (!get_buffer(env, argv[1], i, &data, &cap)) return NULL;
    if (lens[i] < 0 || (size_t)lens[i] > cap) return throw_type(env, "lengths[i]: out of range for buffers[i]");
    do n = write(fd, data, (size_t)lens[i]); while (n < 0 && errno == EINTR);
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

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, tun_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readBatch", NULL, tun_read_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeBatch", NULL, tun_write_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, tun_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setUdpEncap", NULL, udp_set_encap, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watch", NULL, tun_watch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unwatch", NULL, tun_unwatch, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
