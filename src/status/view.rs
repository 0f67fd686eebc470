//! What one request of the status page or API shows, ready to render: one account's rows (the
//! single-account form, or `account=NAME`), or every account's rows merged (named accounts,
//! no `account=`). The merged rows are a lazy k-way merge of the accounts' rows, each already
//! sorted failing first by the board, walked once while filtering and paging: nothing is
//! copied or sorted per request but the page's references. Rows equal in the board's order
//! (the same target in two accounts) come in the order of the accounts in the configuration.
//! The merged view's summary adds the accounts up ([`Overview::of_all`], [`Summary::merged`])
//! and keeps each account's own figures ([`AccountLine`]).

use std::borrow::Cow;
use std::cmp::Ordering;

use chrono::NaiveDateTime;
use chrono_tz::Tz;

use super::board::{order, Row, Table};
use super::query::{matches, Pager, Query, Selected};
use super::summary::Summary;
use super::AccountView;

/// One account as a request sees it: its name (`None` in the single-account form), the rows
/// of its last round and its gateway figures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Part<'a> {
    pub(crate) name: Option<&'a str>,
    pub(crate) table: &'a Table,
    pub(crate) summary: &'a Summary,
}

/// A row of the page and the account (index into the parts) it is of.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Picked<'a> {
    pub(crate) part: usize,
    pub(crate) row: &'a Row,
}

/// The targets of the shown account(s) as the summary counts them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Overview {
    pub(crate) targets: usize,
    pub(crate) up: usize,
    pub(crate) down: usize,
    /// When the last round finished; merged: the oldest of the accounts' last rounds (`None`
    /// while an account has not completed one).
    pub(crate) polled_at: Option<f64>,
    /// The local hour the last round asked for; merged: the oldest.
    pub(crate) hour: Option<NaiveDateTime>,
    /// The last full refresh; merged: the oldest (`None` while an account has had none).
    pub(crate) refreshed_at: Option<f64>,
    /// The configured timezone (shared by all accounts).
    pub(crate) tz: Tz,
}

impl Overview {
    pub(crate) fn of(table: &Table) -> Overview {
        Overview {
            targets: table.rows.len(),
            up: table.up(),
            down: table.down,
            polled_at: table.polled_at,
            hour: table.hour,
            refreshed_at: table.refreshed_at,
            tz: table.tz,
        }
    }

    /// The accounts' tables added up.
    pub(crate) fn of_all(tables: &[&Table]) -> Overview {
        let oldest = |get: fn(&Table) -> Option<f64>| {
            tables
                .iter()
                .map(|t| get(t))
                .try_fold(None, |acc: Option<f64>, t| t.map(|t| Some(acc.map_or(t, |a| a.min(t)))))
                .flatten()
        };
        Overview {
            targets: tables.iter().map(|t| t.rows.len()).sum(),
            up: tables.iter().map(|t| t.up()).sum(),
            down: tables.iter().map(|t| t.down).sum(),
            polled_at: oldest(|t| t.polled_at),
            hour: tables.iter().filter_map(|t| t.hour).min(),
            refreshed_at: oldest(|t| t.refreshed_at),
            tz: tables.first().map_or(chrono_tz::UTC, |t| t.tz),
        }
    }
}

/// One account's own figures in the merged view's summary.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AccountLine<'a> {
    pub(crate) name: &'a str,
    pub(crate) targets: usize,
    pub(crate) up: usize,
    pub(crate) polled_at: Option<f64>,
    /// The request rate in force, and as configured.
    pub(crate) rate_limit: f64,
    pub(crate) configured_rate: f64,
    /// Requests of the gateway's last hour, and those that failed.
    pub(crate) requests: u64,
    pub(crate) failed: u64,
}

/// Everything a page or an answer renders.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    pub(crate) parts: &'a [Part<'a>],
    pub(crate) overview: Overview,
    /// The shown account's summary, or all accounts' merged.
    pub(crate) summary: Cow<'a, Summary>,
    /// Each account's figures: merged view only.
    pub(crate) accounts: Vec<AccountLine<'a>>,
    /// `None`: the single-account form.
    pub(crate) view: Option<AccountView<'a>>,
    /// The rows of the page.
    pub(crate) rows: Vec<Picked<'a>>,
    /// Rows matching the filter, all pages.
    pub(crate) total: usize,
    /// Pages of the filtered rows (at least 1).
    pub(crate) pages: usize,
    pub(crate) now: f64,
    pub(crate) next_poll: Option<f64>,
}

impl<'a> Frame<'a> {
    /// The page of `query` of one account (`view`: `None` in the single-account form).
    pub(crate) fn one(
        part: &'a [Part<'a>; 1],
        query: &Query,
        now: f64,
        next_poll: Option<f64>,
        view: Option<AccountView<'a>>,
    ) -> Frame<'a> {
        let [only] = part;
        let selected = query.select(only.table);
        Frame {
            parts: part,
            overview: Overview::of(only.table),
            summary: Cow::Borrowed(only.summary),
            accounts: Vec::new(),
            view,
            rows: selected.rows.into_iter().map(|row| Picked { part: 0, row }).collect(),
            total: selected.total,
            pages: selected.pages,
            now,
            next_poll,
        }
    }

    /// The page of `query` over all `parts` merged (named accounts, in the configuration's
    /// order); `names` are theirs.
    pub(crate) fn all(
        parts: &'a [Part<'a>],
        names: &'a [String],
        query: &Query,
        now: f64,
        next_poll: Option<f64>,
    ) -> Frame<'a> {
        let tables: Vec<&Table> = parts.iter().map(|p| p.table).collect();
        let merged = select_all(query, &tables);
        let named: Vec<(&str, &Summary)> = parts.iter().map(|p| (p.name.unwrap_or_default(), p.summary)).collect();
        let accounts = parts
            .iter()
            .map(|p| AccountLine {
                name: p.name.unwrap_or_default(),
                targets: p.table.rows.len(),
                up: p.table.up(),
                polled_at: p.table.polled_at,
                rate_limit: p.summary.rate_limit,
                configured_rate: p.summary.configured_rate,
                requests: p.summary.requests,
                failed: p.summary.failed(),
            })
            .collect();
        Frame {
            parts,
            overview: Overview::of_all(&tables),
            summary: Cow::Owned(Summary::merged(&named)),
            accounts,
            view: Some(AccountView {
                shown: None,
                all: names,
            }),
            rows: merged.rows,
            total: merged.total,
            pages: merged.pages,
            now,
            next_poll,
        }
    }

    /// All accounts merged (named accounts, no `account=`).
    pub(crate) fn merged(&self) -> bool {
        self.view.is_some_and(|v| v.shown.is_none())
    }

    /// The table of `picked`'s account.
    pub(crate) fn table_of(&self, picked: &Picked<'a>) -> &'a Table {
        self.parts[picked.part].table
    }

    /// The account name `picked` is shown with (`None` in the single-account form).
    pub(crate) fn account_of(&self, picked: &Picked<'a>) -> Option<&'a str> {
        self.view?;
        self.parts[picked.part].name
    }
}

/// One page of the merged rows.
pub(crate) type MergedPage<'t> = Selected<Picked<'t>>;

/// The page of `query` over the rows of all `tables` merged: failing first across accounts
/// (the board's order, ties by account), filtered and paged. Each table's rows are sorted
/// already; the merge walks their heads (k accounts, few) and stops after the page when no
/// text filter needs the total counted.
pub(crate) fn select_all<'t>(query: &Query, tables: &[&'t Table]) -> MergedPage<'t> {
    let slices: Vec<&'t [Row]> = tables.iter().map(|t| query.by_status(t)).collect();
    let needle = query.needle();
    let mut heads = vec![0usize; slices.len()];
    let mut pager = Pager::new(query);
    while needle.is_some() || !pager.filled() {
        let mut best: Option<(usize, &'t Row)> = None;
        for (part, slice) in slices.iter().enumerate() {
            if let Some(row) = slice.get(heads[part]) {
                if best.is_none_or(|(_, b)| order(row, b) == Ordering::Less) {
                    best = Some((part, row));
                }
            }
        }
        let Some((part, row)) = best else { break };
        heads[part] += 1;
        if needle.as_ref().is_none_or(|n| matches(tables[part], row, n)) {
            pager.offer(Picked { part, row });
        }
    }
    let total = needle.is_none().then(|| slices.iter().map(|s| s.len()).sum());
    pager.page(total)
}

#[cfg(test)]
mod tests {
    use super::super::board::tests::board_with;
    use super::super::query::{StatusFilter, PAGE_SIZE};
    use super::*;

    fn ids<'t>(page: &MergedPage<'t>) -> Vec<(usize, &'t str)> {
        page.rows.iter().map(|p| (p.part, p.row.id.as_str())).collect()
    }

    fn query(q: &str, status: StatusFilter, page: usize) -> Query {
        Query {
            q: q.into(),
            status,
            page,
            account: String::new(),
        }
    }

    #[test]
    fn the_merge_puts_every_failing_row_first_ties_by_account() {
        let a = board_with(&[("S_1", true), ("S_2", false), ("d47c44906f01", true)], "A one");
        let b = board_with(&[("S_1", false), ("S_2", true), ("O_9", false), ("S_3", true)], "B one");
        let (ta, tb) = (a.table(), b.table());
        let page = select_all(&Query::default(), &[&*ta, &*tb]);
        assert_eq!(
            ids(&page),
            [
                (1, "S_1"),
                (0, "S_2"),
                (1, "O_9"),
                (0, "S_1"),
                (1, "S_2"),
                (1, "S_3"),
                (0, "d47c44906f01")
            ]
        );
        assert_eq!((page.total, page.pages), (7, 1));
        // The same failing target in both accounts: the first account's first.
        let c = board_with(&[("S_2", false)], "C");
        let tc = c.table();
        let page = select_all(&query("", StatusFilter::Down, 1), &[&*tc, &*ta, &*tb]);
        assert_eq!(ids(&page), [(2, "S_1"), (0, "S_2"), (1, "S_2"), (2, "O_9")]);
        let page = select_all(&query("", StatusFilter::Up, 1), &[&*ta, &*tb]);
        assert_eq!(ids(&page), [(0, "S_1"), (1, "S_2"), (1, "S_3"), (0, "d47c44906f01")]);
        assert_eq!(page.total, 4);
    }

    #[test]
    fn the_merge_filters_by_text_in_each_accounts_own_names() {
        let a = board_with(&[("S_1", true), ("S_2", false)], "万店掌 旗舰店");
        let b = board_with(&[("S_1", true), ("S_2", false), ("S_12", true)], "Other");
        let (ta, tb) = (a.table(), b.table());
        let page = select_all(&query("旗舰", StatusFilter::All, 1), &[&*ta, &*tb]);
        assert_eq!(ids(&page), [(0, "S_1")], "shop 1 is named so in a only");
        let page = select_all(&query("s_1", StatusFilter::All, 1), &[&*ta, &*tb]);
        assert_eq!(ids(&page), [(0, "S_1"), (1, "S_1"), (1, "S_12")]);
        assert_eq!(page.total, 3);
        let page = select_all(&query("sign_wrong", StatusFilter::Down, 1), &[&*ta, &*tb]);
        assert_eq!((ids(&page), page.total), (vec![(0, "S_2"), (1, "S_2")], 2));
        let page = select_all(&query("nothing", StatusFilter::All, 1), &[&*ta, &*tb]);
        assert_eq!((page.rows.len(), page.total, page.pages), (0, 0, 1));
    }

    #[test]
    fn pages_run_across_the_boundary_between_accounts() {
        // a: 150 up shops and 1 failing; b: 60 up shops and 2 failing.
        let mut ta: Vec<(String, bool)> = (1000..1150).map(|i| (format!("S_{i}"), true)).collect();
        ta.push(("S_2".into(), false));
        let mut tb: Vec<(String, bool)> = (1100..1160).map(|i| (format!("S_{i}"), true)).collect();
        tb.push(("S_2".into(), false));
        tb.push(("O_9".into(), false));
        let ra: Vec<(&str, bool)> = ta.iter().map(|(t, u)| (t.as_str(), *u)).collect();
        let rb: Vec<(&str, bool)> = tb.iter().map(|(t, u)| (t.as_str(), *u)).collect();
        let (a, b) = (board_with(&ra, "x"), board_with(&rb, "y"));
        let (ta, tb) = (a.table(), b.table());
        let tables = [&*ta, &*tb];
        let first = select_all(&Query::default(), &tables);
        assert_eq!((first.total, first.pages, first.rows.len()), (213, 3, PAGE_SIZE));
        assert_eq!(ids(&first)[..3], [(0, "S_2"), (1, "S_2"), (1, "O_9")]);
        // Up rows interleave by id: S_1000..S_1099 of a, then S_1100 of a and of b, ….
        assert_eq!(ids(&first)[99], (0, "S_1096"));
        let second = select_all(&query("", StatusFilter::All, 2), &tables);
        assert_eq!(
            ids(&second)[..7],
            [
                (0, "S_1097"),
                (0, "S_1098"),
                (0, "S_1099"),
                (0, "S_1100"),
                (1, "S_1100"),
                (0, "S_1101"),
                (1, "S_1101")
            ]
        );
        let third = select_all(&query("", StatusFilter::All, 3), &tables);
        assert_eq!(third.rows.len(), 13);
        assert_eq!(ids(&third).last(), Some(&(1, "S_1159")));
        let beyond = select_all(&query("", StatusFilter::All, 9), &tables);
        assert_eq!((beyond.rows.len(), beyond.total), (0, 213));
        // Every row once over all pages.
        let mut seen: Vec<(usize, &str)> = [first, second, third].iter().flat_map(ids).collect();
        let n = seen.len();
        seen.sort();
        seen.dedup();
        assert_eq!((n, seen.len()), (213, 213));
        // A filter's total counts every account's matches, the page only its own.
        let s_11 = select_all(&query("s_11", StatusFilter::Up, 1), &tables);
        assert_eq!((s_11.total, s_11.rows.len()), (110, 100));
        let page2 = select_all(&query("s_11", StatusFilter::Up, 2), &tables);
        assert_eq!(ids(&page2)[..2], [(1, "S_1150"), (1, "S_1151")]);
    }

    #[test]
    fn the_overview_adds_the_accounts_up_and_keeps_the_oldest_poll() {
        let a = board_with(&[("S_1", true), ("S_2", false)], "x");
        let b = board_with(&[("S_1", true), ("S_3", true), ("O_9", false)], "y");
        let (ta, tb) = (a.table(), b.table());
        let o = Overview::of_all(&[&*ta, &*tb]);
        assert_eq!((o.targets, o.up, o.down), (5, 3, 2));
        assert_eq!(o.polled_at, ta.polled_at);
        let never = Table::default();
        let o = Overview::of_all(&[&*ta, &never]);
        assert_eq!((o.polled_at, o.refreshed_at), (None, None), "an account not polled yet");
        assert_eq!(o.hour, ta.hour);
    }
}
