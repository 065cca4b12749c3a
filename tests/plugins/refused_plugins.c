/* Plugins beatd must refuse, one per case, for tests/integration/
 * plugins_test.cpp. Compiled once per case with -DBEAT_TEST_PLUGIN_<CASE>:
 *   WRONG_ABI      beat_plugin_abi_version returns a newer version
 *   MISSING_INIT   no beat_plugin_init symbol
 *   DUPLICATE      registers "checksum", a built-in's name; its
 *                  beat_plugin_fini creates the file named by
 *                  $BEAT_TEST_FINI_MARKER, so the test sees it ran
 *   FAILING_INIT   beat_plugin_init fails with a message
 *   BAD_NAME       registers a name with a space
 *   NO_KERNELS     registers nothing
 *   BAD_FLAGS      passes an undefined flag to add_kernel
 *   LATE           a valid plugin ("late.answer" = 42 + args[0]), installed
 *                  while beatd runs to test loading on SIGHUP
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/beat_kernel.h"

static beat_kernel_result answer(beat_kernel_context* ctx, const uint64_t* args,
                                 beat_arena_view data) {
  (void)ctx;
  (void)data;
  return beat_kernel_ok(42 + args[0]);
}

BEAT_PLUGIN_EXPORT uint32_t beat_plugin_abi_version(void) {
#if defined(BEAT_TEST_PLUGIN_WRONG_ABI)
  return BEAT_KERNEL_ABI_VERSION + 1;
#else
  return BEAT_KERNEL_ABI_VERSION;
#endif
}

#if !defined(BEAT_TEST_PLUGIN_MISSING_INIT)
BEAT_PLUGIN_EXPORT int beat_plugin_init(beat_plugin_registrar* r) {
#if defined(BEAT_TEST_PLUGIN_DUPLICATE)
  r->add_kernel(r, "duplicate.fine", "a kernel that would be fine alone", answer, NULL, 0);
  return r->add_kernel(r, "checksum", "clashes with the built-in", answer, NULL, 0);
#elif defined(BEAT_TEST_PLUGIN_FAILING_INIT)
  (void)answer;
  r->set_error(r, "license file /nonexistent missing");
  return 7;
#elif defined(BEAT_TEST_PLUGIN_BAD_NAME)
  return r->add_kernel(r, "bad name", "a space in the name", answer, NULL, 0);
#elif defined(BEAT_TEST_PLUGIN_NO_KERNELS)
  (void)r;
  (void)answer;
  return 0;
#elif defined(BEAT_TEST_PLUGIN_BAD_FLAGS)
  r->add_kernel(r, "bad_flags.answer", "flag 0x80 is undefined", answer, NULL, 0x80);
  return 0; /* ignores add_kernel's refusal: beatd refuses the plugin anyway */
#elif defined(BEAT_TEST_PLUGIN_LATE)
  return r->add_kernel(r, "late.answer", "42 + args[0]", answer, NULL, BEAT_KERNEL_FLAG_BATCHABLE);
#else
  return r->add_kernel(r, "wrong_abi.answer", "never registered", answer, NULL, 0);
#endif
}
#else
/* Only the version symbol: the kernel below is never reachable. */
BEAT_PLUGIN_EXPORT beat_kernel_fn missing_init_kernel(void) { return answer; }
#endif

#if defined(BEAT_TEST_PLUGIN_DUPLICATE)
BEAT_PLUGIN_EXPORT void beat_plugin_fini(void) {
  const char* marker = getenv("BEAT_TEST_FINI_MARKER");
  if (marker == NULL) return;
  FILE* f = fopen(marker, "w");
  if (f != NULL) fclose(f);
}
#endif
