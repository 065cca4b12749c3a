// The CRC-32C kernel, on Intel ISA-L (libisal: crc32_iscsi picks the
// CPU's best implementation, SSE4.2 crc32 / PCLMULQDQ folding, at run time).
//
//   crc32c  CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, the
//           iSCSI / ext4 / SCTP checksum) of the task's data range.
//           args[0] = initial CRC: 0 for a fresh checksum, or the CRC of
//           the bytes before this range to continue it, so that
//           crc32c(a ++ b) == crc32c(b, init = crc32c(a)); a value above
//           0xFFFFFFFF is invalid_args(0). Result = the CRC (the standard
//           one: "123456789" gives 0xE3069283). An empty range returns
//           args[0]. Batchable, like checksum.
#include <isa-l/crc.h>

#include <algorithm>
#include <cstdint>

#include "kernels/kernel_registry.hpp"

namespace beat {

namespace {

constexpr std::uint64_t kMaxCrc = 0xFFFF'FFFF;
// crc32_iscsi takes an `int` length, so a range is fed to it in chunks; a
// chunk is also the unit between cancellation checks. 1 MiB is ~50 us at
// ISA-L's ~20 GB/s: a relaxed load per chunk costs nothing, and a 64 GiB
// range stops within a chunk of its client going away.
constexpr std::uint64_t kChunkBytes = std::uint64_t{1} << 20;
static_assert(kChunkBytes <= 0x7FFF'FFFF, "a chunk's length must fit crc32_iscsi's int");

KernelResult crc32c_kernel(TaskContext& ctx, KernelArgs args, ArenaView data) {
  if (args[0] > kMaxCrc) return KernelResult::invalid_args(0);
  // ISA-L's crc32_iscsi applies no conditioning: it runs the bare register
  // from `init_crc` and returns it (crc32_iscsi("123456789", 9, ~0) is
  // 0x1CF96D7C = ~0xE3069283). The standard CRC-32C starts the register at
  // ~0 and returns its complement, so a standard CRC `c` continues as
  // register ~c, and the register comes back out complemented; with c = 0
  // that is the standard fresh start.
  auto reg = static_cast<std::uint32_t>(~args[0]);
  // ISA-L reads the bytes once each and derives no address from them, so a
  // client writing the range meanwhile changes only the value it gets.
  auto* p = reinterpret_cast<unsigned char*>(data.data);
  for (std::uint64_t done = 0; done < data.size;) {
    if (ctx.cancelled()) return KernelResult::cancelled();
    const std::uint64_t n = std::min(kChunkBytes, data.size - done);
    reg = crc32_iscsi(p + done, static_cast<int>(n), reg);
    done += n;
  }
  return KernelResult::ok(static_cast<std::uint32_t>(~reg));
}

}  // namespace

void register_crc32c_kernels(KernelRegistry& registry) {
  add_builtin(registry, "crc32c", "CRC-32C (Castagnoli) of the data range, initial CRC args[0]",
              crc32c_kernel, /*batchable=*/true);
}

}  // namespace beat
