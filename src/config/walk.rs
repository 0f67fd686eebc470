//! The generic walk over a YAML document: mappings with a fixed set of keys, `${VAR}` expansion,
//! and the scalar kinds every section shares (strings, durations, whole numbers, byte sizes,
//! rates, lists). It knows no key of the exporter: the sections ([`super::Config`],
//! [`super::GatewayConfig`], the target lists) say which keys exist and which reader each uses,
//! and [`Walker::new`] is told the fields where `${VAR}` is expanded. In every other field a
//! `${` is an error naming them: a label or a setting must not be able to copy an environment
//! variable (a secret) to where it is shown. `$$` is a literal `$` everywhere.
//!
//! A [`Walker`] never stops at the first problem: each reader records a [`ConfigError`] at the
//! dotted path it was given and answers `None`, so that one pass reports everything at once.
//! Error messages describe a wrong value by its kind ("a number", "a list"), never by its text,
//! unless the value is known not to be a secret.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::time::Duration;

use serde_yaml::Value;

use super::{ConfigError, ROOT_PATH};

/// `parent.key`, or `key` at the top level.
pub(super) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// What kind of YAML node this is, for "expected X, found Y" (never the value itself).
pub(super) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// `accounts[2].gateway.url` split into its account's part (`accounts[2].`) and the path within
/// the account (`gateway.url`); any other path has an empty account part.
pub(super) fn split_account(path: &str) -> (&str, &str) {
    let split = path.strip_prefix("accounts[").and_then(|rest| {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        (digits > 0 && rest[digits..].starts_with("].")).then_some("accounts[".len() + digits + 2)
    });
    match split {
        Some(at) => path.split_at(at),
        None => ("", path),
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The known keys of one mapping; a `null` value counts as absent.
pub(super) struct Fields<'v> {
    entries: Vec<(&'v str, &'v Value)>,
}

impl<'v> Fields<'v> {
    pub(super) fn get(&self, key: &str) -> Option<&'v Value> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_null())
    }
}

/// Walks the document, collecting every problem.
pub(super) struct Walker<'e> {
    env: &'e dyn Fn(&str) -> Option<String>,
    /// The dotted paths whose `${VAR}` are expanded (also within each account).
    expanded: &'e [&'e str],
    errors: Vec<ConfigError>,
    /// Secret fields written out in the file rather than taken from the environment.
    literal_secrets: Vec<String>,
}

impl<'e> Walker<'e> {
    /// A walker that expands `${VAR}` with `env` in the fields at the paths `expanded`, and
    /// refuses it everywhere else.
    pub(super) fn new(env: &'e dyn Fn(&str) -> Option<String>, expanded: &'e [&'e str]) -> Self {
        Walker {
            env,
            expanded,
            errors: Vec::new(),
            literal_secrets: Vec::new(),
        }
    }

    /// Every problem recorded, in the order found, and the secret fields (app secret, token,
    /// password) whose value is written in the file itself.
    pub(super) fn into_parts(self) -> (Vec<ConfigError>, Vec<String>) {
        (self.errors, self.literal_secrets)
    }

    /// Takes over the problems and the secret fields written out that another walk found.
    pub(super) fn absorb(&mut self, errors: impl IntoIterator<Item = ConfigError>, literal_secrets: Vec<String>) {
        self.errors.extend(errors);
        self.literal_secrets.extend(literal_secrets);
    }

    /// Records a problem at `path` (the empty path is the document itself).
    pub(super) fn error(&mut self, path: &str, message: impl Into<String>) {
        let path = if path.is_empty() { ROOT_PATH } else { path };
        self.errors.push(ConfigError::new(path, message));
    }

    /// Checks that `value` is a mapping whose keys are all strings in `allowed`.
    pub(super) fn mapping<'v>(&mut self, path: &str, value: &'v Value, allowed: &[&str]) -> Option<Fields<'v>> {
        let Value::Mapping(map) = value else {
            self.error(path, format!("expected a mapping, found {}", describe(value)));
            return None;
        };
        let mut entries = Vec::with_capacity(map.len());
        for (key, v) in map {
            match key {
                Value::String(key) if allowed.contains(&key.as_str()) => entries.push((key.as_str(), v)),
                Value::String(key) => self.error(
                    &join(path, key),
                    format!("unknown key (expected one of {})", allowed.join(", ")),
                ),
                other => self.error(path, format!("keys must be strings, found {}", describe(other))),
            }
        }
        Some(Fields { entries })
    }

    /// Replaces `${VAR}` from the environment in the fields the walker expands (within an
    /// account of the `accounts` list too: `accounts[1].gateway.url`), and refuses `${` in
    /// every other; `$$` is a literal `$`; any other `$` is kept. With `secret`, no part of the
    /// text other than a variable's name is ever echoed.
    pub(super) fn expand(&mut self, path: &str, raw: &str, secret: bool) -> Option<String> {
        let (account, within) = split_account(path);
        let expands = self.expanded.contains(&within);
        let credential = ["app_secret", "token", "password"].iter().any(|f| path.ends_with(f));
        if secret && credential && !raw.contains("${") {
            self.literal_secrets.push(path.to_string());
        }
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        let mut ok = true;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(r) = after.strip_prefix('$') {
                out.push('$');
                rest = r;
            } else if after.starts_with('{') && !expands {
                let fields: Vec<String> = self.expanded.iter().map(|f| format!("{account}{f}")).collect();
                let message = format!(
                    "${{...}} is not expanded here: environment variables are read only in {} (write $${{ for a literal ${{)",
                    fields.join(", ")
                );
                self.error(path, message);
                return None;
            } else if let Some(r) = after.strip_prefix('{') {
                let Some(end) = r.find('}') else {
                    self.error(
                        path,
                        "unterminated ${ (write ${NAME} for a variable, $$ for a literal $)",
                    );
                    return None;
                };
                let name = &r[..end];
                rest = &r[end + 1..];
                if !is_env_name(name) {
                    let message = if secret {
                        "invalid environment variable name in ${...} (letters, digits and _ only)".to_string()
                    } else {
                        format!("invalid environment variable name {name:?} in ${{...}} (letters, digits and _ only)")
                    };
                    self.error(path, message);
                    ok = false;
                    continue;
                }
                match (self.env)(name) {
                    Some(value) => out.push_str(&value),
                    None => {
                        self.error(path, format!("environment variable {name} is not set"));
                        ok = false;
                    }
                }
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
        ok.then_some(out)
    }

    /// A string scalar, expanded.
    pub(super) fn string(&mut self, path: &str, value: &Value, secret: bool) -> Option<String> {
        match value {
            Value::String(s) => self.expand(path, s, secret),
            other => {
                let hint = if matches!(other, Value::Number(_) | Value::Bool(_)) {
                    " (quote the value)"
                } else {
                    ""
                };
                self.error(path, format!("expected a string, found {}{hint}", describe(other)));
                None
            }
        }
    }

    /// A non-empty string scalar, expanded.
    pub(super) fn non_empty_string(&mut self, path: &str, value: &Value, secret: bool) -> Option<String> {
        let s = self.string(path, value, secret)?;
        if s.is_empty() {
            self.error(path, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// A non-empty string that is not a secret (it may be echoed in errors).
    pub(super) fn text(&mut self, path: &str, value: &Value) -> Option<String> {
        self.non_empty_string(path, value, false)
    }

    /// A non-empty string that may be a secret, or come from one: never echoed in errors.
    pub(super) fn secret_text(&mut self, path: &str, value: &Value) -> Option<String> {
        self.non_empty_string(path, value, true)
    }

    /// A non-empty string, trimmed and turned into a `T` by `convert`; its error is the message.
    pub(super) fn converted<T, E: Display>(
        &mut self,
        path: &str,
        value: &Value,
        convert: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let text = self.text(path, value)?;
        match convert(text.trim()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(path, e.to_string());
                None
            }
        }
    }

    /// A required key, `parse`d; a "missing" error when absent or null.
    pub(super) fn required<T>(
        &mut self,
        fields: &Fields<'_>,
        parent: &str,
        key: &str,
        parse: impl FnOnce(&mut Self, &str, &Value) -> Option<T>,
    ) -> Option<T> {
        let path = join(parent, key);
        match fields.get(key) {
            None => {
                self.error(&path, "missing");
                None
            }
            Some(value) => parse(self, &path, value),
        }
    }

    /// An optional key: `default` when absent or null, else `parse`d.
    pub(super) fn optional<T>(
        &mut self,
        fields: &Fields<'_>,
        parent: &str,
        key: &str,
        default: T,
        parse: impl FnOnce(&mut Self, &str, &Value) -> Option<T>,
    ) -> Option<T> {
        match fields.get(key) {
            None => Some(default),
            Some(value) => parse(self, &join(parent, key), value),
        }
    }

    /// An optional key without a default: `None` when absent or null, else `parse`d.
    pub(super) fn maybe<T>(
        &mut self,
        fields: &Fields<'_>,
        parent: &str,
        key: &str,
        parse: impl FnOnce(&mut Self, &str, &Value) -> Option<T>,
    ) -> Option<Option<T>> {
        self.optional(fields, parent, key, None, |w, path, value| {
            parse(w, path, value).map(Some)
        })
    }

    /// A value read from several keys of the mapping at `parent` by `read`.
    pub(super) fn compound<T>(
        &mut self,
        fields: &Fields<'_>,
        parent: &str,
        read: impl FnOnce(&mut Self, &Fields<'_>, &str) -> Option<T>,
    ) -> Option<T> {
        read(self, fields, parent)
    }

    /// A duration with a unit (`30s`, `5m`, `1h`, `1m 30s`); zero is allowed.
    pub(super) fn duration(&mut self, path: &str, value: &Value) -> Option<Duration> {
        let Value::String(raw) = value else {
            self.error(
                path,
                format!(
                    "expected a duration with a unit such as 30s, 5m or 1h, found {}",
                    describe(value)
                ),
            );
            return None;
        };
        let text = self.expand(path, raw, false)?;
        match humantime::parse_duration(text.trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    path,
                    format!("invalid duration {text:?}: {e} (expected e.g. 30s, 5m, 1h)"),
                );
                None
            }
        }
    }

    /// A duration greater than zero.
    pub(super) fn positive_duration(&mut self, path: &str, value: &Value) -> Option<Duration> {
        let d = self.duration(path, value)?;
        if d.is_zero() {
            self.error(path, "must be greater than zero");
            return None;
        }
        Some(d)
    }

    /// A whole number within `range`, given as a YAML number or a string of digits.
    pub(super) fn integer(&mut self, path: &str, value: &Value, range: RangeInclusive<usize>) -> Option<usize> {
        let n = match value {
            Value::Number(n) => match n.as_u64() {
                Some(n) => n,
                None => {
                    self.error(path, format!("expected a whole number, found {n}"));
                    return None;
                }
            },
            Value::String(raw) => {
                let text = self.expand(path, raw, false)?;
                match text.trim().parse::<u64>() {
                    Ok(n) => n,
                    Err(_) => {
                        self.error(path, format!("expected a whole number, found {text:?}"));
                        return None;
                    }
                }
            }
            other => {
                self.error(path, format!("expected a whole number, found {}", describe(other)));
                return None;
            }
        };
        match usize::try_from(n) {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                self.error(
                    path,
                    format!("must be between {} and {}, found {n}", range.start(), range.end()),
                );
                None
            }
        }
    }

    /// A positive number of requests per second.
    pub(super) fn rate(&mut self, path: &str, value: &Value) -> Option<f64> {
        let n = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(raw) => self.expand(path, raw, false)?.trim().parse::<f64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n.is_finite() && n > 0.0 && n <= 10_000.0 => Some(n),
            _ => {
                self.error(
                    path,
                    "expected a number of requests per second above 0 (up to 10000), e.g. 5 or 0.5",
                );
                None
            }
        }
    }

    /// A size in bytes: a whole number, or with a unit (`512KiB`, `16MiB`, `1GiB`, `16MB`).
    pub(super) fn byte_size(&mut self, path: &str, value: &Value, range: RangeInclusive<usize>) -> Option<usize> {
        if let Value::String(raw) = value {
            let text = self.expand(path, raw, false)?;
            let t = text.trim();
            let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (digits, unit) = (&t[..split], t[split..].trim());
            let factor: Option<u64> = match unit.to_ascii_lowercase().as_str() {
                "" | "b" => Some(1),
                "k" | "kb" => Some(1000),
                "kib" => Some(1024),
                "m" | "mb" => Some(1000 * 1000),
                "mib" => Some(1024 * 1024),
                "g" | "gb" => Some(1000 * 1000 * 1000),
                "gib" => Some(1024 * 1024 * 1024),
                _ => None,
            };
            let bytes = digits
                .parse::<u64>()
                .ok()
                .zip(factor)
                .and_then(|(n, f)| n.checked_mul(f));
            let Some(bytes) = bytes else {
                self.error(
                    path,
                    format!("expected a size such as 16MiB, 512KiB or 1048576, found {text:?}"),
                );
                return None;
            };
            return self.integer(path, &Value::Number(bytes.into()), range);
        }
        self.integer(path, value, range)
    }

    /// The items of a list.
    pub(super) fn list<'v>(&mut self, path: &str, value: &'v Value) -> Option<&'v [Value]> {
        match value {
            Value::Sequence(items) => Some(items.as_slice()),
            other => {
                self.error(path, format!("expected a list, found {}", describe(other)));
                None
            }
        }
    }
}
