//! Vendor text made safe to show: [`sanitize`] turns the characters that can forge a log line
//! or drive a terminal into visible escapes. It is applied where the gateway's text (`codename`,
//! `result`, `cid`, shop names and codes, field names) enters an error message, a log field or
//! terminal output; never to what goes to `/metrics`, whose exposition escapes label values
//! itself and must keep them byte-exact.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a log line or a terminal as it is: C0 controls (line breaks,
/// tab, ESC …), DEL, C1 controls (U+0080–U+009F, among them the 8-bit CSI), the line and
/// paragraph separators (U+2028, U+2029: line breaks to some viewers) and the bidi
/// embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), which reorder what a
/// reader sees.
fn is_hostile(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// `s` with every control character (C0 including `\n`, `\r`, `\t` and ESC, DEL, C1), the
/// line and paragraph separators, and every bidi override or isolate replaced by a visible escape: `\n`, `\r`, `\t`, otherwise
/// `\u{1b}` (the code point in hex). A backslash is kept as it is. Borrows `s` when there is
/// nothing to replace.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_hostile) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_hostile(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for s in ["", "Entrance 1", "门店 9642", "naïve café", r"back\slash", "emoji 🙂"] {
            assert!(matches!(sanitize(s), Cow::Borrowed(t) if t == s), "{s:?}");
        }
    }

    #[test]
    fn line_breaks_and_tabs_become_visible() {
        assert_eq!(
            sanitize("bad sig\n2026-01-01T00:00:00Z  INFO forged"),
            r"bad sig\n2026-01-01T00:00:00Z  INFO forged"
        );
        assert_eq!(sanitize("a\r\nb\tc"), r"a\r\nb\tc");
    }

    #[test]
    fn escape_codes_and_other_controls_are_escaped() {
        assert_eq!(sanitize("\x1b[31mred\x1b[0m"), r"\u{1b}[31mred\u{1b}[0m");
        assert_eq!(sanitize("nul\0 bell\x07 del\x7f"), r"nul\u{0} bell\u{7} del\u{7f}");
        // C1: the 8-bit CSI and NEL.
        assert_eq!(sanitize("\u{9b}2J\u{85}"), r"\u{9b}2J\u{85}");
        assert_eq!(sanitize("\u{80}\u{9f}\u{a0}"), "\\u{80}\\u{9f}\u{a0}", "NBSP is text");
    }

    #[test]
    fn bidi_overrides_and_isolates_are_escaped() {
        assert_eq!(sanitize("abc\u{202e}fed"), r"abc\u{202e}fed");
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ] {
            let shown = sanitize(&c.to_string()).into_owned();
            assert_eq!(shown, format!("\\u{{{:x}}}", u32::from(c)));
        }
        assert_eq!(sanitize("a\u{2028}b\u{2029}"), r"a\u{2028}b\u{2029}", "line separators");
        assert_eq!(
            sanitize("\u{2027}\u{2065}\u{206a}"),
            "\u{2027}\u{2065}\u{206a}",
            "neighbours stay"
        );
    }

    #[test]
    fn nothing_hostile_survives() {
        let hostile: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let shown = sanitize(&hostile);
        assert!(!shown.chars().any(is_hostile), "{shown:?}");
        assert!(!shown.contains('\n') && !shown.contains('\x1b'));
    }
}
