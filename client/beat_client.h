/* beat_client.h: C API of the Beat client library.
 *
 * A thin layer over beat::Client (client/client.hpp), for C programs and
 * other languages' FFIs. Everything here has the semantics documented there;
 * this header repeats only what differs.
 *
 * Errors: every function that can fail returns 0 on success, else a
 * BEAT_E_* code (the values of beat::ErrorCode). beat_last_error() then
 * returns a message naming what was wrong; it is thread-local and stays valid
 * until the next failing call on the same thread.
 *
 * Thread-safety: as beat::Client. beat_submit, beat_arena_*, beat_kernel_id
 * from any thread; beat_wait/beat_poll from any thread, serialized on one
 * consumer lock; beat_connect/beat_disconnect from one thread with no other
 * call on that client in flight.
 *
 * Ordering: a completion returned by beat_wait/beat_poll happens after its
 * kernel's effects on the arena; arena writes before beat_submit are visible
 * to the kernel.
 */
#ifndef BEAT_CLIENT_H
#define BEAT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes (beat::ErrorCode). */
#define BEAT_OK 0
#define BEAT_E_INVALID_ARGUMENT 1
#define BEAT_E_WOULD_BLOCK 2
#define BEAT_E_TIMED_OUT 3
#define BEAT_E_SHUTTING_DOWN 4
#define BEAT_E_PROTOCOL 5
#define BEAT_E_IO 6
#define BEAT_E_NOT_FOUND 7
#define BEAT_E_RESOURCE_EXHAUSTED 8
#define BEAT_E_PERMISSION_DENIED 9

/* beat_task.flags */
#define BEAT_TASK_USES_DATA 1u
/* This client's ordered tasks run one after another and complete in
 * submission order (kTaskFlagOrdered in shared/protocol.hpp). */
#define BEAT_TASK_ORDERED 2u

/* beat_completion.status (beat::TaskStatus) */
#define BEAT_STATUS_OK 0u
#define BEAT_STATUS_KERNEL_ERROR 1u
#define BEAT_STATUS_INVALID_KERNEL 2u
#define BEAT_STATUS_INVALID_RANGE 3u
#define BEAT_STATUS_INVALID_FLAGS 4u
#define BEAT_STATUS_INVALID_ARGS 5u
#define BEAT_STATUS_DROPPED 6u

/* Wait forever (beat_wait's timeout_ns). */
#define BEAT_WAIT_FOREVER (-1)

typedef struct beat_client beat_client;

/* Layout-identical to beat::TaskDescriptor (64 bytes). Zero-initialize it,
 * then set the fields you use. Leave fingerprint 0 and the library computes
 * it (shared/fingerprint.hpp); a nonzero value's low 18 bits are a grouping
 * key of your own (tasks with equal keys batch together more readily). */
typedef struct beat_task {
  uint64_t tag;
  uint32_t kernel_id;
  uint32_t flags;       /* 0, BEAT_TASK_USES_DATA, BEAT_TASK_ORDERED */
  uint64_t data_offset; /* arena offset, with BEAT_TASK_USES_DATA */
  uint64_t data_length;
  uint64_t args[3];
  uint64_t fingerprint;
} beat_task;

/* Layout-identical to beat::Completion (24 bytes). */
typedef struct beat_completion {
  uint64_t tag;
  uint32_t status; /* BEAT_STATUS_* */
  uint32_t detail;
  uint64_t result;
} beat_completion;

/* A block of the arena: offset for beat_task.data_offset, data to fill. */
typedef struct beat_block {
  uint64_t offset;
  uint64_t length;
  void* data;
} beat_block;

/* Connects with default ring and arena sizes. socket_path NULL: $BEAT_SOCKET
 * or /run/beat/beatd.sock. name NULL: "client". On success *out owns the
 * session; release it with beat_disconnect. */
int beat_connect(const char* socket_path, const char* name, beat_client** out);

/* Says BYE, unmaps the segment and frees the client. NULL is ignored. */
void beat_disconnect(beat_client* client);

/* Looks a kernel up by name (BEAT_E_NOT_FOUND for an unknown one). */
int beat_kernel_id(beat_client* client, const char* name, uint32_t* out);

/* Allocates `bytes` of arena aligned to `alignment` (0 means 64). */
int beat_arena_alloc(beat_client* client, uint64_t bytes, uint64_t alignment, beat_block* out);
/* Frees a block from beat_arena_alloc; BEAT_E_INVALID_ARGUMENT if it is not
 * allocated (double free). */
int beat_arena_free(beat_client* client, const beat_block* block);
/* Start and size of the arena in this process. */
void* beat_arena_base(beat_client* client);
uint64_t beat_arena_bytes(beat_client* client);

/* Submits n tasks in order. nonblocking != 0: all or nothing, else
 * BEAT_E_WOULD_BLOCK. nonblocking == 0: waits for room. */
int beat_submit(beat_client* client, const beat_task* tasks, size_t n, int nonblocking);

/* Reaps at least `min` (<= cap) completions into out[0, cap), waiting up to
 * timeout_ns (BEAT_WAIT_FOREVER or any negative value: forever). *got is
 * set to how many were written, also on error. Returns BEAT_E_TIMED_OUT only
 * when none arrived, BEAT_E_SHUTTING_DOWN when the daemon is gone and none
 * are pending. */
int beat_wait(beat_client* client, beat_completion* out, size_t cap, size_t min, int64_t timeout_ns,
              size_t* got);

/* Reaps what is ready now, never blocks. */
int beat_poll(beat_client* client, beat_completion* out, size_t cap, size_t* got);

/* Message of this thread's last failed call ("" if none yet). */
const char* beat_last_error(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BEAT_CLIENT_H */
