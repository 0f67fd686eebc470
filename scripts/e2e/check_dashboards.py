#!/usr/bin/env python3
"""Static checks of dashboards/*.json that need no Prometheus (stdlib only); .ci/run and e2e.py run them.

- Legends that name the account read cleanly in both forms: the single-account form has no
  `account` label, so "{{method}} {{account}}" would end in a space there. A legend either is
  `{{account}}` alone or ends its text with `{{account_suffix}}` (" (brand-a)" or nothing), whose
  query makes that label (promql.with_account_suffix).
- Shop detail never adds up or mixes two accounts' shops that share a shop id: every selector of a
  per-account series in its panels has `account="$shop_account"`, a single-valued variable without
  All (empty in the single-account form, where `account=""` matches the unlabelled series).
- Links into Shop detail carry the shop id and the account selection.

Usage: scripts/e2e/check_dashboards.py [dashboards/*.json]   (exit 1 with the problems listed)
"""
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from promql import ACCOUNT_SUFFIX, PROCESS_WIDE, _SELECTOR  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHOP_DETAIL = "opretail-shop-detail"
SHOP_ACCOUNT_MATCHER = 'account="$shop_account"'


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def legend_problems(where, legend, expr):
    out = []
    if "{{account}}" in legend and legend.strip() != "{{account}}":
        out.append(f"{where}: legend {legend!r} puts {{{{account}}}} next to other text (a dangling space or "
                   f"separator without an account label): end it with {ACCOUNT_SUFFIX} instead")
    if ACCOUNT_SUFFIX in legend:
        if re.search(r"\s" + re.escape(ACCOUNT_SUFFIX), legend) or legend.startswith(ACCOUNT_SUFFIX):
            out.append(f"{where}: legend {legend!r} has text-less or space-separated {ACCOUNT_SUFFIX} (the label "
                       "brings its own space)")
        if '"account_suffix"' not in expr:
            out.append(f"{where}: legend {legend!r} uses {ACCOUNT_SUFFIX} but the query does not make that label")
    if legend != legend.strip():
        out.append(f"{where}: legend {legend!r} begins or ends with a space")
    return out


def shop_detail_problems(name, d):
    out = []
    variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
    sa = variables.get("shop_account")
    if sa is None:
        out.append(f"{name}: no shop_account variable")
    elif sa.get("multi") or sa.get("includeAll"):
        out.append(f"{name}: shop_account must be single-valued without All (one account's shop)")
    for p in all_panels(d.get("panels", [])):
        for t in p.get("targets", []):
            expr = t.get("expr", "")
            for m in _SELECTOR.finditer(expr):
                metric, sel = m.group(1), m.group(2) or ""
                if metric is None or PROCESS_WIDE.match(metric):
                    continue
                if SHOP_ACCOUNT_MATCHER not in sel:
                    out.append(f"{name}: panel {p.get('title')!r} {t.get('refId')}: {metric}{sel} is not limited to "
                               f"one account ({SHOP_ACCOUNT_MATCHER}): a shop id two accounts share would be mixed")
                    break
    return out


def link_problems(name, d):
    out = []
    for p in all_panels(d.get("panels", [])):
        for lk in p.get("fieldConfig", {}).get("defaults", {}).get("links") or []:
            url = lk.get("url", "")
            if f"/d/{SHOP_DETAIL}/" in url and not ("var-shop=${__data.fields.shop_id}" in url
                                                    and "${account:queryparam}" in url):
                out.append(f"{name}: panel {p.get('title')!r}: link to Shop detail without var-shop or the account: {url}")
    return out


def problems(dashboards):
    """dashboards: [(name, parsed JSON)]. Returns the problems found, as messages."""
    out = []
    for name, d in dashboards:
        for p in all_panels(d.get("panels", [])):
            for t in p.get("targets", []):
                out += legend_problems(f"{name}: panel {p.get('title')!r} {t.get('refId')}",
                                       t.get("legendFormat", ""), t.get("expr", ""))
        if d.get("uid") == SHOP_DETAIL:
            out += shop_detail_problems(name, d)
        out += link_problems(name, d)
    if not any(d.get("uid") == SHOP_DETAIL for _, d in dashboards):
        out.append(f"no dashboard with uid {SHOP_DETAIL}")
    return out


def main(paths):
    dashboards = []
    for path in paths or sorted(glob.glob(os.path.join(ROOT, "dashboards", "*.json"))):
        with open(path) as f:
            dashboards.append((os.path.relpath(path, ROOT), json.load(f)))
    found = problems(dashboards)
    for msg in found:
        print(msg, file=sys.stderr)
    print(f"{len(dashboards)} dashboards: {len(found)} problems")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
