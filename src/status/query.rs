//! What one request of the status page or API asks: a text filter (`q`, matched without regard
//! to case in the target's id, name, error code and error name), a status (`status=down|up|all`),
//! a page (`page`, from 1, [`PAGE_SIZE`] rows each) and, with named accounts, the account shown
//! (`account`; absent or empty: all accounts merged). Filtering walks the sorted rows once and
//! keeps only the page's; the status filter is a slice, since failing rows come first.

use super::board::{Row, Table};

/// Rows per page.
pub(crate) const PAGE_SIZE: usize = 100;
/// A text filter longer than this is refused (it could only match nothing).
const MAX_Q_CHARS: usize = 200;

/// Which targets by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum StatusFilter {
    #[default]
    All,
    Down,
    Up,
}

impl StatusFilter {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StatusFilter::All => "all",
            StatusFilter::Down => "down",
            StatusFilter::Up => "up",
        }
    }
}

/// A request's filter and page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Query {
    /// The text filter as given (trimmed); empty for none.
    pub(crate) q: String,
    pub(crate) status: StatusFilter,
    /// From 1.
    pub(crate) page: usize,
    /// The account shown (named accounts only); empty for all accounts merged.
    pub(crate) account: String,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            q: String::new(),
            status: StatusFilter::All,
            page: 1,
            account: String::new(),
        }
    }
}

/// A query parameter that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum QueryError {
    #[error("status must be down, up or all")]
    Status,
    #[error("page must be a whole number from 1")]
    Page,
    #[error("q and account must be at most {MAX_Q_CHARS} characters")]
    TooLong,
}

/// One page of the filtered rows (`R`: a row, or a row with its account).
#[derive(Debug)]
pub(crate) struct Selected<R> {
    /// The rows of the page.
    pub(crate) rows: Vec<R>,
    /// Rows matching the filter, all pages.
    pub(crate) total: usize,
    /// Pages of the filtered rows (at least 1).
    pub(crate) pages: usize,
}

impl<R> Selected<R> {
    fn of(rows: Vec<R>, total: usize) -> Self {
        Selected {
            rows,
            total,
            pages: total.div_ceil(PAGE_SIZE).max(1),
        }
    }
}

/// Collects a query's page from the matching rows, offered in order, and counts them.
pub(crate) struct Pager<R> {
    skip: usize,
    rows: Vec<R>,
    counted: usize,
}

impl<R> Pager<R> {
    pub(crate) fn new(query: &Query) -> Self {
        Pager {
            skip: query.skip(),
            rows: Vec::new(),
            counted: 0,
        }
    }

    /// Counts a matching row, and keeps it if it is on the page.
    pub(crate) fn offer(&mut self, row: R) {
        if self.counted >= self.skip && self.rows.len() < PAGE_SIZE {
            self.rows.push(row);
        }
        self.counted += 1;
    }

    /// Whether the page is complete: later rows would only be counted.
    pub(crate) fn filled(&self) -> bool {
        self.counted >= self.skip.saturating_add(PAGE_SIZE)
    }

    /// The page, with `total` matching rows in all (`None`: those offered).
    pub(crate) fn page(self, total: Option<usize>) -> Selected<R> {
        Selected::of(self.rows, total.unwrap_or(self.counted))
    }
}

impl Query {
    /// Reads the query string of a request (`None`: there was none). Unknown parameters are
    /// ignored; an empty one is its default.
    pub(crate) fn parse(raw: Option<&str>) -> Result<Query, QueryError> {
        let mut query = Query::default();
        for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            let value = value.trim();
            match key.as_ref() {
                "q" => {
                    if value.chars().count() > MAX_Q_CHARS {
                        return Err(QueryError::TooLong);
                    }
                    query.q = value.to_string();
                }
                "status" => {
                    query.status = match value {
                        "" | "all" => StatusFilter::All,
                        "down" => StatusFilter::Down,
                        "up" => StatusFilter::Up,
                        _ => return Err(QueryError::Status),
                    }
                }
                "account" => {
                    if value.chars().count() > MAX_Q_CHARS {
                        return Err(QueryError::TooLong);
                    }
                    query.account = value.to_string();
                }
                "page" if value.is_empty() => query.page = 1,
                "page" => match value.parse::<usize>() {
                    Ok(n) if n >= 1 => query.page = n,
                    _ => return Err(QueryError::Page),
                },
                _ => {}
            }
        }
        Ok(query)
    }

    /// The rows of this query's page, and how many match in all.
    pub(crate) fn select<'t>(&self, table: &'t Table) -> Selected<&'t Row> {
        let rows = self.by_status(table);
        match self.needle() {
            None => Selected::of(rows.iter().skip(self.skip()).take(PAGE_SIZE).collect(), rows.len()),
            Some(needle) => {
                let mut pager = Pager::new(self);
                rows.iter()
                    .filter(|r| matches(table, r, &needle))
                    .for_each(|r| pager.offer(r));
                pager.page(None)
            }
        }
    }

    /// The matching rows before this query's page.
    fn skip(&self) -> usize {
        (self.page - 1).saturating_mul(PAGE_SIZE)
    }

    /// The rows of `table` of this query's status: a slice, since failing rows come first.
    pub(crate) fn by_status<'t>(&self, table: &'t Table) -> &'t [Row] {
        match self.status {
            StatusFilter::All => &table.rows[..],
            StatusFilter::Down => table.rows.get(..table.down).unwrap_or_default(),
            StatusFilter::Up => table.rows.get(table.down..).unwrap_or_default(),
        }
    }

    /// The text filter in lower case, as [`matches`] takes it; `None` without one.
    pub(crate) fn needle(&self) -> Option<String> {
        (!self.q.is_empty()).then(|| self.q.to_lowercase())
    }

    /// The query string of this filter at `page` (`q` and `status` only when set).
    pub(crate) fn link(&self, page: usize) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        if !self.account.is_empty() {
            out.append_pair("account", &self.account);
        }
        if !self.q.is_empty() {
            out.append_pair("q", &self.q);
        }
        if self.status != StatusFilter::All {
            out.append_pair("status", self.status.as_str());
        }
        if page > 1 {
            out.append_pair("page", &page.to_string());
        }
        let s = out.finish();
        if s.is_empty() {
            "?".to_string()
        } else {
            format!("?{s}")
        }
    }
}

/// Whether `row` contains `needle` (lower case) in its id, name, error code or error name.
pub(crate) fn matches(table: &Table, row: &Row, needle: &str) -> bool {
    let has = |s: &str| {
        if s.is_ascii() && needle.is_ascii() {
            s.as_bytes()
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
        } else {
            s.to_lowercase().contains(needle)
        }
    };
    has(&row.id) || has(table.shown(row).name) || row.error.as_ref().is_some_and(|e| has(&e.code) || has(&e.name))
}

#[cfg(test)]
mod tests {
    use super::super::board::tests::board_with;
    use super::*;

    #[test]
    fn parameters_are_read_and_refused_with_a_reason() {
        assert_eq!(Query::parse(None), Ok(Query::default()));
        let q = Query::parse(Some("q=%E6%97%97+x&status=down&page=3&other=1")).unwrap();
        assert_eq!((q.q.as_str(), q.status, q.page), ("旗 x", StatusFilter::Down, 3));
        assert_eq!(Query::parse(Some("status=&page=")), Ok(Query::default()));
        assert_eq!(Query::parse(Some("status=broken")), Err(QueryError::Status));
        for bad in ["page=0", "page=-1", "page=x", "page=99999999999999999999999"] {
            assert_eq!(Query::parse(Some(bad)), Err(QueryError::Page), "{bad}");
        }
        let long = format!("q={}", "a".repeat(201));
        assert_eq!(Query::parse(Some(&long)), Err(QueryError::TooLong));
        assert_eq!(q.link(4), "?q=%E6%97%97+x&status=down&page=4");
        assert_eq!(Query::default().link(1), "?");
    }

    #[test]
    fn filters_and_pages_select_the_right_rows() {
        let mut targets: Vec<(String, bool)> = (1..=250).map(|i| (format!("S_{}", i + 100), i % 50 != 0)).collect();
        targets.push(("S_1".into(), true));
        targets.push(("S_2".into(), false));
        let refs: Vec<(&str, bool)> = targets.iter().map(|(t, u)| (t.as_str(), *u)).collect();
        let board = board_with(&refs, "万店掌 旗舰店");
        let t = board.table();
        let all = Query::default().select(&t);
        assert_eq!((all.total, all.pages, all.rows.len()), (252, 3, PAGE_SIZE));
        assert_eq!(all.rows[0].id, "S_2", "failing first");
        let last = Query {
            page: 3,
            ..Query::default()
        }
        .select(&t);
        assert_eq!(last.rows.len(), 52);
        let beyond = Query {
            page: 9,
            ..Query::default()
        }
        .select(&t);
        assert_eq!((beyond.rows.len(), beyond.total), (0, 252));
        let down = Query {
            status: StatusFilter::Down,
            ..Query::default()
        }
        .select(&t);
        assert_eq!(down.total, 6);
        assert!(down.rows.iter().all(|r| !r.up));
        let up = Query {
            status: StatusFilter::Up,
            ..Query::default()
        }
        .select(&t);
        assert_eq!(up.total, 246);
        let by = |q: &str, status| {
            Query {
                q: q.into(),
                status,
                page: 1,
                account: String::new(),
            }
            .select(&t)
        };
        assert_eq!(
            by("旗舰", StatusFilter::All)
                .rows
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>(),
            ["S_1"]
        );
        assert_eq!(by("sign_wrong", StatusFilter::All).rows[0].id, "S_2", "by error name");
        assert_eq!(by("s_15", StatusFilter::All).total, 10, "S_150..=S_159, by id");
        assert_eq!(by("s_15", StatusFilter::Down).total, 1, "S_150 is down");
        assert_eq!(by("nothing", StatusFilter::All).pages, 1);
    }
}
