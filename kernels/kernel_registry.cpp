#include "kernels/kernel_registry.hpp"

#include <stdexcept>

namespace beat {

namespace {
constexpr std::size_t kMaxKernelNameBytes = 47;

bool valid_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}
}  // namespace

Status check_kernel_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxKernelNameBytes)
    return Status(ErrorCode::kInvalidArgument,
                  "kernel name '" + std::string(name) + "' must have 1 to 47 characters");
  for (char c : name)
    if (!valid_name_char(c))
      return Status(
          ErrorCode::kInvalidArgument,
          "kernel name '" + std::string(name) + "' may only use letters, digits, '_', '.', '-'");
  return Status::ok();
}

Status check_kernel_description(std::string_view name, std::string_view description) {
  if (description.size() > kMaxDescriptionBytes)
    return Status(ErrorCode::kInvalidArgument,
                  "description of kernel '" + std::string(name) + "' has " +
                      std::to_string(description.size()) + " bytes; at most " +
                      std::to_string(kMaxDescriptionBytes) + " are allowed");
  for (char c : description)
    if (c == '\t' || c == '\n' || c == '\r')
      return Status(ErrorCode::kInvalidArgument, "description of kernel '" + std::string(name) +
                                                     "' must be one line without tabs");
  return Status::ok();
}

KernelRegistry::KernelRegistry() : kernels_(std::make_unique<KernelInfo[]>(kMaxKernels)) {}

Result<std::uint32_t> KernelRegistry::add(KernelInfo info) {
  if (Status s = check_kernel_name(info.name); !s) return s;
  if (Status s = check_kernel_description(info.name, info.description); !s) return s;
  if (info.origin.size() > kMaxOriginBytes ||
      info.origin.find_first_of("\t\n\r") != std::string::npos)
    return Status(ErrorCode::kInvalidArgument, "origin of kernel '" + info.name +
                                                   "' must be one line without tabs of at most " +
                                                   std::to_string(kMaxOriginBytes) + " bytes");
  if ((info.fn == nullptr) == (info.plugin_fn == nullptr))
    return Status(ErrorCode::kInvalidArgument,
                  "kernel '" + info.name + "' needs exactly one function (built-in or plugin)");
  if (find(info.name))
    return Status(ErrorCode::kInvalidArgument, "kernel '" + info.name + "' is already registered");
  // Relaxed: only this thread writes size_.
  const std::uint32_t id = size_.load(std::memory_order_relaxed);
  if (id == kMaxKernels)
    return Status(ErrorCode::kInvalidArgument,
                  "kernel '" + info.name + "' does not fit: " + std::to_string(kMaxKernels) +
                      " kernels are registered already");
  kernels_[id] = std::move(info);
  // SYNC POINT WRITE: the entry above, for workers that read size() (acquire).
  size_.store(id + 1, std::memory_order_release);
  return id;
}

Result<std::uint32_t> KernelRegistry::add(std::string name, std::string description, KernelFn fn,
                                          std::string origin, bool batchable) {
  KernelInfo info;
  info.name = std::move(name);
  info.description = std::move(description);
  info.origin = std::move(origin);
  info.fn = fn;
  info.batchable = batchable;
  return add(std::move(info));
}

void add_builtin(KernelRegistry& registry, const char* name, const char* description, KernelFn fn,
                 bool batchable) {
  auto id = registry.add(name, description, fn, "built-in", batchable);
  if (!id) throw std::logic_error(id.status().message());
}

std::optional<std::uint32_t> KernelRegistry::find(std::string_view name) const noexcept {
  const std::uint32_t n = size();
  for (std::uint32_t i = 0; i < n; ++i)
    if (kernels_[i].name == name) return i;
  return std::nullopt;
}

std::string KernelRegistry::listing() const {
  std::string out;
  const std::uint32_t n = size();
  for (std::uint32_t i = 0; i < n; ++i) {
    const KernelInfo& k = kernels_[i];
    out += std::to_string(i);
    out += '\t';
    out += k.name;
    out += '\t';
    out += k.origin;
    out += '\t';
    out += k.description;
    out += '\n';
  }
  return out;
}

}  // namespace beat
