#!/usr/bin/env python3
"""Runs dashboard queries through `promtool test rules` with the single-account form (series
without an `account` label) and with two accounts, `a` and `b`, that both have shop 9601
(stdlib only; needs promtool on PATH or in $PROMTOOL).

- Shop detail with `shop_account` set as Grafana sets it ("" in the single form, "a" or "b" with
  accounts, the Account variable at All) shows that account's shop only: its latest hour, day,
  hourly band (a sum), devices and metadata are the account's own values, never a + b.
- The variable's own selector finds the accounts that have the shop (none in the single form).
- A legend ending in {{account_suffix}}: the label is " (a)" with accounts and absent in the single
  form (health dashboard, targets down over time).

Usage: scripts/e2e/check_dashboard_accounts.py   (exit 1 when promtool's test fails)
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHOP = "9601"
# The value of every per-account shop and device series: one value per account, so a sum shows.
FORMS = {"single": {"": 10}, "accounts": {"a": 20, "b": 30}}
SHOP_PANELS = ("Walk-ins, latest hour", "Walk-ins today", "Walk-ins per hour against the shop's baseline",
               "Devices of this shop: latest hour and today", "Shop metadata")
EVAL = "150m"  # hour timestamps below name the hour before this instant


def load(name):
    with open(os.path.join(ROOT, "dashboards", name + ".json")) as f:
        return json.load(f)


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def first_expr(d, title):
    for p in all_panels(d["panels"]):
        if p.get("title") == title:
            return p["targets"][0]["expr"]
    raise SystemExit(f"{d['uid']}: no panel {title!r}")


def substitute(expr, values):
    for name in sorted(values, key=len, reverse=True):  # $shop_account before $shop
        expr = expr.replace("$" + name, values[name])
    return expr


def slug(s):
    return re.sub(r"[^a-z]+", "_", s.lower()).strip("_")


def labels(name, d):
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in d.items()) + "}"


def input_series(accounts):
    out = []
    for acct, v in accounts.items():
        a = f'account="{acct}", ' if acct else ""
        shop = f'{a}instance="x", job="opretail", shop_id="{SHOP}"'
        out += [{"series": f'opretail_shop_walk_in{{{shop}, shop_name="Shop {acct or "one"}"}}', "values": f"{v}x200"},
                {"series": f"opretail_shop_walk_in_today{{{shop}}}", "values": f"{v}x200"},
                {"series": f"opretail_shop_hour_timestamp_seconds{{{shop}}}", "values": "9000x200"},
                {"series": f'opretail_shop_info{{{shop}, region="east"}}', "values": "1x200"},
                {"series": f'opretail_device_walk_in{{{shop}, mac="m{acct}", device_name="Entrance"}}',
                 "values": f"{v}x200"},
                {"series": f'opretail_target_up{{{a}instance="x", job="opretail", target="S_{SHOP}"}}', "values": "1x200"}]
    return out


def main():
    promtool = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not promtool:
        raise SystemExit("promtool not found (apt-get install prometheus, or set PROMTOOL)")
    shop, health = load("opretail-shop-detail"), load("opretail-health")
    var = next((v["query"]["query"] for v in shop["templating"]["list"] if v["name"] == "shop_account"), "")
    m = re.fullmatch(r"label_values\((.*), account\)", var)
    # Without the variable, its selector matches nothing and the test of its options fails.
    var_selector = m.group(1) if m else 'opretail_shop_info{shop_id="none"}'
    rules, tests = [], []
    for form, accounts in FORMS.items():
        cases = []
        for acct, v in accounts.items():
            values = {"shop_account": acct, "shop": SHOP, "account": ".*", "region": ".*", "org": ".*"}
            base = dict({"account": acct} if acct else {}, instance="x", job="opretail", shop_id=SHOP)
            want = {"Walk-ins, latest hour": (dict(base, shop_name=f"Shop {acct or 'one'}"), v),
                    "Walk-ins today": (base, v),
                    "Walk-ins per hour against the shop's baseline": ({}, v),
                    "Devices of this shop: latest hour and today": (dict(base, mac=f"m{acct}", device_name="Entrance"), v),
                    "Shop metadata": (dict(base, region="east"), 1)}
            for title in SHOP_PANELS:
                rec = f"shop_detail:{form}:{acct or 'none'}:{slug(title)}"
                rules.append({"record": rec, "expr": substitute(first_expr(shop, title), values)})
                lab, val = want[title]
                cases.append({"expr": rec, "eval_time": EVAL, "exp_samples": [{"labels": labels(rec, lab), "value": val}]})
        rec = f"shop_account_options:{form}"
        rules.append({"record": rec, "expr": "count by (account) (" + substitute(
            var_selector, {"shop": SHOP, "account": ".*", "region": ".*", "org": ".*"}) + ")"})
        # Two series per account: opretail_shop_info and opretail_shop_walk_in.
        cases.append({"expr": rec, "eval_time": EVAL, "exp_samples": [
            {"labels": labels(rec, {"account": a} if a else {}), "value": 2} for a in accounts]})
        rec = f"legend:{form}:targets_down"
        rules.append({"record": rec, "expr": substitute(first_expr(health, "Targets down over time"),
                                                        {"account": ".*", "instance": ".*"})})
        cases.append({"expr": rec, "eval_time": EVAL, "exp_samples": [
            {"labels": labels(rec, {"account": a, "account_suffix": f" ({a})"} if a else {}), "value": 0}
            for a in accounts]})
        tests.append({"interval": "1m", "input_series": input_series(accounts), "promql_expr_test": cases})
    # The accounts form never matches the single form's `account=""`.
    tests[1]["promql_expr_test"].append({"expr": "shop_detail:single:none:walk_ins_today", "eval_time": EVAL,
                                         "exp_samples": []})
    with tempfile.TemporaryDirectory(prefix="dashboard-accounts-") as tmp:
        # JSON is YAML: promtool reads both files as they are.
        with open(os.path.join(tmp, "rules.yml"), "w") as f:
            json.dump({"groups": [{"name": "dashboards", "rules": rules}]}, f, indent=1)
        with open(os.path.join(tmp, "test.yml"), "w") as f:
            json.dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}, f, indent=1)
        r = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp, capture_output=True, text=True)
    print((r.stdout + r.stderr).rstrip())
    print(f"{len(rules)} dashboard queries, single form and two accounts sharing shop {SHOP}: "
          + ("ok" if r.returncode == 0 else "FAILED"))
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
