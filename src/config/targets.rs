//! The `shops` and `devices` lists: what the exporter polls; and `shop_overrides`, the own
//! level of shops reached through an organisation. Each item is checked on its own (a shop id
//! is `S_<depId>` or `O_<orgId>`, a MAC address has 12 hex digits, labels and calendars as
//! `calendar.rs` reads them) and against the others (no id, MAC or override listed twice, with
//! the first listing named; no override for a shop listed by its own `S_` id), and the shop and
//! device lists together must not be empty. Ids and MACs are parsed by [`crate::model`], so
//! that the command line reads them the same way. The shop lists are indexed by id
//! ([`Indexed`]), since a shop's settings are looked up every round for every shop.

use std::collections::HashMap;
use std::fmt::Display;
use std::hash::Hash;
use std::ops::Deref;

use serde_yaml::Value;

use super::calendar::{read_calendar, read_labels, CalendarLevel, Labels};
use super::walk::{describe, join, Fields, Walker};
use crate::model::{normalize_mac, DeviceTarget, TargetId};

/// The keys of one `shops` item.
pub(super) const SHOP_KEYS: &[&str] = &["id", "labels", "calendar"];
/// The keys of one `shop_overrides` item.
pub(super) const OVERRIDE_KEYS: &[&str] = &["shop_id", "labels", "calendar"];
/// The keys of one `devices` item.
pub(super) const DEVICE_KEYS: &[&str] = &["mac", "name", "shop_id"];

/// A shop or organisation to poll with the many-shops method, with the static labels and the
/// calendar of its level (an organisation's apply to all its shops).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopTarget {
    pub id: TargetId,
    pub labels: Labels,
    pub calendar: CalendarLevel,
}

impl ShopTarget {
    /// A target without labels or calendar of its own.
    pub fn new(id: TargetId) -> Self {
        ShopTarget {
            id,
            labels: Labels::default(),
            calendar: CalendarLevel::default(),
        }
    }
}

/// The own level of a shop reached through an organisation: its static labels and calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopOverride {
    /// The shop's depId.
    pub shop_id: u64,
    pub labels: Labels,
    pub calendar: CalendarLevel,
}

/// What a list is indexed by.
pub trait Keyed {
    type Key: Eq + Hash + Clone;
    fn key(&self) -> Self::Key;
}

impl Keyed for ShopTarget {
    type Key = TargetId;
    fn key(&self) -> TargetId {
        self.id.clone()
    }
}

impl Keyed for ShopOverride {
    type Key = u64;
    fn key(&self) -> u64 {
        self.shop_id
    }
}

/// A list in its configured order, indexed by its items' keys (the first item of a key wins;
/// the configuration refuses duplicates). Read as a slice; built from a `Vec` or an iterator,
/// so that the index cannot go stale.
#[derive(Debug, Clone)]
pub struct Indexed<T: Keyed> {
    items: Vec<T>,
    index: HashMap<T::Key, usize>,
}

impl<T: Keyed> Indexed<T> {
    /// The item of `key`, and its position in the list.
    pub fn get(&self, key: &T::Key) -> Option<(usize, &T)> {
        let i = *self.index.get(key)?;
        self.items.get(i).map(|item| (i, item))
    }
}

impl<T: Keyed> Default for Indexed<T> {
    fn default() -> Self {
        Vec::new().into()
    }
}

impl<T: Keyed> From<Vec<T>> for Indexed<T> {
    fn from(items: Vec<T>) -> Self {
        let mut index = HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            index.entry(item.key()).or_insert(i);
        }
        Indexed { items, index }
    }
}

impl<T: Keyed> FromIterator<T> for Indexed<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        iter.into_iter().collect::<Vec<T>>().into()
    }
}

impl<T: Keyed> Deref for Indexed<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.items
    }
}

impl<'a, T: Keyed> IntoIterator for &'a Indexed<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// The `shops` list: unique `S_`/`O_` ids, each with optional labels and calendar.
pub(super) fn read_shops(w: &mut Walker<'_>, path: &str, value: &Value) -> Option<Indexed<ShopTarget>> {
    unique_items(w, path, value, SHOP_KEYS, "id", |w, f, item_path| {
        let id = w.required(f, item_path, "id", |w, p, v| w.converted(p, v, str::parse::<TargetId>));
        let labels = w.optional(f, item_path, "labels", Labels::default(), read_labels);
        let calendar = w.optional(f, item_path, "calendar", CalendarLevel::default(), read_calendar);
        let (id, labels, calendar) = (id?, labels?, calendar?);
        Some((id.clone(), join(item_path, "id"), ShopTarget { id, labels, calendar }))
    })
    .map(Indexed::from)
}

/// The `shop_overrides` list: unique depIds, each with optional labels and calendar.
pub(super) fn read_shop_overrides(w: &mut Walker<'_>, path: &str, value: &Value) -> Option<Indexed<ShopOverride>> {
    unique_items(w, path, value, OVERRIDE_KEYS, "shop_id", |w, f, item_path| {
        let shop_id = w.required(f, item_path, "shop_id", read_shop_id);
        let labels = w.optional(f, item_path, "labels", Labels::default(), read_labels);
        let calendar = w.optional(f, item_path, "calendar", CalendarLevel::default(), read_calendar);
        let shop_id: u64 = shop_id?.parse().ok()?;
        let item = ShopOverride {
            shop_id,
            labels: labels?,
            calendar: calendar?,
        };
        Some((shop_id, join(item_path, "shop_id"), item))
    })
    .map(Indexed::from)
}

/// The `devices` list: unique MAC addresses, each with optional labels.
pub(super) fn read_devices(w: &mut Walker<'_>, path: &str, value: &Value) -> Option<Vec<DeviceTarget>> {
    unique_items(w, path, value, DEVICE_KEYS, "MAC address", |w, f, item_path| {
        let mac = w.required(f, item_path, "mac", |w, p, v| w.converted(p, v, normalize_mac));
        let name = w.maybe(f, item_path, "name", Walker::text);
        let shop_id = w.maybe(f, item_path, "shop_id", read_shop_id);
        let (mac, name, shop_id) = (mac?, name?, shop_id?);
        Some((mac.clone(), join(item_path, "mac"), DeviceTarget { mac, name, shop_id }))
    })
}

/// The items of the list at `path`, each a mapping of `keys` that `read` turns into the key that
/// must be unique, that key's path, and the item. A key listed twice is an error at the second
/// listing, naming the first (`what` says what the key is).
fn unique_items<K: Eq + Hash + Display, T>(
    w: &mut Walker<'_>,
    path: &str,
    value: &Value,
    keys: &[&str],
    what: &str,
    mut read: impl FnMut(&mut Walker<'_>, &Fields<'_>, &str) -> Option<(K, String, T)>,
) -> Option<Vec<T>> {
    let items = w.list(path, value)?;
    let mut seen: HashMap<K, String> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let Some((key, key_path, item)) = w.mapping(&item_path, item, keys).and_then(|f| read(w, &f, &item_path))
        else {
            ok = false;
            continue;
        };
        if let Some(first) = seen.get(&key) {
            w.error(&key_path, format!("duplicate {what} {key} (first listed at {first})"));
            ok = false;
            continue;
        }
        seen.insert(key, key_path);
        out.push(item);
    }
    ok.then_some(out)
}

/// The lists together (each checked only when valid): at least one shop or device overall,
/// and no override for a shop listed by its own `S_` id (whose entry is its own level).
pub(super) fn check_lists(
    w: &mut Walker<'_>,
    path: &str,
    shops: &Option<Indexed<ShopTarget>>,
    devices: &Option<Vec<DeviceTarget>>,
    overrides: &Option<Indexed<ShopOverride>>,
) -> bool {
    let mut ok = true;
    if let (Some(shops), Some(devices)) = (shops, devices) {
        if shops.is_empty() && devices.is_empty() {
            w.error(
                &join(path, "shops"),
                "nothing to poll: list at least one shop under shops or one device under devices",
            );
            ok = false;
        }
    }
    if let (Some(shops), Some(overrides)) = (shops, overrides) {
        for (i, o) in overrides.iter().enumerate() {
            if let Some((at, _)) = shops.get(&TargetId::Shop(o.shop_id)) {
                w.error(
                    &format!("{}[{i}].shop_id", join(path, "shop_overrides")),
                    format!(
                        "shop {} is listed by its own id at shops[{at}]: give its labels and calendar there",
                        o.shop_id
                    ),
                );
                ok = false;
            }
        }
    }
    ok
}

/// A depId label, given as a YAML number or a string of decimal digits.
fn read_shop_id(w: &mut Walker<'_>, path: &str, value: &Value) -> Option<String> {
    const HINT: &str = "expected a shop depId such as 9642";
    match value {
        Value::Number(n) => match n.as_u64() {
            Some(n) => Some(n.to_string()),
            None => {
                w.error(path, format!("{HINT}, found {n}"));
                None
            }
        },
        Value::String(raw) => {
            let text = w.expand(path, raw, false)?;
            let digits = text.trim();
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                w.error(path, format!("{HINT}, found {text:?}"));
                return None;
            }
            match digits.parse::<u64>() {
                Ok(n) => Some(n.to_string()),
                Err(_) => {
                    w.error(path, format!("{HINT}, found {text:?} (too large)"));
                    None
                }
            }
        }
        other => {
            w.error(path, format!("{HINT}, found {}", describe(other)));
            None
        }
    }
}
