#!/usr/bin/env python3
"""Small JSON/markdown helpers for scripts/c1m.sh (standard library only).

  merge-server OUT IN...        sum the server.json of several c1m-server processes
  hold-json DIR key=value...    write DIR/hold.json (hold scenario: slab, ramp, RSS)
  section hold|churn DIR...     markdown table the compare table has no columns for
  rate FRACTION DIR...          FRACTION of the slowest closed-loop msgs/s (open-loop rate)
  headline SCENARIO_DIR...      the headline table of a whole c1m.sh run

Run folders are loadgen --out folders (summary.json) with the server's server.json
beside it. Nothing here invents a number: a missing value prints as "-".
"""

import json
import math
import os
import sys


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# server.json keys that are per process, not additive.
NOT_SUMMED = {"pid", "nofile_soft", "nofile_hard", "fixed_slots_per_loop", "wall_s",
              "cpu_us_per_recv", "syscalls_per_recv", "rss_per_peak_conn_bytes"}


def merge_server(out, paths):
    docs = [d for d in (load(p) for p in paths) if isinstance(d, dict)]
    if not docs:
        sys.exit(f"merge-server: none of {paths} is a readable server.json")
    merged = dict(docs[0])
    for key, value in docs[0].items():
        if key in NOT_SUMMED or not num(value):
            continue
        merged[key] = sum(d.get(key, 0) for d in docs if num(d.get(key, 0)))
    merged["wall_s"] = max(d.get("wall_s", 0) for d in docs)
    merged["listen"] = [a for d in docs for a in d.get("listen", [])]
    merged["pids"] = [d.get("pid") for d in docs]
    merged["processes"] = len(docs)
    merged["merged_from"] = [os.path.basename(p) for p in paths]
    merged["note"] = ("sum of %d c1m-server processes (one port each); peak_connections and "
                      "rss_* are sums of per-process values" % len(docs))
    recvs = merged.get("recvs") or 0
    cpu = (merged.get("cpu_user_s") or 0) + (merged.get("cpu_sys_s") or 0)
    merged["cpu_us_per_recv"] = cpu * 1e6 / recvs if recvs else None
    counted = merged.get("syscalls") is not None
    merged["syscalls_per_recv"] = merged["syscalls"] / recvs if recvs and counted else None
    peak = merged.get("peak_connections") or 0
    grown = (merged.get("rss_peak_bytes") or 0) - (merged.get("rss_baseline_bytes") or 0)
    merged["rss_per_peak_conn_bytes"] = grown / peak if peak else None
    if len(docs) < len(paths):
        merged["note"] += "; %d server.json missing" % (len(paths) - len(docs))
    with open(out, "w", encoding="utf-8") as f:
        json.dump(merged, f, indent=2)
        f.write("\n")


def parse_value(text):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def hold_json(run_dir, pairs):
    info = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        info[key] = parse_value(value)
    summary = load(os.path.join(run_dir, "summary.json")) or {}
    server = load(os.path.join(run_dir, "server.json")) or {}
    est = summary.get("connections_established")
    before, peak = info.get("slab_before_kb"), info.get("slab_peak_kb")
    if num(before) and num(peak) and est:
        info["meminfo_slab_per_connection_bytes"] = (peak - before) * 1024 / est
    before, peak = info.get("slabinfo_before_bytes"), info.get("slabinfo_peak_bytes")
    if num(before) and num(peak) and before > 0 and est:
        info["slabinfo_per_connection_bytes"] = (peak - before) / est
        caches = slab_breakdown(run_dir, est)
        if caches:
            info["slabinfo_per_connection_by_cache"] = caches
    # Sockets of other processes opened or closed meanwhile distort the slab numbers.
    b, pk = info.get("tcp_inuse_before"), info.get("tcp_inuse_peak")
    if num(b) and num(pk) and est:
        extra = pk - b - 2 * est
        info["other_tcp_sockets_at_peak"] = extra
        if abs(extra) > max(200, 0.1 * 2 * est):
            info["warning"] = ("TCP sockets in use rose by %d during the hold, %d more than this run's "
                               "2 x %d: other processes were busy, slab per connection is off"
                               % (pk - b, extra, est))
    # The headline number: objects in use (slabinfo) when readable, else meminfo Slab.
    info["slab_per_connection_bytes"] = info.get("slabinfo_per_connection_bytes",
                                                 info.get("meminfo_slab_per_connection_bytes"))
    info["connections_established"] = est
    info["connections_failed"] = summary.get("connections_failed")
    info["connect_errors"] = summary.get("connect_errors")
    info["ramp_s"] = summary.get("ramp_s")
    info["heartbeat_latency_us"] = summary.get("latency")
    info["server_rss_peak_bytes"] = server.get("rss_peak_bytes")
    info["server_rss_per_peak_conn_bytes"] = server.get("rss_per_peak_conn_bytes")
    info["server_peak_connections"] = server.get("peak_connections")
    with open(os.path.join(run_dir, "hold.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
        f.write("\n")


def read_slab(path):
    out = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    out[parts[0]] = out.get(parts[0], 0) + int(parts[1])
    except (OSError, ValueError):
        return None
    return out


def slab_breakdown(run_dir, est, top=8):
    """Per-connection growth of the caches that grew most, from slab-before/peak.txt."""
    before = read_slab(os.path.join(run_dir, "slab-before.txt"))
    peak = read_slab(os.path.join(run_dir, "slab-peak.txt"))
    if not before or not peak:
        return None
    grown = {k: peak.get(k, 0) - before.get(k, 0) for k in set(peak) | set(before)}
    best = sorted(grown.items(), key=lambda kv: -kv[1])[:top]
    return {k: round(v / est, 1) for k, v in best if v > 0}


def fmt(v, digits=0, suffix=""):
    if not num(v):
        return "-"
    if digits == 0:
        return f"{v:,.0f}{suffix}"
    return f"{v:,.{digits}f}{suffix}"


def fmt_us(v):
    if not num(v):
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def fmt_bytes(v):
    if not num(v):
        return "-"
    if abs(v) >= 1 << 30:
        return f"{v / (1 << 30):.2f} GiB"
    if abs(v) >= 1 << 20:
        return f"{v / (1 << 20):.1f} MiB"
    if abs(v) >= 1 << 10:
        return f"{v / (1 << 10):.2f} KiB"
    return f"{v:.0f} B"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "| " + " | ".join("---" if i == 0 else "---:" for i in range(len(header))) + " |"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


class Run:
    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(os.path.normpath(path))
        self.summary = load(os.path.join(path, "summary.json")) or {}
        self.server = load(os.path.join(path, "server.json")) or {}
        self.hold = load(os.path.join(path, "hold.json")) or {}
        self.failed = os.path.exists(os.path.join(path, "FAILED"))

    def get(self, *keys):
        v = self.summary
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return v

    @property
    def backend(self):
        return self.server.get("backend") or self.name.split("-c")[0]

    def errors(self):
        s = self.summary
        if not s:
            return None
        return ((s.get("verify_errors") or 0) + (s.get("connections_failed") or 0)
                + sum((s.get("connection_errors") or {}).values()))

    def cpu_us_per_msg(self):
        """Server user+sys CPU over its life / messages it echoed over its life (bytes in
        / message size): warm-up and connection set-up included on both sides."""
        cpu = (self.server.get("cpu_user_s") or 0) + (self.server.get("cpu_sys_s") or 0)
        size = self.get("workload", "size") or 0
        msgs = (self.server.get("bytes_in") or 0) / size if size else 0
        return cpu * 1e6 / msgs if cpu and msgs else None


def run_dirs(scenario_dir):
    out = []
    for name in sorted(os.listdir(scenario_dir)):
        p = os.path.join(scenario_dir, name)
        if os.path.isdir(p) and (os.path.exists(os.path.join(p, "summary.json"))
                                 or os.path.exists(os.path.join(p, "FAILED"))):
            out.append(p)
    order = os.path.join(scenario_dir, "runs.txt")
    if os.path.exists(order):  # c1m.sh lists its runs in the order it made them
        with open(order, encoding="utf-8") as f:
            listed = [os.path.join(scenario_dir, line.strip()) for line in f if line.strip()]
        out = [p for p in listed if p in out] + [p for p in out if p not in listed]
    return out


def section(kind, dirs):
    runs = [Run(d) for d in dirs]
    if kind == "hold":
        rows = []
        for r in runs:
            h, lat = r.hold, r.get("latency") or {}
            rows.append([r.name, fmt(r.get("workload", "connections")), fmt(r.get("connections_established")),
                         fmt(r.get("connections_failed")), fmt(r.get("ramp_s"), 1),
                         fmt_us(lat.get("p50_us")), fmt_us(lat.get("p99_us")), fmt_us(lat.get("max_us")),
                         fmt_bytes(r.server.get("rss_peak_bytes")),
                         fmt_bytes(r.server.get("rss_per_peak_conn_bytes")),
                         fmt_bytes(h.get("slabinfo_per_connection_bytes")),
                         fmt_bytes(h.get("meminfo_slab_per_connection_bytes")),
                         fmt(h.get("teardown_s"), 1), fmt(h.get("server_processes")),
                         "%+d" % h["other_tcp_sockets_at_peak"] + (" ⚠" if h.get("warning") else "")
                         if num(h.get("other_tcp_sockets_at_peak")) else "-"])
        print(table(["run", "asked", "established", "failed", "ramp s", "hb p50 µs", "hb p99 µs",
                     "hb max µs", "srv RSS peak", "srv RSS/conn", "slab/conn", "meminfo/conn",
                     "teardown s", "srv procs", "others' sockets"], rows))
        print()
        print("- slab/conn: kernel slab objects in use (/proc/slabinfo, active objects × size) at "
              "the peak of the hold minus before the server started, / established connections: "
              "both sockets of a loopback connection, and whatever else the machine allocated "
              "meanwhile. meminfo/conn: the same from Slab in /proc/meminfo (whole slab pages, "
              "freed objects still cached included: noisy on a shared machine). Per-cache "
              "breakdown in each hold.json.")
        print("- others' sockets: TCP sockets in use at the peak (/proc/net/sockstat) minus before, "
              "minus this run's 2 per connection; ⚠ when large: other processes were opening "
              "sockets and slab/conn is off.")
        print("- hb: heartbeat round trip (each connection sends one message every heartbeat "
              "interval); ramp s: first connect to last established.")
    elif kind == "churn":
        rows = []
        for r in runs:
            cl, lat = r.get("connect_latency") or {}, r.get("latency") or {}
            rows.append([r.name, fmt(r.get("workload", "connections")), fmt(r.get("connects_per_s")),
                         fmt_us(cl.get("p50_us")), fmt_us(cl.get("p99_us")), fmt_us(cl.get("p999_us")),
                         fmt_us(cl.get("max_us")), fmt_us(lat.get("p99_us")), fmt(r.errors()),
                         fmt(r.cpu_us_per_msg(), 2)])
        print(table(["run", "conns", "connects/s", "connect p50 µs", "connect p99 µs",
                     "connect p99.9 µs", "connect max µs", "exchange p99 µs", "errors",
                     "srv CPU µs/cycle"], rows))
        print()
        print("- one cycle = connect, one 64-byte exchange, close; srv CPU µs/cycle is the "
              "server's user+sys CPU over its life / messages it echoed.")
    else:
        sys.exit(f"section: unknown kind {kind}")


def rate(fraction, dirs):
    rates = [Run(d).get("throughput_msgs_per_s") for d in dirs]
    rates = [r for r in rates if num(r) and r > 0]
    if not rates:
        sys.exit(1)
    print(max(1, int(math.floor(min(rates) * fraction))))


def headline(scenario_dirs):
    lines = []
    for sdir in scenario_dirs:
        scenario = os.path.basename(os.path.normpath(sdir)).rsplit("-", 1)[-1]
        runs = [Run(d) for d in run_dirs(sdir)]
        if not runs:
            continue
        lines.append(f"### {scenario} ({os.path.basename(os.path.normpath(sdir))})")
        lines.append("")
        if scenario in ("pingpong", "latency"):
            rows = []
            for r in runs:
                lat = r.get("latency") or {}
                rows.append([r.name, fmt(r.get("workload", "connections")),
                             fmt(r.get("workload", "rate_msgs_per_s")) if scenario == "latency"
                             else fmt(r.get("throughput_msgs_per_s")),
                             fmt(r.cpu_us_per_msg(), 2), fmt_us(lat.get("p50_us")),
                             fmt_us(lat.get("p99_us")), fmt_us(lat.get("p999_us")),
                             fmt_us(lat.get("max_us")), fmt(r.errors()) + (" FAILED" if r.failed else "")])
            lines.append(table(["run", "conns", "rate msgs/s" if scenario == "latency" else "msgs/s",
                                "srv CPU µs/msg", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "errors"],
                               rows))
        elif scenario == "hold":
            rows = []
            for r in runs:
                lat = r.get("latency") or {}
                rows.append([r.name, fmt(r.get("connections_established")), fmt(r.get("connections_failed")),
                             fmt(r.get("ramp_s"), 1), fmt_us(lat.get("p99_us")),
                             fmt_bytes(r.server.get("rss_per_peak_conn_bytes")),
                             fmt_bytes(r.hold.get("slab_per_connection_bytes")),
                             fmt(r.hold.get("server_processes")) + (" FAILED" if r.failed else "")])
            lines.append(table(["run", "established", "failed", "ramp s", "hb p99 µs", "srv RSS/conn",
                                "slab/conn", "srv procs"], rows))
        elif scenario == "churn":
            rows = []
            for r in runs:
                cl = r.get("connect_latency") or {}
                rows.append([r.name, fmt(r.get("connects_per_s")), fmt_us(cl.get("p50_us")),
                             fmt_us(cl.get("p99_us")), fmt(r.cpu_us_per_msg(), 2),
                             fmt(r.errors()) + (" FAILED" if r.failed else "")])
            lines.append(table(["run", "connects/s", "connect p50 µs", "connect p99 µs",
                                "srv CPU µs/cycle", "errors"], rows))
        lines.append("")
    print("\n".join(lines).rstrip())


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "merge-server" and len(args) >= 2:
        merge_server(args[0], args[1:])
    elif cmd == "hold-json" and args:
        hold_json(args[0], args[1:])
    elif cmd == "section" and len(args) >= 2:
        section(args[0], args[1:])
    elif cmd == "rate" and len(args) >= 2:
        rate(float(args[0]), args[1:])
    elif cmd == "headline":
        headline(args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
