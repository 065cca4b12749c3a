#include "daemon/plugin_loader.hpp"

#include <dlfcn.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace beat {

namespace {

// What beat_plugin_init's registrar collects; checked as a whole after init.
struct Collected {
  std::vector<KernelInfo> kernels;
  std::string error;      // set_error's message
  std::string malformed;  // the first add_kernel call that was malformed
};

// The registrar's callbacks run inside the plugin's beat_plugin_init, a C
// frame: nothing may unwind through them.
int registrar_add_kernel(beat_plugin_registrar* r, const char* name, const char* description,
                         beat_kernel_fn fn, void* kernel_data, std::uint32_t flags) noexcept {
  auto& c = *static_cast<Collected*>(r->impl);
  try {
    if (name == nullptr || fn == nullptr) {
      if (c.malformed.empty())
        c.malformed = std::string("add_kernel called with a null ") +
                      (name == nullptr ? "name" : "function for '" + std::string(name) + "'");
      return -1;
    }
    if ((flags & ~std::uint32_t{BEAT_KERNEL_FLAG_BATCHABLE}) != 0) {
      if (c.malformed.empty())
        c.malformed =
            std::string("add_kernel '") + name + "' has unknown flags " + std::to_string(flags);
      return -1;
    }
    KernelInfo k;
    k.name = name;
    k.description = description != nullptr ? description : "";
    k.plugin_fn = fn;
    k.plugin_data = kernel_data;
    k.batchable = (flags & BEAT_KERNEL_FLAG_BATCHABLE) != 0;
    c.kernels.push_back(std::move(k));
    return 0;
  } catch (...) {
    if (c.malformed.empty()) c.malformed = "out of memory while registering kernels";
    return -1;
  }
}

void registrar_set_error(beat_plugin_registrar* r, const char* message) noexcept {
  try {
    static_cast<Collected*>(r->impl)->error = message != nullptr ? message : "";
  } catch (...) {
    // Out of memory: the plugin is refused for its return code anyway.
  }
}

std::string mode_string(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// The trust checks of beat_kernel.h: root's or beatd's own, and not
// writable by group or others. A directory with the sticky bit (/tmp) may
// be writable by all: nobody but an entry's owner can rename or remove it.
Status check_trusted(const std::string& what, const struct stat& st) {
  const bool sticky_dir = S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX) != 0;
  if (!sticky_dir && (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return Status(ErrorCode::kPermissionDenied,
                  what + " is writable by group or others (mode " + mode_string(st.st_mode) + ")");
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    return Status(ErrorCode::kPermissionDenied,
                  what + " is owned by uid " + std::to_string(st.st_uid) +
                      ", neither root nor beatd's uid " + std::to_string(::geteuid()));
  return Status::ok();
}

// Closes a refused plugin's handle on every path out of load_checked.
struct Handle {
  void* h = nullptr;
  ~Handle() {
    if (h != nullptr) ::dlclose(h);
  }
  void* release() { return std::exchange(h, nullptr); }
};

}  // namespace

PluginLoader::ScanReport PluginLoader::scan(const std::vector<std::string>& directories) {
  ScanReport report;
  for (const std::string& dir : directories) {
    std::error_code ec;
    std::vector<std::string> files;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::filesystem::path& p = it->path();
      if (p.extension() == ".so") files.push_back(p.string());
    }
    if (ec) {
      spdlog::warn("plugins.directories: cannot read '{}': {}", dir, ec.message());
      continue;
    }
    std::sort(files.begin(), files.end());
    for (const std::string& f : files) {
      const std::size_t before = loaded_.size();
      auto added = load(f);
      if (!added) {
        ++report.refused;
      } else if (loaded_.size() > before) {
        ++report.loaded;
        report.kernels += *added;
      }
    }
  }
  return report;
}

Result<std::uint32_t> PluginLoader::load(const std::string& given) {
  std::error_code ec;
  const std::string path = std::filesystem::canonical(given, ec).string();
  Result<std::uint32_t> added =
      ec ? Status(ErrorCode::kNotFound, "cannot resolve the path: " + ec.message())
         : load_checked(path);
  if (!added) spdlog::error("plugin {}: refused: {}", ec ? given : path, added.status().message());
  return added;
}

Result<std::uint32_t> PluginLoader::load_checked(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return Status(ErrorCode::kIo, std::string("cannot stat it: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return Status(ErrorCode::kInvalidArgument, "not a regular file");

  for (Loaded& l : loaded_) {
    if (l.path != path) continue;
    const bool same = l.dev == st.st_dev && l.ino == st.st_ino &&
                      l.mtime.tv_sec == st.st_mtim.tv_sec && l.mtime.tv_nsec == st.st_mtim.tv_nsec;
    if (!same && !l.change_reported) {
      spdlog::warn("plugin {}: changed on disk; the loaded copy stays in use until beatd restarts",
                   path);
      l.change_reported = true;
    }
    return 0;
  }

  if (path.size() > kMaxOriginBytes || path.find_first_of("\t\n\r") != std::string::npos)
    return Status(ErrorCode::kInvalidArgument,
                  "its path must be one line without tabs of at most " +
                      std::to_string(kMaxOriginBytes) + " bytes");
  // The file and every directory above it: with all of them trusted, no one
  // else can swap the file between these checks and dlopen.
  if (Status s = check_trusted("the file", st); !s) return s;
  for (std::filesystem::path dir = std::filesystem::path(path).parent_path();;
       dir = dir.parent_path()) {
    struct stat dst {};
    if (::stat(dir.c_str(), &dst) != 0)
      return Status(ErrorCode::kIo, "cannot stat directory " + dir.string() + ": " +
                                        std::string(std::strerror(errno)));
    if (Status s = check_trusted("directory " + dir.string(), dst); !s) return s;
    if (dir == dir.root_path()) break;
  }

  Handle handle;
  handle.h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle.h == nullptr) {
    const char* why = ::dlerror();
    return Status(ErrorCode::kInvalidArgument,
                  std::string("dlopen failed: ") + (why != nullptr ? why : "unknown error"));
  }
  auto* version_fn =
      reinterpret_cast<std::uint32_t (*)()>(::dlsym(handle.h, "beat_plugin_abi_version"));
  if (version_fn == nullptr)
    return Status(ErrorCode::kInvalidArgument, "missing symbol beat_plugin_abi_version");
  auto* init_fn =
      reinterpret_cast<int (*)(beat_plugin_registrar*)>(::dlsym(handle.h, "beat_plugin_init"));
  if (init_fn == nullptr)
    return Status(ErrorCode::kInvalidArgument, "missing symbol beat_plugin_init");
  const std::uint32_t version = version_fn();
  // Older plugins only use what their header had, which never moves.
  if (version == 0 || version > BEAT_KERNEL_ABI_VERSION)
    return Status(ErrorCode::kInvalidArgument, "ABI version " + std::to_string(version) +
                                                   ", but this beatd speaks 1 to " +
                                                   std::to_string(BEAT_KERNEL_ABI_VERSION));
  // Optional: undoes init when the plugin is refused after it.
  auto* fini_fn = reinterpret_cast<void (*)()>(::dlsym(handle.h, "beat_plugin_fini"));

  Collected collected;
  beat_plugin_registrar registrar{sizeof(beat_plugin_registrar), BEAT_KERNEL_ABI_VERSION,
                                  &collected, registrar_add_kernel, registrar_set_error};
  int rc = 0;
  try {
    rc = init_fn(&registrar);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInvalidArgument, std::string("beat_plugin_init threw: ") + e.what());
  } catch (...) {
    return Status(ErrorCode::kInvalidArgument, "beat_plugin_init threw");
  }
  if (rc != 0)
    return Status(ErrorCode::kInvalidArgument,
                  "beat_plugin_init returned " + std::to_string(rc) +
                      (!collected.error.empty()       ? ": " + collected.error
                       : !collected.malformed.empty() ? ": " + collected.malformed
                                                      : std::string()));
  // From here on a refusal undoes init first.
  const auto refuse_after_init = [&](Status why) {
    if (fini_fn != nullptr) fini_fn();
    return why;
  };
  if (!collected.malformed.empty())
    return refuse_after_init(Status(ErrorCode::kInvalidArgument, collected.malformed));
  if (collected.kernels.empty())
    return refuse_after_init(
        Status(ErrorCode::kInvalidArgument, "beat_plugin_init registered no kernels"));

  // All or nothing: check every kernel before adding any.
  std::string names;
  for (std::size_t i = 0; i < collected.kernels.size(); ++i) {
    const KernelInfo& k = collected.kernels[i];
    if (Status s = check_kernel_name(k.name); !s) return refuse_after_init(s);
    if (Status s = check_kernel_description(k.name, k.description); !s) return refuse_after_init(s);
    for (std::size_t j = 0; j < i; ++j)
      if (collected.kernels[j].name == k.name)
        return refuse_after_init(
            Status(ErrorCode::kInvalidArgument, "it registers kernel '" + k.name + "' twice"));
    if (const auto id = registry_.find(k.name))
      return refuse_after_init(
          Status(ErrorCode::kInvalidArgument,
                 "kernel '" + k.name + "' is already registered by " + registry_.at(*id).origin));
    names += (names.empty() ? "" : ", ") + k.name;
  }
  if (registry_.size() + collected.kernels.size() > KernelRegistry::kMaxKernels)
    return refuse_after_init(Status(ErrorCode::kInvalidArgument,
                                    "its " + std::to_string(collected.kernels.size()) +
                                        " kernels do not fit: " + std::to_string(registry_.size()) +
                                        " of " + std::to_string(KernelRegistry::kMaxKernels) +
                                        " ids are taken"));
  loaded_.push_back({path, st.st_dev, st.st_ino, st.st_mtim, false});

  // Never closed from here on, whatever happens below: a kernel workers can
  // see must keep its code.
  handle.release();
  for (KernelInfo& k : collected.kernels) {
    k.origin = path;
    // Cannot fail: every rule add() applies was checked above, and moving
    // the strings allocates nothing.
    if (auto id = registry_.add(std::move(k)); !id) throw std::logic_error(id.status().message());
  }
  const auto n = static_cast<std::uint32_t>(collected.kernels.size());
  spdlog::info("plugin {}: loaded {} kernel{} ({})", path, n, n == 1 ? "" : "s", names);
  return n;
}

}  // namespace beat
