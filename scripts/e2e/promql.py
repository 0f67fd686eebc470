"""PromQL forms shared by the dashboard generator and the end-to-end test (stdlib only)."""

import re

# A shop (a device) is (instance, job, account, shop_id) ((..., mac)): an exporter with several
# accounts labels its series with `account`, the single-account form has none (it matches as empty).
ON_SHOP = "on(instance, job, account, shop_id)"
ON_DEVICE = "on(instance, job, account, mac)"

# The dashboards' account variable, a matcher on every selector of a per-account series.
ACCOUNT_MATCHER = 'account=~"$account"'
# Series of the exporter process, the same for all its accounts: no `account` label.
PROCESS_WIDE = re.compile(r"opretail_(exporter_build_info|config_|web_config_)")
_SELECTOR = re.compile(r'"(?:[^"\\]|\\.)*"|\b(opretail_[A-Za-z0-9_]+)(\{[^}]*\})?')


def with_account(expr: str) -> str:
    """`expr` with `account=~"$account"` added to the selector of every per-account opretail_
    series (not the process-wide ones, not inside strings, not where an account matcher is set)."""
    def add(m):
        name, sel = m.group(1), m.group(2)
        if name is None or PROCESS_WIDE.match(name) or (sel and re.search(r"\baccount\s*[!=]", sel)):
            return m.group(0)
        inner = sel[1:-1].strip() if sel else ""
        return f"{name}{{{ACCOUNT_MATCHER}{', ' + inner if inner else ''}}}"
    return _SELECTOR.sub(add, expr)


# A legend's account: ` (<account>)` on the series of a named account, nothing on the single-account
# form's series (no `account` label), so "refresh duration{{account_suffix}}" reads "refresh duration
# (brand-a)" or "refresh duration", never with a dangling space. Grafana's legend format only
# substitutes labels; the query makes the label (with_account_suffix).
ACCOUNT_SUFFIX = "{{account_suffix}}"


def with_account_suffix(expr: str) -> str:
    """`expr` with an `account_suffix` label, " (<account>)" where the series has an account and
    absent where it has none (label_replace leaves a series alone when the regex does not match)."""
    return f'label_replace({expr}, "account_suffix", " ($1)", "account", "(.+)")'


def without_stat(sel: str) -> str:
    """`sel` without its `stat` matcher: the hour timestamps have no `stat` label (the baseline's
    statistics do)."""
    inner = [m for m in re.findall(r'\w+\s*[!=]~?\s*"(?:[^"\\]|\\.)*"', sel) if not m.startswith("stat")]
    return "{" + ", ".join(inner) + "}" if inner else ""


def at_hour(metric: str, sel: str = "", weeks_ago: int = 0, kind: str = "shop", ts: str = "") -> str:
    """`metric` placed at the hour it describes, for a range query with a one-hour step.

    A value of hour H is scraped from about H+1h+hour_delay until the next hour's value replaces
    it; a backfilled value sits at H itself. At each step t this picks, from the windows (t-1h, t],
    (t, t+1h] and (t+1h, t+2h] (negative offsets), the last sample whose hour timestamp (`ts`,
    by default opretail_<kind>_hour_timestamp_seconds) names the hour containing t: the backfilled
    sample, or the live one scraped an hour or two later. `weeks_ago` moves the whole lookup back
    that many weeks (the same hour a week earlier, drawn at this week's hour)."""
    ts = ts or f"opretail_{kind}_hour_timestamp_seconds"
    ts_sel = without_stat(sel)
    on = ON_SHOP if kind == "shop" else ON_DEVICE
    shift = f" + {weeks_ago * 604800}" if weeks_ago else ""
    parts = []
    for k in (0, 1, 2):
        hours = weeks_ago * 168 - k
        off = f" offset {hours}h" if hours else ""
        parts.append(f"(last_over_time({metric}{sel}[1h]{off}) and {on} "
                     f"(last_over_time({ts}{ts_sel}[1h]{off}){shift} > time() - 3600 <= time()))")
    return "(" + " or ".join(parts) + ")"
