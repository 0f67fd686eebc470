//! `fetch`: one gateway call for one shop, organisation or device and one shop-local day,
//! shown as an aligned table or as JSON. It is the first thing to run with a new key: it
//! either prints the rows or the gateway's code and name (`gateway error 7 SIGN_WRONG: …`).
//!
//! The table shows every row the gateway returned, rates as percentages; absent values are
//! `-`, and rows of the hour in progress or of hours still to come are marked, because the
//! gateway returns them too (zeros for the future). The JSON uses the exporter's units:
//! rates are ratios 0–1, absent values `null`.

mod render;

use chrono::{NaiveDate, NaiveDateTime};

use crate::client::{Call, Client, Target};

use self::render::{render_json, render_table};

/// The `fetch` command: one call for `target` on `date` (shop-local; `now_local` marks hours
/// in progress or to come), printed as a table or JSON on stdout. Exit code 0, or 1 with the
/// gateway code and name (and a hint) on stderr.
pub async fn command(
    client: Client,
    target: Target,
    date: NaiveDate,
    json: bool,
    now_local: NaiveDateTime,
) -> std::process::ExitCode {
    use std::io::Write as _;
    use std::process::ExitCode;
    let call = Call::day(target, date);
    match client.fetch(&call).await {
        Ok(answer) => {
            let text = if json {
                format!("{:#}\n", render_json(&call, &answer, now_local))
            } else {
                render_table(&call, &answer, now_local)
            };
            // A closed pipe (`| head`) is not an error worth a panic.
            match std::io::stdout().lock().write_all(text.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot write to stdout: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("{}", e.summary());
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}
