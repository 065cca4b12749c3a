// Kernel plugins through a real beatd (kernels/beat_kernel.h,
// daemon/plugin_loader.cpp): the example plugin and a plugin of failing
// kernels load and run; every refusal case gives one log line naming the
// file and the reason while the daemon goes on; kernels that fail, throw or
// return an undefined status become error completions and the workers
// survive; a plugin installed while beatd runs is loaded on SIGHUP without
// disturbing the tasks in flight, and a client finds it by name.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "kernels/beat_kernel.h"
#include "tests/integration/completions.hpp"
#include "tests/integration/daemon_process.hpp"
#include "tests/integration/edited_config.hpp"
#include "tests/integration/plugin_dir.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

using test::DaemonProcess;
using test::PluginDir;

std::unique_ptr<DaemonProcess> start_with_plugins(const std::string& dir) {
  return DaemonProcess::start({.workers = 2,
                               .metrics_address = "",
                               .extra_args = {"--plugin-dir", dir},
                               .cpus = {},
                               .config_path = ""});
}

Completion run_one(Client& c, const std::string& kernel, std::initializer_list<std::uint64_t> args,
                   std::optional<ArenaBlock> data = {}) {
  const auto id = c.kernel_id(kernel);
  EXPECT_TRUE(id) << id.status().message();
  if (!id) return {0, TaskStatus::kInvalidKernel, 0, 0};
  const std::vector<Completion> out = test::run_all(c, {make_task(*id, 1, args, data)});
  return out.empty() ? Completion{0, TaskStatus::kDropped, 0, 0} : out.front();
}

TEST(Plugins, ExampleAndFaultingKernelsRunAndWorkersSurviveFailures) {
  test::ScopedWatchdog watchdog("Plugins.Example", 120);
  PluginDir dir;
  const std::string example = dir.add(BEAT_EXAMPLE_PLUGIN, "libbeat_example_plugin.so");
  const std::string faults = dir.add(BEAT_TEST_FAULTS_PLUGIN, "faults.so");
  auto d = start_with_plugins(dir.path());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->log_lines("plugin " + example + ": loaded 2 kernels").size(), 1u) << d->log();
  EXPECT_EQ(d->log_lines("plugin " + faults + ": loaded 9 kernels").size(), 1u) << d->log();
  auto client = Client::connect({.socket_path = d->socket_path(), .name = "plugins"});
  ASSERT_TRUE(client) << client.status().message();
  Client& c = **client;

  // example.count_byte: a small range (serial) and 4 MiB (parallel chunks).
  std::mt19937_64 rng(11);
  for (const std::uint64_t bytes : {std::uint64_t{1000}, std::uint64_t{4} << 20}) {
    auto block = c.allocate(bytes);
    ASSERT_TRUE(block) << block.status().message();
    std::uint64_t sevens = 0;
    for (std::uint64_t i = 0; i < bytes; ++i) {
      const auto b = static_cast<unsigned char>(rng() % 16);
      block->data[i] = static_cast<std::byte>(b);
      sevens += b == 7;
    }
    const Completion r = run_one(c, "example.count_byte", {7}, *block);
    EXPECT_EQ(r.status, TaskStatus::kOk);
    EXPECT_EQ(r.result, sevens) << bytes << " bytes";
    const Completion bad = run_one(c, "example.count_byte", {256}, *block);
    EXPECT_EQ(bad.status, TaskStatus::kInvalidArgs);
    EXPECT_EQ(bad.detail, 0u);
  }

  // example.utf8_validate: code points of valid text, error 1 otherwise.
  const std::string valid = "gr\xC3\xBC\xC3\x9F dich, \xE2\x82\xAC \xF0\x9F\x98\x80";  // 14 points
  const std::string invalid[] = {"\xC0\xAF", "\xED\xA0\x80", "abc\xF4\x90\x80\x80", "\xE2\x82"};
  auto text = c.allocate(64);
  ASSERT_TRUE(text);
  std::copy(valid.begin(), valid.end(), reinterpret_cast<char*>(text->data));
  Completion r =
      run_one(c, "example.utf8_validate", {}, ArenaBlock{text->offset, valid.size(), text->data});
  EXPECT_EQ(r.status, TaskStatus::kOk);
  EXPECT_EQ(r.result, 14u);
  for (const std::string& bad : invalid) {
    std::copy(bad.begin(), bad.end(), reinterpret_cast<char*>(text->data));
    r = run_one(c, "example.utf8_validate", {}, ArenaBlock{text->offset, bad.size(), text->data});
    EXPECT_EQ(r.status, TaskStatus::kKernelError) << bad.size();
    EXPECT_EQ(r.detail, 1u);
  }

  // Failures: the kernel's own code, a throw, an undefined status, a bad range.
  r = run_one(c, "faults.fail", {1234});
  EXPECT_EQ(r.status, TaskStatus::kKernelError);
  EXPECT_EQ(r.detail, 1234u);
  r = run_one(c, "faults.throw", {});
  EXPECT_EQ(r.status, TaskStatus::kKernelError);
  EXPECT_EQ(r.detail, static_cast<std::uint32_t>(BEAT_KERNEL_DETAIL_EXCEPTION));
  r = run_one(c, "faults.bad_status", {});
  EXPECT_EQ(r.status, TaskStatus::kKernelError);
  EXPECT_EQ(r.detail, static_cast<std::uint32_t>(BEAT_KERNEL_DETAIL_BAD_STATUS));
  auto word = c.allocate(8);
  ASSERT_TRUE(word);
  const std::uint64_t magic = 0x0123'4567'89AB'CDEFull;
  std::memcpy(word->data, &magic, sizeof magic);
  r = run_one(c, "faults.range", {word->offset});
  EXPECT_EQ(r.status, TaskStatus::kOk);
  EXPECT_EQ(r.result, magic);
  r = run_one(c, "faults.range", {c.layout().arena_bytes - 4});
  EXPECT_EQ(r.status, TaskStatus::kInvalidRange);
  EXPECT_EQ(r.detail, 0u);
  // An argument index that does not exist is the plugin's bug, not the client's.
  r = run_one(c, "faults.bad_index", {});
  EXPECT_EQ(r.status, TaskStatus::kKernelError);
  EXPECT_EQ(r.detail, static_cast<std::uint32_t>(BEAT_KERNEL_DETAIL_BAD_STATUS));
  // One function, two kernels: each call gets its kernel's data.
  EXPECT_EQ(run_one(c, "faults.data_a", {}).result, 1u);
  EXPECT_EQ(run_one(c, "faults.data_b", {}).result, 2u);
  EXPECT_TRUE(d->wait_for_log("kernel 'faults.throw' threw: faults.throw was asked to throw"))
      << d->log();

  // Forks through the ABI: sum of 0..n-1 over many chunks.
  const std::uint64_t n = 1'000'000;
  r = run_one(c, "faults.fork_sum", {n, 1000});
  EXPECT_EQ(r.status, TaskStatus::kOk);
  EXPECT_EQ(r.result, n * (n - 1) / 2);

  // Both workers survived: a burst of throwing tasks, then noops, all
  // complete exactly once.
  const auto thrower = c.kernel_id("faults.throw");
  const auto noop = c.kernel_id("noop");
  ASSERT_TRUE(thrower && noop);
  std::vector<TaskDescriptor> tasks;
  for (std::uint64_t t = 0; t < 200; ++t) tasks.push_back(make_task(*thrower, t));
  for (std::uint64_t t = 200; t < 400; ++t) tasks.push_back(make_task(*noop, t, {t}));
  const std::vector<Completion> out = test::run_all(c, tasks);
  ASSERT_EQ(out.size(), 400u);
  std::vector<int> seen(400, 0);
  for (const Completion& x : out) {
    ASSERT_LT(x.tag, 400u);
    ++seen[x.tag];
    if (x.tag < 200) {
      EXPECT_EQ(x.status, TaskStatus::kKernelError);
    } else {
      EXPECT_EQ(x.status, TaskStatus::kOk);
      EXPECT_EQ(x.result, x.tag);
    }
  }
  for (int s : seen) EXPECT_EQ(s, 1);
  // The exception log is rate-limited: far fewer lines than exceptions.
  EXPECT_LT(d->log_lines("kernel 'faults.throw' threw").size(), 20u);
  EXPECT_TRUE(d->alive());

  // Discovery: beatctl kernels --json names the plugin file as the origin.
  std::string listing;
  ASSERT_EQ(
      test::run_program({BEAT_BEATCTL_PATH, "--socket", d->socket_path(), "kernels", "--json"},
                        listing, std::chrono::seconds(10)),
      0)
      << listing;
  const auto count_id = c.kernel_id("example.count_byte");
  ASSERT_TRUE(count_id);
  EXPECT_NE(listing.find("{\"name\":\"example.count_byte\",\"id\":" + std::to_string(*count_id) +
                         ",\"origin\":\"" + example +
                         "\",\"description\":\"count of bytes equal to args[0] in the data "
                         "range\"}"),
            std::string::npos)
      << listing;
  EXPECT_NE(listing.find("{\"name\":\"noop\",\"id\":0,\"origin\":\"built-in\""), std::string::npos)
      << listing;
  EXPECT_EQ(d->signal_and_wait(SIGTERM, std::chrono::seconds(20)), 0);
}

TEST(Plugins, EachRefusalIsOneLogLineAndTheDaemonGoesOn) {
  test::ScopedWatchdog watchdog("Plugins.Refusals", 120);
  PluginDir dir;
  // Loaded in name order: the valid example last, after every bad one.
  const std::string wrong_abi = dir.add(BEAT_TEST_WRONG_ABI_PLUGIN, "a_wrong_abi.so");
  const std::string missing = dir.add(BEAT_TEST_MISSING_INIT_PLUGIN, "b_missing_init.so");
  const std::string duplicate = dir.add(BEAT_TEST_DUPLICATE_PLUGIN, "c_duplicate.so");
  const std::string failing = dir.add(BEAT_TEST_FAILING_INIT_PLUGIN, "d_failing_init.so");
  const std::string writable = dir.add(BEAT_TEST_LATE_PLUGIN, "e_group_writable.so", 0775);
  const std::string bad_name = dir.add(BEAT_TEST_BAD_NAME_PLUGIN, "f_bad_name.so");
  const std::string no_kernels = dir.add(BEAT_TEST_NO_KERNELS_PLUGIN, "g_no_kernels.so");
  const std::string bad_flags = dir.add(BEAT_TEST_BAD_FLAGS_PLUGIN, "h_bad_flags.so");
  const std::string example = dir.add(BEAT_EXAMPLE_PLUGIN, "z_example.so");
  dir.add(BEAT_EXAMPLE_PLUGIN, "not_a_plugin.txt");  // not *.so: never looked at
  // A second directory that anyone may write to (no sticky bit).
  const std::string open_dir = dir.path() + "/open";
  ASSERT_EQ(::mkdir(open_dir.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(open_dir.c_str(), 0777), 0);
  const std::string in_open = open_dir + "/libbeat_example_plugin.so";
  std::filesystem::copy_file(BEAT_EXAMPLE_PLUGIN, in_open);
  ASSERT_EQ(::chmod(in_open.c_str(), 0755), 0);
  // The duplicate plugin's beat_plugin_fini marks that it ran.
  const std::string fini_marker = dir.path() + "/fini-ran";
  ::setenv("BEAT_TEST_FINI_MARKER", fini_marker.c_str(), 1);
  auto d =
      DaemonProcess::start({.workers = 2,
                            .metrics_address = "",
                            .extra_args = {"--plugin-dir", dir.path(), "--plugin-dir", open_dir},
                            .cpus = {},
                            .config_path = ""});
  ::unsetenv("BEAT_TEST_FINI_MARKER");
  ASSERT_TRUE(d);
  const auto refused = [&](const std::string& path) {
    return d->log_lines("plugin " + path + ": refused: ");
  };
  const auto expect_one = [&](const std::string& path, const std::string& reason) {
    const auto lines = refused(path);
    ASSERT_EQ(lines.size(), 1u) << d->log();
    EXPECT_NE(lines[0].find(reason), std::string::npos) << lines[0];
  };
  expect_one(wrong_abi, "ABI version 2, but this beatd speaks 1 to 1");
  expect_one(missing, "missing symbol beat_plugin_init");
  expect_one(duplicate, "kernel 'checksum' is already registered by built-in");
  expect_one(failing, "beat_plugin_init returned 7: license file /nonexistent missing");
  expect_one(writable, "the file is writable by group or others (mode 0775)");
  expect_one(bad_name, "kernel name 'bad name' may only use letters, digits, '_', '.', '-'");
  expect_one(no_kernels, "beat_plugin_init registered no kernels");
  expect_one(bad_flags, "add_kernel 'bad_flags.answer' has unknown flags 128");
  expect_one(in_open, "directory " + open_dir + " is writable by group or others (mode 0777)");
  EXPECT_EQ(d->log_lines(": refused: ").size(), 9u) << d->log();
  EXPECT_TRUE(std::filesystem::exists(fini_marker)) << "beat_plugin_fini did not run";
  EXPECT_EQ(d->log_lines("plugin " + example + ": loaded 2 kernels").size(), 1u) << d->log();
  EXPECT_EQ(d->log_lines("not_a_plugin").size(), 0u) << d->log();

  auto client = Client::connect({.socket_path = d->socket_path(), .name = "refusals"});
  ASSERT_TRUE(client) << client.status().message();
  Client& c = **client;
  auto kernels = c.kernels();
  ASSERT_TRUE(kernels);
  for (const KernelListing& k : *kernels) {
    // Nothing of a refused plugin was registered, not even its valid kernels.
    EXPECT_NE(k.name, "wrong_abi.answer");
    EXPECT_NE(k.name, "duplicate.fine");
    EXPECT_NE(k.name, "late.answer");
    EXPECT_NE(k.name, "bad_flags.answer");
    if (k.name == "checksum") {
      EXPECT_EQ(k.origin, "built-in");
    }
    if (k.name.starts_with("example.")) {
      EXPECT_EQ(k.origin, example);
    }
  }
  // The daemon runs tasks as usual.
  auto block = c.allocate(3);
  ASSERT_TRUE(block);
  std::memcpy(block->data, "\x07\x01\x07", 3);
  const Completion r = run_one(c, "example.count_byte", {7}, *block);
  EXPECT_EQ(r.status, TaskStatus::kOk);
  EXPECT_EQ(r.result, 2u);
  EXPECT_EQ(d->signal_and_wait(SIGTERM, std::chrono::seconds(20)), 0);
}

TEST(Plugins, SighupLoadsNewPluginsWithoutDisturbingRunningTasks) {
  test::ScopedWatchdog watchdog("Plugins.Sighup", 120);
  PluginDir dir;
  const std::string example = dir.add(BEAT_EXAMPLE_PLUGIN, "example.so");
  // Refused at first (group-writable), accepted once fixed.
  const std::string late = dir.add(BEAT_TEST_LATE_PLUGIN, "late.so", 0775);
  // The operator's workflow: the config file names no directory at start;
  // it is edited to name one, and SIGHUP picks it up.
  test::EditedConfig config({{"directories = []", "directories = []"}});
  auto d = config.start_daemon();
  ASSERT_TRUE(d);
  auto client = Client::connect({.socket_path = d->socket_path(), .name = "sighup"});
  ASSERT_TRUE(client) << client.status().message();
  Client& c = **client;
  ASSERT_TRUE(c.kernel_id("noop"));  // caches the table: no plugin kernels in it

  // Long tasks in flight across every reload below: 2 x 2 s of spinning.
  const auto spin = c.kernel_id("spin");
  ASSERT_TRUE(spin);
  constexpr std::uint64_t kSpinNs = 2'000'000'000;
  ASSERT_TRUE(c.submit(
      std::vector<TaskDescriptor>{make_task(*spin, 1, {kSpinNs}), make_task(*spin, 2, {kSpinNs})}));

  { std::ofstream(config.path()) << "[plugins]\ndirectories = [\"" << dir.path() << "\"]\n"; }
  ASSERT_EQ(::kill(d->pid(), SIGHUP), 0);
  ASSERT_TRUE(d->wait_for_log("plugin " + example + ": loaded 2 kernels")) << d->log();
  EXPECT_TRUE(d->wait_for_log("SIGHUP: plugins.directories [] -> [\"" + dir.path() + "\"]"))
      << d->log();
  ASSERT_TRUE(d->wait_for_log("plugin " + late + ": refused: the file is writable")) << d->log();

  // Fixed, and the example replaced (by rename, as the docs ask): the next
  // SIGHUP loads the late plugin and reports the change once.
  ASSERT_EQ(::chmod(late.c_str(), 0755), 0);
  const std::string replacement = dir.add(BEAT_TEST_FAULTS_PLUGIN, "replacement.tmp");
  ASSERT_EQ(::rename(replacement.c_str(), example.c_str()), 0);
  ASSERT_EQ(::kill(d->pid(), SIGHUP), 0);
  ASSERT_TRUE(d->wait_for_log("plugin " + late + ": loaded 1 kernel")) << d->log();
  ASSERT_TRUE(d->wait_for_log("plugin " + example + ": changed on disk")) << d->log();
  ASSERT_EQ(::kill(d->pid(), SIGHUP), 0);
  ASSERT_TRUE(d->wait_for_log("(was 22)")) << d->log();  // the third rescan finished
  EXPECT_EQ(d->log_lines("plugin " + example + ": changed on disk").size(), 1u) << d->log();
  EXPECT_EQ(d->log_lines("plugin " + example + ": loaded").size(), 1u) << d->log();
  EXPECT_EQ(d->log_lines("plugin " + late + ": loaded").size(), 1u) << d->log();

  // All of that happened while both spins ran: nothing has completed yet.
  Completion early[2];
  EXPECT_EQ(c.poll(early), 0u) << "the spins ended before the reloads did; the test proves nothing";

  // The client's cached table lacks it: kernel_id fetches the table again.
  const auto answer = c.kernel_id("late.answer");
  ASSERT_TRUE(answer) << answer.status().message();
  ASSERT_TRUE(c.submit(std::vector<TaskDescriptor>{make_task(*answer, 3, {5})}));
  // The replaced file's kernels are not those of the loaded copy.
  auto kernels = c.kernels();
  ASSERT_TRUE(kernels);
  for (const KernelListing& k : *kernels) EXPECT_FALSE(k.name.starts_with("faults.")) << k.name;

  // The spins ran to the end, undisturbed; every task completed once.
  const std::vector<Completion> out = test::reap(c, 3);
  ASSERT_EQ(out.size(), 3u);
  std::vector<int> seen(4, 0);
  for (const Completion& x : out) {
    ASSERT_TRUE(x.tag >= 1 && x.tag <= 3) << x.tag;
    ++seen[x.tag];
    EXPECT_EQ(x.status, TaskStatus::kOk) << "tag " << x.tag;
    if (x.tag == 3) {
      EXPECT_EQ(x.result, 47u);
    } else {
      EXPECT_GE(x.result, kSpinNs) << "tag " << x.tag;
    }
  }
  for (int t = 1; t <= 3; ++t) EXPECT_EQ(seen[t], 1) << "tag " << t;
  EXPECT_EQ(d->signal_and_wait(SIGTERM, std::chrono::seconds(20)), 0);
}

}  // namespace
}  // namespace beat
