// beatctl: command-line client of beatd.
//
//   beatctl [--socket PATH] status [--json]
//   beatctl [--socket PATH] kernels [--json]
//   beatctl [--socket PATH] bench --kernel NAME --tasks N --batch B --clients C --threads T
//                                 [--spin-ns X] [--data-bytes D] [--stall-timeout-s S] [--json]
//   beatctl [--socket PATH] run KERNEL [ARG...] [--data-bytes D] [--timeout-ms M] [--json]
//
// Exit codes (scripts rely on them): 0 ok; 1 a task or verification failed;
// 2 usage or connection error, with a message on stderr naming the socket
// path or the bad argument. --json prints exactly one JSON document on stdout.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "client/beatctl_bench.hpp"
#include "client/beatctl_format.hpp"
#include "client/client.hpp"

namespace beat::ctl {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int usage_error(const std::string& what) {
  std::fprintf(stderr, "beatctl: %s\n", what.c_str());
  return kExitUsage;
}

int cmd_status(const std::string& socket_path, bool json) {
  auto control = ControlConnection::open(socket_path);
  if (!control) return usage_error(control.status().message());
  auto stats = control->stats_json();
  if (!stats) return usage_error(stats.status().message());
  if (json) {
    std::string text = stats.value();
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    std::printf("%s\n", text.c_str());
    return kExitOk;
  }
  try {
    std::fputs(render_stats(stats.value()).c_str(), stdout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "beatctl: %s\n", e.what());
    return kExitFailure;
  }
  return kExitOk;
}

int cmd_kernels(const std::string& socket_path, bool json) {
  auto control = ControlConnection::open(socket_path);
  if (!control) return usage_error(control.status().message());
  auto kernels = control->kernels();
  if (!kernels) return usage_error(kernels.status().message());
  if (json) {
    std::string out = "[";
    for (std::size_t i = 0; i < kernels->size(); ++i) {
      const KernelListing& k = (*kernels)[i];
      JsonObject o;
      o.add("name", k.name)
          .add("id", k.id)
          .add("origin", k.origin)
          .add("description", k.description);
      out += (i == 0 ? "" : ",") + o.str();
    }
    std::printf("%s]\n", out.c_str());
    return kExitOk;
  }
  std::size_t name_width = 4, origin_width = 6;
  for (const auto& k : *kernels) {
    name_width = std::max(name_width, k.name.size());
    origin_width = std::max(origin_width, k.origin.size());
  }
  std::printf("%-4s %-*s %-*s %s\n", "ID", static_cast<int>(name_width), "NAME",
              static_cast<int>(origin_width), "ORIGIN", "DESCRIPTION");
  for (const auto& k : *kernels)
    std::printf("%-4u %-*s %-*s %s\n", k.id, static_cast<int>(name_width), k.name.c_str(),
                static_cast<int>(origin_width), k.origin.c_str(), k.description.c_str());
  return kExitOk;
}

struct RunOptions {
  std::string kernel;
  std::vector<std::string> args;
  std::uint64_t data_bytes = 0;
  std::uint64_t timeout_ms = 60'000;
  bool json = false;
};

bool parse_u64(const std::string& text, std::uint64_t& out) {
  int base = 10;
  std::string_view digits = text;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits.remove_prefix(2);
  }
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out, base);
  return !digits.empty() && ec == std::errc{} && end == digits.data() + digits.size();
}

int cmd_run(const std::string& socket_path, const RunOptions& o) {
  if (o.args.size() > kInlineArgs)
    return usage_error("run takes at most " + std::to_string(kInlineArgs) + " arguments, got " +
                       std::to_string(o.args.size()));
  std::uint64_t args[kInlineArgs] = {};
  for (std::size_t i = 0; i < o.args.size(); ++i)
    if (!parse_u64(o.args[i], args[i]))
      return usage_error("argument " + std::to_string(i) + " '" + o.args[i] +
                         "' is not an unsigned 64-bit integer (decimal or 0x hex)");

  ClientOptions co;
  co.socket_path = socket_path;
  co.name = "beatctl-run";
  co.segment.sq_entries = kMinRingEntries;
  co.segment.cq_entries = kMinRingEntries;
  co.segment.arena_bytes = std::max<std::uint64_t>(align_up(o.data_bytes, kPageBytes), kPageBytes);
  auto connected = Client::connect(co);
  if (!connected) return usage_error(connected.status().message());
  Client& client = *connected.value();
  auto kernel = client.kernel_id(o.kernel);
  if (!kernel) return usage_error(kernel.status().message());

  TaskDescriptor task = make_task(kernel.value(), 1);
  std::copy(std::begin(args), std::end(args), task.args);
  if (o.data_bytes > 0) {
    auto block = client.allocate(o.data_bytes);
    if (!block) return usage_error(block.status().message());
    // Deterministic bytes: 0, 1, 2, ... so a checksum is reproducible.
    for (std::uint64_t i = 0; i < block->length; ++i) block->data[i] = static_cast<std::byte>(i);
    task.flags = kTaskFlagUsesData;
    task.data_offset = block->offset;
    task.data_length = block->length;
  }

  const auto start = std::chrono::steady_clock::now();
  if (Status s = client.submit({&task, 1}); !s) {
    std::fprintf(stderr, "beatctl: submit failed: %s\n", s.message().c_str());
    return kExitFailure;
  }
  Completion c;
  auto got = client.wait({&c, 1}, 1, std::chrono::milliseconds(o.timeout_ms));
  const auto wall = std::chrono::steady_clock::now() - start;
  if (!got || got.value() == 0) {
    std::fprintf(stderr, "beatctl: waiting for the %s task: %s\n", o.kernel.c_str(),
                 got ? "no completion" : got.status().message().c_str());
    return kExitFailure;
  }
  const double wall_us = std::chrono::duration<double, std::micro>(wall).count();
  if (o.json) {
    JsonObject j;
    j.add("kernel", o.kernel)
        .add("tag", c.tag)
        .add("status", to_string(c.status))
        .add("detail", c.detail)
        .add("result", c.result)
        .add("wall_us", wall_us);
    std::printf("%s\n", j.str().c_str());
  } else {
    std::printf("%s: status %s, detail %u, result %llu (0x%llx), %.1f us\n", o.kernel.c_str(),
                std::string(to_string(c.status)).c_str(), c.detail,
                static_cast<unsigned long long>(c.result),
                static_cast<unsigned long long>(c.result), wall_us);
  }
  return c.status == TaskStatus::kOk ? kExitOk : kExitFailure;
}

int main_impl(int argc, char** argv) {
  CLI::App app{"beatctl: inspect and exercise a running beatd"};
  app.require_subcommand(1);
  // Options a subcommand does not know fall through to the app, so
  // `beatctl kernels --socket P` works as well as `beatctl --socket P kernels`.
  app.fallthrough();
  std::string socket_path = default_socket_path();
  app.add_option("--socket", socket_path,
                 "beatd control socket ($BEAT_SOCKET or /run/beat/beatd.sock)")
      ->capture_default_str();

  bool status_json = false;
  auto* status = app.add_subcommand(
      "status", "daemon version, uptime, task totals, then a table of workers and one of clients");
  status->add_flag("--json", status_json, "print the daemon's raw STATS JSON, every field");

  bool kernels_json = false;
  auto* kernels = app.add_subcommand("kernels", "list the daemon's kernels");
  kernels->add_flag("--json", kernels_json,
                    "print a JSON array of {name, id, origin, description}");

  BenchOptions bench_options;
  auto* bench = app.add_subcommand("bench", "load-generate, time and verify tasks");
  bench->add_option("--kernel", bench_options.kernel, "kernel name")->capture_default_str();
  bench->add_option("--tasks", bench_options.tasks, "total tasks")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  bench->add_option("--batch", bench_options.batch, "tasks per submit call")
      ->capture_default_str()
      ->check(CLI::Range(1u, kMaxRingEntries));
  bench->add_option("--clients", bench_options.clients, "client processes")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  bench->add_option("--threads", bench_options.threads, "submitter threads per client")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  bench->add_option("--spin-ns", bench_options.spin_ns, "spin kernel: ns per task")
      ->capture_default_str();
  bench->add_option("--data-bytes", bench_options.data_bytes, "checksum kernel: bytes per task")
      ->capture_default_str();
  bench
      ->add_option("--stall-timeout-s", bench_options.stall_timeout_s,
                   "fail when no task completes for this long")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400u));
  bench->add_flag("--json", bench_options.json, "print one JSON line");

  RunOptions run_options;
  auto* run = app.add_subcommand("run", "run one task and print its completion");
  run->add_option("kernel", run_options.kernel, "kernel name")->required();
  run->add_option("args", run_options.args, "up to 3 integer arguments (decimal or 0x hex)");
  run->add_option("--data-bytes", run_options.data_bytes,
                  "attach an arena block of this many bytes (0, 1, 2, ... mod 256)")
      ->capture_default_str();
  run->add_option("--timeout-ms", run_options.timeout_ms, "how long to wait for the completion")
      ->capture_default_str();
  run->add_flag("--json", run_options.json, "print one JSON line");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help or the error
    return code == 0 ? kExitOk : kExitUsage;
  }

  if (status->parsed()) return cmd_status(socket_path, status_json);
  if (kernels->parsed()) return cmd_kernels(socket_path, kernels_json);
  if (bench->parsed()) {
    bench_options.socket_path = socket_path;
    return run_bench(bench_options);
  }
  if (run->parsed()) return cmd_run(socket_path, run_options);
  return usage_error("no command given (status, kernels, bench, run)");
}

}  // namespace
}  // namespace beat::ctl

int main(int argc, char** argv) {
  try {
    return beat::ctl::main_impl(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "beatctl: %s\n", e.what());
    return 2;
  }
}
