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
pub const MAX_NAME_CHARS: usize = 64;

/// Whether `name` may name an account (the `account` label): 1 to [`MAX_NAME_CHARS`]
/// characters of `A-Z a-z 0-9 _ . -`; the error says what is wrong, without the name.
pub fn check_name(name: &str) -> Result<(), String> {
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

    /// Named accounts. An empty list, an empty, repeated or badly formed name (see
    /// [`check_name`]), or a mix of named and unnamed accounts is an error naming
    /// `accounts[i].name`.
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
            let checked = check_name(&name).and_then(|()| {
                match names.iter().find(|(_, earlier)| *earlier == name) {
                    Some((at, _)) => Err(format!("{name:?} is also the name of accounts[{at}]")),
                    None => Ok(()),
                }
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
