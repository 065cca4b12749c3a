#include "kernels/kernel_registry.hpp"

namespace beat {

namespace {
constexpr std::size_t kMaxKernelNameBytes = 47;

bool valid_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}
}  // namespace

Result<std::uint32_t> KernelRegistry::add(std::string name, std::string description, KernelFn fn,
                                          std::string origin, bool batchable) {
  if (name.empty() || name.size() > kMaxKernelNameBytes)
    return Status(ErrorCode::kInvalidArgument,
                  "kernel name '" + name + "' must have 1 to 47 characters");
  for (char c : name)
    if (!valid_name_char(c))
      return Status(ErrorCode::kInvalidArgument,
                    "kernel name '" + name + "' may only use letters, digits, '_', '.', '-'");
  for (char c : description)
    if (c == '\t' || c == '\n' || c == '\r')
      return Status(ErrorCode::kInvalidArgument,
                    "description of kernel '" + name + "' must be one line without tabs");
  if (fn == nullptr)
    return Status(ErrorCode::kInvalidArgument, "kernel '" + name + "' has no function");
  if (find(name))
    return Status(ErrorCode::kInvalidArgument, "kernel '" + name + "' is already registered");
  kernels_.push_back({std::move(name), std::move(description), std::move(origin), fn, batchable});
  return static_cast<std::uint32_t>(kernels_.size() - 1);
}

std::optional<std::uint32_t> KernelRegistry::find(std::string_view name) const noexcept {
  for (std::uint32_t i = 0; i < kernels_.size(); ++i)
    if (kernels_[i].name == name) return i;
  return std::nullopt;
}

std::string KernelRegistry::listing() const {
  std::string out;
  for (std::uint32_t i = 0; i < kernels_.size(); ++i) {
    out += std::to_string(i);
    out += '\t';
    out += kernels_[i].name;
    out += '\t';
    out += kernels_[i].description;
    out += '\n';
  }
  return out;
}

}  // namespace beat
