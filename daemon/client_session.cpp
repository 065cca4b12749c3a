#include "daemon/client_session.hpp"

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/permissions.hpp>

namespace beat {

namespace bip = boost::interprocess;

Result<std::unique_ptr<ClientSession>> ClientSession::create(
    const std::string& segment_name, const SegmentLayout& layout, std::uint64_t daemon_instance,
    std::uint32_t client_id, const PeerCredentials& peer, std::string client_name) {
  std::unique_ptr<ClientSession> s(new ClientSession());
  s->client_name_ = std::move(client_name);
  s->peer_ = peer;
  s->client_id_ = client_id;
  try {
    // Owner-only: the daemon's user owns the segment; the client gets access
    // only through the descriptor passed over the socket.
    bip::permissions perms(0600);
    bip::shared_memory_object shm(bip::create_only, segment_name.c_str(), bip::read_write, perms);
    s->shm_.swap(shm);
    // Named only once created: a name we failed to create may be another
    // process's segment, and the destructor unlinks segment_name_.
    s->segment_name_ = segment_name;
    s->shm_.truncate(static_cast<bip::offset_t>(layout.total_bytes));
    bip::mapped_region region(s->shm_, bip::read_write, 0, layout.total_bytes);
    s->region_.swap(region);
  } catch (const bip::interprocess_exception& e) {
    // The destructor below removes a half-created segment.
    return Status(ErrorCode::kIo, "cannot create segment '" + segment_name + "' of " +
                                      std::to_string(layout.total_bytes) + " bytes: " + e.what());
  }
  s->view_ = SegmentView::over(s->region_.get_address(), layout);
  initialize_header(*s->view_.header, layout, daemon_instance, client_id);
  return s;
}

ClientSession::~ClientSession() {
  // Unmap first, then unlink: nothing of the client survives it.
  bip::mapped_region().swap(region_);
  if (!segment_name_.empty()) bip::shared_memory_object::remove(segment_name_.c_str());
}

int ClientSession::segment_fd() const noexcept { return shm_.get_mapping_handle().handle; }

}  // namespace beat
