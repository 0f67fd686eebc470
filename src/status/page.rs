//! The status page as HTML, rendered on the server: readable without JavaScript, a little
//! inline CSS, no assets. Only the rows of the asked page are rendered. Every text that can
//! come from the vendor (shop and device names, error names, messages, `stat.cid`) and the
//! query echoed back goes through [`escape`]: markup characters become entities, and control
//! and bidi characters were made visible by [`crate::client::sanitize`] before. CJK and other
//! text stay as they are (the page is UTF-8). With named accounts the page links to "All
//! accounts" and to each account; merged, each row's account links to that account's view and
//! the summary has a line per account (its rate limit and last hour).

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{DateTime, TimeZone as _};
use chrono_tz::Tz;

use super::board::{Figures, Row, Table};
use super::query::{Query, StatusFilter, PAGE_SIZE};
#[cfg(test)]
use super::summary::Summary;
use super::view::Frame;
use super::AccountView;
use crate::client::sanitize;

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em;margin:0 0 .3em}nav a{margin-right:1em}\
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;margin:.8em 0}dt{font-weight:600}dd{margin:0}\
table{border-collapse:collapse;margin:.6em 0}th,td{border-bottom:1px solid #ddd;padding:.25em .45em;text-align:left;vertical-align:top}\
#targets{font-size:13px}#targets td{white-space:nowrap}#targets td.name{white-space:normal;min-width:8em}\
th{background:#f4f4f4;position:sticky;top:0}td.n{text-align:right;font-variant-numeric:tabular-nums}\
tr.down td{background:#fdecea}.bad{color:#b00020;font-weight:600}.ok{color:#1b5e20}\
li.warning{color:#8a4b00}li.note{color:#555}.muted{color:#777}code{font-size:.95em}\
form{margin:.8em 0}input[name=q]{width:20em}.pager a,.pager span{margin-right:.8em}";

/// `s` for HTML text or a quoted attribute: `& < > " '` as entities, control and bidi
/// characters as visible escapes ([`sanitize`]).
pub(crate) fn escape(s: &str) -> Cow<'_, str> {
    let s = sanitize(s);
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Unix seconds as local time in `tz` (`2024-05-01 14:30:05`).
fn local(tz: Tz, unix: f64) -> String {
    match DateTime::from_timestamp(unix.floor() as i64, 0) {
        Some(t) => tz
            .from_utc_datetime(&t.naive_utc())
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        None => "—".into(),
    }
}

/// A duration in seconds, roughly (`45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`).
pub(crate) fn span(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// A time and how long ago (or from now) it is.
fn when(tz: Tz, now: f64, t: Option<f64>) -> String {
    match t {
        None => "<span class=\"muted\">—</span>".into(),
        Some(t) if t > now + 0.5 => format!("{} (in {})", local(tz, t), span(t - now)),
        Some(t) => format!("{} ({} ago)", local(tz, t), span(now - t)),
    }
}

/// How long ago `t` was, with the time itself as a tooltip (table cells).
fn ago(tz: Tz, now: f64, t: Option<f64>) -> String {
    match t {
        None => "<span class=\"muted\">—</span>".into(),
        Some(t) => format!("<span title=\"{}\">{} ago</span>", local(tz, t), span(now - t)),
    }
}

/// A count (`12`, `12.5`) or a rate as a percentage; a dash when not sent.
fn count(v: Option<f64>) -> String {
    match v {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
        None => "—".into(),
    }
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |r| format!("{:.1} %", r * 100.0))
}

/// The whole page for `query`, as of `now` (Unix seconds). (the single-account form).
#[cfg(test)]
pub(crate) fn render_page(table: &Table, summary: &Summary, query: &Query, now: f64, next_poll: Option<f64>) -> String {
    render_page_of(table, summary, query, now, next_poll, None)
}

/// The whole page for `query` of the account `view` shows (`None`: the single-account form,
/// without an account column or links).
#[cfg(test)]
pub(crate) fn render_page_of(
    table: &Table,
    summary: &Summary,
    query: &Query,
    now: f64,
    next_poll: Option<f64>,
    view: Option<AccountView<'_>>,
) -> String {
    let part = [super::view::Part {
        name: view.and_then(|v| v.shown),
        table,
        summary,
    }];
    render_page_frame(&Frame::one(&part, query, now, next_poll, view), query)
}

/// The whole page of `frame`, asked by `query`: one account (with an account column and links
/// to the others when accounts are named, none in the single-account form), or all accounts
/// merged (each row's account a link to its own view, the summary's rate limit per account).
pub(crate) fn render_page_frame(frame: &Frame<'_>, query: &Query) -> String {
    let view = frame.view;
    let tz = frame.overview.tz;
    let mut h = String::with_capacity(64 * 1024 + frame.rows.len() * 1024);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    h.push_str("<title>Opretail Exporter</title><style>");
    h.push_str(STYLE);
    h.push_str("</style></head><body>\n<h1>Opretail Exporter</h1>\n");
    h.push_str("<p>Hourly people-counting data of the Opretail (Ovopark) open platform, for Prometheus.</p>\n");
    h.push_str("<nav><a href=\"/metrics\">Metrics</a><a href=\"/-/healthy\">Health</a><a href=\"/-/ready\">Readiness</a><a href=\"/api/v1/targets\">Targets as JSON</a></nav>\n");
    if let Some(view) = view {
        accounts_nav(&mut h, view);
    }
    summary_html(&mut h, frame);
    filter_form(&mut h, query, view);
    let first = (query.page - 1) * PAGE_SIZE;
    let _ = writeln!(
        h,
        "<p id=\"shown\">{} of {} matching targets shown (page {} of {}).</p>",
        frame.rows.len(),
        frame.total,
        query.page,
        frame.pages
    );
    h.push_str("<table id=\"targets\"><thead><tr><th>#</th><th>Status</th><th>Kind</th>");
    if view.is_some() {
        h.push_str("<th>Account</th>");
    }
    h.push_str("<th>Target</th><th>Name</th>\
<th>Last success</th><th>Data hour (age)</th><th>Walk-ins, hour</th><th>Walk-outs, hour</th><th>Walk-in rate, hour</th>\
<th>Walk-ins, today</th><th>Walk-outs, today</th><th>Last error</th><th>Error name</th><th>stat.cid</th></tr></thead>\n<tbody>\n");
    let linked = frame.merged().then_some(query);
    for (i, picked) in frame.rows.iter().enumerate() {
        let account = frame.account_of(picked).map(|name| (name, linked));
        row_html(
            &mut h,
            frame.table_of(picked),
            picked.row,
            first + i + 1,
            frame.now,
            account,
        );
    }
    h.push_str("</tbody></table>\n");
    pager(&mut h, query, frame.pages);
    let _ = writeln!(
        h,
        "<footer class=\"muted\">opretail-exporter {}. Times are in {}. Rows sort failing targets first.</footer>\n</body></html>",
        env!("CARGO_PKG_VERSION"),
        escape(tz.name())
    );
    h
}

fn summary_html(h: &mut String, frame: &Frame<'_>) {
    let o = &frame.overview;
    let s = &*frame.summary;
    let (tz, now) = (o.tz, frame.now);
    h.push_str("<section id=\"summary\"><dl>\n");
    let up_class = if o.down > 0 { "bad" } else { "ok" };
    let _ = writeln!(
        h,
        "<dt>Targets up</dt><dd id=\"targets-up\" class=\"{up_class}\">{} of {}</dd>",
        o.up, o.targets
    );
    let oldest = if frame.merged() {
        " (the oldest of the accounts')"
    } else {
        ""
    };
    if o.polled_at.is_none() {
        let which = if frame.merged() { " by every account" } else { "" };
        let _ = writeln!(
            h,
            "<dt>Last poll</dt><dd class=\"muted\">no poll has completed yet{which}</dd>"
        );
    } else {
        let hour = o.hour.map_or(String::new(), |hr| {
            format!(", for the hour {}", hr.format("%Y-%m-%d %H:00"))
        });
        let _ = writeln!(
            h,
            "<dt>Last poll</dt><dd>{}{hour}{oldest}</dd>",
            when(tz, now, o.polled_at)
        );
    }
    let _ = writeln!(
        h,
        "<dt>Last full refresh</dt><dd>{}{}</dd>",
        when(tz, now, o.refreshed_at),
        if o.refreshed_at.is_some() { oldest } else { "" }
    );
    let _ = writeln!(h, "<dt>Next poll</dt><dd>{}</dd>", when(tz, now, frame.next_poll));
    if frame.merged() {
        h.push_str("<dt>Rate limit</dt><dd>per account, below</dd>\n");
    } else {
        let _ = writeln!(
            h,
            "<dt>Rate limit</dt><dd>{} requests/s in force (configured {})</dd>",
            count(Some((s.rate_limit * 100.0).round() / 100.0)),
            count(Some(s.configured_rate))
        );
    }
    let _ = writeln!(
        h,
        "<dt>Gateway, last hour</dt><dd id=\"last-hour\">{} requests, {} failed</dd>",
        s.requests,
        s.failed()
    );
    h.push_str("</dl>\n");
    if frame.merged() {
        account_lines(h, frame);
    }
    if !s.errors.is_empty() {
        h.push_str("<table id=\"errors\"><thead><tr><th>Error code</th><th>Name</th><th>Requests, last hour</th></tr></thead><tbody>\n");
        for e in &s.errors {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td></tr>",
                escape(&e.code),
                escape(&e.name),
                e.requests
            );
        }
        h.push_str("</tbody></table>\n");
    }
    if s.warnings.is_empty() {
        h.push_str("<p id=\"warnings\" class=\"muted\">No warnings.</p>\n");
    } else {
        h.push_str("<ul id=\"warnings\">\n");
        for (level, text) in &s.warnings {
            let _ = writeln!(
                h,
                "<li class=\"{}\">{}: {}</li>",
                level.as_str(),
                level.as_str(),
                escape(text)
            );
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</section>\n");
}

/// The merged view's figures of each account: targets, last poll, rate limit, last hour.
fn account_lines(h: &mut String, frame: &Frame<'_>) {
    let (tz, now) = (frame.overview.tz, frame.now);
    h.push_str(
        "<table id=\"account-summary\"><thead><tr><th>Account</th><th>Targets up</th><th>Last poll</th>\
<th>Rate limit, requests/s (configured)</th><th>Requests, last hour</th><th>Failed</th></tr></thead><tbody>\n",
    );
    for a in &frame.accounts {
        let link = Query {
            account: a.name.to_string(),
            ..Query::default()
        }
        .link(1);
        let class = if a.up < a.targets { "bad" } else { "ok" };
        let failed = if a.failed > 0 { " bad" } else { "" };
        let _ = writeln!(
            h,
            "<tr><td><a href=\"/{}\">{}</a></td><td class=\"n {class}\">{} of {}</td><td>{}</td><td class=\"n\">{} ({})</td><td class=\"n\">{}</td><td class=\"n{failed}\">{}</td></tr>",
            escape(&link),
            escape(a.name),
            a.up,
            a.targets,
            ago(tz, now, a.polled_at),
            count(Some((a.rate_limit * 100.0).round() / 100.0)),
            count(Some(a.configured_rate)),
            a.requests,
            a.failed
        );
    }
    h.push_str("</tbody></table>\n");
}

/// "All accounts" and a link to every account, the one shown marked.
fn accounts_nav(h: &mut String, view: AccountView<'_>) {
    h.push_str("<nav id=\"accounts\">Accounts:");
    let current = |shown: bool| {
        if shown {
            " class=\"current\" aria-current=\"page\""
        } else {
            ""
        }
    };
    let _ = write!(h, "<a{} href=\"/\">All accounts</a>", current(view.shown.is_none()));
    for name in view.all {
        let link = Query {
            account: name.clone(),
            ..Query::default()
        }
        .link(1);
        let _ = write!(
            h,
            "<a{} href=\"/{}\">{}</a>",
            current(view.shown == Some(name.as_str())),
            escape(&link),
            escape(name)
        );
    }
    h.push_str("</nav>\n");
}

fn filter_form(h: &mut String, query: &Query, view: Option<AccountView<'_>>) {
    h.push_str("<form method=\"get\" action=\"/\">");
    if let Some(shown) = view.and_then(|v| v.shown) {
        let _ = write!(
            h,
            "<input type=\"hidden\" name=\"account\" value=\"{}\">",
            escape(shown)
        );
    }
    let _ = write!(
        h,
        "<label>Text <input name=\"q\" value=\"{}\" placeholder=\"id, name or error\"></label> <label>Status <select name=\"status\">",
        escape(&query.q)
    );
    for status in [StatusFilter::All, StatusFilter::Down, StatusFilter::Up] {
        let selected = if status == query.status { " selected" } else { "" };
        let _ = write!(h, "<option value=\"{0}\"{selected}>{0}</option>", status.as_str());
    }
    // Clearing the filter keeps the account shown.
    let clear = Query {
        account: view.and_then(|v| v.shown).unwrap_or_default().to_string(),
        ..Query::default()
    }
    .link(1);
    let clear = if clear == "?" { String::new() } else { clear };
    let _ = writeln!(
        h,
        "</select></label> <button type=\"submit\">Filter</button> <a href=\"/{}\">Clear</a></form>",
        escape(&clear)
    );
}

/// One row; `account`: its account's name (named accounts), and in the merged view the query
/// whose `q` and `status` its link to the account's own view keeps.
fn row_html(
    h: &mut String,
    table: &Table,
    row: &Row,
    number: usize,
    now: f64,
    account: Option<(&str, Option<&Query>)>,
) {
    let tz = table.tz;
    let shown = table.shown(row);
    let (class, status) = if row.up {
        ("up", "<span class=\"ok\">up</span>")
    } else {
        ("down", "<span class=\"bad\">DOWN</span>")
    };
    let id = escape(&row.id);
    let _ = write!(
        h,
        "<tr class=\"{class}\" data-target=\"{id}\"><td class=\"n\">{number}</td><td>{status}</td><td>{}</td>",
        row.kind.as_str()
    );
    match account {
        Some((name, None)) => {
            let _ = write!(h, "<td class=\"account\">{}</td>", escape(name));
        }
        Some((name, Some(query))) => {
            let link = Query {
                account: name.to_string(),
                page: 1,
                ..query.clone()
            }
            .link(1);
            let _ = write!(
                h,
                "<td class=\"account\"><a href=\"/{}\">{}</a></td>",
                escape(&link),
                escape(name)
            );
        }
        None => {}
    }
    let _ = write!(h, "<td><code>{id}</code></td>");
    match shown.shops {
        Some(n) => {
            let _ = write!(h, "<td class=\"name muted\">{n} shops</td>");
        }
        None => {
            let _ = write!(h, "<td class=\"name\">{}</td>", escape(shown.name));
        }
    }
    let _ = write!(h, "<td>{}</td>", ago(tz, now, row.last_success));
    match shown.data_hour {
        Some(start) => {
            let _ = write!(
                h,
                "<td>{} ({})</td>",
                local(tz, start as f64).get(5..16).unwrap_or_default(),
                span(now - start as f64)
            );
        }
        None => h.push_str("<td class=\"muted\">—</td>"),
    }
    let Figures {
        walk_in,
        walk_out,
        walk_in_rate,
        ..
    } = shown.hour;
    let _ = write!(
        h,
        "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
        count(walk_in),
        count(walk_out),
        percent(walk_in_rate),
        count(shown.today.walk_in),
        count(shown.today.walk_out)
    );
    match &row.error {
        Some(e) => {
            let at = format!("at {}: {}", local(tz, e.at), e.message);
            let stale = if row.up { " class=\"muted\"" } else { "" };
            let _ = write!(
                h,
                "<td{stale}><code>{}</code></td><td{stale} title=\"{}\">{}</td><td{stale}><code>{}</code></td>",
                escape(&e.code),
                escape(&at),
                escape(&e.name),
                escape(&e.cid)
            );
        }
        None => h.push_str("<td></td><td></td><td></td>"),
    }
    h.push_str("</tr>\n");
}

fn pager(h: &mut String, query: &Query, pages: usize) {
    h.push_str("<nav class=\"pager\">");
    let link = |h: &mut String, page: usize, text: &str, rel: &str| {
        if page == query.page || page == 0 || page > pages {
            let _ = write!(h, "<span class=\"muted\">{text}</span>");
        } else {
            let _ = write!(h, "<a rel=\"{rel}\" href=\"/{}\">{text}</a>", escape(&query.link(page)));
        }
    };
    link(h, 1, "« first", "first");
    link(h, query.page.saturating_sub(1), "‹ previous", "prev");
    let _ = write!(h, "<span>page {} of {pages}</span>", query.page);
    link(h, query.page + 1, "next ›", "next");
    link(h, pages, "last »", "last");
    h.push_str("</nav>\n");
}

#[cfg(test)]
mod tests {
    use super::super::board::tests::board_with;
    use super::*;

    fn summary() -> Summary {
        Summary {
            requests: 12,
            errors: vec![super::super::summary::ErrorCount {
                code: "7".into(),
                name: "SIGN_WRONG".into(),
                requests: 3,
            }],
            rate_limit: 5.0,
            configured_rate: 5.0,
            warnings: vec![(super::super::summary::Level::Warning, "clock <off>".into())],
        }
    }

    #[test]
    fn markup_quotes_and_controls_are_escaped_and_cjk_kept() {
        assert_eq!(escape("万店掌 \"旗舰\" \\ 店"), "万店掌 &quot;旗舰&quot; \\ 店");
        assert_eq!(
            escape("<script>alert('x')</script>&"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"
        );
        assert_eq!(escape("a\nb\u{202e}c"), r"a\nb\u{202e}c");
        assert!(matches!(escape("Shanghai Nanjing Rd"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_hostile_name_is_text_and_the_failing_target_comes_first() {
        let hostile = "万店掌 \"旗舰\" \\ 店<script>alert(1)</script>";
        let board = board_with(&[("S_1", true), ("S_2", false), ("O_9", true)], hostile);
        let t = board.table();
        let page = render_page(
            &t,
            &summary(),
            &Query::default(),
            1_714_550_000.0,
            Some(1_714_550_060.0),
        );
        assert!(!page.contains("<script>"), "no markup from the vendor");
        assert!(page.contains("万店掌 &quot;旗舰&quot; \\ 店&lt;script&gt;alert(1)&lt;/script&gt;"));
        let table = &page[page.find("<table id=\"targets\">").unwrap()..];
        let body = &table[table.find("<tbody>").unwrap()..table.find("</tbody>").unwrap()];
        assert_eq!(body.matches("<tr ").count(), 3);
        let first = body.find("data-target=\"S_2\"").unwrap();
        assert!(first < body.find("data-target=\"S_1\"").unwrap());
        assert!(body[first..].starts_with("data-target=\"S_2\"><td class=\"n\">1</td><td><span class=\"bad\">DOWN"));
        assert!(body.contains("<code>7</code></td><td title=\"at 2024-05-01 15:36:40: bad sig\">SIGN_WRONG</td><td><code>cid-7</code>"), "{body}");
        assert!(page.contains("<dd id=\"targets-up\" class=\"bad\">2 of 3</dd>"));
        assert!(page.contains("(in 60 s)"), "next poll");
        assert!(page.contains("clock &lt;off&gt;"));
        assert!(page.contains("<td class=\"name muted\">2 shops</td>"));
        for link in ["/metrics", "/-/healthy", "/-/ready", "/api/v1/targets"] {
            assert!(page.contains(&format!("href=\"{link}\"")), "{link}");
        }
    }

    #[test]
    fn the_pager_links_keep_the_filter() {
        let targets: Vec<String> = (1..=230).map(|i| format!("S_{i}")).collect();
        let refs: Vec<(&str, bool)> = targets.iter().map(|t| (t.as_str(), true)).collect();
        let board = board_with(&refs, "x");
        let t = board.table();
        let q = Query {
            q: "s_\"<".into(),
            status: StatusFilter::All,
            page: 1,
            account: String::new(),
        };
        let page = render_page(&t, &summary(), &q, 1_714_550_000.0, None);
        assert!(page.contains("value=\"s_&quot;&lt;\""), "the query is echoed escaped");
        let q = Query {
            q: "s_".into(),
            status: StatusFilter::Up,
            page: 2,
            account: String::new(),
        };
        let page = render_page(&t, &summary(), &q, 1_714_550_000.0, None);
        assert!(
            page.contains("<a rel=\"next\" href=\"/?q=s_&amp;status=up&amp;page=3\">"),
            "{page}"
        );
        assert!(page.contains("<a rel=\"prev\" href=\"/?q=s_&amp;status=up\">"));
        assert!(page.contains("100 of 230 matching targets shown (page 2 of 3)"));
        assert!(
            page.contains("<td class=\"n\">101</td>"),
            "rows are numbered across pages"
        );
    }

    #[test]
    fn with_named_accounts_rows_name_their_account_and_links_keep_it() {
        let targets: Vec<String> = (1..=130).map(|i| format!("S_{i}")).collect();
        let refs: Vec<(&str, bool)> = targets.iter().map(|t| (t.as_str(), true)).collect();
        let board = board_with(&refs, "x");
        let t = board.table();
        let all = vec!["brand-a".to_string(), "b<2>".to_string()];
        let view = AccountView {
            shown: Some("b<2>"),
            all: &all,
        };
        let q = Query::parse(Some("account=b%3C2%3E")).unwrap();
        let page = render_page_of(&t, &summary(), &q, 1_714_550_000.0, None, Some(view));
        assert!(page.contains("<th>Kind</th><th>Account</th><th>Target</th>"), "{page}");
        assert_eq!(page.matches("<td class=\"account\">b&lt;2&gt;</td>").count(), 100);
        assert!(
            page.contains("<a href=\"/?account=brand-a\">brand-a</a>"),
            "a link to the other"
        );
        assert!(page.contains("aria-current=\"page\" href=\"/?account=b%3C2%3E\">b&lt;2&gt;</a>"));
        assert!(page.contains("<input type=\"hidden\" name=\"account\" value=\"b&lt;2&gt;\">"));
        assert!(
            page.contains("<a href=\"/?account=b%3C2%3E\">Clear</a>"),
            "clearing keeps the account"
        );
        assert!(
            page.contains("href=\"/?account=b%3C2%3E&amp;page=2\""),
            "the pager keeps it"
        );
        let single = render_page(&t, &summary(), &Query::default(), 1_714_550_000.0, None);
        assert!(
            !single.contains("ccount"),
            "the single-account form has no account anywhere"
        );
    }

    #[test]
    fn all_accounts_merged_show_every_failing_row_first_each_linked_to_its_account() {
        let a = board_with(&[("S_1", true), ("S_2", false)], "A <one>");
        let b = board_with(&[("S_1", false), ("S_3", true)], "B one");
        let (ta, tb) = (a.table(), b.table());
        let (sa, sb) = (
            summary(),
            Summary {
                rate_limit: 2.5,
                ..summary()
            },
        );
        let parts = [
            super::super::view::Part {
                name: Some("brand-a"),
                table: &ta,
                summary: &sa,
            },
            super::super::view::Part {
                name: Some("b<2>"),
                table: &tb,
                summary: &sb,
            },
        ];
        let names = vec!["brand-a".to_string(), "b<2>".to_string()];
        let q = Query::parse(Some("q=s_&status=all")).unwrap();
        let frame = Frame::all(&parts, &names, &q, 1_714_550_000.0, Some(1_714_550_060.0));
        let page = render_page_frame(&frame, &q);
        assert!(
            page.contains("<nav id=\"accounts\">Accounts:<a class=\"current\" aria-current=\"page\" href=\"/\">All accounts</a><a href=\"/?account=brand-a\">brand-a</a><a href=\"/?account=b%3C2%3E\">b&lt;2&gt;</a></nav>"),
            "{page}"
        );
        assert!(
            !page.contains("name=\"account\""),
            "the form asks for all accounts again"
        );
        assert!(page.contains("<a href=\"/\">Clear</a>"));
        let table = &page[page.find("<table id=\"targets\">").unwrap()..];
        let body = &table[table.find("<tbody>\n").unwrap() + 8..table.find("</tbody>").unwrap()];
        let order: Vec<&str> = body
            .lines()
            .map(|l| {
                let cell = &l[l.find("<td class=\"account\">").unwrap()..];
                &cell[..cell.find("</td>").unwrap()]
            })
            .collect();
        assert_eq!(
            order,
            [
                "<td class=\"account\"><a href=\"/?account=b%3C2%3E&amp;q=s_\">b&lt;2&gt;</a>",
                "<td class=\"account\"><a href=\"/?account=brand-a&amp;q=s_\">brand-a</a>",
                "<td class=\"account\"><a href=\"/?account=brand-a&amp;q=s_\">brand-a</a>",
                "<td class=\"account\"><a href=\"/?account=b%3C2%3E&amp;q=s_\">b&lt;2&gt;</a>",
            ],
            "down S_1 of b, down S_2 of a, then up S_1 of a and S_3 of b"
        );
        assert!(body.lines().next().unwrap().contains("data-target=\"S_1\""));
        assert!(body.contains("A &lt;one&gt;"), "each row named from its own account");
        assert!(page.contains("<dd id=\"targets-up\" class=\"bad\">2 of 4</dd>"));
        assert!(
            page.contains("<dd id=\"last-hour\">24 requests, 6 failed</dd>"),
            "{page}"
        );
        assert!(page.contains("<li class=\"warning\">warning: b&lt;2&gt;: clock &lt;off&gt;</li>"));
        assert!(page.contains("<li class=\"warning\">warning: brand-a: clock &lt;off&gt;</li>"));
        assert!(page.contains("<dt>Rate limit</dt><dd>per account, below</dd>"));
        assert!(
            page.contains("<tr><td><a href=\"/?account=b%3C2%3E\">b&lt;2&gt;</a></td><td class=\"n bad\">1 of 2</td>"),
            "{page}"
        );
        assert!(page.contains("<td class=\"n\">2.50 (5)</td><td class=\"n\">12</td><td class=\"n bad\">3</td>"));
        assert!(page.contains("4 of 4 matching targets shown (page 1 of 1)"));
    }
}
