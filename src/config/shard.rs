//! Sharding: one replica's share of the targets when several exporters split a large chain.
//! The share is fixed by a stable hash of each target's key, so that replicas of any version on
//! any machine agree on who polls what without talking to each other. A [`Shard`] comes from
//! the `sharding` key of the file or from `--shard INDEX/TOTAL` on the command line; both are
//! checked by [`Shard::new`].

use std::fmt;
use std::str::FromStr;

use serde_yaml::Value;

use super::walk::{join, Walker};

/// The keys of `sharding`.
pub(super) const SHARDING_KEYS: &[&str] = &["index", "total"];

/// One replica's share of the targets: those whose stable hash modulo `total` is `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub(crate) index: u32,
    pub(crate) total: u32,
}

/// Why an index and a total, or a text, are not a [`Shard`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// `total` is 0.
    #[error("the number of shards must be at least 1")]
    NoShards,
    /// `index` is not below `total`.
    #[error("shard index {index} must be below the number of shards {total} (indexes count from 0)")]
    IndexTooLarge { index: u32, total: u32 },
    /// The text is not `INDEX/TOTAL`.
    #[error("invalid shard {0:?}: expected INDEX/TOTAL such as 0/3, or POD-NAME-<n>/TOTAL")]
    Syntax(String),
}

impl Shard {
    /// A checked shard: `total` at least 1 and `index` below it.
    pub fn new(index: u32, total: u32) -> Result<Shard, ShardError> {
        if total == 0 {
            return Err(ShardError::NoShards);
        }
        if index >= total {
            return Err(ShardError::IndexTooLarge { index, total });
        }
        Ok(Shard { index, total })
    }

    /// Whether this shard polls the target named `key` (`S_…`, `O_…` or a normalised mac).
    /// The hash (64-bit FNV-1a) is fixed: it never changes between versions or machines.
    pub(crate) fn owns(&self, key: &str) -> bool {
        shard_of(key, self.total) == self.index
    }
}

/// The shard of `key` among `total`: 64-bit FNV-1a of its bytes, modulo `total`.
fn shard_of(key: &str, total: u32) -> u32 {
    (stable_hash(key) % u64::from(total.max(1))) as u32
}

/// 64-bit FNV-1a of `key`'s bytes: the same on every machine and in every version.
pub(crate) fn stable_hash(key: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

impl FromStr for Shard {
    type Err = ShardError;
    /// `INDEX/TOTAL`, where INDEX may also be a name ending in `-<number>` (a StatefulSet pod
    /// name such as `opretail-exporter-2`), so that `--shard $(POD_NAME)/3` works.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || ShardError::Syntax(s.to_string());
        let (index, total) = s.trim().rsplit_once('/').ok_or_else(syntax)?;
        let index = match index.trim().rsplit_once('-') {
            Some((name, n)) if !name.is_empty() => n,
            _ => index,
        }
        .trim();
        let index: u32 = index.parse().map_err(|_| syntax())?;
        let total: u32 = total.trim().parse().map_err(|_| syntax())?;
        Shard::new(index, total)
    }
}

/// The `sharding` mapping: `index` and `total`, checked together.
pub(super) fn read_sharding(w: &mut Walker<'_>, path: &str, value: &Value) -> Option<Shard> {
    let f = w.mapping(path, value, SHARDING_KEYS)?;
    let index = w.required(&f, path, "index", |w, p, v| w.integer(p, v, 0..=u32::MAX as usize));
    let total = w.required(&f, path, "total", |w, p, v| w.integer(p, v, 1..=u32::MAX as usize));
    match Shard::new(u32::try_from(index?).ok()?, u32::try_from(total?).ok()?) {
        Ok(shard) => Some(shard),
        Err(e) => {
            w.error(&join(path, "index"), e.to_string());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_strings() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, total: 3 }));
        assert_eq!(
            "opretail-exporter-2/3".parse::<Shard>(),
            Ok(Shard { index: 2, total: 3 })
        );
        assert_eq!(" 0 / 1 ".parse::<Shard>(), Ok(Shard { index: 0, total: 1 }));
        for bad in ["3/3", "1/0", "x/2", "2", "-1/2", "pod/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_partition_the_targets_stably() {
        // The hash is part of the contract: replicas of different versions must agree.
        assert_eq!(shard_of("S_9642", 3), 0);
        assert_eq!(shard_of("O_1834", 3), 1);
        assert_eq!(shard_of("d47c44906f14", 3), 1);
        let keys: Vec<String> = (0..3000).map(|i| format!("S_{i}")).collect();
        let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).unwrap()).collect();
        let mut counts = [0usize; 3];
        for k in &keys {
            let owners: Vec<usize> = (0..3).filter(|&i| shards[i].owns(k)).collect();
            assert_eq!(owners.len(), 1, "{k} is owned by exactly one shard");
            counts[owners[0]] += 1;
        }
        assert!(
            counts.iter().all(|&c| (900..=1100).contains(&c)),
            "balanced: {counts:?}"
        );
    }
}
