#!/usr/bin/env python3
"""The Python peer of `cargo bench --bench scale`: the exporter's value series served by a
straightforward prometheus_client server.

Reads the series the bench wrote (JSON: a list of families, each
{"name", "help", "labels": [label names], "samples": [[label values..., value], ...]}), builds
one prometheus_client Gauge per family with the same names, label names, label values and
values, and serves them with `start_http_server` on 127.0.0.1 (port 0 unless --port is given).
The default process, platform and GC collectors are unregistered, so the peer serves exactly
the same series as the other servers. Prints one line `addr=127.0.0.1:PORT` when serving and
runs until killed (or until stdin closes).

Usage: bench/python_peer.py SERIES.json [--port PORT]
"""

import argparse
import importlib.metadata
import json
import sys
import time

import prometheus_client
from prometheus_client import REGISTRY, Gauge


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("series")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()

    for collector in (prometheus_client.PROCESS_COLLECTOR, prometheus_client.PLATFORM_COLLECTOR,
                      prometheus_client.GC_COLLECTOR):
        REGISTRY.unregister(collector)

    started = time.monotonic()
    with open(args.series) as f:
        families = json.load(f)
    series = 0
    for fam in families:
        labels = fam["labels"]
        gauge = Gauge(fam["name"], fam["help"], labels)
        n = len(labels)
        for sample in fam["samples"]:
            if n:
                gauge.labels(*sample[:n]).set(sample[n])
            else:
                gauge.set(sample[0])
            series += 1
    httpd, _thread = prometheus_client.start_http_server(args.port, addr="127.0.0.1")
    host, port = httpd.server_address[:2]
    print(f"addr={host}:{port} series={series} build_seconds={time.monotonic() - started:.2f} "
          f"prometheus_client={importlib.metadata.version('prometheus_client')}", flush=True)
    # Serve until the bench closes our stdin or kills us.
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
