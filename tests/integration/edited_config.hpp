// EditedConfig: a copy of the repository's config/beatd.toml with some lines
// replaced, in a temporary directory removed with the object, for tests
// that need a daemon configured otherwise than by default.
//
// Thread-safety: one thread (the test's).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <sstream>
#include <string>
#include <utility>

#include "tests/integration/daemon_process.hpp"

namespace beat::test {

// Each `from` line replaced by its `to` (a missing line fails the test).
class EditedConfig {
 public:
  EditedConfig(std::initializer_list<std::pair<std::string, std::string>> edits) {
    std::ifstream in(BEAT_SOURCE_DIR "/config/beatd.toml");
    std::stringstream text;
    text << in.rdbuf();
    std::string config = text.str();
    for (const auto& [from, to] : edits) {
      const std::size_t at = config.find(from);
      if (at == std::string::npos) {
        ADD_FAILURE() << "config/beatd.toml no longer has the line " << from;
        continue;
      }
      config.replace(at, from.size(), to);
    }
    char dir[] = "/tmp/beat-config-XXXXXX";
    if (::mkdtemp(dir) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
      return;
    }
    dir_ = dir;
    path_ = dir_ + "/beatd.toml";
    std::ofstream(path_) << config;
  }
  ~EditedConfig() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  EditedConfig(const EditedConfig&) = delete;
  EditedConfig& operator=(const EditedConfig&) = delete;
  const std::string& path() const { return path_; }
  // A 2-worker beatd that reads this file.
  std::unique_ptr<DaemonProcess> start_daemon() const {
    return DaemonProcess::start(
        {.workers = 2, .metrics_address = "", .extra_args = {}, .cpus = {}, .config_path = path_});
  }

 private:
  std::string dir_;
  std::string path_;
};

}  // namespace beat::test
