#!/usr/bin/env python3
"""Generates the Grafana dashboards in dashboards/*.json (run from anywhere; stdlib only).

The JSON files are committed; edit this generator and re-run it rather than editing the JSON by
hand:  python3 scripts/e2e/gen_dashboards.py
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from codes import with_code_name  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "dashboards")
DS = {"type": "prometheus", "uid": "${datasource}"}

# ---------------------------------------------------------------------------------------------
# PromQL building blocks
# ---------------------------------------------------------------------------------------------

# Series present only while the hour a shop's values describe is within opening hours (shop-local
# time; the dashboard constants utc_offset_seconds, open_hour, close_hour).
SHOP_OPEN = (
    "(floor(((opretail_shop_hour_timestamp_seconds + $utc_offset_seconds) % 86400) / 3600)"
    " >= $open_hour < $close_hour)"
)
DEVICE_OPEN = SHOP_OPEN.replace("opretail_shop_", "opretail_device_")


def chain_walk_in_rate(suffix: str = "", sel: str = "") -> str:
    """The vendor's enterprise walk-in rate: walk-ins over outside traffic of the shops that have an
    outside counter. Shops without one have no opretail_shop_outside series, so `and` leaves their
    walk-ins out of the numerator as their (absent) outside traffic is out of the denominator."""
    wi, out = f"opretail_shop_walk_in{suffix}{sel}", f"opretail_shop_outside{suffix}{sel}"
    return f"sum({wi} and on(instance, job, shop_id) {out}) / sum({out})"


DAILY_DESC = (
    "The vendor's daily figure for the shop-local day so far (opretail_shop_*_today): the gateway's "
    "day row, what the vendor console shows, fetched at every refresh, not a sum of the hourly values. "
    "Face-counting devices de-duplicate a person within the day in day rows (and within the hour in "
    "hour rows), so the day can be below the sum of its hours. It starts again at local midnight "
    "(opretail_shop_day_timestamp_seconds is the start of the day it describes), survives exporter "
    "restarts and includes uploads that arrived late."
)

CHAIN_RATE_DESC = (
    "The vendor's enterprise walk-in rate: walk-ins over outside traffic (walk-ins + passers-by), "
    "each summed over the shops that have an outside counter. A shop without one sends no outside "
    "traffic, passing or walk-in rate (the exporter publishes no such series for it, and also reads "
    "outside 0 with walk-ins above 0 as no counter); its walk-ins are left out of the numerator too "
    "(`and on(shop_id) opretail_shop_outside`), so they do not inflate the rate."
)

DEVICE_DAY_DESC = (
    "A device's day (opretail_device_*_today) is summed by the exporter from the device's hourly rows of "
    "the shop-local day (opretail_device_day_timestamp_seconds is its start); it survives restarts and "
    "includes late uploads."
)

DEVICE_NO_WALK_OUT = (
    "An empty walk-out cell: the device sends no walk-outs (face-counting devices cannot count them), not 0."
)

NOT_COUNTED = "not counted"

ABSENT_DESC = (
    "An empty cell is a value the vendor does not send, never 0: no walk-outs where face-counting "
    "devices count (they cannot count walk-outs), no walk-in rate where the shop has no outside counter."
)

# ---------------------------------------------------------------------------------------------
# Panel helpers
# ---------------------------------------------------------------------------------------------

_ids = iter(range(1, 10_000))


def target(expr, legend="", instant=False, ref=None, fmt=None):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend, "range": not instant,
         "instant": instant, "refId": ref or "A"}
    if fmt:
        t["format"] = fmt
    return t


def panel(kind, title, desc, targets, x, y, w, h, unit=None, extra=None, options=None,
          overrides=None, thresholds=None, decimals=None, no_value=None):
    for i, t in enumerate(targets):
        t["refId"] = chr(ord("A") + i)
    defaults = {}
    if unit:
        defaults["unit"] = unit
    if decimals is not None:
        defaults["decimals"] = decimals
    if no_value is not None:
        defaults["noValue"] = no_value
    if thresholds:
        defaults["thresholds"] = {"mode": "absolute", "steps": thresholds}
    if kind == "timeseries":
        defaults["custom"] = {"lineInterpolation": "stepAfter", "fillOpacity": 10, "showPoints": "never"}
    p = {
        "id": next(_ids), "type": kind, "title": title, "description": desc, "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h}, "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
    }
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "none", "textMode": "auto", **(options or {})}
    if kind == "bargauge":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True,
                        **(options or {})}
    if extra:
        p.update(extra)
    return p


def row(title, y):
    return {"id": next(_ids), "type": "row", "title": title, "collapsed": False,
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []}


GREEN_RED_AGE = [{"color": "green", "value": None}, {"color": "yellow", "value": 7200},
                 {"color": "red", "value": 9000}]


def datasource_var():
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []}


def query_var(name, label, query, multi=False, include_all=False, all_value=None):
    v = {"name": name, "label": label, "type": "query", "datasource": DS,
         "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
         "definition": query, "refresh": 2, "sort": 3, "multi": multi, "includeAll": include_all,
         "current": {}, "options": [], "hide": 0, "regex": ""}
    if all_value is not None:
        v["allValue"] = all_value
    return v


def const_var(name, value, desc):
    return {"name": name, "type": "constant", "query": str(value), "hide": 2, "description": desc,
            "current": {"text": str(value), "value": str(value)}, "options": []}


LOCAL_TIME_VARS = [
    const_var("utc_offset_seconds", 28800,
              "Shops' UTC offset in seconds (28800 = UTC+8, Asia/Shanghai). Used for opening hours."),
    const_var("open_hour", 10, "First local opening hour (a data hour starting at this hour counts as open)."),
    const_var("close_hour", 22, "Local closing hour (the last open data hour starts one hour earlier)."),
]


def dashboard(uid, title, desc, panels, variables, time_from="now-24h", tags=()):
    return {
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "description": "Prometheus scraping opretail-exporter",
                      "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
            {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""},
            {"type": "panel", "id": "stat", "name": "Stat", "version": ""},
            {"type": "panel", "id": "bargauge", "name": "Bar gauge", "version": ""},
            {"type": "panel", "id": "table", "name": "Table", "version": ""},
        ],
        "uid": uid, "title": title, "description": desc, "tags": ["opretail", *tags],
        "schemaVersion": 39, "version": 1, "editable": True, "graphTooltip": 1,
        "timezone": "browser", "time": {"from": time_from, "to": "now"}, "refresh": "5m",
        "links": [{"type": "dashboards", "tags": ["opretail"], "asDropdown": True, "title": "Opretail",
                   "includeVars": False, "keepTime": True}],
        "annotations": {"list": []},
        "templating": {"list": [datasource_var(), *variables]},
        "panels": panels,
    }


def table_opts(sort_col=None):
    o = {"showHeader": True, "cellHeight": "sm"}
    if sort_col:
        o["sortBy"] = [{"displayName": sort_col, "desc": True}]
    return o


# Instant table queries that are merged into one table drop the metric name this way: rows only
# join when every label column, __name__ included, is equal.
SHOP_BY = "sum by (instance, job, shop_id, shop_name, shop_code)"
DEVICE_BY = "sum by (instance, job, mac, device_name, shop_id)"

ORGANIZE_HIDE = {"id": "organize", "options": {"excludeByName": {"Time": True, "job": True, "instance": True,
                                                                  "__name__": True}}}


def nonzero_rows(column):
    """A table's transformations: label columns, the rows whose value is 0 hidden (an empty table is
    good news), the value column named `column`."""
    return {"transformations": [
        ORGANIZE_HIDE,
        {"id": "filterByValue", "options": {"type": "include", "match": "any", "filters": [
            {"fieldName": "Value", "config": {"id": "greater", "options": {"value": 0}}}]}},
        {"id": "renameByName", "options": {"renameByName": {"Value": column}}}]}


def merged_columns(*columns):
    """A table's transformations: its instant queries A, B, ... merged into one row per series, their
    values named `columns` in that order (a value a series lacks is an empty cell)."""
    return {"transformations": [
        {"id": "merge", "options": {}}, ORGANIZE_HIDE,
        {"id": "renameByName", "options": {"renameByName": {
            f"Value #{chr(ord('A') + i)}": c for i, c in enumerate(columns)}}}]}

# ---------------------------------------------------------------------------------------------
# 1. Chain overview
# ---------------------------------------------------------------------------------------------


def chain_overview():
    p = []
    y = 0
    p.append(panel("stat", "Walk-ins, latest hour",
                   "Sum over all shops of opretail_shop_walk_in: the walk-ins of the latest complete hour.",
                   [target("sum(opretail_shop_walk_in)", instant=True)], 0, y, 4, 4, unit="short"))
    p.append(panel("stat", "Walk-ins today", "Sum over all shops of opretail_shop_walk_in_today. " + DAILY_DESC,
                   [target("sum(opretail_shop_walk_in_today)", instant=True)], 4, y, 3, 4, unit="short"))
    p.append(panel("stat", "Chain walk-in rate, latest hour", "Latest complete hour. " + CHAIN_RATE_DESC,
                   [target(chain_walk_in_rate(), instant=True)], 7, y, 3, 4, unit="percentunit", decimals=1))
    p.append(panel("stat", "Chain walk-in rate today",
                   "The day so far, from the vendor's daily figures (opretail_shop_*_today). " + CHAIN_RATE_DESC,
                   [target(chain_walk_in_rate("_today"), instant=True)], 10, y, 3, 4, unit="percentunit", decimals=1))
    p.append(panel("stat", "Shops reporting", "Shops with data (count of opretail_shop_walk_in series).",
                   [target("count(opretail_shop_walk_in)", instant=True)], 13, y, 3, 4))
    p.append(panel("stat", "Shops with no walk-ins, latest hour",
                   "Shops whose latest complete hour had zero walk-ins (0 when every shop counted someone; "
                   "closed hours included: see the table below for opening hours only).",
                   [target("count(opretail_shop_walk_in == 0) or vector(0)", instant=True)], 16, y, 4, 4,
                   thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}]))
    p.append(panel("stat", "Oldest data hour age",
                   "time() minus the oldest shop's hour timestamp. Normal: 1 h to 2 h (the latest complete "
                   "hour); above 2.5 h the OpretailDataStale alert fires.",
                   [target("time() - min(opretail_shop_hour_timestamp_seconds)", instant=True)], 20, y, 4, 4,
                   unit="s", thresholds=GREEN_RED_AGE))
    y += 4
    p.append(panel("timeseries", "Chain walk-ins per hour (vs same hour last week)",
                   "Sum of opretail_shop_walk_in; each value is held for about an hour after the hour it "
                   "describes. The dashed series is the same query one week earlier (offset 1w).",
                   [target("sum(opretail_shop_walk_in)", "walk-ins"),
                    target("sum(opretail_shop_walk_in offset 1w)", "same hour last week")], 0, y, 12, 8,
                   unit="short",
                   overrides=[{"matcher": {"id": "byName", "options": "same hour last week"},
                               "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}]}]))
    p.append(panel("table", "Walk-ins today by shop",
                   "Per shop: walk-ins, walk-in rate and walk-outs of the day so far. " + DAILY_DESC + " " + ABSENT_DESC,
                   [target(f"{SHOP_BY} (opretail_shop_{m}_today)",
                           instant=True, fmt="table") for m in ("walk_in", "walk_in_rate", "walk_out")], 12, y, 12, 8,
                   extra=merged_columns("walk-ins", "walk-in rate", "walk-outs"),
                   overrides=[{"matcher": {"id": "byName", "options": "walk-in rate"},
                               "properties": [{"id": "unit", "value": "percentunit"}, {"id": "decimals", "value": 1}]}],
                   options=table_opts("walk-ins")))
    y += 8
    p.append(panel("bargauge", "Top 10 shops, latest hour", "Shops with the most walk-ins in the latest complete hour.",
                   [target("topk(10, opretail_shop_walk_in)", "{{shop_name}}", instant=True)], 0, y, 8, 10, unit="short"))
    p.append(panel("bargauge", "Bottom 10 shops, latest hour", "Shops with the fewest walk-ins in the latest complete hour.",
                   [target("bottomk(10, opretail_shop_walk_in)", "{{shop_name}}", instant=True)], 8, y, 8, 10, unit="short",
                   options={"displayMode": "basic"}))
    p.append(panel("table", "Shops with no traffic (opening hours, last 24 h)",
                   "Per shop, the number of hours of the last 24 h that fell within opening hours (dashboard "
                   "constants open_hour/close_hour, shop-local) and had zero walk-ins. Sampled once per hour "
                   "(subquery at 1h resolution), so each hour counts once. Shops with 0 such hours are hidden "
                   "by the table's filter: an empty table means every shop counted visitors whenever open.",
                   [target("sort_desc(sum by (shop_id, shop_name) (sum_over_time(((opretail_shop_walk_in == bool 0) "
                           "and on(instance, job, shop_id) " + SHOP_OPEN + ")[24h:1h])))", instant=True, fmt="table")],
                   16, y, 8, 10,
                   extra=nonzero_rows("zero-walk-in open hours"),
                   options=table_opts("zero-walk-in open hours")))
    y += 10
    p.append(panel("bargauge", "Walk-in rate by shop, latest hour",
                   "opretail_shop_walk_in_rate (walk-ins / (walk-ins + passing)) per shop, highest first. Shops "
                   "without an outside counter have no walk-in rate and are not listed.",
                   [target("sort_desc(opretail_shop_walk_in_rate)", "{{shop_name}}", instant=True)], 0, y, 8, 12,
                   unit="percentunit", decimals=1, options={"displayMode": "lcd"}))
    p.append(panel("bargauge", "Fitting rate by shop, latest hour",
                   "opretail_shop_fitting_rate per shop (shops without a fitting room have no series).",
                   [target("sort_desc(opretail_shop_fitting_rate)", "{{shop_name}}", instant=True)], 8, y, 8, 12,
                   unit="percentunit", decimals=1, options={"displayMode": "lcd"}))
    p.append(panel("timeseries", "Rate distribution across shops",
                   "10th, 50th and 90th percentile over shops of the walk-in rate and the fitting rate of the "
                   "latest complete hour.",
                   [target(f"quantile({q}, opretail_shop_{m}_rate)", f"{m.replace('_', '-')} rate p{int(q * 100)}")
                    for m in ("walk_in", "fitting") for q in (0.1, 0.5, 0.9)], 16, y, 8, 12,
                   unit="percentunit", decimals=1))
    return dashboard("opretail-chain-overview", "Opretail / Chain overview",
                     "All shops: walk-ins of the latest hour and today, best and worst shops, rates, shops without traffic.",
                     p, LOCAL_TIME_VARS, tags=("people-counting",))

# ---------------------------------------------------------------------------------------------
# 2. Shop detail
# ---------------------------------------------------------------------------------------------


def shop_detail():
    s = '{shop_id="$shop"}'
    p = []
    y = 0
    p.append(panel("stat", "Walk-ins, latest hour", "opretail_shop_walk_in of the selected shop.",
                   [target(f"opretail_shop_walk_in{s}", "{{shop_name}}", instant=True)], 0, y, 3, 4))
    p.append(panel("stat", "Walk-ins today", "opretail_shop_walk_in_today of the selected shop. " + DAILY_DESC,
                   [target(f"opretail_shop_walk_in_today{s}", instant=True)], 3, y, 3, 4))
    p.append(panel("stat", "Walk-in rate, latest hour",
                   "opretail_shop_walk_in_rate: walk-ins / (walk-ins + passing), latest hour. No value: the shop "
                   "has no outside counter (the vendor sends no passing, outside or walk-in rate for it).",
                   [target(f"opretail_shop_walk_in_rate{s}", instant=True)], 6, y, 3, 4, unit="percentunit", decimals=1,
                   no_value="no outside counter"))
    p.append(panel("stat", "Walk-in rate today",
                   "opretail_shop_walk_in_rate_today: the vendor's walk-in rate of the day so far (no value: the "
                   "shop has no outside counter). " + DAILY_DESC,
                   [target(f"opretail_shop_walk_in_rate_today{s}", instant=True)], 9, y, 3, 4, unit="percentunit",
                   decimals=1, no_value="no outside counter"))
    p.append(panel("stat", "Walk-outs today",
                   "opretail_shop_walk_out_today of the selected shop. No value means the vendor sends no walk-outs "
                   "for it (face-counting devices cannot count walk-outs), not 0. " + DAILY_DESC,
                   [target(f"opretail_shop_walk_out_today{s}", instant=True)], 12, y, 3, 4, no_value=NOT_COUNTED))
    p.append(panel("stat", "Fitting rate", "opretail_shop_fitting_rate, latest hour (no value: the shop has no fitting room).",
                   [target(f"opretail_shop_fitting_rate{s}", instant=True)], 15, y, 3, 4, unit="percentunit", decimals=1,
                   no_value="no fitting room"))
    p.append(panel("stat", "Walk-ins vs same hour last week",
                   "Latest hour's walk-ins divided by the walk-ins of the same hour one week earlier "
                   "(OpretailTrafficDrop fires below 50 % by default).",
                   [target(f"opretail_shop_walk_in{s} / on(instance, job, shop_id) group_left() (opretail_shop_walk_in{s} offset 1w)",
                           instant=True)], 18, y, 3, 4, unit="percentunit", decimals=0,
                   thresholds=[{"color": "red", "value": None}, {"color": "yellow", "value": 0.5},
                               {"color": "green", "value": 0.8}]))
    p.append(panel("stat", "Data hour age", "time() - opretail_shop_hour_timestamp_seconds: age of the start of the hour shown.",
                   [target(f"time() - opretail_shop_hour_timestamp_seconds{s}", instant=True)], 21, y, 3, 4,
                   unit="s", thresholds=GREEN_RED_AGE))
    y += 4
    p.append(panel("timeseries", "Hourly counts",
                   "Walk-in, passing, outside (walk-in + passing) and walk-out of the latest complete hour; each "
                   "value is held for about an hour after the hour it describes (stepped lines). A line the vendor "
                   "does not send is missing, never drawn at 0: walk-out where face-counting devices count, passing "
                   "and outside where the shop has no outside counter.",
                   [target(f"opretail_shop_{m}{s}", m.replace("_", "-")) for m in ("walk_in", "passing", "outside", "walk_out")],
                   0, y, 12, 9, unit="short"))
    p.append(panel("timeseries", "Walk-ins vs same hour last week",
                   "opretail_shop_walk_in and the same series one week earlier (offset 1w), overlaid.",
                   [target(f"opretail_shop_walk_in{s}", "this week"),
                    target(f"opretail_shop_walk_in{s} offset 1w", "same hour last week")], 12, y, 12, 9, unit="short",
                   overrides=[{"matcher": {"id": "byName", "options": "same hour last week"},
                               "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}]}]))
    y += 9
    p.append(panel("timeseries", "Rates",
                   "Walk-in rate and fitting rate (ratios 0-1) of each hour; no walk-in rate without an outside "
                   "counter, no fitting rate without a fitting-room counter.",
                   [target(f"opretail_shop_walk_in_rate{s}", "walk-in rate"),
                    target(f"opretail_shop_fitting_rate{s}", "fitting rate")], 0, y, 12, 8, unit="percentunit"))
    p.append(panel("timeseries", "Devices of this shop",
                   "Walk-ins and walk-outs of the counting devices configured with this shop_id (a face-counting "
                   "device has no walk-out line: it cannot count walk-outs).",
                   [target(f"opretail_device_walk_in{s}", "{{device_name}} {{mac}} in"),
                    target(f"opretail_device_walk_out{s}", "{{device_name}} {{mac}} out")], 12, y, 12, 8, unit="short"))
    y += 8
    p.append(panel("table", "Devices of this shop: latest hour and today",
                   "Each device of the shop: walk-ins and walk-outs of the latest hour and of the day so far, and "
                   "the age of its latest hour. " + DEVICE_DAY_DESC + " " + DEVICE_NO_WALK_OUT,
                   [target(f"{DEVICE_BY} (opretail_device_{m}{s})", instant=True, fmt="table")
                    for m in ("walk_in", "walk_out", "walk_in_today", "walk_out_today")]
                   + [target(f"time() - opretail_device_hour_timestamp_seconds{s}", instant=True, fmt="table")],
                   0, y, 24, 7,
                   extra=merged_columns("walk-in, latest hour", "walk-out, latest hour", "walk-in today",
                                        "walk-out today", "data age (s)"),
                   options=table_opts()))
    return dashboard("opretail-shop-detail", "Opretail / Shop detail",
                     "One shop: hourly counts, rates, same hour last week, its devices.",
                     p, [query_var("shop", "Shop (depId)", "label_values(opretail_shop_walk_in, shop_id)"), *LOCAL_TIME_VARS],
                     tags=("people-counting",))

# ---------------------------------------------------------------------------------------------
# 3. Devices
# ---------------------------------------------------------------------------------------------


def devices():
    s = '{shop_id=~"$shop", mac=~"$device"}'
    p = []
    y = 0
    p.append(panel("stat", "Devices reporting", "Devices with data.",
                   [target(f"count(opretail_device_walk_in{s})", instant=True)], 0, y, 4, 4))
    p.append(panel("stat", "Silent devices, latest hour",
                   "Devices whose latest hour was within opening hours and counted zero walk-ins, plus devices "
                   "whose data is older than 2.5 h (0 when none).",
                   [target(f"count((opretail_device_walk_in{s} == 0) and on(instance, job, mac) {DEVICE_OPEN}"
                           f" or (time() - opretail_device_hour_timestamp_seconds{s} > 9000)) or vector(0)", instant=True)],
                   4, y, 5, 4, thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}]))
    p.append(panel("stat", "Device walk-ins, latest hour", "Sum of opretail_device_walk_in over the selected devices.",
                   [target(f"sum(opretail_device_walk_in{s})", instant=True)], 9, y, 5, 4))
    p.append(panel("stat", "Device walk-ins today", "Sum of opretail_device_walk_in_today over the selected devices. "
                   + DEVICE_DAY_DESC,
                   [target(f"sum(opretail_device_walk_in_today{s})", instant=True)], 14, y, 5, 4))
    p.append(panel("stat", "Oldest device data hour age", "time() minus the oldest device hour timestamp.",
                   [target(f"time() - min(opretail_device_hour_timestamp_seconds{s})", instant=True)], 19, y, 5, 4,
                   unit="s", thresholds=GREEN_RED_AGE))
    y += 4
    p.append(panel("timeseries", "Walk-ins per device", "opretail_device_walk_in (hourly value, held about an hour).",
                   [target(f"opretail_device_walk_in{s}", "{{device_name}} {{mac}} (shop {{shop_id}})")], 0, y, 12, 9, unit="short"))
    p.append(panel("timeseries", "Walk-outs per device",
                   "opretail_device_walk_out (hourly value, held about an hour). Face-counting devices cannot count "
                   "walk-outs: they have no line here, never a line at 0.",
                   [target(f"opretail_device_walk_out{s}", "{{device_name}} {{mac}} (shop {{shop_id}})")], 12, y, 12, 9, unit="short"))
    y += 9
    p.append(panel("table", "Silent devices (opening hours, last 24 h)",
                   "Per device, the hours of the last 24 h within opening hours (shop-local) with zero walk-ins, "
                   "sampled once per hour. Devices with 0 such hours are hidden by the table's filter.",
                   [target(f"sort_desc(sum by (mac, device_name, shop_id) (sum_over_time(((opretail_device_walk_in{s} == bool 0) "
                           f"and on(instance, job, mac) {DEVICE_OPEN})[24h:1h])))", instant=True, fmt="table")],
                   0, y, 12, 9,
                   extra=nonzero_rows("zero-walk-in open hours"),
                   options=table_opts("zero-walk-in open hours")))
    p.append(panel("bargauge", "Last data hour age per device",
                   "time() - opretail_device_hour_timestamp_seconds. Normal 1 h to 2 h; red above 2.5 h (stale).",
                   [target(f"sort_desc(time() - opretail_device_hour_timestamp_seconds{s})", "{{device_name}} {{mac}}",
                           instant=True)], 12, y, 12, 9, unit="s", thresholds=GREEN_RED_AGE))
    y += 9
    p.append(panel("timeseries", "Device sum vs shop count",
                   "Sum of the walk-ins of a shop's devices next to the shop's own walk-ins: a gap shows a "
                   "device missing or miscounting.",
                   [target('sum by (shop_id) (opretail_device_walk_in{shop_id=~"$shop"})', "devices of {{shop_id}}"),
                    target('opretail_shop_walk_in and on(shop_id) group by (shop_id) (opretail_device_walk_in{shop_id=~"$shop"})',
                           "shop {{shop_id}} {{shop_name}}")], 0, y, 12, 8, unit="short"))
    p.append(panel("table", "Devices today",
                   "Walk-ins and walk-outs of each selected device over the shop-local day so far. " + DEVICE_DAY_DESC
                   + " " + DEVICE_NO_WALK_OUT,
                   [target(f"{DEVICE_BY} (opretail_device_{m}_today{s})", instant=True, fmt="table")
                    for m in ("walk_in", "walk_out")], 12, y, 12, 8,
                   extra=merged_columns("walk-in today", "walk-out today"),
                   options=table_opts("walk-in today")))
    return dashboard("opretail-devices", "Opretail / Devices",
                     "Counting devices: walk-in/out per device, silent devices, data age.",
                     p, [query_var("shop", "Shop (depId)", "label_values(opretail_device_walk_in, shop_id)",
                                   multi=True, include_all=True, all_value=".*"),
                         query_var("device", "Device (mac)", 'label_values(opretail_device_walk_in{shop_id=~"$shop"}, mac)',
                                   multi=True, include_all=True, all_value=".*"),
                         *LOCAL_TIME_VARS],
                     tags=("people-counting",))

# ---------------------------------------------------------------------------------------------
# 4. Exporter and gateway health
# ---------------------------------------------------------------------------------------------


def health():
    i = '{instance=~"$instance"}'
    p = []
    y = 0
    p.append(panel("stat", "Exporter up", "up of the scrape jobs matching job=~\".*opretail.*\" (1 = scraped).",
                   [target('up{job=~".*opretail.*", instance=~"$instance"}', "{{instance}}", instant=True)], 0, y, 4, 4,
                   thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}]))
    p.append(panel("stat", "Version", "opretail_exporter_build_info.",
                   [target(f"opretail_exporter_build_info{i}", "{{version}} ({{revision}})", instant=True)], 4, y, 4, 4,
                   options={"textMode": "name"}))
    p.append(panel("stat", "Targets down", "Configured shops/organisations/devices whose last gateway request failed (0 when none).",
                   [target(f"count(opretail_target_up{i} == 0) or vector(0)", instant=True)], 8, y, 4, 4,
                   thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}]))
    p.append(panel("stat", "Gateway error ratio",
                   "Failed / sent gateway requests over the dashboard time range (0 when no error series exist).",
                   [target(f"(sum(increase(opretail_api_errors_total{i}[$__range])) or vector(0)) / sum(increase(opretail_api_requests_total{i}[$__range]))",
                           instant=True)], 12, y, 4, 4, unit="percentunit", decimals=2,
                   thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 0.05}]))
    p.append(panel("stat", "Last poll duration", "opretail_poll_duration_seconds: duration of the last complete poll.",
                   [target(f"max(opretail_poll_duration_seconds{i})", instant=True)], 16, y, 4, 4, unit="s"))
    p.append(panel("stat", "Oldest data hour age", "time() minus the oldest shop or device hour timestamp.",
                   [target(f"time() - min(min(opretail_shop_hour_timestamp_seconds{i}) or min(opretail_device_hour_timestamp_seconds{i}))",
                           instant=True)], 20, y, 4, 4, unit="s", thresholds=GREEN_RED_AGE))
    y += 4
    p.append(panel("timeseries", "Gateway requests by method", "rate(opretail_api_requests_total) per gateway method.",
                   [target(f"sum by (method) (rate(opretail_api_requests_total{i}[$__rate_interval]))", "{{method}}")],
                   0, y, 12, 8, unit="reqps"))
    p.append(panel("timeseries", "Gateway errors by code",
                   "increase(opretail_api_errors_total) per error code, named with a label_replace chain "
                   "(\"7 SIGN_WRONG\"; codes such as http_503, timeout, transport, decode keep their name). "
                   "Error series only exist after a first error.",
                   [target(with_code_name(f"sum by (code) (increase(opretail_api_errors_total{i}[$__rate_interval]))"),
                           "{{code_name}}")], 12, y, 12, 8, unit="short"))
    y += 8
    p.append(panel("table", "Errors by code and method (time range)",
                   "Gateway errors over the dashboard time range per (method, code), with the gateway code name.",
                   [target("sort_desc(" + with_code_name(f"sum by (method, code) (increase(opretail_api_errors_total{i}[$__range]))") + ")",
                           instant=True, fmt="table")], 0, y, 12, 8,
                   extra={"transformations": [ORGANIZE_HIDE]}, options=table_opts("Value")))
    p.append(panel("timeseries", "Request latency",
                   "Quantiles of opretail_api_request_duration_seconds per method (histogram_quantile).",
                   [target(f"histogram_quantile({q}, sum by (le, method) (rate(opretail_api_request_duration_seconds_bucket{i}[$__rate_interval])))",
                           f"p{int(q * 100)} {{{{method}}}}") for q in (0.5, 0.9, 0.99)], 12, y, 12, 8, unit="s"))
    y += 8
    p.append(panel("state-timeline", "Target up",
                   "opretail_target_up per configured target (S_/O_ ids and device macs): 1 when its last gateway request succeeded.",
                   [target(f"opretail_target_up{i}", "{{target}}")], 0, y, 12, 10,
                   extra={"fieldConfig": {"defaults": {"mappings": [{"type": "value", "options": {
                       "0": {"text": "down", "color": "red"}, "1": {"text": "up", "color": "green"}}}]}, "overrides": []}}))
    p.append(panel("bargauge", "Time since last success per target",
                   "time() - opretail_target_last_success_timestamp_seconds.",
                   [target(f"sort_desc(time() - opretail_target_last_success_timestamp_seconds{i})", "{{target}}", instant=True)],
                   12, y, 12, 10, unit="s",
                   thresholds=[{"color": "green", "value": None}, {"color": "yellow", "value": 900}, {"color": "red", "value": 3600}]))
    y += 10
    p.append(panel("timeseries", "Data age", "Age of the newest and the oldest shop hour timestamp (threshold 2.5 h).",
                   [target(f"time() - max(opretail_shop_hour_timestamp_seconds{i})", "newest shop hour"),
                    target(f"time() - min(opretail_shop_hour_timestamp_seconds{i})", "oldest shop hour"),
                    target(f"time() - min(opretail_device_hour_timestamp_seconds{i})", "oldest device hour")],
                   0, y, 12, 8, unit="s", thresholds=GREEN_RED_AGE,
                   extra={}))
    p.append(panel("timeseries", "Poll duration and exporter process",
                   "opretail_poll_duration_seconds and the exporter's resident memory.",
                   [target(f"opretail_poll_duration_seconds{i}", "poll duration {{instance}}"),
                    target('process_resident_memory_bytes{job=~".*opretail.*", instance=~"$instance"}', "RSS {{instance}}")],
                   12, y, 12, 8, unit="s",
                   overrides=[{"matcher": {"id": "byRegexp", "options": "RSS.*"},
                               "properties": [{"id": "unit", "value": "bytes"}, {"id": "custom.axisPlacement", "value": "right"}]}]))
    y += 8
    p.append(row("Gateway conventions", y))
    y += 1
    p.append(panel("table", "Fields missing from gateway answers",
                   "Rows of the last answer of each gateway method that lacked a field the exporter reads "
                   "(opretail_gateway_fields_missing). Rows at 0 are hidden: an empty table means every field "
                   "the exporter reads was there. A renamed field makes the metric read from it vanish; run "
                   "`opretail-exporter doctor --config FILE` to see what the gateway sends. OpretailGatewayFieldMissing "
                   "fires after 30 min.",
                   [target(f"sort_desc(opretail_gateway_fields_missing{i})", instant=True, fmt="table")], 0, y, 8, 7,
                   extra=nonzero_rows("rows without it"),
                   options=table_opts("rows without it")))
    p.append(panel("stat", "Clock skew",
                   "opretail_gateway_clock_skew_seconds: this host's clock minus the gateway's stat.systime "
                   "(positive: the host is ahead). The gateway refuses requests whose _timestamp is too far off "
                   "with code 16 TIMESTAMP_OVERTIME; red beyond ±120 s, where OpretailClockSkew fires after "
                   "10 min. Fix NTP on the exporter's host.",
                   [target(f"opretail_gateway_clock_skew_seconds{i}", "{{instance}}", instant=True)], 8, y, 4, 7,
                   unit="s", decimals=1,
                   thresholds=[{"color": "red", "value": None}, {"color": "green", "value": -120},
                               {"color": "red", "value": 120}]))
    p.append(panel("table", "Conventions in force",
                   "opretail_gateway_convention: how the exporter reads the gateway's rows. row_time: a row's time "
                   "is the start or the end of the hour it counts; rate_scale: rates arrive as percent (8.14) or as "
                   "fraction (0.0814). source: configured (gateway.row_time / gateway.rate_scale), detected (auto, "
                   "decided from the answers) or assumed (auto, the answers did not decide yet: the documented "
                   "default). 'assumed' that stays: run doctor and set the value.",
                   [target(f"opretail_gateway_convention{i} == 1", instant=True, fmt="table")], 12, y, 6, 7,
                   extra={"transformations": [
                       {"id": "organize", "options": {"excludeByName": {"Time": True, "job": True, "__name__": True,
                                                                        "Value": True},
                                                      "indexByName": {"instance": 0, "setting": 1, "value": 2,
                                                                      "source": 3}}}]},
                   options=table_opts()))
    p.append(panel("timeseries", "Hour revisions",
                   "Hours already published whose value changed at a re-poll (a late upload), per hour: "
                   "increase of opretail_shop_hour_revisions_total and opretail_device_hour_revisions_total over "
                   "1 h. The newest value is published while that hour is still the reported one. A steady "
                   "rate means the gateway keeps receiving counts late.",
                   [target(f"sum(increase(opretail_{k}_hour_revisions_total{i}[1h]))", f"{k} hours revised")
                    for k in ("shop", "device")], 18, y, 6, 7, unit="short"))
    return dashboard("opretail-health", "Opretail / Exporter and gateway health",
                     "opretail-exporter and Opretail gateway: requests, errors by code, latency, targets, data age, "
                     "gateway conventions (fields missing, clock skew, row time and rate scale, late revisions).",
                     p, [query_var("instance", "Exporter instance", "label_values(opretail_exporter_build_info, instance)",
                                   multi=True, include_all=True, all_value=".*")],
                     time_from="now-6h", tags=("monitoring",))


def main():
    for name, d in (("opretail-chain-overview", chain_overview()), ("opretail-shop-detail", shop_detail()),
                    ("opretail-devices", devices()), ("opretail-health", health())):
        path = os.path.join(OUT, name + ".json")
        with open(path, "w") as f:
            json.dump(d, f, indent=2)
            f.write("\n")
        print("wrote", os.path.relpath(path, ROOT))


if __name__ == "__main__":
    main()
