#include "shared/segment_layout.hpp"

namespace beat {

namespace {
std::string mismatch(const char* field, std::uint64_t got, std::uint64_t want) {
  return std::string("segment header field ") + field + " is " + std::to_string(got) +
         ", expected " + std::to_string(want);
}
}  // namespace

std::string check_header(const SegmentHeader& h, const SegmentLayout& l) {
  if (h.magic != kSegmentMagic) return mismatch("magic", h.magic, kSegmentMagic);
  if (h.version != kProtocolVersion) return mismatch("version", h.version, kProtocolVersion);
  if (h.header_bytes != kSegmentHeaderBytes)
    return mismatch("header_bytes", h.header_bytes, kSegmentHeaderBytes);
  if (h.sq_entries != l.sq_entries) return mismatch("sq_entries", h.sq_entries, l.sq_entries);
  if (h.cq_entries != l.cq_entries) return mismatch("cq_entries", h.cq_entries, l.cq_entries);
  if (h.sq_offset != l.sq_offset) return mismatch("sq_offset", h.sq_offset, l.sq_offset);
  if (h.cq_offset != l.cq_offset) return mismatch("cq_offset", h.cq_offset, l.cq_offset);
  if (h.arena_offset != l.arena_offset)
    return mismatch("arena_offset", h.arena_offset, l.arena_offset);
  if (h.arena_bytes != l.arena_bytes) return mismatch("arena_bytes", h.arena_bytes, l.arena_bytes);
  if (h.total_bytes != l.total_bytes) return mismatch("total_bytes", h.total_bytes, l.total_bytes);
  return {};
}

void initialize_header(SegmentHeader& h, const SegmentLayout& l, std::uint64_t daemon_instance,
                       std::uint32_t client_id) noexcept {
  // The mapping is fresh (ftruncate'd, zero-filled) and the client cannot
  // map it before the daemon sends the descriptor, so plain stores suffice;
  // the sendmsg() that hands the fd over orders them before any client read.
  h.magic = kSegmentMagic;
  h.version = kProtocolVersion;
  h.header_bytes = kSegmentHeaderBytes;
  h.sq_entries = l.sq_entries;
  h.cq_entries = l.cq_entries;
  h.sq_offset = l.sq_offset;
  h.cq_offset = l.cq_offset;
  h.arena_offset = l.arena_offset;
  h.arena_bytes = l.arena_bytes;
  h.total_bytes = l.total_bytes;
  h.daemon_instance = daemon_instance;
  h.client_id = client_id;
  h.reserved0_ = 0;
  for (auto* idx : {&h.sq, &h.cq}) {
    idx->head.value.store(0, std::memory_order_relaxed);
    idx->tail.value.store(0, std::memory_order_relaxed);
    idx->reserve.value.store(0, std::memory_order_relaxed);
  }
  for (auto* bell : {&h.sq_bell, &h.sq_space, &h.cq_bell, &h.cq_space}) {
    bell->needs_wakeup.store(0, std::memory_order_relaxed);
    bell->seq.store(0, std::memory_order_relaxed);
  }
  h.daemon_state.store(static_cast<std::uint32_t>(DaemonState::kRunning),
                       std::memory_order_relaxed);
  h.arena_used_bytes.store(0, std::memory_order_relaxed);
}

}  // namespace beat
