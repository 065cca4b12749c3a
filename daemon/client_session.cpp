#include "daemon/client_session.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <boost/interprocess/exceptions.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace beat {

namespace bip = boost::interprocess;

namespace {

// A descriptor as a Boost.Interprocess MemoryMappable, so mapped_region can
// map the memfd (it only needs get_mapping_handle()).
struct MemfdMappable {
  int fd;
  bip::mapping_handle_t get_mapping_handle() const noexcept {
    bip::mapping_handle_t h;
    h.handle = fd;
    h.is_xsi = false;
    return h;
  }
};

Status segment_error(const std::string& name, std::uint64_t bytes, const char* what, int err) {
  return Status(err == ENOSPC || err == ENOMEM ? ErrorCode::kResourceExhausted : ErrorCode::kIo,
                std::string(what) + " for segment '" + name + "' of " + std::to_string(bytes) +
                    " bytes failed: " + std::strerror(err));
}

}  // namespace

Result<std::unique_ptr<ClientSession>> ClientSession::create(
    const std::string& segment_name, const SegmentLayout& layout, std::uint64_t daemon_instance,
    std::uint32_t client_id, const PeerCredentials& peer, std::string client_name) {
  std::unique_ptr<ClientSession> s(new ClientSession());
  s->created_ns_ =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  s->segment_name_ = segment_name;
  s->client_name_ = std::move(client_name);
  s->peer_ = peer;
  s->client_id_ = client_id;
  const std::uint64_t bytes = layout.total_bytes;
  s->fd_ = ::memfd_create(segment_name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (s->fd_ < 0) return segment_error(segment_name, bytes, "memfd_create", errno);
  if (::ftruncate(s->fd_, static_cast<off_t>(bytes)) != 0)
    return segment_error(segment_name, bytes, "ftruncate", errno);
  // Reserve every page now (tmpfs allocates lazily; a page it cannot supply
  // later would SIGBUS whoever touches it first, possibly a worker).
  if (const int err = ::posix_fallocate(s->fd_, 0, static_cast<off_t>(bytes)); err != 0)
    return segment_error(segment_name, bytes, "reserving memory (fallocate)", err);
  // The size is final: the client gets a writable descriptor, and a shrunk
  // segment would fault the daemon.
  if (::fcntl(s->fd_, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
    return segment_error(segment_name, bytes, "sealing", errno);
  try {
    bip::mapped_region region(MemfdMappable{s->fd_}, bip::read_write, 0, bytes);
    s->region_.swap(region);
  } catch (const bip::interprocess_exception& e) {
    return Status(ErrorCode::kIo, "cannot map segment '" + segment_name + "' of " +
                                      std::to_string(bytes) + " bytes: " + e.what());
  }
  s->view_ = SegmentView::over(s->region_.get_address(), layout);
  initialize_header(*s->view_.header, layout, daemon_instance, client_id);
  return s;
}

ClientSession::~ClientSession() {
  // Nothing of the client survives it: the mapping goes, then the daemon's
  // descriptor; the memory is freed once the client's mapping is gone too.
  bip::mapped_region().swap(region_);
  if (fd_ >= 0) ::close(fd_);
}

int ClientSession::segment_fd() const noexcept { return fd_; }

}  // namespace beat
