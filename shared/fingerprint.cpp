#include "shared/fingerprint.hpp"

// Inlined (xxhash.h carries its implementation for this): the length is a
// constant 24, so the hash compiles to XXH3's 17..128-byte path alone,
// with no call into libxxhash on the client's publish path.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cstring>

namespace beat {

std::uint32_t fingerprint_args_hash(const TaskDescriptor& d) noexcept {
  static_assert(sizeof(d.args) == 24, "three inline argument words");
  // The top bits: XXH3's best mixed.
  return static_cast<std::uint32_t>(XXH3_64bits(d.args, sizeof(d.args)) >>
                                    (64 - std::bit_width(kFingerprintArgsMask)));
}

}  // namespace beat
