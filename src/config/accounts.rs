//! Several accounts in one file: the `accounts:` list, each entry an Opretail account (or app
//! key) with its own gateway settings, shops, devices and calendar, and the settings of the top
//! level (time zone, intervals, baseline, sharding) shared by all. Each account reads as a whole
//! [`Config`] of its own, so the client, the poller and the commands work on one account at a
//! time and never see another's key. The single-account form of a file (a top-level `gateway`,
//! no `accounts`) is one unnamed account, and its series carry no `account` label.

use std::path::Path;

use super::{Config, ConfigError, ConfigErrors};

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

    /// Named accounts. An empty list, an empty or repeated name, or a mix of named and unnamed
    /// accounts is an error naming `accounts[i].name`.
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
                Some(_) => {}
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
    /// them).
    pub fn load_quietly(path: &Path) -> Result<(Accounts, Vec<String>), ConfigErrors> {
        let (config, warnings) = Config::load_quietly(path)?;
        Ok((Accounts::single(config), warnings))
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
