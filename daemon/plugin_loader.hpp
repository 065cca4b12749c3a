// PluginLoader: finds kernel plugins (kernels/beat_kernel.h) in the
// configured directories, checks them, and adds their kernels to the
// registry.
//
// A plugin is loaded once and never unloaded: its kernels keep their ids
// and code for the daemon's lifetime, so a rescan (SIGHUP) never disturbs a
// running task or a client's cached ids. A rescan loads the *.so files it
// has not loaded yet; a loaded file that changed on disk is reported once
// and keeps running as loaded until beatd restarts. A refused plugin is not
// remembered, so fixing the file and sending SIGHUP tries it again.
//
// Each plugin gives exactly one log line: "plugin PATH: loaded N kernels
// (...)" or "plugin PATH: refused: REASON". Reasons: a file or directory
// writable by group or others or owned by another user, dlopen failing, a
// missing entry point, another ABI version, init failing (or throwing),
// no kernels, a malformed or duplicate kernel name, a full registry.
//
// Thread-safety: one thread (beatd's control thread), the registry's
// writer (kernels/kernel_registry.hpp); workers read the registry
// concurrently.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

#include "kernels/kernel_registry.hpp"
#include "shared/status.hpp"

namespace beat {

class PluginLoader {
 public:
  struct ScanReport {
    std::uint32_t loaded = 0;   // plugins loaded by this scan
    std::uint32_t refused = 0;  // plugins refused by this scan
    std::uint32_t kernels = 0;  // kernels they added
  };

  explicit PluginLoader(KernelRegistry& registry) : registry_(registry) {}
  PluginLoader(const PluginLoader&) = delete;
  PluginLoader& operator=(const PluginLoader&) = delete;

  // Loads every not-yet-loaded *.so in each directory, in name order, and
  // logs one line per plugin (and one per directory that cannot be read).
  ScanReport scan(const std::vector<std::string>& directories);

  // Loads one plugin file. Returns the number of kernels added, or the
  // reason it was refused (also logged). A file already loaded adds nothing.
  Result<std::uint32_t> load(const std::string& path);

 private:
  struct Loaded {
    std::string path;  // canonical
    dev_t dev;
    ino_t ino;
    timespec mtime;
    bool change_reported = false;
  };

  Result<std::uint32_t> load_checked(const std::string& path);

  KernelRegistry& registry_;
  std::vector<Loaded> loaded_;
};

}  // namespace beat
