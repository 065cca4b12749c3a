#!/usr/bin/env bash
# beatd's metrics as Prometheus and Grafana see them, against the build in $1
# (<build>/daemon/beatd, <build>/client/beatctl):
#
#   0. config/prometheus.yml passes `promtool check config`; the Grafana
#      dashboard (config/grafana/beat-dashboard.json) is well-formed dashboard
#      JSON and agrees with the provisioning examples beside it;
#   1. a scrape of a loaded beatd passes `promtool check metrics`;
#   2. a real Prometheus server, running config/prometheus.yml with only the
#      target and the intervals changed, scrapes beatd while `beatctl bench`
#      runs, and its HTTP API answers a positive completion rate and a finite,
#      positive p99 task latency; every dashboard query evaluates without error;
#   3. every metric name in the dashboard's queries is in the scrape (a
#      histogram x as x_bucket, x_sum, x_count; a summary as x_sum, x_count).
#
# beatd gets a temporary socket, segment prefix and a free loopback metrics
# port; Prometheus a free loopback port and a temporary TSDB. Every check runs
# even when an earlier one failed, each failure is named, and the script exits
# 1 if any failed. Whatever it started is stopped on every exit path.
set -euo pipefail
build=$1
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
beatd="${build}/daemon/beatd"
beatctl="${build}/client/beatctl"
dashboard="${repo}/config/grafana/beat-dashboard.json"
datasources="${repo}/config/grafana/provisioning/datasources/beat.yaml"
providers="${repo}/config/grafana/provisioning/dashboards/beat.yaml"
example_config="${repo}/config/prometheus.yml"

# The workload: one `beatctl bench` after another until $dir/stop appears,
# each short enough (a fraction of a second in release, about a second under
# TSan) that stopping waits for little.
readonly kBenchArgs=(bench --kernel noop --tasks 200000 --batch 64 --clients 2 --stall-timeout-s 20)
# Prometheus scrapes every kScrapeInterval and the queries rate over
# kRateWindow, which holds several scrapes; check 2 starts asking after
# kFirstQueryAfterS seconds of workload and gives up after kQueryDeadlineS.
readonly kScrapeInterval=1s kRateWindow=10s kFirstQueryAfterS=4 kQueryDeadlineS=20

dir="$(mktemp -d "${TMPDIR:-/tmp}/beat-prom.XXXXXX")"
socket="${dir}/beatd.sock"
prefix="beatprom$$"
beatd_pid="" prometheus_pid="" workload_pid=""
failures=()

log() { echo "prometheus_test: $*"; }
# A failed check: named now, counted at the end.
failed() {
  echo "prometheus_test: FAILED: $*" >&2
  failures+=("${1%%$'\n'*}")
}
# A failure that leaves nothing else to check.
die() {
  echo "prometheus_test: FAILED: $*" >&2
  exit 1
}

# Sends SIGTERM to `pid` (a child of this shell), waits up to `seconds` and
# then SIGKILLs it; sets stopped_rc to its exit status (128 + signal when
# killed). Not for $(...): a subshell cannot wait for its parent's children.
stopped_rc=0
stop_process() {
  local pid=$1 seconds=$2
  kill -TERM "${pid}" 2>/dev/null || true
  local deadline=$((SECONDS + seconds))
  while kill -0 "${pid}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  kill -KILL "${pid}" 2>/dev/null || true
  stopped_rc=0
  wait "${pid}" 2>/dev/null || stopped_rc=$?
}

cleanup() {
  local rc=$?
  # The workload runs in its own process group (setsid below): the loop,
  # beatctl and beatctl's forked clients go together.
  if [[ -n "${workload_pid}" ]]; then
    kill -TERM -- "-${workload_pid}" 2>/dev/null || true
    wait "${workload_pid}" 2>/dev/null || true
  fi
  [[ -z "${prometheus_pid}" ]] || stop_process "${prometheus_pid}" 10
  [[ -z "${beatd_pid}" ]] || stop_process "${beatd_pid}" 20
  if [[ ${rc} -ne 0 ]]; then
    for f in beatd.log bench.log prometheus.log; do
      [[ -s "${dir}/${f}" ]] && { echo "--- ${f} (last 10 lines)"; tail -n 10 "${dir}/${f}"; }
    done >&2
  fi
  rm -rf "${dir}"
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Prints the value of the one-element vector `query` returns at Prometheus's
# now: a number, NaN or +Inf; "no data" for an empty vector; "error: ..."
# when Prometheus refused the query.
prom_value() {
  local answer
  answer="$(curl -s --max-time 5 "http://127.0.0.1:${prometheus_port}/api/v1/query" \
    --data-urlencode "query=$1")" || answer=""
  python3 -c '
import json, sys
try:
    r = json.load(sys.stdin)
except ValueError:
    print("error: no JSON answer"); sys.exit()
if r.get("status") != "success":
    print("error: " + str(r.get("error"))); sys.exit()
v = r["data"]["result"]
print(v[0]["value"][1] if v else "no data")' <<<"${answer}"
}

# Python for the dashboard checks; the first argument names the check.
#   structure DASHBOARD DATASOURCES PROVIDERS   well-formed, and consistent
#   names DASHBOARD SCRAPE                      check 3
#   queries DASHBOARD PROMETHEUS_URL            every query evaluates
# Prints one "FAILED: ..." line per problem and exits 1 if there was any.
IFS= read -r -d '' dashboard_py <<'PY' || true
import json, math, re, sys, urllib.parse, urllib.request

problems = []
def problem(text):
    problems.append(text)
    print("FAILED: " + text)

DS_VARIABLE = "${DS_PROMETHEUS}"

def queries(dashboard):
    """(where, PromQL) for every panel target and every query variable."""
    out = []
    for p in dashboard.get("panels", []):
        for t in p.get("targets", []) or []:
            out.append((f"panel {p.get('id')} \"{p.get('title')}\" {t.get('refId')}", t.get("expr", "")))
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else q or ""
            # Grafana's label_values(SELECTOR, LABEL): only SELECTOR is PromQL.
            m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", q)
            if m:
                out.append((f"variable {v.get('name')}", m.group(1)))
            elif not re.fullmatch(r"\s*label_values\(\s*\w+\s*\)\s*", q):
                out.append((f"variable {v.get('name')}", q))
    return out

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
            "and", "or", "unless", "offset", "inf", "nan"}

def metric_names(expr):
    """The metric names a PromQL expression selects (Grafana variables allowed)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', " ", expr)  # strings
    e = re.sub(r"\$\{[^}]*\}|\$\w+", " ", e)                                 # Grafana variables
    e = re.sub(r"\{[^}]*\}", " ", e)                                          # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)                                         # ranges, subqueries
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\boffset\s+-?\w+", " ", e)
    e = re.sub(r"(?<![\w:.])\d+(?:\.\d*)?(?:[eE][+-]?\d+)?", " ", e)         # numbers
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        if e[m.end():].lstrip().startswith("(") or m.group(0).lower() in KEYWORDS:
            continue  # a function, an aggregation or a keyword
        names.add(m.group(0))
    return names

def check_structure(dashboard_path, datasources_path, providers_path):
    import yaml
    with open(dashboard_path) as f:
        d = json.load(f)
    for key in ("title", "uid"):
        if not isinstance(d.get(key), str) or not d[key]:
            problem(f"dashboard has no {key}")
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
        problem(f"schemaVersion is {d.get('schemaVersion')!r}, expected an integer >= 36")
    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    ds_var = variables.get("DS_PROMETHEUS")
    if not ds_var or ds_var.get("type") != "datasource" or ds_var.get("query") != "prometheus":
        problem("no templating variable DS_PROMETHEUS of type datasource, query prometheus")
    panels = d.get("panels")
    if not isinstance(panels, list) or not panels:
        problem("dashboard has no panels")
        panels = []
    ids, boxes = set(), []
    for p in panels:
        name = f"panel {p.get('id')} \"{p.get('title')}\""
        if not isinstance(p.get("id"), int) or p["id"] in ids:
            problem(f"{name}: id missing, not an integer or not unique")
        ids.add(p.get("id"))
        if not isinstance(p.get("type"), str) or not p["type"] or not p.get("title"):
            problem(f"{name}: no type or no title")
        g = p.get("gridPos") or {}
        if not all(isinstance(g.get(k), int) for k in "xywh") or g["w"] < 1 or g["h"] < 1 \
                or g["x"] < 0 or g["y"] < 0 or g["x"] + g["w"] > 24:
            problem(f"{name}: gridPos {g} is not x, y, w, h inside 24 columns")
        else:
            for other, og in boxes:
                if g["x"] < og["x"] + og["w"] and og["x"] < g["x"] + g["w"] and \
                        g["y"] < og["y"] + og["h"] and og["y"] < g["y"] + g["h"]:
                    problem(f"{name}: gridPos {g} overlaps {other} {og}")
            boxes.append((name, g))
        if p.get("datasource") != {"type": "prometheus", "uid": DS_VARIABLE}:
            problem(f"{name}: datasource {p.get('datasource')} is not the DS_PROMETHEUS variable")
        targets = p.get("targets")
        if not isinstance(targets, list) or not targets:
            problem(f"{name}: no targets")
            continue
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs) or not all(refs):
            problem(f"{name}: refIds {refs} missing or repeated")
        for t in targets:
            if not isinstance(t.get("expr"), str) or not t["expr"].strip():
                problem(f"{name} {t.get('refId')}: no expr")
            if t.get("datasource") != {"type": "prometheus", "uid": DS_VARIABLE}:
                problem(f"{name} {t.get('refId')}: datasource {t.get('datasource')} "
                        "is not the DS_PROMETHEUS variable")
    heatmaps = [p for p in panels if p.get("type") == "heatmap" and any(
        "beat_task_latency_seconds_bucket" in t.get("expr", "") and t.get("format") == "heatmap"
        for t in p.get("targets", []))]
    if not heatmaps:
        problem("no heatmap panel with a format=heatmap target on beat_task_latency_seconds_bucket")
    exprs = [q for _, q in queries(d)]
    for q in ("0.5", "0.9", "0.99"):
        if not any(re.search(r"histogram_quantile\(\s*" + re.escape(q) +
                             r"\s*,.*beat_task_latency_seconds_bucket", e) for e in exprs):
            problem(f"no histogram_quantile({q}, ...) of beat_task_latency_seconds_bucket")

    with open(datasources_path) as f:
        ds = yaml.safe_load(f)
    prometheus = [s for s in ds.get("datasources", []) if s.get("type") == "prometheus"]
    if ds.get("apiVersion") != 1 or not prometheus:
        problem(f"{datasources_path}: no apiVersion 1 with a datasource of type prometheus")
    else:
        uid = (ds_var or {}).get("current", {}).get("value")
        if uid not in [s.get("uid") for s in prometheus]:
            problem(f"DS_PROMETHEUS starts on uid {uid!r}, which {datasources_path} does not provision")
        if not all(s.get("url") and s.get("jsonData", {}).get("timeInterval") for s in prometheus):
            problem(f"{datasources_path}: a Prometheus datasource without url or jsonData.timeInterval")
    with open(providers_path) as f:
        pr = yaml.safe_load(f)
    files = [p for p in pr.get("providers", []) if p.get("type") == "file"]
    if pr.get("apiVersion") != 1 or not files or not all(p.get("options", {}).get("path") for p in files):
        problem(f"{providers_path}: no apiVersion 1 with a file provider naming options.path")
    print(f"dashboard: {len(panels)} panels, {len(exprs)} queries")

def check_names(dashboard_path, scrape_path):
    with open(dashboard_path) as f:
        d = json.load(f)
    samples, types = set(), {}
    with open(scrape_path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("# TYPE "):
                fields = line.split()
                if len(fields) >= 4:
                    types[fields[2]] = fields[3]
            elif line and not line.startswith("#"):
                samples.add(re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0))
    # What a query may select: every sample name, and every name a declared
    # family exposes even while it has no samples yet.
    present = set(samples)
    for name, kind in types.items():
        if kind == "histogram":
            present |= {name + "_bucket", name + "_sum", name + "_count"}
        elif kind == "summary":
            present |= {name + "_sum", name + "_count"}
        else:
            present.add(name)
            if kind == "counter" and not name.endswith("_total"):
                present.add(name + "_total")  # OpenMetrics-style family name
    used = {}
    for where, q in queries(d):
        for n in metric_names(q):
            used.setdefault(n, []).append(where)
    missing = sorted(set(used) - present)
    for n in missing:
        hint = ""
        if types.get(n) == "histogram":
            hint = f" ({n} is a histogram: query {n}_bucket, {n}_sum or {n}_count)"
        print(f"  missing {n}{hint}, used by: {'; '.join(used[n])}")
    if missing:
        problem(f"{len(missing)} of the dashboard's {len(used)} metric names are not in the scrape: "
                + " ".join(missing))
    else:
        print(f"names: all {len(used)} metric names of the dashboard are in the scrape")

def check_queries(dashboard_path, url):
    with open(dashboard_path) as f:
        d = json.load(f)
    empty = []
    for where, q in queries(d):
        promql = q.replace("$__rate_interval", "10s").replace("$__interval", "2s")
        promql = re.sub(r"\$\{instance\}|\$instance", ".*", promql)
        try:
            with urllib.request.urlopen(url + "/api/v1/query?" +
                                        urllib.parse.urlencode({"query": promql}), timeout=5) as r:
                answer = json.load(r)
        except urllib.error.HTTPError as e:
            answer = json.load(e)
        if answer.get("status") != "success":
            problem(f"Prometheus refused {where}: {promql}: {answer.get('error')}")
        elif not answer["data"]["result"]:
            empty.append(where)
    print(f"queries: {len(queries(d))} evaluated, {len(empty)} with no data yet"
          + (": " + "; ".join(empty) if empty else ""))

{"structure": check_structure, "names": check_names, "queries": check_queries}[sys.argv[1]](*sys.argv[2:])
sys.exit(1 if problems else 0)
PY

[[ -x "${beatd}" && -x "${beatctl}" ]] || die "no ${beatd} or ${beatctl}"
for tool in prometheus promtool curl python3; do
  command -v "${tool}" >/dev/null || die "${tool} is not installed (scripts/install-deps.sh)"
done

# --- 0. The configuration examples.
if ! out="$(promtool check config "${example_config}" 2>&1)"; then
  failed "promtool check config ${example_config}: ${out}"
fi
if ! python3 -c "${dashboard_py}" structure "${dashboard}" "${datasources}" "${providers}"; then
  failed "dashboard structure (${dashboard})"
fi

# --- beatd, with its metrics on a port of its choosing (logged at start).
"${beatd}" --config "${repo}/config/beatd.toml" --socket "${socket}" --segment-prefix "${prefix}" \
  --workers 2 --metrics-address 127.0.0.1:0 >"${dir}/beatd.log" 2>&1 &
beatd_pid=$!
deadline=$((SECONDS + 20))
until [[ -S "${socket}" ]] && grep -q "listening on" "${dir}/beatd.log"; do
  kill -0 "${beatd_pid}" 2>/dev/null || die "beatd exited before listening: $(cat "${dir}/beatd.log")"
  ((SECONDS < deadline)) || die "beatd did not listen on ${socket} within 20 s"
  sleep 0.05
done
metrics_port="$(sed -nE 's|.*metrics on http://127\.0\.0\.1:([0-9]+)/metrics.*|\1|p' "${dir}/beatd.log" | head -n 1)"
[[ -n "${metrics_port}" ]] || die "beatd logged no metrics endpoint: $(cat "${dir}/beatd.log")"
log "beatd ${beatd_pid} on ${socket}, metrics on 127.0.0.1:${metrics_port}"

# --- Prometheus: the example configuration, pointed at this beatd and
# scraping every second. A port another process takes between free_port and
# Prometheus's bind makes it exit; try another.
sed -e "s|127\.0\.0\.1:9464|127.0.0.1:${metrics_port}|" \
    -e "s|^\(  *\)scrape_interval: .*|\1scrape_interval: ${kScrapeInterval}|" \
    -e "s|^\(  *\)evaluation_interval: .*|\1evaluation_interval: ${kScrapeInterval}|" \
    "${example_config}" >"${dir}/prometheus.yml"
grep -q "127.0.0.1:${metrics_port}" "${dir}/prometheus.yml" && grep -q "scrape_interval: ${kScrapeInterval}" "${dir}/prometheus.yml" \
  || die "${example_config} no longer has a target 127.0.0.1:9464 and a scrape_interval to replace"
for attempt in 1 2 3; do
  prometheus_port="$(free_port)"
  prometheus --config.file="${dir}/prometheus.yml" --storage.tsdb.path="${dir}/tsdb" \
    --web.listen-address="127.0.0.1:${prometheus_port}" --log.level=warn >"${dir}/prometheus.log" 2>&1 &
  prometheus_pid=$!
  deadline=$((SECONDS + 20))
  until curl -sf --max-time 2 "http://127.0.0.1:${prometheus_port}/-/ready" >/dev/null; do
    kill -0 "${prometheus_pid}" 2>/dev/null || break
    ((SECONDS < deadline)) || die "Prometheus was not ready on 127.0.0.1:${prometheus_port} within 20 s"
    sleep 0.1
  done
  kill -0 "${prometheus_pid}" 2>/dev/null && break
  wait "${prometheus_pid}" || true
  prometheus_pid=""
  ((attempt < 3)) || die "Prometheus did not start: $(tail -n 5 "${dir}/prometheus.log")"
done
log "Prometheus ${prometheus_pid} on 127.0.0.1:${prometheus_port}"

# --- The workload, in its own process group so that cleanup can end it whole.
setsid bash -c '
  dir=$1 beatctl=$2 socket=$3
  shift 3
  while [[ ! -e "${dir}/stop" ]]; do
    "${beatctl}" --socket "${socket}" "$@" >>"${dir}/bench.log" 2>&1 \
      || { echo "beatctl bench exited $?" >>"${dir}/bench.log"; exit 1; }
  done' workload "${dir}" "${beatctl}" "${socket}" "${kBenchArgs[@]}" &
workload_pid=$!
workload_started=${SECONDS}

# --- 1. A scrape while clients are connected, checked by promtool.
deadline=$((SECONDS + 15))
until curl -sf --max-time 5 "http://127.0.0.1:${metrics_port}/metrics" -o "${dir}/scrape.txt" &&
      awk '$1 == "beat_connected_clients" && $2 > 0 { found = 1 } END { exit !found }' "${dir}/scrape.txt"; do
  kill -0 "${workload_pid}" 2>/dev/null || die "the workload stopped: $(tail -n 5 "${dir}/bench.log")"
  ((SECONDS < deadline)) || die "no scrape showed a connected client within 15 s"
  sleep 0.2
done
if out="$(promtool check metrics <"${dir}/scrape.txt" 2>&1)"; then
  log "check 1: promtool check metrics: OK ($(grep -c '^[^#]' "${dir}/scrape.txt") samples)"
else
  sed 's/^/  /' <<<"${out}" >&2
  failed "check 1: promtool check metrics rejected the scrape of the loaded daemon ($(wc -l <<<"${out}") problems, above)"
fi

# --- 2. Prometheus's view of the workload. The rate needs two scrapes with
# work between them inside the window, and Prometheus scrapes a new target
# only some seconds after it starts: ask until both answers are good.
completion_rate="sum(rate(beat_tasks_completed_total[${kRateWindow}]))"
latency_p99="histogram_quantile(0.99, sum by (le) (rate(beat_task_latency_seconds_bucket[${kRateWindow}])))"
positive() { python3 -c 'import math, sys; v = float(sys.argv[1]); sys.exit(not (math.isfinite(v) and v > 0))' "$1" 2>/dev/null; }
sleep $((kFirstQueryAfterS - (SECONDS - workload_started) > 0 ? kFirstQueryAfterS - (SECONDS - workload_started) : 0))
deadline=$((workload_started + kQueryDeadlineS))
while :; do
  rate_value="$(prom_value "${completion_rate}")"
  p99_value="$(prom_value "${latency_p99}")"
  positive "${rate_value}" && positive "${p99_value}" && break
  ((SECONDS < deadline)) || break
  sleep 1
done
if positive "${rate_value}"; then
  log "check 2: ${completion_rate} = ${rate_value}"
else
  failed "check 2: ${completion_rate} = ${rate_value}, expected a positive number"
fi
if positive "${p99_value}"; then
  log "check 2: ${latency_p99} = ${p99_value}"
else
  failed "check 2: ${latency_p99} = ${p99_value}, expected a finite positive number"
fi
if ! positive "${rate_value}" || ! positive "${p99_value}"; then
  curl -s --max-time 5 "http://127.0.0.1:${prometheus_port}/api/v1/targets" | python3 -c '
import json, sys
for t in json.load(sys.stdin)["data"]["activeTargets"]:
    print("  target %s: health %s, last error %r" % (t["scrapeUrl"], t["health"], t["lastError"]))' >&2 || true
fi
if ! python3 -c "${dashboard_py}" queries "${dashboard}" "http://127.0.0.1:${prometheus_port}"; then
  failed "check 2: Prometheus refused some of the dashboard's queries"
fi

# --- 3. The dashboard's metric names against the scrape.
if ! python3 -c "${dashboard_py}" names "${dashboard}" "${dir}/scrape.txt"; then
  failed "check 3: the dashboard queries metrics beatd does not export"
fi

# --- Stop: the workload finishes its current run, then Prometheus and beatd
# get SIGTERM; beatd must exit 0 and remove its socket.
touch "${dir}/stop"
deadline=$((SECONDS + 30))
while kill -0 "${workload_pid}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
kill -0 "${workload_pid}" 2>/dev/null && die "the workload did not stop within 30 s"
workload_rc=0
wait "${workload_pid}" || workload_rc=$?
workload_pid=""
runs="$(grep -c "verified" "${dir}/bench.log" || true)"
if [[ ${workload_rc} -ne 0 || ${runs} -eq 0 ]]; then
  failed "workload: exit ${workload_rc} after ${runs} verified runs: $(tail -n 5 "${dir}/bench.log")"
else
  log "workload: ${runs} verified beatctl bench runs in $((SECONDS - workload_started)) s"
fi
stop_process "${prometheus_pid}" 10
prometheus_pid=""
[[ ${stopped_rc} -eq 0 ]] || failed "Prometheus exited ${stopped_rc} on SIGTERM: $(tail -n 5 "${dir}/prometheus.log")"
stop_process "${beatd_pid}" 20
beatd_pid=""
if [[ ${stopped_rc} -eq 66 ]]; then
  failed "beatd exited 66 on SIGTERM: a ThreadSanitizer report (beatd.log)"
elif [[ ${stopped_rc} -ne 0 ]]; then
  failed "beatd exited ${stopped_rc} on SIGTERM"
fi
[[ ! -e "${socket}" ]] || failed "beatd left its socket ${socket} behind"

if [[ ${#failures[@]} -ne 0 ]]; then
  echo "prometheus_test: ${#failures[@]} check(s) failed:" >&2
  printf '  %s\n' "${failures[@]}" >&2
  exit 1
fi
log "all checks passed"
