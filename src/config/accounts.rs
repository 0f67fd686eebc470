//! Several accounts in one file: the `accounts:` list, each entry an Opretail account (or app
//! key) with its own gateway settings, shops, devices and calendar, and the settings of the top
//! level (time zone, intervals, baseline, sharding) shared by all. Each account reads as a whole
//! [`Config`] of its own, so the client, the poller and the commands work on one account at a
//! time and never see another's key. The single-account form of a file (a top-level `gateway`,
//! no `accounts`) is one unnamed account, and its series carry no `account` label.
//!
//! Reading the accounts form: the shared settings of the top level are read once, at their own
//! paths (`timezone`, `calendar.hours`); then each entry is read as a whole [`Config`] at
//! `accounts[i]`, from the shared settings and its own keys (its `calendar` replaces the top
//! level's), and only the problems of its own keys are kept, at their paths
//! (`accounts[1].gateway.app_secret`), so that each problem is reported once. A `gateway`,
//! `shops`, `shop_overrides` or `devices` beside `accounts`, or a shared setting inside an
//! entry, is an error saying where it belongs.

use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::walk::{describe, join, split_account, Walker};
use super::{gateway, Config, ConfigError, ConfigErrors, EXPANDED_FIELDS, ROOT_PATH};

/// The top-level key of the accounts form.
const ACCOUNTS_KEY: &str = "accounts";

/// The keys of an entry of `accounts`, in the order "unknown key" lists them.
pub(super) const ACCOUNT_KEYS: &[&str] = &["name", "gateway", "shops", "shop_overrides", "devices", "calendar"];

/// The keys of the single-account form's top level that belong to each account in the
/// accounts form (and may not stand beside `accounts`).
const OWN_KEYS: &[&str] = &["gateway", "shops", "shop_overrides", "devices"];

/// The longest account name.
pub(crate) const MAX_NAME_CHARS: usize = 64;

/// Whether `name` may name an account (the `account` label): 1 to [`MAX_NAME_CHARS`]
/// characters of `A-Z a-z 0-9 _ . -`; the error says what is wrong, without the name.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_string());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("must be at most {MAX_NAME_CHARS} characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err("may hold only letters, digits, _, . and - (it is the account label's value)".to_string());
    }
    Ok(())
}

/// Whether `doc` is in the accounts form: a mapping with an `accounts` key (even an empty one).
pub(super) fn has_accounts(doc: &Value) -> bool {
    matches!(doc, Value::Mapping(map) if map.contains_key(ACCOUNTS_KEY))
}

/// The top-level keys shared by every account in the accounts form (`calendar` is also an
/// account's own key, which replaces it).
fn shared_keys() -> Vec<&'static str> {
    Config::keys().into_iter().filter(|k| !OWN_KEYS.contains(k)).collect()
}

/// The first key of `path` (`calendar` of `calendar.hours.mon`, `shops` of `shops[1].id`).
fn first_key(path: &str) -> &str {
    path.split(['.', '[']).next().unwrap_or(path)
}

/// One account: its name (the `account` label; `None` in the single-account form) and its
/// configuration.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: Option<String>,
    pub config: Config,
}

impl Account {
    /// The account's name, or `""` in the single-account form.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}

/// The accounts of one configuration file: never empty; either one unnamed account (the
/// single-account form) or named accounts with distinct names, in file order.
#[derive(Debug, Clone)]
pub struct Accounts {
    list: Vec<Account>,
}

impl Accounts {
    /// The single-account form: one unnamed account.
    pub fn single(config: Config) -> Self {
        Accounts {
            list: vec![Account { name: None, config }],
        }
    }

    /// Named accounts. An empty list, an empty, repeated or badly formed name (1 to 64
    /// characters of `A-Z a-z 0-9 _ . -`), or a mix of named and unnamed accounts is an error
    /// naming `accounts[i].name`.
    pub fn named(list: Vec<Account>) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        if list.is_empty() {
            errors.push(ConfigError::new("accounts", "must list at least one account"));
        }
        for (i, account) in list.iter().enumerate() {
            let path = format!("accounts[{i}].name");
            match account.name.as_deref() {
                None | Some("") => errors.push(ConfigError::new(path, "must be a non-empty name")),
                Some(name) if list[..i].iter().any(|a| a.name.as_deref() == Some(name)) => errors.push(
                    ConfigError::new(path, format!("{name:?} is used by an earlier account")),
                ),
                Some(name) => {
                    if let Err(message) = check_name(name) {
                        errors.push(ConfigError::new(path, message));
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(Accounts { list })
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Reads and validates the file at `path` in either form, logging each warning once (as
    /// [`Config::load`] does).
    pub fn load(path: &Path) -> Result<Accounts, ConfigErrors> {
        let (accounts, warnings) = Accounts::load_quietly(path)?;
        for warning in warnings {
            tracing::warn!(file = %path.display(), "{warning}");
        }
        Ok(accounts)
    }

    /// [`Accounts::load`] without logging: the warnings are returned (`check-config` prints
    /// them): [`Accounts::warnings`], and one when the file may be read by other users while
    /// it holds a secret written out (in any account).
    pub fn load_quietly(path: &Path) -> Result<(Accounts, Vec<String>), ConfigErrors> {
        let text = super::read_file(path)?;
        let (accounts, literal_secrets) = Accounts::parse(&text, &|name| std::env::var(name).ok())?;
        let mut warnings = accounts.warnings();
        warnings.extend(super::file_mode(path).and_then(|mode| super::readable_secrets(mode, &literal_secrets)));
        Ok((accounts, warnings))
    }

    /// What is valid but unsafe, one line each: the single account's [`Config::warnings`] as
    /// they are, or each named account's after its name and path
    /// (`brand-b: accounts[1].gateway.url is http://…`).
    pub fn warnings(&self) -> Vec<String> {
        if self.is_single() {
            return self.list[0].config.warnings();
        }
        self.list
            .iter()
            .enumerate()
            .flat_map(|(i, account)| {
                let name = account.label().to_string();
                account
                    .config
                    .warnings()
                    .into_iter()
                    .map(move |warning| format!("{name}: accounts[{i}].{warning}"))
            })
            .collect()
    }

    /// Parses and validates `text` in either form, with `env` for `${VAR}`; also returns the
    /// secret fields written out in it (at their paths).
    pub(super) fn parse(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Accounts, Vec<String>), ConfigErrors> {
        let doc = super::document(text)?;
        if has_accounts(&doc) {
            read_accounts(&doc, env)
        } else {
            let (config, literal_secrets) = Config::read_document(&doc, env)?;
            Ok((Accounts::single(config), literal_secrets))
        }
    }

    /// True in the single-account form (no `account` label anywhere).
    pub fn is_single(&self) -> bool {
        self.list.len() == 1 && self.list[0].name.is_none()
    }

    /// The accounts, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Account> {
        self.list.iter()
    }

    /// The number of accounts (at least 1).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Never true: there is always an account.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The account a command was asked for (`--account NAME`): with `None`, the only account
    /// (an error listing the names when there are several); with a name, that account (an
    /// error listing the names when there is none of that name).
    pub fn pick(&self, name: Option<&str>) -> Result<&Account, ConfigErrors> {
        let names = || {
            self.list
                .iter()
                .map(|a| a.label().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match name {
            None if self.list.len() == 1 => Ok(&self.list[0]),
            None => Err(ConfigErrors::one(
                "accounts",
                format!(
                    "the file has {} accounts; choose one with --account ({})",
                    self.list.len(),
                    names()
                ),
            )),
            Some(name) => self
                .list
                .iter()
                .find(|a| a.name.as_deref() == Some(name))
                .ok_or_else(|| {
                    let message = if self.is_single() {
                        format!(
                            "there is no account {name:?}: the file has a single unnamed account (leave out --account)"
                        )
                    } else {
                        format!("there is no account {name:?} (the accounts are {})", names())
                    };
                    ConfigErrors::one("accounts", message)
                }),
        }
    }

    /// The accounts, in file order, by value.
    pub fn into_vec(self) -> Vec<Account> {
        self.list
    }
}

impl IntoIterator for Accounts {
    type Item = Account;
    type IntoIter = std::vec::IntoIter<Account>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.into_iter()
    }
}

impl<'a> IntoIterator for &'a Accounts {
    type Item = &'a Account;
    type IntoIter = std::slice::Iter<'a, Account>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

/// Reads the accounts form (`doc` is a mapping with `accounts`): every problem at once, each at
/// its path; the accounts and the secret fields written out.
fn read_accounts(doc: &Value, env: &dyn Fn(&str) -> Option<String>) -> Result<(Accounts, Vec<String>), ConfigErrors> {
    let Value::Mapping(top) = doc else {
        return Err(ConfigErrors::one(ROOT_PATH, "expected a mapping"));
    };
    let shared_keys = shared_keys();
    let mut errors = Vec::new();
    let mut shared = Mapping::new();
    for (key, value) in top {
        match key {
            Value::String(k) if k == ACCOUNTS_KEY => {}
            Value::String(k) if OWN_KEYS.contains(&k.as_str()) => errors.push(ConfigError::new(
                k.as_str(),
                format!("with accounts, each account has its own {k}: move it into the entries of accounts"),
            )),
            Value::String(k) if shared_keys.contains(&k.as_str()) => {
                if !value.is_null() {
                    shared.insert(key.clone(), value.clone());
                }
            }
            Value::String(k) => errors.push(ConfigError::new(
                k.as_str(),
                format!(
                    "unknown key (expected one of {}, {ACCOUNTS_KEY})",
                    shared_keys.join(", ")
                ),
            )),
            other => errors.push(ConfigError::new(
                ROOT_PATH,
                format!("keys must be strings, found {}", describe(other)),
            )),
        }
    }

    // The shared settings, once, at their own paths; what an account needs beyond them
    // (its gateway, something to poll) is asked of each account.
    let mut walker = Walker::new(env, EXPANDED_FIELDS);
    let _ = Config::read(&mut walker, "", &Value::Mapping(shared.clone()));
    let (shared_errors, _) = walker.into_parts();
    errors.extend(
        shared_errors
            .into_iter()
            .filter(|e| shared_keys.contains(&first_key(&e.path))),
    );

    let items: &[Value] = match top.get(ACCOUNTS_KEY) {
        Some(Value::Sequence(items)) => items,
        Some(Value::Null) | None => &[],
        Some(other) => {
            errors.push(ConfigError::new(
                ACCOUNTS_KEY,
                format!("expected a list of accounts, found {}", describe(other)),
            ));
            &[]
        }
    };
    if items.is_empty() && !errors.iter().any(|e| e.path == ACCOUNTS_KEY) {
        errors.push(ConfigError::new(
            ACCOUNTS_KEY,
            "must list at least one account (each with a name and a gateway)",
        ));
    }

    let mut accounts = Vec::with_capacity(items.len());
    let mut literal_secrets = Vec::new();
    let mut names = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let base = format!("{ACCOUNTS_KEY}[{i}]");
        let mut walker = Walker::new(env, EXPANDED_FIELDS);
        let account = read_account(&mut walker, env, i, item, &shared, &shared_keys, &mut names);
        let (account_errors, literal) = walker.into_parts();
        errors.extend(account_errors);
        literal_secrets.extend(literal);
        if let Some(account) = account {
            if let Some(allowed) = env(gateway::ALLOWED_HOSTS_ENV) {
                if let Some(message) = account.config.gateway.disallowed_host(&allowed) {
                    errors.push(ConfigError::new(join(&base, "gateway.url"), message));
                    continue;
                }
            }
            accounts.push(account);
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    if accounts.len() != items.len() {
        return Err(ConfigErrors::one(ROOT_PATH, "invalid configuration"));
    }
    Ok((Accounts::named(accounts)?, literal_secrets))
}

/// Reads the entry `item` of `accounts` at `index` (path `accounts[1]`) as a whole [`Config`]: the
/// `shared` settings and its own keys. `names` holds the names of the entries before it, with
/// their index (its name may not repeat one); its own is added.
fn read_account(
    w: &mut Walker<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    index: usize,
    item: &Value,
    shared: &Mapping,
    shared_keys: &[&str],
    names: &mut Vec<(usize, String)>,
) -> Option<Account> {
    let base = &format!("{ACCOUNTS_KEY}[{index}]");
    let Value::Mapping(entry) = item else {
        w.error(
            base,
            format!(
                "expected a mapping ({}), found {}",
                ACCOUNT_KEYS.join(", "),
                describe(item)
            ),
        );
        return None;
    };
    let mut merged = shared.clone();
    let mut name_value = None;
    let mut ok = true;
    for (key, value) in entry {
        match key {
            Value::String(k) if k == "name" => name_value = Some(value).filter(|v| !v.is_null()),
            Value::String(k) if ACCOUNT_KEYS.contains(&k.as_str()) => {
                if !value.is_null() {
                    merged.insert(key.clone(), value.clone());
                }
            }
            Value::String(k) if shared_keys.contains(&k.as_str()) => {
                w.error(
                    &join(base, k),
                    format!("{k} is a top-level setting, shared by every account: move it out of accounts"),
                );
                ok = false;
            }
            Value::String(k) => {
                w.error(
                    &join(base, k),
                    format!("unknown key (expected one of {})", ACCOUNT_KEYS.join(", ")),
                );
                ok = false;
            }
            other => {
                w.error(base, format!("keys must be strings, found {}", describe(other)));
                ok = false;
            }
        }
    }
    let name_path = join(base, "name");
    let name = match name_value {
        None => {
            w.error(&name_path, "missing (it is the value of the account label)");
            None
        }
        Some(value) => w.text(&name_path, value).and_then(|name| {
            let checked = check_name(&name).and_then(|()| match names.iter().find(|(_, earlier)| *earlier == name) {
                Some((at, _)) => Err(format!("{name:?} is also the name of accounts[{at}]")),
                None => Ok(()),
            });
            match checked {
                Ok(()) => {
                    names.push((index, name.clone()));
                    Some(name)
                }
                Err(message) => {
                    w.error(&name_path, message);
                    None
                }
            }
        }),
    };
    // The problems of the shared settings were reported at their own paths: keep the
    // account's own (its calendar's, when it has one).
    let own_calendar = entry.get("calendar").is_some_and(|v| !v.is_null());
    let mut inner = Walker::new(env, EXPANDED_FIELDS);
    let config = Config::read(&mut inner, base, &Value::Mapping(merged));
    let (errors, literal_secrets) = inner.into_parts();
    let own = errors.into_iter().filter(|e| {
        let (account, within) = split_account(&e.path);
        let key = first_key(within);
        account.is_empty() || !shared_keys.contains(&key) || (key == "calendar" && own_calendar)
    });
    w.absorb(own, literal_secrets);
    match (name, config) {
        (Some(name), Some(config)) if ok => Some(Account {
            name: Some(name),
            config,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::Weekday;
    use secrecy::ExposeSecret;

    use super::*;
    use crate::config::DayHours;

    const TWO: &str = r#"
timezone: Europe/Berlin
poll_interval: 2m
calendar:
  hours: {all: "10:00-22:00"}
accounts:
  - name: brand-a
    gateway:
      url: https://gw-a.example/m.api
      app_key: key-a
      app_secret: ${SECRET_A}
    shops:
      - id: S_1
      - id: O_2
  - name: brand-b
    gateway:
      url: https://gw-b.example/m.api
      app_key: key-b
      app_secret: written-b
      requests_per_second: 2
    devices:
      - mac: d47c44906f14
    calendar:
      hours: {all: 24h}
"#;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    fn parse(text: &str) -> Result<(Accounts, Vec<String>), ConfigErrors> {
        Accounts::parse(text, &env_of(&[("SECRET_A", "s3cr3t-a")]))
    }

    fn errors(text: &str) -> Vec<ConfigError> {
        match parse(text) {
            Ok((a, _)) => panic!("expected errors, got {a:?}"),
            Err(e) => e.0,
        }
    }

    /// Asserts there is exactly one error at `path`, and that it contains `word`.
    fn assert_error(errs: &[ConfigError], path: &str, word: &str) {
        let at: Vec<&ConfigError> = errs.iter().filter(|e| e.path == path).collect();
        assert!(
            at.len() == 1 && at[0].message.contains(word),
            "not one error at {path} containing {word:?} in:\n{}",
            ConfigErrors(errs.to_vec())
        );
    }

    /// `TWO` with `from` replaced by `to` (which must be there).
    fn two_with(from: &str, to: &str) -> String {
        assert!(TWO.contains(from), "{from:?}");
        TWO.replacen(from, to, 1)
    }

    #[test]
    fn two_accounts_share_the_top_level_and_keep_their_own() {
        let (accounts, literal) = parse(TWO).expect("valid");
        assert!(!accounts.is_single());
        assert_eq!(accounts.len(), 2);
        let names: Vec<&str> = accounts.iter().map(Account::label).collect();
        assert_eq!(names, ["brand-a", "brand-b"]);
        let a = &accounts.pick(Some("brand-a")).expect("brand-a").config;
        let b = &accounts.pick(Some("brand-b")).expect("brand-b").config;
        assert_eq!(a.gateway.url.as_str(), "https://gw-a.example/m.api");
        assert_eq!(a.gateway.app_secret.expose_secret(), "s3cr3t-a", "expanded");
        assert_eq!((a.shops.len(), a.devices.len()), (2, 0));
        assert_eq!((b.shops.len(), b.devices.len()), (0, 1));
        assert_eq!(b.gateway.requests_per_second, 2.0);
        assert_eq!(a.gateway.requests_per_second, 5.0, "each its own gateway settings");
        for c in [a, b] {
            assert_eq!(c.timezone, chrono_tz::Europe::Berlin);
            assert_eq!(c.poll_interval, std::time::Duration::from_secs(120));
        }
        // brand-b's calendar replaces the top level's; brand-a keeps it.
        let open = |c: &Config| c.calendar_for("1", None).hours(Weekday::Mon);
        assert_eq!(open(a), DayHours::Open { start: 600, end: 1320 });
        assert_eq!(open(b), DayHours::Open { start: 0, end: 1440 });
        assert_eq!(
            literal,
            ["accounts[1].gateway.app_secret"],
            "written out in brand-b only"
        );
        let names: Vec<String> = accounts.into_iter().filter_map(|a| a.name).collect();
        assert_eq!(names, ["brand-a", "brand-b"]);
    }

    #[test]
    fn the_accounts_example_parses() {
        let env = env_of(&[
            ("BRAND_A_APP_KEY", "ka"),
            ("BRAND_A_APP_SECRET", "sa"),
            ("BRAND_B_APP_KEY", "kb"),
            ("BRAND_B_APP_SECRET", "sb"),
        ]);
        let (accounts, literal) =
            Accounts::parse(include_str!("../../config.accounts.example.yaml"), &env).expect("valid");
        let names: Vec<&str> = accounts.iter().map(Account::label).collect();
        assert_eq!(names, ["brand-a", "brand-b"]);
        let b = &accounts.pick(Some("brand-b")).expect("brand-b").config;
        assert_eq!((b.shops.len(), b.gateway.requests_per_second), (1, 2.0));
        assert!(literal.is_empty(), "{literal:?}");
        // The commented accounts form at the end of config.example.yaml, uncommented, reads too.
        let example = include_str!("../../config.example.yaml");
        let at = example.find("# accounts:").expect("the accounts form is shown");
        let form: String = example[at..]
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .map(|l| format!("{l}\n"))
            .collect();
        let env = env_of(&[
            ("BRAND_A_APP_KEY", "ka"),
            ("BRAND_A_APP_SECRET", "sa"),
            ("BRAND_B_APP_KEY", "kb"),
            ("BRAND_B_APP_SECRET", "sb"),
        ]);
        let (accounts, _) = Accounts::parse(&form, &env).expect("valid");
        assert_eq!(accounts.len(), 2);
    }

    #[test]
    fn the_single_form_is_one_unnamed_account() {
        let text = "gateway:\n  url: https://gw.example/m.api\n  app_key: k\n  app_secret: s\nshops:\n  - id: S_1\n";
        let (accounts, literal) = parse(text).expect("valid");
        assert!(accounts.is_single());
        assert_eq!(accounts.len(), 1);
        let only = accounts.pick(None).expect("the only account");
        assert_eq!((only.name.as_deref(), only.label()), (None, ""));
        assert_eq!(literal, ["gateway.app_secret"]);
        let err = accounts.pick(Some("brand-a")).expect_err("no such account");
        assert!(err.to_string().contains("single unnamed account"), "{err}");
        // And Config reads it as before.
        assert!(Config::parse(text, &env_of(&[])).is_ok());
    }

    #[test]
    fn config_alone_refuses_a_file_of_several_accounts() {
        let err = Config::parse(TWO, &env_of(&[("SECRET_A", "x")])).expect_err("several accounts");
        assert_eq!(err.0.len(), 1, "{err}");
        assert_eq!(err.0[0].path, "accounts");
        assert!(err.0[0].message.contains("--account"), "{err}");
    }

    #[test]
    fn several_accounts_need_a_name_to_pick_one() {
        let (accounts, _) = parse(TWO).expect("valid");
        let err = accounts.pick(None).expect_err("two accounts");
        assert!(err.to_string().contains("--account (brand-a, brand-b)"), "{err}");
        let err = accounts.pick(Some("brand-c")).expect_err("unknown");
        assert!(err.to_string().contains("no account \"brand-c\""), "{err}");
    }

    #[test]
    fn mixing_the_forms_names_each_misplaced_key() {
        let errs = errors(&format!(
            "gateway:\n  url: https://gw.example/m.api\nshops: [{{id: S_1}}]\ndevices: []\nshop_overrides: []\n{TWO}"
        ));
        for key in ["gateway", "shops", "devices", "shop_overrides"] {
            assert_error(&errs, key, "move it into the entries of accounts");
        }
        assert_eq!(errs.len(), 4, "{errs:?}");
    }

    #[test]
    fn problems_of_every_account_are_reported_at_once_with_their_paths() {
        let text = r#"
timezone: Mars/Olympus
colour: blue
accounts:
  - name: brand a
    timezone: UTC
    poll_interval: 1m
    region: east
    gateway:
      url: https://gw.example/m.api
      app_key: k
      app_secret: ${UNSET_SECRET}
    shops: [{id: X_1}]
  - name: brand-b
    gateway: {url: "ftp://gw.example/", app_key: k}
    shops: [{id: S_1}]
  - name: brand-b
    gateway: {url: https://gw.example/m.api, app_key: k, app_secret: s}
  - gateway: {url: https://gw.example/m.api, app_key: k, app_secret: s}
    devices: [{mac: d47c44906f14}]
  - 7
"#;
        let errs = errors(text);
        assert_error(&errs, "timezone", "unknown time zone");
        assert_error(&errs, "colour", "unknown key");
        assert_error(&errs, "accounts[0].name", "letters, digits");
        assert_error(&errs, "accounts[0].timezone", "top-level setting");
        assert_error(&errs, "accounts[0].poll_interval", "top-level setting");
        assert_error(
            &errs,
            "accounts[0].region",
            "unknown key (expected one of name, gateway",
        );
        assert_error(&errs, "accounts[0].gateway.app_secret", "UNSET_SECRET is not set");
        assert_error(&errs, "accounts[0].shops[0].id", "X_1");
        assert_error(&errs, "accounts[1].gateway.url", "scheme");
        assert_error(&errs, "accounts[1].gateway.app_secret", "missing");
        assert_error(&errs, "accounts[2].name", "also the name of accounts[1]");
        assert_error(&errs, "accounts[2].shops", "nothing to poll");
        assert_error(&errs, "accounts[3].name", "missing");
        assert_error(&errs, "accounts[4]", "expected a mapping");
        assert_eq!(errs.len(), 14, "each problem once:\n{}", ConfigErrors(errs.clone()));
    }

    #[test]
    fn account_names_are_label_values_of_64_plain_characters() {
        for good in ["a", "brand-a", "Brand_A.2", &"x".repeat(64)] {
            assert_eq!(check_name(good), Ok(()), "{good}");
            parse(&two_with("name: brand-a", &format!("name: {good}"))).expect(good);
        }
        for bad in ["brand a", "brand/a", "märke", "a{b}", &"x".repeat(65), "\"\""] {
            let errs = errors(&two_with("name: brand-a", &format!("name: {bad}")));
            assert_eq!(errs.len(), 1, "{bad}: {errs:?}");
            assert_eq!(errs[0].path, "accounts[0].name", "{bad}");
        }
        assert_error(
            &errors(&two_with("name: brand-a", "name: 12")),
            "accounts[0].name",
            "quote",
        );
        // Accounts::named keeps the same rule.
        let config = parse(TWO).expect("valid").0.into_vec().remove(0).config;
        let named = |name: &str| {
            Accounts::named(vec![Account {
                name: Some(name.to_string()),
                config: config.clone(),
            }])
        };
        assert!(named("brand-a").is_ok());
        assert_eq!(named("brand a").expect_err("a blank").0[0].path, "accounts[0].name");
    }

    #[test]
    fn the_accounts_must_be_a_list_of_at_least_one() {
        assert_error(&errors("timezone: UTC\naccounts: []\n"), "accounts", "at least one");
        assert_error(&errors("accounts:\n"), "accounts", "at least one");
        let errs = errors("accounts: {name: a}\n");
        assert_error(&errs, "accounts", "expected a list");
        assert_eq!(errs.len(), 1, "{errs:?}");
    }

    #[test]
    fn variables_expand_in_an_accounts_credentials_and_url_only() {
        let text = two_with("url: https://gw-b.example/m.api", "url: https://${HOST_B}/m.api");
        let text = text.replacen("app_secret: written-b", "app_secret: ${SECRET_B}", 1);
        let env = env_of(&[("SECRET_A", "a"), ("SECRET_B", "s3cr3t-b"), ("HOST_B", "gw-b2.example")]);
        let (accounts, literal) = Accounts::parse(&text, &env).expect("valid");
        let b = &accounts.pick(Some("brand-b")).expect("brand-b").config;
        assert_eq!(b.gateway.url.host_str(), Some("gw-b2.example"));
        assert_eq!(b.gateway.app_secret.expose_secret(), "s3cr3t-b");
        assert!(literal.is_empty(), "{literal:?}");

        // Unset: the error names the account's field and the variable, never a value.
        let err = Accounts::parse(&text, &env_of(&[("SECRET_A", "s3cr3t-a"), ("HOST_B", "h")])).expect_err("unset");
        assert_eq!(err.0.len(), 1, "{err}");
        assert_eq!(err.0[0].path, "accounts[1].gateway.app_secret");
        assert!(err.0[0].message.contains("SECRET_B is not set"), "{err}");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");

        // Anywhere else in an account, ${ is refused, naming where variables work.
        let errs = errors(&two_with(
            "- mac: d47c44906f14",
            "- mac: d47c44906f14\n        name: \"${SECRET_A}\"",
        ));
        assert_error(&errs, "accounts[1].devices[0].name", "accounts[1].gateway.app_secret");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(!ConfigErrors(errs).to_string().contains("s3cr3t"));
        assert_error(
            &errors(&two_with("poll_interval: 2m", "poll_interval: ${SECRET_A}")),
            "poll_interval",
            "not expanded here",
        );
    }

    #[test]
    fn the_environment_pins_every_accounts_gateway_host() {
        let env = |hosts: &'static str| env_of(&[("SECRET_A", "a"), ("OPRETAIL_ALLOWED_GATEWAY_HOSTS", hosts)]);
        assert!(Accounts::parse(TWO, &env("gw-a.example gw-b.example")).is_ok());
        let err = Accounts::parse(TWO, &env("gw-a.example")).expect_err("brand-b's host");
        assert_eq!(err.0.len(), 1, "{err}");
        assert_eq!(err.0[0].path, "accounts[1].gateway.url");
        assert!(err.0[0].message.contains("gw-b.example is not one"), "{err}");
    }

    #[test]
    fn warnings_name_the_account_and_its_field() {
        let text = two_with("url: https://gw-b.example/m.api", "url: http://gw-b.example/m.api");
        let (accounts, _) = parse(&text).expect("valid");
        let warnings = accounts.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("brand-b: accounts[1].gateway.url is http://gw-b.example:80"),
            "{}",
            warnings[0]
        );
        let single = "gateway:\n  url: http://gw.example/m.api\n  app_key: k\n  app_secret: s\nshops:\n  - id: S_1\n";
        let warnings = parse(single).expect("valid").0.warnings();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("gateway.url is http://"),
            "unchanged: {}",
            warnings[0]
        );
    }

    #[test]
    fn load_warns_about_a_readable_file_with_any_accounts_secret() {
        let dir = crate::test_dir("accounts-load");
        let path = dir.join("config.yaml");
        std::fs::write(&path, TWO.replace("${SECRET_A}", "written-a")).expect("write");
        #[cfg(unix)]
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).expect("chmod");
        let (accounts, warnings) = Accounts::load_quietly(&path).expect("valid");
        assert_eq!(accounts.len(), 2);
        #[cfg(unix)]
        {
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(
                warnings[0].contains("holds accounts[0].gateway.app_secret, accounts[1].gateway.app_secret as written"),
                "{}",
                warnings[0]
            );
            assert!(!warnings[0].contains("written-"), "{}", warnings[0]);
        }
        let err = Config::load(&path).expect_err("several accounts");
        assert_eq!(err.0[0].path, "accounts");
    }
}
