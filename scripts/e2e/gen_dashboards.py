#!/usr/bin/env python3
"""Generates the Grafana dashboards in dashboards/*.json with grafana-foundation-sdk's typed builders.

The JSON files are committed; edit this generator and re-run it rather than editing the JSON by
hand:  scripts/e2e/gen_dashboards.sh   (installs the pinned SDK into target/gen-venv, then runs this)
"""
import json
import os
import sys

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as pb
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from codes import with_code_name  # noqa: E402
from promql import ACCOUNT_MATCHER, ACCOUNT_SUFFIX, ON_SHOP, at_hour, with_account, with_account_suffix  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "dashboards")
DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")

# The shops' timezone: every dashboard is drawn in it (Dashboard settings → General → Time zone),
# so an hour's bar sits at the shop-local hour. Set it to the exporter's `timezone`.
SHOPS_TIMEZONE = "Asia/Shanghai"

SHOP_DETAIL_UID = "opretail-shop-detail"

# ---------------------------------------------------------------------------------------------
# PromQL building blocks
# ---------------------------------------------------------------------------------------------

SHOP_LABELS = "instance, job, account, shop_id, shop_name, shop_code"
SHOP_BY = f"sum by ({SHOP_LABELS})"
DEVICE_BY = "sum by (instance, job, account, mac, device_name, shop_id)"
OPEN = "(opretail_shop_open == 1)"


def chain_walk_in_rate(suffix: str = "") -> str:
    """The vendor's enterprise walk-in rate: walk-ins over outside traffic of the shops that have an
    outside counter (a shop without one has no opretail_shop_outside series: `and` drops its walk-ins)."""
    wi, out = f"opretail_shop_walk_in{suffix}", f"opretail_shop_outside{suffix}"
    return f"sum({wi} and {ON_SHOP} {out}) / sum({out})"


TODAY = f"{SHOP_BY} (opretail_shop_walk_in_today)"
LAST_WEEK = f"{SHOP_BY} (opretail_shop_walk_in_today offset 7d)"
CHANGE = f"({TODAY} / ({LAST_WEEK} > 0) - 1)"
DECLINERS = f"bottomk(10, {TODAY} / ({LAST_WEEK} >= $min_volume) - 1)"
VS_BASELINE = (f"({SHOP_BY} (opretail_shop_walk_in) / {SHOP_BY} (opretail_shop_walk_in_baseline{{stat=\"median\"}} >= $min_hourly)"
               f" and {ON_SHOP} {OPEN})")
SHOP_REGION = "max by (instance, job, account, shop_id, shop_name, shop_code, region, org_id) (opretail_shop_info)"

DAILY_DESC = (
    "Daily figures are the vendor's day rows for the shop-local day so far (opretail_shop_*_today), what its "
    "console shows, not sums of the hourly values (face-counting devices de-duplicate a person within the day). "
    "The same day last week to this hour is the same series 7 days earlier (offset 7d): the day as it stood "
    "then, at the same time of day."
)
CHAIN_RATE_DESC = (
    "The vendor's enterprise walk-in rate: walk-ins over outside traffic (walk-ins + passers-by), each summed "
    "over the shops that have an outside counter; shops without one are left out of both."
)
AT_HOUR_DESC = (
    "Each bar is drawn at the shop-local hour it describes (the dashboard's time zone), live or backfilled: "
    "the query picks the sample whose opretail_shop_hour_timestamp_seconds names that hour, whenever it was "
    "scraped. The newest bar is the latest complete hour; the hour in progress has none yet."
)
ABSENT_DESC = (
    "An empty cell is a value the vendor does not send, never 0: no walk-outs where face-counting devices "
    "count, no walk-in rate where the shop has no outside counter."
)
DEVICE_DAY_DESC = (
    "A device's day (opretail_device_*_today) is summed by the exporter from the device's hourly rows of the "
    "shop-local day; it survives restarts and includes late uploads."
)
LINK_DESC = " Click a row to open the shop in Shop detail."
ACCOUNTS_SUM = (" Summed over the selected accounts (the Account variable): pick one account to see one brand.")
ACCOUNT_ROWS = " With several accounts, a row per account: the account column says whose."
PER_ACCOUNT = " One value per selected account (each has its own client, token, rate limit and poll loop)."
PROCESS_DESC = (" The exporter process, for all its accounts (no account label): the exporters of the selected accounts "
                "(the Exporter instance variable).")

GREEN_RED_AGE = [(None, "green"), (7200, "yellow"), (9000, "red")]
ZERO_GOOD = [(None, "green"), (1, "red")]

# ---------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------


class Ids:
    def __init__(self):
        self.n = 0

    def __call__(self):
        self.n += 1
        return self.n


def q(expr, legend="", instant=False, fmt_table=False, interval=None):
    """A panel query; every per-account series in it is filtered by the account variable. A legend
    that names the account ends in {{account_suffix}} (" (brand-a)", nothing in the single-account
    form): the query then adds that label."""
    if ACCOUNT_SUFFIX in legend:
        expr = with_account_suffix(expr)
    t = pb.Dataquery().expr(with_account(expr)).datasource(DS).legend_format(legend)
    t = t.instant() if instant else t.range()
    if fmt_table:
        t = t.format(pm.PromQueryFormat.TABLE)
    if interval:
        t = t.interval(interval)
    return t


def thresholds(steps):
    return (db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE)
            .steps([dm.Threshold(value=v, color=c) for v, c in steps]))


def setup(p, ids, title, desc, targets, w, h, unit=None, decimals=None, no_value=None, steps=None):
    p = p.id(ids()).title(title).description(desc).datasource(DS).span(w).height(h)
    for i, t in enumerate(targets):
        p = p.with_target(t.ref_id(chr(ord("A") + i)))
    if unit:
        p = p.unit(unit)
    if decimals is not None:
        p = p.decimals(decimals)
    if no_value is not None:
        p = p.no_value(no_value)
    if steps:
        p = p.thresholds(thresholds(steps))
    return p


def stat_panel(ids, title, desc, expr, w=4, h=4, legend="", text_mode=None, **kw):
    p = setup(stat.Panel(), ids, title, desc, [q(expr, legend, instant=True)], w, h, **kw)
    p = (p.reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
         .color_mode(cm.BigValueColorMode.VALUE).graph_mode(cm.BigValueGraphMode.NONE))
    return p.text_mode(text_mode or cm.BigValueTextMode.AUTO)


def ts_panel(ids, title, desc, targets, w=12, h=8, bars=False, **kw):
    p = setup(timeseries.Panel(), ids, title, desc, targets, w, h, **kw)
    p = p.show_points(cm.VisibilityMode.NEVER).fill_opacity(10)
    if bars:
        # One bar per hour, from the hour's start to its end.
        p = (p.draw_style(cm.GraphDrawStyle.BARS).bar_alignment(cm.BarAlignment.AFTER)
             .fill_opacity(60).line_width(1))
    else:
        p = p.line_interpolation(cm.LineInterpolation.STEP_AFTER)
    return p


DASH = dm.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]})


def dashed(p, name):
    return p.override_by_name(name, [DASH])


def as_line(p, name, extra=()):
    """Draws the field `name` as a stepped line over a bar panel (extra: more properties)."""
    props = [dm.DynamicConfigValue(id_val="custom.drawStyle", value="line"),
             dm.DynamicConfigValue(id_val="custom.lineInterpolation", value="stepAfter")]
    if not any(e.id_val == "custom.fillOpacity" for e in extra):
        props.append(dm.DynamicConfigValue(id_val="custom.fillOpacity", value=0))
    return p.override_by_name(name, props + list(extra))


def shop_link():
    """A data link to Shop detail with the row's shop selected, keeping the time range."""
    return (db.DashboardLink("Shop detail: ${__data.fields.shop_name}")
            .url(f"/d/{SHOP_DETAIL_UID}/opretail-shop-detail?var-datasource=${{datasource}}"
                 "&var-shop=${__data.fields.shop_id}&${account:queryparam}&${__url_time_range}"))


ORGANIZE_HIDE = dm.DataTransformerConfig(id_val="organize", options={"excludeByName": {
    "Time": True, "job": True, "instance": True, "__name__": True}})


def table_panel(ids, title, desc, targets, columns, w=12, h=8, sort_col=None, only=None, link=False,
                hide=(), units=None, **kw):
    """A table of instant queries A, B, ... merged into one row per series, their values named
    `columns` in that order. only=(column, op, value) keeps the rows whose column passes
    (op: greater/lower/equal); link adds a data link to Shop detail on every cell."""
    targets = [t if isinstance(t, pb.Dataquery) else q(t, instant=True, fmt_table=True) for t in targets]
    p = setup(table.Panel(), ids, title, desc + (LINK_DESC if link else ""), targets, w, h, **kw)
    p = p.cell_height(cm.TableCellHeight.SM).show_header(True)
    tr = []
    if len(targets) > 1:
        tr.append(dm.DataTransformerConfig(id_val="merge", options={}))
    tr.append(ORGANIZE_HIDE)
    names = {"Value": columns[0]} if len(targets) == 1 else {
        f"Value #{chr(ord('A') + i)}": c for i, c in enumerate(columns)}
    tr.append(dm.DataTransformerConfig(id_val="renameByName", options={"renameByName": names}))
    if only:
        col, op, value = only
        tr.append(dm.DataTransformerConfig(id_val="filterByValue", options={
            "type": "include", "match": "any",
            "filters": [{"fieldName": col, "config": {"id": op, "options": {"value": value}}}]}))
    if hide:
        tr.append(dm.DataTransformerConfig(id_val="organize", options={"excludeByName": {c: True for c in hide}}))
    for t in tr:
        p = p.with_transformation(t)
    if sort_col:
        # "+column": ascending (the largest fall first in a change column), else descending.
        p = p.sort_by([cb.TableSortByFieldState().display_name(sort_col.lstrip("+")).desc(sort_col[0] != "+")])
    if link:
        p = p.data_links([shop_link()])
    for col, (unit, decimals) in (units or {}).items():
        props = [dm.DynamicConfigValue(id_val="unit", value=unit)]
        if decimals is not None:
            props.append(dm.DynamicConfigValue(id_val="decimals", value=decimals))
        p = p.override_by_name(col, props)
    return p


def change_column(p, col):
    """Colours a week-on-week change column: red below -20 %, yellow below -5 %."""
    return p.override_by_name(col, [
        dm.DynamicConfigValue(id_val="unit", value="percentunit"),
        dm.DynamicConfigValue(id_val="decimals", value=0),
        dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"}),
        dm.DynamicConfigValue(id_val="thresholds", value={"mode": "absolute", "steps": [
            {"color": "red", "value": None}, {"color": "yellow", "value": -0.2},
            {"color": "green", "value": -0.05}]})])


def datasource_var():
    return db.DatasourceVariable("datasource").label("Data source").type("prometheus")


def query_var(name, label, query, multi=False, include_all=False, regex=None, sort=dm.VariableSort.ALPHABETICAL_ASC):
    """A query variable; its per-account series are filtered by the account variable (but the
    account variable's own)."""
    if name != "account":
        query = with_account(query)
    v = (db.QueryVariable(name).label(label).datasource(DS)
         .query({"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery", "qryType": 3
                 if query.startswith("query_result(") else 1})
         .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(sort).multi(multi).include_all(include_all))
    if include_all:
        v = v.all_value(".*")
    if regex:
        v = v.regex(regex)
    return v


def account_var():
    """The accounts of an exporter with `accounts:` (its series' `account` label), several or All.
    All is `.*`, which also matches the series of the single-account form, which have no `account`
    label (the variable then has no values and shows All)."""
    return (query_var("account", "Account", "label_values(opretail_target_up, account)", multi=True, include_all=True)
            .description("The exporter's accounts (brands), from the account label of its series. Panels that add "
                         "up shops, devices or requests add up the selected accounts; pick one to see one brand. An "
                         "exporter configured with a single gateway has no account label: All shows it."))


def min_volume_vars():
    return [
        db.TextBoxVariable("min_volume").label("Min. walk-ins last week (day)").default_value("50")
        .description("Decliners vs last week only list shops that had at least this many walk-ins on the same "
                     "day last week to this hour: small shops swing by chance."),
        db.TextBoxVariable("min_hourly").label("Min. baseline (hour)").default_value("5")
        .description("Decliners vs baseline only list shops whose baseline median for the hour is at least this."),
    ]


# The shop picker shows names and selects depIds: Grafana's query_result over one series per shop,
# the regex's named groups giving the option's text (shop_name) and value (shop_id). Before an
# exporter publishes opretail_shop_info, it falls back to the shops' walk-in series.
SHOP_FALLBACK = "(opretail_shop_walk_in and on() absent(opretail_shop_info))"
SHOP_CHOICES = f"max by (shop_id, shop_name) (opretail_shop_info{{region=~\"$region\", org_id=~\"$org\"}} or {SHOP_FALLBACK})"
SHOP_REGEX = '/shop_id="(?<value>[^"]*)".*shop_name="(?<text>[^"]*)"/'


def dashboard(uid, title, desc, panels, variables, tags=(), time_from="now-24h"):
    d = (db.Dashboard(title).uid(uid).description(desc).tags(["opretail", *tags]).timezone(SHOPS_TIMEZONE)
         .time(time_from, "now").refresh("5m").tooltip(dm.DashboardCursorSync.CROSSHAIR).editable()
         .link(db.DashboardLink("Opretail").type(dm.DashboardLinkType.DASHBOARDS).tags(["opretail"])
               .as_dropdown(True).keep_time(True).include_vars(False))
         .with_variable(datasource_var()).with_variable(account_var()))
    for v in variables:
        d = d.with_variable(v)
    for p in panels:
        d = d.with_row(p) if isinstance(p, db.Row) else d.with_panel(p)
    out = json.loads(JSONEncoder(sort_keys=True).encode(d.build()))
    # Import metadata: Grafana's "Import dashboard" asks for the Prometheus data source.
    return {
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "description": "Prometheus scraping opretail-exporter",
                      "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
            *({"type": "panel", "id": k, "name": k, "version": ""} for k in sorted(
                {p["type"] for p in out["panels"] if p["type"] != "row"})),
        ],
        **out,
    }

# ---------------------------------------------------------------------------------------------
# 1. Chain overview
# ---------------------------------------------------------------------------------------------


def chain_overview():
    i = Ids()
    p = [
        stat_panel(i, "Walk-ins today", "Sum over all shops of opretail_shop_walk_in_today." + ACCOUNTS_SUM + " "
                   + DAILY_DESC,
                   "sum(opretail_shop_walk_in_today)", w=4, unit="short"),
        stat_panel(i, "Same day last week, to this hour",
                   "sum(opretail_shop_walk_in_today offset 7d): the chain's day last week as it stood at this "
                   "time of day." + ACCOUNTS_SUM + " " + DAILY_DESC, "sum(opretail_shop_walk_in_today offset 7d)", w=4,
                   unit="short"),
        stat_panel(i, "Today vs last week",
                   "Walk-ins today over the same day last week to this hour, minus 1." + ACCOUNTS_SUM,
                   "sum(opretail_shop_walk_in_today) / sum(opretail_shop_walk_in_today offset 7d) - 1", w=4,
                   unit="percentunit", decimals=1,
                   steps=[(None, "red"), (-0.2, "yellow"), (-0.05, "green")]),
        stat_panel(i, "Chain walk-in rate today", "The day so far. " + CHAIN_RATE_DESC + ACCOUNTS_SUM,
                   chain_walk_in_rate("_today"), w=3, unit="percentunit", decimals=1),
        stat_panel(i, "Shops reporting", "Shops with data (count of opretail_shop_walk_in series) of the selected "
                   "accounts.",
                   "count(opretail_shop_walk_in)", w=3),
        stat_panel(i, "Open shops with no walk-ins",
                   "Shops whose latest complete hour was an opening hour by their business calendar "
                   "(opretail_shop_open == 1) and counted zero walk-ins, in the selected accounts. Closed shops never "
                   "count.",
                   f"count((opretail_shop_walk_in == 0) and {ON_SHOP} {OPEN}) or vector(0)", w=3, steps=ZERO_GOOD),
        stat_panel(i, "Oldest data hour age",
                   "time() minus the oldest shop's hour timestamp, over the selected accounts. Normal: 1 h to 2 h (the "
                   "latest complete hour).",
                   "time() - min(opretail_shop_hour_timestamp_seconds)", w=3, unit="s", steps=GREEN_RED_AGE),
    ]
    hourly = ts_panel(i, "Chain walk-ins per hour vs the same hour last week",
                      "Sum of opretail_shop_walk_in per hour; the line is the same hour one week earlier."
                      + ACCOUNTS_SUM + " " + AT_HOUR_DESC,
                      [q(f"sum({at_hour('opretail_shop_walk_in')})", "walk-ins", interval="1h"),
                       q(f"sum({at_hour('opretail_shop_walk_in', weeks_ago=1)})", "same hour last week", interval="1h")],
                      w=12, h=9, bars=True, unit="short")
    p.append(dashed(as_line(hourly, "same hour last week"), "same hour last week"))
    p.append(change_column(table_panel(
        i, "Biggest decliners vs last week (today so far)",
        "The 10 shops with the largest fall of walk-ins today against the same day last week to this hour, "
        "among the shops that had at least $min_volume walk-ins then (the min_volume box at the top), from all the "
        "selected accounts." + ACCOUNT_ROWS + " " + DAILY_DESC,
        [DECLINERS, f"{TODAY} and {ON_SHOP} {DECLINERS}", f"{LAST_WEEK} and {ON_SHOP} {DECLINERS}"],
        ["change", "today", "last week"], w=12, h=9, sort_col="+change", link=True), "change"))
    p.append(change_column(table_panel(
        i, "Below their own baseline, latest hour",
        "Open shops (opretail_shop_open == 1) whose walk-ins of the latest complete hour are furthest below their "
        "own baseline: the median of the same weekday and hour over the last weeks "
        "(opretail_shop_walk_in_baseline{stat=\"median\"}), among shops whose median is at least $min_hourly. "
        "Below p10 is unusual for the shop. From all the selected accounts." + ACCOUNT_ROWS,
        [f"bottomk(10, {VS_BASELINE}) - 1",
         f"{SHOP_BY} (opretail_shop_walk_in) and {ON_SHOP} bottomk(10, {VS_BASELINE})",
         f"{SHOP_BY} (opretail_shop_walk_in_baseline{{stat=\"median\"}}) and {ON_SHOP} bottomk(10, {VS_BASELINE})",
         f"{SHOP_BY} (opretail_shop_walk_in_baseline{{stat=\"p10\"}}) and {ON_SHOP} bottomk(10, {VS_BASELINE})"],
        ["vs median", "walk-ins", "baseline median", "baseline p10"], w=12, h=9, sort_col="+vs median", link=True),
        "vs median"))
    p.append(table_panel(
        i, "Walk-ins today by region",
        "opretail_shop_walk_in_today summed per region (the region label of opretail_shop_info), against the "
        "same day last week to this hour (last week's walk-ins under today's regions). Summed per account and "
        "region: the regions of two brands are two rows, never added up.",
        [f"sum by (account, region) (opretail_shop_walk_in_today * {ON_SHOP} group_left(region) "
         "max by (instance, job, account, shop_id, region) (opretail_shop_info))",
         f"sum by (account, region) (opretail_shop_walk_in_today offset 7d * {ON_SHOP} group_left(region) "
         "max by (instance, job, account, shop_id, region) (opretail_shop_info))"],
        ["today", "last week"], w=12, h=9, sort_col="today"))
    shops = table_panel(
        i, "Shops",
        "Every shop, sortable by any column (click a header): walk-ins today, the same day last week to this "
        "hour, the change, and the vendor's walk-in rate of the day. Region and organisation come from "
        "opretail_shop_info." + ACCOUNT_ROWS + " " + DAILY_DESC + " " + ABSENT_DESC,
        [TODAY, LAST_WEEK, CHANGE, f"{SHOP_BY} (opretail_shop_walk_in_rate_today)", SHOP_REGION],
        ["walk-ins today", "last week", "change", "walk-in rate today", "info"], w=24, h=14,
        sort_col="walk-ins today", link=True, hide=("info",),
        units={"walk-in rate today": ("percentunit", 1)})
    p.append(change_column(shops, "change"))
    p.append(table_panel(
        i, "Open hours with no walk-ins (last 24 h)",
        "Per shop, the hours of the last 24 h that were opening hours by its business calendar "
        "(opretail_shop_open == 1) and counted zero walk-ins, sampled once per hour. Shops with none are hidden: "
        "an empty table is good news.",
        [f"sort_desc(sum by (instance, job, account, shop_id, shop_name) (sum_over_time(((opretail_shop_walk_in == bool 0) "
         f"and {ON_SHOP} {OPEN})[24h:1h])))"],
        ["zero-walk-in open hours"], w=12, h=9, sort_col="zero-walk-in open hours",
        only=("zero-walk-in open hours", "greater", 0), link=True))
    p.append(ts_panel(
        i, "Walk-in rate across shops",
        "10th, 50th and 90th percentile over the shops of the selected accounts of opretail_shop_walk_in_rate per "
        "hour. " + AT_HOUR_DESC,
        [q(f"quantile({x}, {at_hour('opretail_shop_walk_in_rate')})", f"p{int(x * 100)}", interval="1h")
         for x in (0.1, 0.5, 0.9)], w=12, h=9, unit="percentunit", decimals=1))
    return dashboard("opretail-chain-overview", "Opretail / Chain overview",
                     "All shops of the selected accounts: today vs the same day last week, biggest decliners, shops "
                     "below their own baseline, one sortable shop table.", p, min_volume_vars(), tags=("people-counting",))

# ---------------------------------------------------------------------------------------------
# 2. Shop detail
# ---------------------------------------------------------------------------------------------


# Shop detail shows one shop of one account: two accounts (brands) may each have a shop with the same
# id, so its panels select the account with `shop_account`, a single-valued variable listing the
# selected accounts that have the shop (no All). With the single-account form it has no values and
# is empty, and `account=""` matches the series without an account label.
SHOP_ACCOUNT = 'account="$shop_account"'
ONE_ACCOUNT = (" Every panel here shows the shop of one account (the Account of the shop variable): a shop id "
               "that two accounts share is never added up.")


def shop_account_var():
    return (query_var("shop_account", "Account of the shop",
                      'label_values({__name__=~"opretail_shop_info|opretail_shop_walk_in", shop_id="$shop", '
                      f'{ACCOUNT_MATCHER}, region=~"$region", org_id=~"$org"}}, account)')
            .description("The account (brand) whose shop is shown: two accounts may each have a shop with this "
                         "id, and Shop detail never adds them up. One of the selected accounts that have the shop "
                         "(the first by default; a link from a table row opens the first of the Account selection "
                         "that has the shop id, pick the other here). An exporter configured with a single gateway "
                         "has no account label: the list is empty and the panels show its shop."))


def shop_detail():
    s = f'{{{SHOP_ACCOUNT}, shop_id="$shop"}}'
    S_MEDIAN, S_P10 = (f'{{{SHOP_ACCOUNT}, shop_id="$shop", stat="median"}}',
                       f'{{{SHOP_ACCOUNT}, shop_id="$shop", stat="p10"}}')
    i = Ids()
    p = [
        stat_panel(i, "Walk-ins, latest hour", "opretail_shop_walk_in of the selected shop." + ONE_ACCOUNT,
                   f"opretail_shop_walk_in{s}", w=3, legend="{{shop_name}}"),
        stat_panel(i, "Baseline median, same hour",
                   "opretail_shop_walk_in_baseline{stat=\"median\"}: the median of the shop's walk-ins at the same "
                   "weekday and hour over the last weeks (opretail_shop_walk_in_baseline_samples). No value: a new "
                   "installation without history yet.",
                   f'opretail_shop_walk_in_baseline{S_MEDIAN}', w=3, no_value="no history"),
        stat_panel(i, "Open, latest hour",
                   "opretail_shop_open: whether the latest complete hour was an opening hour by the shop's calendar.",
                   f"opretail_shop_open{s}", w=3).mappings([dm.ValueMap(options={
                       "0": dm.ValueMappingResult(text="closed", color="text", index=0),
                       "1": dm.ValueMappingResult(text="open", color="green", index=1)})]),
        stat_panel(i, "Walk-ins today", "opretail_shop_walk_in_today of the selected shop. " + DAILY_DESC,
                   f"opretail_shop_walk_in_today{s}", w=3),
        stat_panel(i, "Same day last week, to this hour", "opretail_shop_walk_in_today offset 7d. " + DAILY_DESC,
                   f"opretail_shop_walk_in_today{s} offset 7d", w=3),
        stat_panel(i, "Today vs last week", "Walk-ins today over the same day last week to this hour, minus 1.",
                   f"opretail_shop_walk_in_today{s} / {ON_SHOP} (opretail_shop_walk_in_today{s} offset 7d) - 1", w=3,
                   unit="percentunit", decimals=0, steps=[(None, "red"), (-0.2, "yellow"), (-0.05, "green")]),
        stat_panel(i, "Walk-in rate today",
                   "opretail_shop_walk_in_rate_today: the vendor's walk-in rate of the day so far (no value: the "
                   "shop has no outside counter).", f"opretail_shop_walk_in_rate_today{s}", w=3,
                   unit="percentunit", decimals=1, no_value="no outside counter"),
        stat_panel(i, "Data hour age", "time() - opretail_shop_hour_timestamp_seconds: age of the start of the hour shown.",
                   f"time() - opretail_shop_hour_timestamp_seconds{s}", w=3, unit="s", steps=GREEN_RED_AGE),
    ]
    band = ts_panel(
        i, "Walk-ins per hour against the shop's baseline",
        "Bars: the shop's walk-ins per hour. Line: the baseline median of the same weekday and hour over the "
        "last weeks; the shaded band reaches down to its 10th percentile (p10): a bar below the band is unusual "
        "for this shop at this hour. Dashed: the same hour last week." + ONE_ACCOUNT + " " + AT_HOUR_DESC,
        [q(f"sum({at_hour('opretail_shop_walk_in', s)})", "walk-ins", interval="1h"),
         q(f"sum({at_hour('opretail_shop_walk_in_baseline', S_MEDIAN)})",
           "baseline median", interval="1h"),
         q(f"sum({at_hour('opretail_shop_walk_in_baseline', S_P10)})",
           "baseline p10", interval="1h"),
         q(f"sum({at_hour('opretail_shop_walk_in', s, weeks_ago=1)})", "same hour last week", interval="1h")],
        w=24, h=10, bars=True, unit="short")
    band = as_line(band, "baseline median", [
        dm.DynamicConfigValue(id_val="custom.fillBelowTo", value="baseline p10"),
        dm.DynamicConfigValue(id_val="custom.fillOpacity", value=25),
        dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "blue"})])
    band = as_line(band, "baseline p10", [
        dm.DynamicConfigValue(id_val="custom.lineWidth", value=0),
        dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "blue"})])
    p.append(dashed(as_line(band, "same hour last week"), "same hour last week"))
    p.append(ts_panel(
        i, "Hourly counts",
        "Walk-in, passing, outside (walk-in + passing) and walk-out per hour. A line the vendor does not send "
        "is missing, never drawn at 0: walk-out where face-counting devices count, passing and outside where "
        "the shop has no outside counter. " + AT_HOUR_DESC,
        [q(at_hour(f"opretail_shop_{m}", s), m.replace("_", "-"), interval="1h")
         for m in ("walk_in", "passing", "outside", "walk_out")], w=12, h=8, unit="short"))
    p.append(ts_panel(
        i, "Rates",
        "Walk-in rate and fitting rate (ratios 0-1) per hour; no walk-in rate without an outside counter, no "
        "fitting rate without a fitting-room counter. " + AT_HOUR_DESC,
        [q(at_hour("opretail_shop_walk_in_rate", s), "walk-in rate", interval="1h"),
         q(at_hour("opretail_shop_fitting_rate", s), "fitting rate", interval="1h")], w=12, h=8, unit="percentunit"))
    p.append(ts_panel(
        i, "Devices of this shop",
        "Walk-ins and walk-outs per hour of the counting devices configured with this shop_id (a face-counting "
        "device has no walk-out line). " + AT_HOUR_DESC,
        [q(at_hour("opretail_device_walk_in", s, kind="device"), "{{device_name}} {{mac}} in", interval="1h"),
         q(at_hour("opretail_device_walk_out", s, kind="device"), "{{device_name}} {{mac}} out", interval="1h")],
        w=12, h=8, unit="short"))
    p.append(table_panel(
        i, "Devices of this shop: latest hour and today",
        "Each device of the shop: walk-ins and walk-outs of the latest hour and of the day so far, and the age "
        "of its latest hour. " + DEVICE_DAY_DESC,
        [f"{DEVICE_BY} (opretail_device_{m}{s})" for m in ("walk_in", "walk_out", "walk_in_today", "walk_out_today")]
        + [f"time() - opretail_device_hour_timestamp_seconds{s}"],
        ["walk-in, latest hour", "walk-out, latest hour", "walk-in today", "walk-out today", "data age"],
        w=12, h=8, units={"data age": ("s", None)}))
    info = table_panel(
        i, "Shop metadata",
        "opretail_shop_info of the selected shop: its organisation (org_id, empty for a shop configured "
        "directly) and the static labels set in the configuration (region, city, manager, ...).",
        [f"opretail_shop_info{s}"], ["info"], w=24, h=4, hide=("info",))
    p.append(info)
    return dashboard(SHOP_DETAIL_UID, "Opretail / Shop detail",
                     "One shop of one account: walk-ins per hour against its own baseline (median, p10 band) and "
                     "the same hour last week, today vs last week, counts, rates, its devices. A shop id that two "
                     "accounts share is two shops: the Account of the shop variable picks one, never their sum.", p,
                     [query_var("region", "Region", "label_values(opretail_shop_info, region)", multi=True,
                                include_all=True),
                      query_var("org", "Organisation", 'label_values(opretail_shop_info{region=~"$region"}, org_id)',
                                multi=True, include_all=True),
                      query_var("shop", "Shop", f"query_result({SHOP_CHOICES})", regex=SHOP_REGEX,
                                sort=dm.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC),
                      shop_account_var()],
                     tags=("people-counting",), time_from="now-7d")

# ---------------------------------------------------------------------------------------------
# 3. Devices
# ---------------------------------------------------------------------------------------------


def devices():
    s = '{shop_id=~"$shop", mac=~"$device"}'
    SHOPS_SEL = '{shop_id=~"$shop"}'
    i = Ids()
    p = [
        stat_panel(i, "Devices reporting", "Devices with data, over the selected accounts.",
                   f"count(opretail_device_walk_in{s})", w=4),
        stat_panel(i, "Silent devices, latest hour",
                   "Devices whose latest hour was an opening hour of their shop (opretail_shop_open == 1) and counted "
                   "zero walk-ins, plus devices whose data is older than 2.5 h (0 when none), over the selected "
                   "accounts.",
                   f"count((opretail_device_walk_in{s} == 0) and {ON_SHOP} {OPEN}"
                   f" or (time() - opretail_device_hour_timestamp_seconds{s} > 9000)) or vector(0)", w=5,
                   steps=ZERO_GOOD),
        stat_panel(i, "Device walk-ins, latest hour", "Sum of opretail_device_walk_in over the selected devices."
                   + ACCOUNTS_SUM,
                   f"sum(opretail_device_walk_in{s})", w=5),
        stat_panel(i, "Device walk-ins today", "Sum of opretail_device_walk_in_today over the selected devices."
                   + ACCOUNTS_SUM + " " + DEVICE_DAY_DESC, f"sum(opretail_device_walk_in_today{s})", w=5),
        stat_panel(i, "Oldest device data hour age", "time() minus the oldest device hour timestamp.",
                   f"time() - min(opretail_device_hour_timestamp_seconds{s})", w=5, unit="s", steps=GREEN_RED_AGE),
        ts_panel(i, "Walk-ins per device", "opretail_device_walk_in per hour. " + AT_HOUR_DESC,
                 [q(at_hour("opretail_device_walk_in", s, kind="device"), "{{device_name}} {{mac}} (shop {{shop_id}})",
                    interval="1h")], w=12, h=9, unit="short"),
        ts_panel(i, "Walk-outs per device",
                 "opretail_device_walk_out per hour. Face-counting devices cannot count walk-outs: they have no "
                 "line here, never a line at 0. " + AT_HOUR_DESC,
                 [q(at_hour("opretail_device_walk_out", s, kind="device"), "{{device_name}} {{mac}} (shop {{shop_id}})",
                    interval="1h")], w=12, h=9, unit="short"),
        table_panel(i, "Silent devices (opening hours, last 24 h)",
                    "Per device, the hours of the last 24 h that were opening hours of its shop (opretail_shop_open "
                    "== 1) with zero walk-ins, sampled once per hour. Devices with none are hidden: an empty table "
                    "is good news.",
                    [f"sort_desc(sum by (instance, job, account, mac, device_name, shop_id) (sum_over_time(((opretail_device_walk_in{s} "
                     f"== bool 0) and {ON_SHOP} {OPEN})[24h:1h])))"],
                    ["zero-walk-in open hours"], w=12, h=9, sort_col="zero-walk-in open hours",
                    only=("zero-walk-in open hours", "greater", 0), link=True),
        table_panel(i, "Oldest device data (top 20)",
                    "The 20 devices with the oldest latest hour: time() - opretail_device_hour_timestamp_seconds. "
                    "Normal 1 h to 2 h; above 2.5 h the data is stale.",
                    [f"topk(20, time() - opretail_device_hour_timestamp_seconds{s})"], ["data age"], w=12, h=9,
                    sort_col="data age", link=True, units={"data age": ("s", None)}),
        ts_panel(i, "Device sum vs shop count",
                 "Per hour, the sum of the walk-ins of a shop's devices next to the shop's own walk-ins: a gap shows a "
                 "device missing or miscounting. Per account and shop: a shop id of two accounts is two shops. "
                 + AT_HOUR_DESC,
                 [q(f"sum by (account, shop_id) ({at_hour('opretail_device_walk_in', SHOPS_SEL, kind='device')})",
                    "devices of {{shop_id}}{{account_suffix}}", interval="1h"),
                  q(f"{at_hour('opretail_shop_walk_in', SHOPS_SEL)} and on(account, shop_id) "
                    "group by (account, shop_id) (opretail_device_walk_in{shop_id=~\"$shop\"})",
                    "shop {{shop_id}} {{shop_name}}{{account_suffix}}",
                    interval="1h")], w=12, h=8, unit="short"),
        table_panel(i, "Devices today",
                    "Walk-ins and walk-outs of each selected device over the shop-local day so far. " + DEVICE_DAY_DESC
                    + " An empty walk-out cell: the device cannot count walk-outs (face counting), not 0.",
                    [f"{DEVICE_BY} (opretail_device_{m}_today{s})" for m in ("walk_in", "walk_out")],
                    ["walk-in today", "walk-out today"], w=12, h=8, sort_col="walk-in today", link=True),
    ]
    return dashboard("opretail-devices", "Opretail / Devices",
                     "Counting devices of the selected accounts: walk-in/out per device, silent devices, data age.", p,
                     [query_var("shop", "Shop",
                                f"query_result(max by (shop_id, shop_name) ((opretail_shop_info or {SHOP_FALLBACK}) "
                                "and on(account, shop_id) group by (account, shop_id) (opretail_device_walk_in)))",
                                multi=True, include_all=True, regex=SHOP_REGEX,
                                sort=dm.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC),
                      query_var("device", "Device (mac)", 'label_values(opretail_device_walk_in{shop_id=~"$shop"}, mac)',
                                multi=True, include_all=True)],
                     tags=("people-counting",))

# ---------------------------------------------------------------------------------------------
# 4. Exporter and gateway health
# ---------------------------------------------------------------------------------------------


def health():
    i_ = '{instance=~"$instance"}'
    i = Ids()
    p = [
        stat_panel(i, "Exporter up", "up of the scrape jobs matching job=~\".*opretail.*\" (1 = scraped)." + PROCESS_DESC,
                   'up{job=~".*opretail.*", instance=~"$instance"}', legend="{{instance}}",
                   steps=[(None, "red"), (1, "green")]),
        stat_panel(i, "Version", "opretail_exporter_build_info." + PROCESS_DESC, f"opretail_exporter_build_info{i_}",
                   legend="{{version}} ({{revision}})", text_mode=cm.BigValueTextMode.NAME),
        stat_panel(i, "Targets down", "Configured shops/organisations/devices whose last gateway request failed "
                   "(0 when none), over the selected accounts; the table below lists them with their account.",
                   f"count(opretail_target_up{i_} == 0) or vector(0)", steps=ZERO_GOOD),
        stat_panel(i, "Gateway error ratio",
                   "Failed / sent gateway requests over the dashboard time range (0 when no error series exist)."
                   + ACCOUNTS_SUM,
                   f"(sum(increase(opretail_api_errors_total{i_}[$__range])) or vector(0)) / "
                   f"sum(increase(opretail_api_requests_total{i_}[$__range]))", unit="percentunit", decimals=2,
                   steps=[(None, "green"), (0.05, "red")]),
        stat_panel(i, "Last poll duration", "opretail_poll_duration_seconds: duration of the last complete poll."
                   + PER_ACCOUNT, f"max by (account) (opretail_poll_duration_seconds{i_})", legend="{{account}}",
                   unit="s"),
        stat_panel(i, "Oldest data hour age", "time() minus the oldest shop or device hour timestamp, over the "
                   "selected accounts.",
                   f"time() - min(min(opretail_shop_hour_timestamp_seconds{i_}) or "
                   f"min(opretail_device_hour_timestamp_seconds{i_}))", unit="s", steps=GREEN_RED_AGE),
    ]
    hour = [(None, "green"), (2700, "yellow"), (3600, "red")]
    refresh = db.Row("Refresh vs the hour")
    for x in (
        stat_panel(i, "Last refresh duration",
                   "opretail_refresh_duration_seconds: how long the last full refresh (the first poll for a new hour) "
                   "took. It must end well within the hour (3,600 s), or the next hour starts before this one is "
                   "published." + PER_ACCOUNT, f"max by (account) (opretail_refresh_duration_seconds{i_})",
                   legend="{{account}}", w=4, unit="s", steps=hour),
        stat_panel(i, "Predicted refresh time",
                   "opretail_refresh_budget_seconds: the least time a full refresh can take, its gateway calls "
                   "(opretail_refresh_requests) divided by the configured requests_per_second. Over 3,600 s the hour "
                   "is over before it is refreshed: raise the rate or shard." + PER_ACCOUNT,
                   f"max by (account) (opretail_refresh_budget_seconds{i_})", legend="{{account}}", w=4, unit="s",
                   steps=hour),
        stat_panel(i, "Rate limit in force",
                   "opretail_api_rate_limit_requests_per_second: lowered after -100 API_CALL_REPEAT answers, won back "
                   "on success. Below the configured rate: the gateway is pushing back." + PER_ACCOUNT,
                   f"min by (account) (opretail_api_rate_limit_requests_per_second{i_})", legend="{{account}}", w=4,
                   unit="reqps", decimals=2),
        stat_panel(i, "Configured rate",
                   "gateway.requests_per_second as configured "
                   "(opretail_api_rate_limit_configured_requests_per_second)." + PER_ACCOUNT,
                   f"max by (account) (opretail_api_rate_limit_configured_requests_per_second{i_})",
                   legend="{{account}}", w=4, unit="reqps", decimals=2),
        table_panel(i, "Reload status",
                    "opretail_config_last_reload_successful and, with --web.config.file, "
                    "opretail_web_config_last_reload_successful: 1 when the last (re)load succeeded, 0 when it failed "
                    "(the exporter keeps the previous configuration), with the time of the last successful load."
                    + PROCESS_DESC,
                    [f'label_replace(opretail_config_last_reload_successful{i_}, "file", "config", "", "") or '
                     f'label_replace(opretail_web_config_last_reload_successful{i_}, "file", "web config", "", "")',
                     f'label_replace(opretail_config_last_reload_success_timestamp_seconds{i_} * 1000, "file", "config", "", "") or '
                     f'label_replace(opretail_web_config_last_reload_success_timestamp_seconds{i_} * 1000, "file", "web config", "", "")'],
                    ["successful", "last success"], w=8, h=4, units={"last success": ("dateTimeAsIso", None)}),
    ):
        p.append(x)
    p.insert(6, refresh)
    dur = ts_panel(i, "Refresh duration and predicted time vs the hour",
                   "opretail_refresh_duration_seconds (measured) and opretail_refresh_budget_seconds (predicted) "
                   "against the hour (the red dashed line at 3,600 s)." + PER_ACCOUNT,
                   [q(f"max by (account) (opretail_refresh_duration_seconds{i_})", "refresh duration{{account_suffix}}"),
                    q(f"max by (account) (opretail_refresh_budget_seconds{i_})", "predicted refresh time{{account_suffix}}")],
                   w=8, h=8, unit="s",
                   steps=[(None, "transparent"), (3600, "red")])
    p.append(dur.thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED))
             .axis_soft_max(3600))
    p.append(ts_panel(i, "Rate limit in force vs configured",
                      "The request rate in force (opretail_api_rate_limit_requests_per_second) against the "
                      "configured requests_per_second (dashed)." + PER_ACCOUNT,
                      [q(f"min by (account) (opretail_api_rate_limit_requests_per_second{i_})", "in force{{account_suffix}}"),
                       q(f"max by (account) (opretail_api_rate_limit_configured_requests_per_second{i_})",
                         "configured{{account_suffix}}")], w=8, h=8, unit="reqps").override_by_regexp("configured.*", [DASH]))
    p.append(ts_panel(i, "Retries by method",
                      "Requests retried after a transient failure (opretail_api_retries_total), per method and "
                      "interval. Retries that then succeed are not errors of the hour's data; a steady rate slows the "
                      "refresh." + PER_ACCOUNT,
                      [q(f"sum by (account, method) (increase(opretail_api_retries_total{i_}[$__rate_interval]))",
                         "{{method}}{{account_suffix}}")],
                      w=8, h=8, unit="short"))
    p.append(db.Row("Targets"))
    p.append(table_panel(
        i, "Failing targets",
        "Configured targets (S_/O_ ids, device macs) whose last gateway request failed (opretail_target_up == 0), "
        "with the time since their last success. Targets that are up are hidden: an empty table is good news."
        + ACCOUNT_ROWS,
        [f"opretail_target_up{i_}", f"time() - opretail_target_last_success_timestamp_seconds{i_}"],
        ["up", "since last success"], w=12, h=8, sort_col="since last success", only=("up", "lower", 1),
        units={"since last success": ("s", None)}))
    p.append(ts_panel(i, "Targets down over time",
                      "count(opretail_target_up == 0): targets whose last request failed." + PER_ACCOUNT,
                      [q(f"count by (account) (opretail_target_up{i_} == 0) or count by (account) (opretail_target_up{i_}) * 0",
                         "targets down{{account_suffix}}")], w=12, h=8,
                      steps=ZERO_GOOD))
    p.append(db.Row("Gateway"))
    p.append(ts_panel(i, "Gateway requests by method",
                      "rate(opretail_api_requests_total) per gateway method." + PER_ACCOUNT,
                      [q(f"sum by (account, method) (rate(opretail_api_requests_total{i_}[$__rate_interval]))",
                         "{{method}}{{account_suffix}}")],
                      unit="reqps"))
    p.append(ts_panel(i, "Gateway errors by code",
                      "increase(opretail_api_errors_total) per error code, named (\"7 SIGN_WRONG\"; http_503, timeout, "
                      "transport, decode keep their name). Error series only exist after a first error." + PER_ACCOUNT,
                      [q(with_code_name(f"sum by (account, code) (increase(opretail_api_errors_total{i_}[$__rate_interval]))"),
                         "{{code_name}}{{account_suffix}}")], unit="short"))
    p.append(table_panel(i, "Errors by code and method (time range)",
                         "Gateway errors over the dashboard time range per (method, code), with the gateway code name."
                         + ACCOUNT_ROWS,
                         ["sort_desc(" + with_code_name(
                             f"sum by (account, method, code) (increase(opretail_api_errors_total{i_}[$__range]))") + ")"],
                         ["errors"], sort_col="errors"))
    p.append(ts_panel(i, "Request latency",
                      "Quantiles of opretail_api_request_duration_seconds per method (histogram_quantile)."
                      + PER_ACCOUNT,
                      [q(f"histogram_quantile({x}, sum by (le, account, method) (rate(opretail_api_request_duration_seconds_bucket{i_}"
                         f"[$__rate_interval])))", f"p{int(x * 100)} {{{{method}}}}{{{{account_suffix}}}}") for x in (0.5, 0.9, 0.99)],
                      unit="s"))
    p.append(ts_panel(i, "Data age", "Age of the newest and the oldest shop hour timestamp and the oldest device hour, "
                      "over the selected accounts.",
                      [q(f"time() - max(opretail_shop_hour_timestamp_seconds{i_})", "newest shop hour"),
                       q(f"time() - min(opretail_shop_hour_timestamp_seconds{i_})", "oldest shop hour"),
                       q(f"time() - min(opretail_device_hour_timestamp_seconds{i_})", "oldest device hour")],
                      unit="s", steps=GREEN_RED_AGE))
    rss = ts_panel(i, "Poll duration and exporter process",
                   "opretail_poll_duration_seconds (per account: each has its own poll loop) and the exporter's "
                   "resident memory (the process: all its accounts).",
                   [q(f"opretail_poll_duration_seconds{i_}", "poll duration {{instance}}{{account_suffix}}"),
                    q('process_resident_memory_bytes{job=~".*opretail.*", instance=~"$instance"}', "RSS {{instance}}")],
                   unit="s")
    p.append(rss.override_by_regexp("RSS.*", [dm.DynamicConfigValue(id_val="unit", value="bytes"),
                                              dm.DynamicConfigValue(id_val="custom.axisPlacement", value="right")]))
    p.append(db.Row("Gateway conventions"))
    p.append(table_panel(
        i, "Fields missing from gateway answers",
        "Rows of the last answer of each gateway method that lacked a field the exporter reads "
        "(opretail_gateway_fields_missing). Rows at 0 are hidden: an empty table means every field was there. "
        "Run `opretail-exporter doctor --config FILE` (with --account NAME for one account) to see what the gateway "
        "sends." + ACCOUNT_ROWS,
        [f"sort_desc(opretail_gateway_fields_missing{i_})"], ["rows without it"], w=8, h=7,
        sort_col="rows without it", only=("rows without it", "greater", 0)))
    p.append(stat_panel(i, "Clock skew",
                        "opretail_gateway_clock_skew_seconds: this host's clock minus the gateway's stat.systime "
                        "(positive: the host is ahead). The gateway refuses requests too far off (code 16 "
                        "TIMESTAMP_OVERTIME); red beyond ±120 s. Fix NTP on the exporter's host." + PER_ACCOUNT,
                        f"opretail_gateway_clock_skew_seconds{i_}", w=4, h=7, legend="{{instance}}{{account_suffix}}", unit="s", decimals=1,
                        steps=[(None, "red"), (-120, "green"), (120, "red")]))
    p.append(table_panel(
        i, "Conventions in force",
        "opretail_gateway_convention: how the exporter reads the gateway's rows. row_time: a row's time is the start "
        "or the end of the hour it counts; rate_scale: percent or fraction. source: configured, detected or assumed "
        "(the answers did not decide yet; if it stays, run doctor and set the value)." + ACCOUNT_ROWS,
        [f"opretail_gateway_convention{i_} == 1"], ["in force"], w=6, h=7, hide=("in force",)))
    p.append(ts_panel(i, "Hour revisions",
                      "Hours already published whose value changed at a re-poll (a late upload), per hour: increase of "
                      "opretail_shop_hour_revisions_total and opretail_device_hour_revisions_total over 1 h."
                      + PER_ACCOUNT,
                      [q(f"sum by (account) (increase(opretail_{k}_hour_revisions_total{i_}[1h]))",
                         f"{k} hours revised{{{{account_suffix}}}}")
                       for k in ("shop", "device")], w=6, h=7, unit="short"))
    return dashboard("opretail-health", "Opretail / Exporter and gateway health",
                     "opretail-exporter and the Opretail gateway: refresh vs the hour (duration, predicted time, rate "
                     "limit, retries, reloads), failing targets, requests, errors by code, latency, data age, gateway "
                     "conventions.", p,
                     [query_var("instance", "Exporter instance", "label_values(opretail_target_up, instance)",
                                multi=True, include_all=True)],
                     tags=("monitoring",), time_from="now-6h")


def main():
    for name, d in (("opretail-chain-overview", chain_overview()), ("opretail-shop-detail", shop_detail()),
                    ("opretail-devices", devices()), ("opretail-health", health())):
        path = os.path.join(OUT, name + ".json")
        with open(path, "w") as f:
            json.dump(d, f, indent=2, sort_keys=True)
            f.write("\n")
        print("wrote", os.path.relpath(path, ROOT))


if __name__ == "__main__":
    main()
