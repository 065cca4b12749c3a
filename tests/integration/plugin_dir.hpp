// PluginDir: a fresh 0700 directory of kernel plugin copies, removed with
// the object, for integration tests that start beatd with --plugin-dir
// (beatd refuses plugins in directories others can write).
//
// Thread-safety: one thread (the test's).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

namespace beat::test {

class PluginDir {
 public:
  PluginDir() {
    char dir[] = "/tmp/beat-plugins-XXXXXX";
    if (::mkdtemp(dir) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = dir;
  }
  ~PluginDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  PluginDir(const PluginDir&) = delete;
  PluginDir& operator=(const PluginDir&) = delete;

  // Copies `from` in as `name` with the given mode; returns the new path.
  std::string add(const std::string& from, const std::string& name, mode_t mode = 0755) {
    const std::string to = path_ + "/" + name;
    std::error_code ec;
    std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing, ec);
    EXPECT_FALSE(ec) << "copy " << from << ": " << ec.message();
    EXPECT_EQ(::chmod(to.c_str(), mode), 0);
    return to;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace beat::test
