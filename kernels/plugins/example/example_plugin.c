/* An example beatd kernel plugin, in plain C against kernels/beat_kernel.h.
 * Built as libbeat_example_plugin.so; beatd loads it from a directory named
 * in plugins.directories (docs/plugins.md shows the whole round trip).
 *
 *   example.count_byte     data = bytes; args[0] = the byte value (0..255).
 *                          Result = how many bytes of the data range equal
 *                          it. Ranges over kCountChunk bytes are counted in
 *                          parallel with beat_parallel_for.
 *   example.utf8_validate  data = text. Result = the number of code points
 *                          when the range is well-formed UTF-8 (RFC 3629:
 *                          no overlongs, surrogates or values past
 *                          U+10FFFF); otherwise kernel_error with detail
 *                          EXAMPLE_E_INVALID_UTF8.
 *
 * Both read every byte of the (client-shared, untrusted) data range exactly
 * once, and index only with their own counters. Unused arguments are
 * ignored.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/beat_kernel.h"

enum { EXAMPLE_E_INVALID_UTF8 = 1 };

/* 256 KiB per parallel chunk: about 20 us of counting, far above the cost of
 * a fork, and small enough that a 4 MiB range gives both workers work. */
static const uint64_t kCountChunk = 256u * 1024u;

/* A long text polls for cancellation every 1 MiB (about 1 ms). */
static const uint64_t kPollEvery = 1u << 20;

struct count_job {
  const unsigned char* bytes;
  unsigned char value;
  atomic_uint_fast64_t total;
};

static uint64_t count_range(const unsigned char* p, uint64_t n, unsigned char value) {
  uint64_t count = 0;
  for (uint64_t i = 0; i < n; ++i) count += p[i] == value;
  return count;
}

static void count_chunk(beat_kernel_context* ctx, uint64_t begin, uint64_t end, void* arg) {
  (void)ctx;
  struct count_job* job = (struct count_job*)arg;
  const uint64_t c = count_range(job->bytes + begin, end - begin, job->value);
  /* Relaxed: the chunks' sum is read only after beat_parallel_for returns,
   * which orders every chunk's work before it. */
  atomic_fetch_add_explicit(&job->total, c, memory_order_relaxed);
}

static beat_kernel_result count_byte(beat_kernel_context* ctx, const uint64_t* args,
                                     beat_arena_view data) {
  if (args[0] > 255) return beat_kernel_invalid_args(0);
  if (data.size <= kCountChunk)
    return beat_kernel_ok(
        count_range((const unsigned char*)data.data, data.size, (unsigned char)args[0]));
  struct count_job job;
  job.bytes = (const unsigned char*)data.data;
  job.value = (unsigned char)args[0];
  atomic_init(&job.total, 0);
  beat_parallel_for(ctx, 0, data.size, kCountChunk, count_chunk, &job);
  return beat_kernel_ok(atomic_load_explicit(&job.total, memory_order_relaxed));
}

static beat_kernel_result utf8_validate(beat_kernel_context* ctx, const uint64_t* args,
                                        beat_arena_view data) {
  (void)args;
  const unsigned char* p = (const unsigned char*)data.data;
  const uint64_t n = data.size;
  uint64_t points = 0;
  uint64_t i = 0;
  uint64_t next_poll = kPollEvery;
  while (i < n) {
    if (i >= next_poll) {
      if (beat_cancelled(ctx)) return beat_kernel_cancelled();
      next_poll = i + kPollEvery;
    }
    const unsigned char b0 = p[i];
    uint64_t len;
    uint32_t cp;
    if (b0 < 0x80) {
      ++i;
      ++points;
      continue;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2;
      cp = b0 & 0x1Fu;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
      cp = b0 & 0x0Fu;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
      cp = b0 & 0x07u;
    } else {
      return beat_kernel_error(EXAMPLE_E_INVALID_UTF8);
    }
    if (n - i < len) return beat_kernel_error(EXAMPLE_E_INVALID_UTF8);
    for (uint64_t k = 1; k < len; ++k) {
      const unsigned char b = p[i + k];
      if ((b & 0xC0u) != 0x80u) return beat_kernel_error(EXAMPLE_E_INVALID_UTF8);
      cp = (cp << 6) | (b & 0x3Fu);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
      return beat_kernel_error(EXAMPLE_E_INVALID_UTF8);
    i += len;
    ++points;
  }
  return beat_kernel_ok(points);
}

BEAT_PLUGIN_EXPORT uint32_t beat_plugin_abi_version(void) { return BEAT_KERNEL_ABI_VERSION; }

BEAT_PLUGIN_EXPORT int beat_plugin_init(beat_plugin_registrar* registrar) {
  if (registrar->add_kernel(registrar, "example.count_byte",
                            "count of bytes equal to args[0] in the data range", count_byte, NULL,
                            0) != 0 ||
      registrar->add_kernel(registrar, "example.utf8_validate",
                            "code points of the data range if valid UTF-8, else error 1",
                            utf8_validate, NULL, 0) != 0) {
    registrar->set_error(registrar, "add_kernel refused a kernel");
    return 1;
  }
  return 0;
}
