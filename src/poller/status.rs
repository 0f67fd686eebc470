//! What a round tells the status board ([`crate::status`]): which ids and macs its calls
//! asked, and the error of each call that failed, gathered from the outcomes before the merge
//! consumes them. The merge decides up and down; the board pairs that with these errors.

use std::sync::Arc;

use super::round::Outcome;
use crate::status::{RoundSeen, TargetError};

/// The ids asked and the failures of a round's `outcomes` (a call a re-poll skipped asked
/// nothing). `now`: the round's start, Unix seconds.
pub(super) fn seen(outcomes: &[Outcome], now: f64, priority: bool) -> RoundSeen {
    let mut seen = RoundSeen {
        now,
        priority,
        ..RoundSeen::default()
    };
    for outcome in outcomes {
        match outcome {
            Outcome::Shops { split, .. } => {
                for leaf in &split.leaves {
                    let error = leaf.result.as_ref().err().map(|e| Arc::new(TargetError::of(e, now)));
                    for id in &leaf.ids {
                        let id = id.to_string();
                        if let Some(e) = &error {
                            seen.failures.insert(id.clone(), Arc::clone(e));
                        }
                        seen.attempted.insert(id);
                    }
                }
            }
            Outcome::Device(dev, result, _) => {
                if let Err(e) = result {
                    seen.failures.insert(dev.mac.clone(), Arc::new(TargetError::of(e, now)));
                }
                seen.attempted.insert(dev.mac.clone());
            }
            Outcome::Skipped(_) => {}
        }
    }
    seen
}
