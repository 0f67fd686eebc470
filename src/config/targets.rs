//! The `shops` and `devices` lists: what the exporter polls. Each item is checked on its own
//! (a shop id is `S_<depId>` or `O_<orgId>`, a MAC address has 12 hex digits) and against the
//! others (no id or MAC listed twice, with the first listing named), and the two lists together
//! must not be empty. Ids and MACs are parsed by [`crate::model`], so that the command line
//! reads them the same way.

use std::collections::HashMap;
use std::fmt::Display;
use std::hash::Hash;

use serde_yaml::Value;

use super::walk::{describe, join, Fields, Walker};
use crate::model::{normalize_mac, DeviceTarget, TargetId};

/// The keys of one `shops` item.
pub(super) const SHOP_KEYS: &[&str] = &["id"];
/// The keys of one `devices` item.
pub(super) const DEVICE_KEYS: &[&str] = &["mac", "name", "shop_id"];

/// A shop or organisation to poll with the many-shops method.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShopTarget {
    pub id: TargetId,
}

/// The `shops` list: unique `S_`/`O_` ids.
pub(super) fn read_shops(w: &mut Walker<'_>, path: &str, value: &Value) -> Option<Vec<ShopTarget>> {
    unique_items(w, path, value, SHOP_KEYS, "id", |w, f, item_path| {
        let id = w.required(f, item_path, "id", |w, p, v| w.converted(p, v, str::parse::<TargetId>))?;
        Some((id.clone(), join(item_path, "id"), ShopTarget { id }))
    })
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

/// At least one shop or device overall (checked only when both lists are valid).
pub(super) fn something_to_poll(
    w: &mut Walker<'_>,
    shops: &Option<Vec<ShopTarget>>,
    devices: &Option<Vec<DeviceTarget>>,
) -> bool {
    if let (Some(shops), Some(devices)) = (shops, devices) {
        if shops.is_empty() && devices.is_empty() {
            w.error(
                "shops",
                "nothing to poll: list at least one shop under shops or one device under devices",
            );
            return false;
        }
    }
    true
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
