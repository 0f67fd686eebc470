#!/usr/bin/env python3
"""Soak test: the exporter under steady scraping while the gateway cycles through faults.

Starts the simulated gateway (`opretail-exporter simulate`) and the exporter against it
(poll every 5 s), scrapes /metrics at a steady rate from several threads, switches the gateway
into a different fault every few seconds, and every 10 s reports scrapes, scrape failures,
latency, the exporter's RSS and the gateway errors it counted. Exits non-zero if any scrape
failed, a scrape took longer than 1 s, or the exporter died.

Not part of `cargo test`. Usage:
  scripts/soak.py [--duration 600] [--rate 50] [--fault-every 15] [--binary target/release/opretail-exporter]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

FAULTS = ["none", "http:503", "hang", "code:-500", "garbage", "none", "code:7", "truncated",
          "code:-100", "http:502", "oversized:2048", "code:16", "wrong_content_type"]


STARTED = []


def stop_all():
    for proc in STARTED:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def fail(message):
    stop_all()
    sys.exit(message)


def start(cmd, log_path):
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    STARTED.append(proc)
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            fail(f"{cmd[0]} exited early; log: {log_path}")
        with open(log_path) as f:
            for line in f:
                try:
                    addr = json.loads(line).get("fields", {}).get("addr")
                except json.JSONDecodeError:
                    continue
                if addr:
                    return proc, addr
        time.sleep(0.05)
    fail(f"{cmd[0]} did not report its address; log: {log_path}")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=600, help="seconds")
    ap.add_argument("--rate", type=float, default=50, help="scrapes per second")
    ap.add_argument("--fault-every", type=float, default=15, help="seconds between fault switches")
    ap.add_argument("--binary", default="target/release/opretail-exporter")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="opretail-soak-")
    sim, sim_addr = start([args.binary, "simulate", "--listen", "127.0.0.1:0", "--log.format", "json"],
                          os.path.join(work, "simulator.log"))
    config = os.path.join(work, "config.yaml")
    devices = "".join(f"  - mac: d47c44906f{n:02x}\n" for n in range(1, 11))
    with open(config, "w") as f:
        f.write(f"gateway:\n  url: http://{sim_addr}/m.api\n  app_key: demo\n  app_secret: demo-secret\n"
                "  timeout: 2s\n  max_retries: 2\n  retry_backoff: 100ms\n  retry_backoff_max: 1s\n"
                "  max_response_bytes: 1MiB\n"
                f"poll_interval: 5s\nshops:\n  - id: O_1001\n  - id: O_1002\ndevices:\n{devices}")
    exporter, addr = start([args.binary, "--config", config, "--web.listen-address", "127.0.0.1:0",
                            "--log.format", "json"], os.path.join(work, "exporter.log"))
    metrics_url = f"http://{addr}/metrics"

    lock = threading.Lock()
    latencies, failures, slow = [], [], 0
    stop = threading.Event()
    threads = 8
    interval = threads / args.rate

    def scraper():
        nonlocal slow
        next_at = time.monotonic()
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(metrics_url, timeout=5) as r:
                    body = r.read()
                    ok = r.status == 200 and b"opretail_exporter_build_info" in body
                took = time.monotonic() - t0
                with lock:
                    latencies.append(took)
                    if took > 1.0:
                        slow += 1
                    if not ok:
                        failures.append("bad answer")
            except Exception as e:  # noqa: BLE001 - every failure counts
                with lock:
                    failures.append(repr(e))
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    workers = [threading.Thread(target=scraper, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()

    def errors_by_code():
        try:
            body = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
        except Exception:  # noqa: BLE001
            return {}
        out = {}
        for m in re.finditer(r'^opretail_api_errors_total\{code="([^"]+)",method="[^"]+"\} (\S+)$', body, re.M):
            out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(2))
        return out

    start_time = time.monotonic()
    rss = [rss_kib(exporter.pid)]
    fault_index, next_fault, next_report = 0, start_time + args.fault_every, start_time + 10
    print(f"soak: {args.duration:.0f} s, {args.rate:.0f} scrapes/s, fault switch every {args.fault_every:.0f} s; logs in {work}")
    print(f"{'t(s)':>6} {'scrapes':>8} {'failed':>6} {'p50ms':>7} {'p99ms':>7} {'maxms':>7} {'RSS MiB':>8}  fault")
    try:
        while time.monotonic() - start_time < args.duration:
            now = time.monotonic()
            if exporter.poll() is not None:
                failures.append("exporter died")
                break
            if now >= next_fault:
                fault_index = (fault_index + 1) % len(FAULTS)
                urllib.request.urlopen(urllib.request.Request(f"http://{sim_addr}/-/fault",
                                                              data=f"fault={FAULTS[fault_index]}".encode()), timeout=5).read()
                next_fault += args.fault_every
            if now >= next_report:
                rss.append(rss_kib(exporter.pid))
                with lock:
                    window = latencies[-int(args.rate * 10):]
                    n, nf = len(latencies), len(failures)
                print(f"{now - start_time:6.0f} {n:8d} {nf:6d} {percentile(window, 50) * 1e3:7.2f} "
                      f"{percentile(window, 99) * 1e3:7.2f} {max(window, default=0) * 1e3:7.2f} {rss[-1] / 1024:8.1f}  {FAULTS[fault_index]}",
                      flush=True)
                next_report += 10
            time.sleep(0.05)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=10)
        errors = errors_by_code()
        alive = exporter.poll() is None
        exporter.terminate()
        sim.terminate()
        exporter.wait(timeout=10)
        sim.wait(timeout=10)

    elapsed = time.monotonic() - start_time
    print()
    print(f"duration {elapsed:.0f} s; scrapes {len(latencies)} ({len(latencies) / elapsed:.1f}/s); failed {len(failures)}; over 1 s {slow}")
    print(f"scrape latency ms: p50 {percentile(latencies, 50) * 1e3:.2f}, p99 {percentile(latencies, 99) * 1e3:.2f}, max {max(latencies, default=0) * 1e3:.2f}")
    print(f"exporter RSS MiB: start {rss[0] / 1024:.1f}, min {min(rss) / 1024:.1f}, max {max(rss) / 1024:.1f}, end {rss[-1] / 1024:.1f}")
    print("gateway errors counted by code: " + ", ".join(f"{k}={v:.0f}" for k, v in sorted(errors.items())))
    print(f"exporter alive at the end: {alive}; exit code after SIGTERM: {exporter.returncode}")
    if failures:
        print("first failures:", failures[:5])
    sys.exit(0 if not failures and slow == 0 and alive and exporter.returncode == 0 else 1)


if __name__ == "__main__":
    main()
