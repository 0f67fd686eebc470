#!/usr/bin/env python3
"""Checks the alert rules against their conventions, the runbook, the dashboards, the tests and
the example Alertmanager configuration (needs PyYAML):

- every alert has `team` (store-ops or sre) and `severity` (critical, warning or info) labels and
  summary, description, runbook_url and dashboard annotations;
- its runbook_url is RUNBOOK_BASE#<anchor> and the anchor is a heading of docs/runbook.md, and
  every alert section of the runbook names an alert that exists;
- its dashboard annotation names the uid of a dashboard in dashboards/*.json;
- alerts/tests/*.yml expect it firing at least once and not firing at least once;
- accounts stay apart: every `by (...)` / `on(...)` list of the rules that names `job` names
  `account` too (but for joins with the scrape's process-wide series, up and process_*), and every
  inhibit rule's `equal` list names `account`;
- every alert name in deploy/alertmanager/alertmanager.yml's inhibit rules exists, and applying
  those inhibit rules to the alerts the promtool tests expect during a gateway outage and a chain
  drop leaves one notification, and with two accounts, one for the failing account while the other
  account's alerts stay (promtool cannot run Alertmanager's inhibition itself).

Usage: scripts/check-alerts.py (from anywhere; exit 1 on any problem).
"""
import glob
import json
import os
import re
import sys

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
RUNBOOK_BASE = "https://github.com/opretail/opretail-exporter/blob/main/docs/runbook.md"
TEAMS = {"store-ops", "sre"}
SEVERITIES = {"critical", "warning", "info"}
# promtool test name -> eval_time -> the alerts Alertmanager must still notify after inhibition.
INHIBITION_CASES = {
    "gateway outage: one page, not N": {
        "100m": [("OpretailGatewayDown", {})],
        "180m": [("OpretailGatewayDown", {})],
    },
    "chain and region drop: one alert, the per-shop drops held back": {
        "2h20m": [("OpretailChainTrafficDrop", {"scope": "chain"})],
    },
    "two accounts: brand-a's gateway down pages once, brand-b keeps its alerts": {
        "100m": [("OpretailGatewayDown", {"account": "brand-a"}),
                 ("OpretailTargetDown", {"account": "brand-b", "target": "S_9701"}),
                 ("OpretailDataStale", {"account": "brand-b", "target": "S_9701"}),
                 ("OpretailShopNoWalkIns", {"account": "brand-b", "shop_id": "9601"})],
    },
    "two accounts: brand-a's key refused, brand-b's token renewals do not page": {
        "40m": [("OpretailGatewayAuthFailure", {"account": "brand-a"})],
    },
    "two accounts: brand-a's chain drop holds back its own shop drops only": {
        "2h20m": [("OpretailChainTrafficDrop", {"account": "brand-a", "scope": "chain"}),
                  ("OpretailTrafficDrop", {"account": "brand-b", "shop_id": "9801"})],
    },
}
# Series of the scrape or the process, without an `account` label: joins with them match on
# (instance, job) alone.
PROCESS_WIDE = re.compile(r"\s*\(?\s*(up|process_[a-z_]+)\b")

problems = []


def problem(msg):
    problems.append(msg)
    print("FAIL " + msg)


def load(path):
    with open(os.path.join(ROOT, path)) as f:
        return yaml.safe_load(f)


def slug(heading):
    """GitHub's anchor for a Markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def parse_matcher(m):
    g = re.fullmatch(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"(.*)"\s*', m)
    if not g:
        raise ValueError(f"cannot read matcher {m!r}")
    name, op, value = g.groups()
    return name, op, value


def matches(matchers, labels):
    for name, op, value in matchers:
        v = labels.get(name, "")
        if op == "=" and v != value:
            return False
        if op == "!=" and v == value:
            return False
        if op == "=~" and not re.fullmatch(value, v):
            return False
        if op == "!~" and re.fullmatch(value, v):
            return False
    return True


def inhibited(alert, alerts, rules):
    """Alertmanager's inhibition: a firing source alert, the target matchers, equal labels; an
    alert matching both sides is not inhibited by one that matches both too."""
    for src_m, tgt_m, equal in rules:
        if not matches(tgt_m, alert):
            continue
        for other in alerts:
            if other is alert or not matches(src_m, other):
                continue
            if matches(src_m, alert) and matches(tgt_m, other):
                continue
            if all(alert.get(e, "") == other.get(e, "") for e in equal):
                return True
    return False


def main():
    rules = [r for f in sorted(glob.glob(os.path.join(ROOT, "alerts", "*.rules.yml")))
             for g in load(os.path.relpath(f, ROOT))["groups"] for r in g["rules"]]
    alerts = {r["alert"]: r for r in rules if "alert" in r}
    print(f"{len(alerts)} alerts in alerts/*.rules.yml")

    with open(os.path.join(ROOT, "docs", "runbook.md")) as f:
        headings = [m.group(2) for m in re.finditer(r"^(#{1,6})\s+(.+?)\s*$", f.read(), re.M)]
    anchors = {slug(h) for h in headings}
    uids = {json.load(open(f))["uid"] for f in glob.glob(os.path.join(ROOT, "dashboards", "*.json"))}

    for name, r in alerts.items():
        labels, ann = r.get("labels", {}), r.get("annotations", {})
        if labels.get("team") not in TEAMS:
            problem(f"{name}: label team={labels.get('team')!r}, not one of {sorted(TEAMS)}")
        if labels.get("severity") not in SEVERITIES:
            problem(f"{name}: label severity={labels.get('severity')!r}, not one of {sorted(SEVERITIES)}")
        for a in ("summary", "description", "runbook_url", "dashboard"):
            if not ann.get(a):
                problem(f"{name}: no {a} annotation")
        url = ann.get("runbook_url", "")
        base, _, anchor = url.partition("#")
        if base != RUNBOOK_BASE:
            problem(f"{name}: runbook_url {url!r} is not {RUNBOOK_BASE}#<anchor>")
        elif anchor != slug(name) or anchor not in anchors:
            problem(f"{name}: runbook_url anchor #{anchor} is not the heading '{name}' of docs/runbook.md")
        m = re.search(r"/d/([^/?#]+)", ann.get("dashboard", ""))
        if not m or m.group(1) not in uids:
            problem(f"{name}: dashboard {ann.get('dashboard')!r} names no dashboard uid of dashboards/*.json {sorted(uids)}")
    for h in headings:
        if h.startswith("Opretail") and h not in alerts:
            problem(f"docs/runbook.md has a section '{h}' for an alert that does not exist")
    print(f"labels, annotations, runbook anchors ({len(anchors)} headings) and dashboard uids checked")

    lists = 0
    for r in rules:
        name = r.get("alert") or r.get("record")
        for m in re.finditer(r"\b(by|on)\s*\(([^)]*)\)", r.get("expr", "")):
            names = [x.strip() for x in m.group(2).split(",")]
            if "job" not in names:
                continue
            lists += 1
            if "account" not in names and not PROCESS_WIDE.match(r["expr"], m.end()):
                problem(f"{name}: `{m.group(0)}` names job but not account: the accounts of an exporter would mix")
    print(f"accounts: {lists} by/on lists naming job checked for account")

    fires, silent = set(), set()
    tests = {}
    for f in sorted(glob.glob(os.path.join(ROOT, "alerts", "tests", "*.yml"))):
        for t in load(os.path.relpath(f, ROOT)).get("tests", []):
            tests[t.get("name")] = t
            for a in t.get("alert_rule_test", []) or []:
                (fires if a.get("exp_alerts") else silent).add(a["alertname"])
    for name in alerts:
        if name not in fires:
            problem(f"{name}: no test in alerts/tests expects it to fire")
        if name not in silent:
            problem(f"{name}: no test in alerts/tests expects it to stay silent")
    print(f"tests: {len(fires & set(alerts))} alerts tested firing, {len(silent & set(alerts))} not firing")

    am = load("deploy/alertmanager/alertmanager.yml")
    inhibit = []
    for i, r in enumerate(am.get("inhibit_rules", [])):
        try:
            src = [parse_matcher(m) for m in r.get("source_matchers", [])]
            tgt = [parse_matcher(m) for m in r.get("target_matchers", [])]
        except ValueError as e:
            problem(f"alertmanager.yml inhibit_rules[{i}]: {e}")
            continue
        for name, op, value in src + tgt:
            if name != "alertname":
                continue
            names = value.split("|") if op in ("=~", "!~") else [value]
            for n in names:
                if n not in alerts:
                    problem(f"alertmanager.yml inhibit_rules[{i}] names {n}, which is no alert")
        if "account" not in r.get("equal", []):
            problem(f"alertmanager.yml inhibit_rules[{i}]: equal {r.get('equal', [])} lacks account: "
                    "one account's alert would hold back another's")
        inhibit.append((src, tgt, r.get("equal", [])))
    print(f"{len(inhibit)} inhibit rules read")

    for test_name, evals in INHIBITION_CASES.items():
        t = tests.get(test_name)
        if t is None:
            problem(f"no promtool test named {test_name!r}")
            continue
        for at, want in evals.items():
            firing = []
            for a in t.get("alert_rule_test", []):
                if str(a.get("eval_time")) == at:
                    for e in a.get("exp_alerts") or []:
                        firing.append(dict(e.get("exp_labels", {}), alertname=a["alertname"]))
            left = [a for a in firing if not inhibited(a, firing, inhibit)]
            ok = len(left) == len(want) and all(
                any(a["alertname"] == n and all(a.get(k) == v for k, v in lbl.items()) for a in left) for n, lbl in want)
            shown = ", ".join(sorted(a["alertname"] + "".join(f" {k}={a[k]}" for k in ("account", "scope") if k in a)
                                     for a in left))
            if ok:
                print(f"ok   {test_name} at {at}: {len(firing)} alerts firing, {len(firing) - len(left)} inhibited, notified: {shown}")
            else:
                problem(f"{test_name} at {at}: {len(firing)} alerts firing, after the inhibit rules {len(left)} are left ({shown}), expected {want}")

    if problems:
        print(f"{len(problems)} problem(s)")
        sys.exit(1)
    print("alerts: conventions, runbook, dashboards, tests and inhibit rules consistent")


if __name__ == "__main__":
    main()
