/* beat_kernel.h: the plugin ABI of beatd, Beat's task-scheduler daemon.
 *
 * A plugin is a shared library that adds kernels to a running beatd without
 * rebuilding it. beatd loads every *.so file in the directories named by the
 * configuration key plugins.directories, at start and again on SIGHUP (new
 * files only; a loaded plugin stays loaded until beatd restarts, so the
 * kernel ids clients cached stay valid and running tasks are never touched).
 *
 * A plugin exports two functions with C linkage:
 *
 *   uint32_t beat_plugin_abi_version(void);
 *       Returns BEAT_KERNEL_ABI_VERSION as the plugin was compiled.
 *
 *   int beat_plugin_init(beat_plugin_registrar* registrar);
 *       Registers the plugin's kernels with registrar->add_kernel and returns
 *       0, or returns non-zero (after registrar->set_error) to refuse to
 *       load. Called on beatd's control thread, before any of the plugin's
 *       kernels can run; the registrar is valid only during the call.
 *
 * and optionally a third:
 *
 *   void beat_plugin_fini(void);
 *       Undoes init. Called only when beatd refuses the plugin after a
 *       successful init (a malformed or already-taken kernel name, no
 *       kernels, a full registry), just before it unloads the library
 *       (dlclose). A loaded plugin is never unloaded, so fini never runs
 *       for it. Init must not start threads.
 *
 * A plugin that lacks a required symbol, speaks an ABI version beatd does
 * not, fails init or registers a name that is malformed or taken is refused
 * as a whole: none of its kernels is registered, beatd logs one line naming
 * the file and the reason, and goes on. A refused plugin is tried again
 * (init runs again) on the next SIGHUP.
 *
 * Versions: BEAT_KERNEL_ABI_VERSION grows when something is appended to
 * this header (a host service, a registrar function, a flag). Nothing ever
 * moves or changes meaning; struct_size fields say how much of a struct the
 * other side has. beatd loads plugins built against its own version or an
 * older one, and refuses one built against a newer header.
 *
 * Kernels. A kernel is a function
 *
 *   beat_kernel_result fn(beat_kernel_context* ctx, const uint64_t* args,
 *                         beat_arena_view data);
 *
 * called by a worker thread for one task: ctx->kernel_data is the pointer
 * the kernel was registered with (one function may serve several kernels),
 * `args` points at the task's
 * BEAT_KERNEL_INLINE_ARGS inline words, `data` is the task's data range
 * (already checked to lie inside the client's arena; {NULL, 0} when the task
 * carries none). The kernel returns beat_kernel_ok(value) or an error:
 *   beat_kernel_error(code)        the kernel failed; the client sees status
 *                                  kernel_error with detail = code
 *   beat_kernel_invalid_args(i)    args[i] was refused
 *   beat_kernel_invalid_range(i)   the arena range named by args[i] (or
 *                                  BEAT_KERNEL_DATA_RANGE: the data range)
 *                                  is bad
 *   beat_kernel_cancelled()        stopped early because beat_cancelled()
 * Any other status value, and invalid_args or invalid_range with an index
 * above 3, is reported to the client as kernel_error with detail
 * BEAT_KERNEL_DETAIL_BAD_STATUS. Error codes 0xFFFFFF00 and above are
 * reserved for beatd (BEAT_KERNEL_DETAIL_*).
 *
 * Rules for kernels (the same as for built-ins, kernels/kernel.hpp):
 *  - The arena is shared with the client, which may write it while the
 *    kernel runs, and which beatd does not trust: read each value once and
 *    never use a value read from the arena as a length or index without
 *    checking it. Ranges named by arguments are checked with
 *    beat_arena_range(), which returns {NULL, 0} for a range outside the
 *    arena.
 *  - A kernel may run on any worker, concurrently with itself: no unguarded
 *    global state. It must not block (locks, I/O, sleeping) for long: it
 *    holds a core the daemon owns.
 *  - C++ plugins must not let exceptions escape a kernel. beatd catches one
 *    that does and reports kernel_error with detail
 *    BEAT_KERNEL_DETAIL_EXCEPTION, but unwinding through the C ABI is only
 *    defined when both sides use the same C++ runtime.
 *  - Nested parallelism: beat_join() and beat_parallel_for() fork through
 *    beatd's work-stealing scheduler; the callbacks get the context of the
 *    worker that runs them and must use that one (forking with another
 *    context, e.g. the kernel's outer one kept in a struct, corrupts the
 *    scheduler). A context is valid only until the call that received it
 *    returns.
 *
 * Trust model. A plugin runs inside beatd with beatd's privileges and can
 * read every client's shared memory: loading one is the same as trusting its
 * author with the daemon. A plugin that crashes (a bad pointer, abort())
 * takes beatd down with every client's tasks. beatd therefore loads only
 * from directories the operator configures, and refuses a plugin file (or a
 * directory holding it) that is writable by group or others or owned by a
 * user other than root or beatd's own user, and one below a directory that
 * is (docs/plugins.md). Replace a plugin file by rename (install(1), mv),
 * never by writing over it: the loaded copy's pages are mapped by beatd.
 *
 * Thread-safety: beat_plugin_init and the registrar on the control thread
 * only; kernels and every function of beat_kernel_host on any worker, for
 * the duration of the call that received the context.
 */
#ifndef BEAT_KERNEL_H
#define BEAT_KERNEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Changes whenever anything in this header changes size, layout or meaning. */
#define BEAT_KERNEL_ABI_VERSION 1u

#define BEAT_KERNEL_INLINE_ARGS 3

/* Status values: the same numbers as the completion statuses clients see. */
#define BEAT_KERNEL_STATUS_OK 0u
#define BEAT_KERNEL_STATUS_ERROR 1u
#define BEAT_KERNEL_STATUS_INVALID_RANGE 3u
#define BEAT_KERNEL_STATUS_INVALID_ARGS 5u
#define BEAT_KERNEL_STATUS_CANCELLED 6u

/* beat_kernel_invalid_range(BEAT_KERNEL_DATA_RANGE): the task's data range. */
#define BEAT_KERNEL_DATA_RANGE 3u
/* Details beatd itself reports with BEAT_KERNEL_STATUS_ERROR (reserved:
 * a kernel's own codes stay below 0xFFFFFF00). */
#define BEAT_KERNEL_DETAIL_EXCEPTION 0xFFFFFFFFu  /* the kernel threw */
#define BEAT_KERNEL_DETAIL_BAD_STATUS 0xFFFFFFFEu /* it returned an unknown status */

/* Kernel flags (beat_plugin_registrar.add_kernel). */
/* Cheap (microseconds) on small data: beatd may hold its completion briefly
 * to post several at once. Leave it unset for anything that may run long. */
#define BEAT_KERNEL_FLAG_BATCHABLE 1u

typedef struct beat_kernel_result {
  uint32_t status; /* BEAT_KERNEL_STATUS_* */
  uint32_t detail; /* error code or argument index */
  uint64_t value;  /* the completion's result word when status is OK */
} beat_kernel_result;

typedef struct beat_arena_view {
  void* data; /* NULL when empty or refused */
  uint64_t size;
} beat_arena_view;

typedef struct beat_kernel_host beat_kernel_host;

/* What a kernel gets for one task. beatd's own fields follow these two. */
typedef struct beat_kernel_context {
  const beat_kernel_host* host;
  void* kernel_data; /* as given to add_kernel */
} beat_kernel_context;

typedef beat_kernel_result (*beat_kernel_fn)(beat_kernel_context* ctx, const uint64_t* args,
                                             beat_arena_view data);

typedef void (*beat_join_fn)(beat_kernel_context* ctx, void* arg);
typedef void (*beat_range_fn)(beat_kernel_context* ctx, uint64_t begin, uint64_t end, void* arg);

/* The daemon's services, reached through ctx->host (or the inline wrappers
 * below). Fields are only ever appended; struct_size says how many exist. */
struct beat_kernel_host {
  uint32_t struct_size;
  uint32_t abi_version;
  /* The client's arena range [offset, offset + length), or {NULL, 0} when it
   * is not inside the arena. */
  beat_arena_view (*arena_range)(const beat_kernel_context* ctx, uint64_t offset, uint64_t length);
  /* Non-zero once nobody will receive this task's result (daemon stopping,
   * client gone): a long kernel polls it and returns beat_kernel_cancelled(). */
  int (*cancelled)(const beat_kernel_context* ctx);
  /* The index of the worker running the call, and the submitting client. */
  uint32_t (*worker_index)(const beat_kernel_context* ctx);
  uint32_t (*client_id)(const beat_kernel_context* ctx);
  /* Runs a(ctx_a, a_arg) and b(ctx_b, b_arg), possibly in parallel; returns
   * when both have returned. */
  void (*join)(beat_kernel_context* ctx, beat_join_fn a, void* a_arg, beat_join_fn b, void* b_arg);
  /* Calls body(ctx_i, lo, hi, arg) on disjoint subranges covering [begin,
   * end), each at most `grain` long (grain 0 counts as 1), possibly in
   * parallel; returns when all have returned. */
  void (*parallel_for)(beat_kernel_context* ctx, uint64_t begin, uint64_t end, uint64_t grain,
                       beat_range_fn body, void* arg);
};

/* Handed to beat_plugin_init. */
typedef struct beat_plugin_registrar {
  uint32_t struct_size;
  uint32_t abi_version;
  void* impl; /* beatd's; do not touch */
  /* Registers a kernel. name: 1 to 47 of [A-Za-z0-9_.-], unique in the
   * daemon (prefix it with the plugin's name: "myplugin.kernel");
   * description: one line of at most 160 bytes, no tabs; kernel_data:
   * handed to every call as ctx->kernel_data (may be NULL); flags:
   * BEAT_KERNEL_FLAG_*. Returns 0, or non-zero when the call is malformed
   * (NULL name or function, unknown flags), which refuses the plugin.
   * Names and descriptions are checked when init returns. The strings are
   * copied. */
  int (*add_kernel)(struct beat_plugin_registrar* r, const char* name, const char* description,
                    beat_kernel_fn fn, void* kernel_data, uint32_t flags);
  /* The reason beat_plugin_init is about to return non-zero, for beatd's log
   * line (copied; the last call wins). */
  void (*set_error)(struct beat_plugin_registrar* r, const char* message);
} beat_plugin_registrar;

#if defined(__GNUC__)
#define BEAT_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define BEAT_PLUGIN_EXPORT
#endif

/* The entry points a plugin defines (beat_plugin_fini is optional). */
BEAT_PLUGIN_EXPORT uint32_t beat_plugin_abi_version(void);
BEAT_PLUGIN_EXPORT int beat_plugin_init(beat_plugin_registrar* registrar);
BEAT_PLUGIN_EXPORT void beat_plugin_fini(void);

/* ---- conveniences for kernel authors ---- */

static inline beat_kernel_result beat_kernel_ok(uint64_t value) {
  beat_kernel_result r = {BEAT_KERNEL_STATUS_OK, 0, value};
  return r;
}
static inline beat_kernel_result beat_kernel_error(uint32_t code) {
  beat_kernel_result r = {BEAT_KERNEL_STATUS_ERROR, code, 0};
  return r;
}
static inline beat_kernel_result beat_kernel_invalid_args(uint32_t arg_index) {
  beat_kernel_result r = {BEAT_KERNEL_STATUS_INVALID_ARGS, arg_index, 0};
  return r;
}
static inline beat_kernel_result beat_kernel_invalid_range(uint32_t which) {
  beat_kernel_result r = {BEAT_KERNEL_STATUS_INVALID_RANGE, which, 0};
  return r;
}
static inline beat_kernel_result beat_kernel_cancelled(void) {
  beat_kernel_result r = {BEAT_KERNEL_STATUS_CANCELLED, 0, 0};
  return r;
}
static inline beat_arena_view beat_arena_range(const beat_kernel_context* ctx, uint64_t offset,
                                               uint64_t length) {
  return ctx->host->arena_range(ctx, offset, length);
}
static inline int beat_cancelled(const beat_kernel_context* ctx) {
  return ctx->host->cancelled(ctx);
}
static inline uint32_t beat_worker_index(const beat_kernel_context* ctx) {
  return ctx->host->worker_index(ctx);
}
static inline uint32_t beat_client_id(const beat_kernel_context* ctx) {
  return ctx->host->client_id(ctx);
}
static inline void beat_join(beat_kernel_context* ctx, beat_join_fn a, void* a_arg, beat_join_fn b,
                             void* b_arg) {
  ctx->host->join(ctx, a, a_arg, b, b_arg);
}
static inline void beat_parallel_for(beat_kernel_context* ctx, uint64_t begin, uint64_t end,
                                     uint64_t grain, beat_range_fn body, void* arg) {
  ctx->host->parallel_for(ctx, begin, end, grain, body, arg);
}

#ifdef __cplusplus
}
#endif

#endif /* BEAT_KERNEL_H */
