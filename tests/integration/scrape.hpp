// Scraping a real beatd's Prometheus endpoint from the integration tests.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <sstream>
#include <string>

namespace beat::test {

// GET `path` from 127.0.0.1:`port` over HTTP/1.0; the whole response
// (status line, headers, body), or "" when nothing accepts there.
inline std::string http_get(int port, const std::string& path = "/metrics") {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return {};
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  (void)!::write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

// The port of a STATS reply's "metrics_endpoint":"127.0.0.1:PORT", or -1.
inline int metrics_port(const std::string& stats_json) {
  static constexpr const char* kKey = "\"metrics_endpoint\":\"127.0.0.1:";
  const auto at = stats_json.find(kKey);
  if (at == std::string::npos) return -1;
  return std::stoi(stats_json.substr(at + std::strlen(kKey)));
}

// Sample lines of a Prometheus text exposition: "name{labels}" -> value,
// exactly as the exposer wrote the series (labels in its order).
inline std::map<std::string, double> parse_samples(const std::string& response) {
  std::map<std::string, double> out;
  std::istringstream lines(response);
  std::string line;
  bool body = false;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!body) {
      body = line.empty();  // the blank line after the headers
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

// Sum of every series of `family` (name followed by '{' or nothing).
inline double sum_family(const std::map<std::string, double>& samples, const std::string& family) {
  double total = 0;
  for (const auto& [series, value] : samples)
    if (series == family || series.rfind(family + "{", 0) == 0) total += value;
  return total;
}

}  // namespace beat::test
