//! What each send operation carried (the records' `calls`): messages per call per engine,
//! batch and mode, against the batch asked for, so a reader sees that a comparison at one batch
//! held the batching equal, and where a mode's limit held it below the size asked for.

use crate::cell::{batch_key, engine_key, BatchKey, EngineKey};
use sendpath_record::v1::{Record, Status};
use sendpath_record::{Mode, Pattern};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Messages per send operation of one (engine, batch, mode, size): medians over the stream
/// records that counted their calls.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallsRow {
    /// The engine (with its ordering where not the default).
    pub engine: EngineKey,
    /// The batch (`1`, `512K`).
    pub batch: BatchKey,
    /// The send path.
    pub mode: Mode,
    /// Bytes per message.
    pub msg_size_bytes: u64,
    /// Median messages per call over the repetitions.
    pub messages_per_call: f64,
    /// The messages a call was built to carry.
    pub batch_messages: u64,
    /// What held the batch below the size asked for, if anything.
    pub capped_by: Option<String>,
}

impl CallsRow {
    /// Whether the calls carried what they were built for, within `tolerance` (0.05: 5%).
    pub fn as_planned(&self, tolerance: f64) -> bool {
        (self.messages_per_call / self.batch_messages.max(1) as f64 - 1.0).abs() <= tolerance
    }
}

/// The calls of every ok stream record, per (engine, batch, mode, size).
pub fn calls_rows(records: &[Record]) -> Vec<CallsRow> {
    type Key = (EngineKey, BatchKey, Mode, u64);
    let mut by: BTreeMap<Key, (Vec<f64>, u64, Option<String>)> = BTreeMap::new();
    for r in records
        .iter()
        .filter(|r| r.status == Status::Ok && r.spec.pattern == Pattern::Stream)
    {
        let Some(c) = &r.calls else { continue };
        let e = by
            .entry((
                engine_key(r),
                batch_key(r),
                r.spec.mode,
                r.spec.msg_size_bytes,
            ))
            .or_insert_with(|| (Vec::new(), c.batch_messages, c.capped_by.clone()));
        e.0.push(c.messages_per_call);
    }
    by.into_iter()
        .map(
            |((engine, batch, mode, msg_size_bytes), (v, batch_messages, capped_by))| CallsRow {
                engine,
                batch,
                mode,
                msg_size_bytes,
                messages_per_call: crate::stats::median(&v),
                batch_messages,
                capped_by,
            },
        )
        .collect()
}

/// The report's paragraph on batching: per batch, the messages per call each mode carried
/// over the sizes measured, what capped it, and whether the calls ran as built.
pub fn batching_note(rows: &[CallsRow]) -> Option<String> {
    if rows.is_empty() {
        return None;
    }
    let batches: BTreeSet<BatchKey> = rows.iter().map(|r| r.batch).collect();
    let mut parts = Vec::new();
    for batch in batches {
        let of: Vec<&CallsRow> = rows.iter().filter(|r| r.batch == batch).collect();
        let mut modes: BTreeMap<Mode, (f64, f64)> = BTreeMap::new();
        for r in &of {
            let e = modes
                .entry(r.mode)
                .or_insert((f64::INFINITY, f64::NEG_INFINITY));
            *e = (e.0.min(r.messages_per_call), e.1.max(r.messages_per_call));
        }
        let ranges: Vec<String> = modes
            .iter()
            .map(|(m, (lo, hi))| {
                if (hi - lo).abs() < 0.5 {
                    format!("{} {lo:.0}", m.as_str().to_uppercase())
                } else {
                    format!("{} {lo:.0} to {hi:.0}", m.as_str().to_uppercase())
                }
            })
            .collect();
        let caps: BTreeSet<String> = of
            .iter()
            .filter_map(|r| {
                r.capped_by.as_ref().map(|c| {
                    format!(
                        "{} at {} B held to {} messages ({c})",
                        r.mode.as_str().to_uppercase(),
                        r.msg_size_bytes,
                        r.batch_messages
                    )
                })
            })
            .collect();
        let off = of.iter().filter(|r| !r.as_planned(0.05)).count();
        parts.push(format!(
            "batch {batch}: messages per send call {}{}{}",
            ranges.join(", "),
            if caps.is_empty() {
                String::new()
            } else {
                format!("; {}", caps.into_iter().collect::<Vec<_>>().join("; "))
            },
            if off == 0 {
                String::new()
            } else {
                format!(
                    "; {off} of {} cells' calls carried more than 5% fewer or more than built for",
                    of.len()
                )
            }
        ));
    }
    Some(format!(
        "What each send operation carried (the records' `calls`, medians over sizes and engines): \
         {}. Every comparison of send paths holds the batch equal, so a mode's lead at one batch \
         is its copy discipline's, and the difference between batches is batching's.",
        parts.join(". ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(batch: &str, mode: &str, size: u64, mpc: f64, built: u64, cap: bool) -> CallsRow {
        CallsRow {
            engine: EngineKey {
                engine: sendpath_record::Engine::Uring,
                ordering: None,
            },
            batch: BatchKey::Is(sendpath_record::Batch::try_from(batch.to_string()).unwrap()),
            mode: mode.parse().unwrap(),
            msg_size_bytes: size,
            messages_per_call: mpc,
            batch_messages: built,
            capped_by: cap.then(|| "sendmsg takes at most 1024 iovecs".into()),
        }
    }

    #[test]
    fn the_note_names_each_batch_its_caps_and_calls_that_ran_otherwise() {
        assert_eq!(batching_note(&[]), None);
        let rows = vec![
            row("1", "a1", 64, 1.0, 1, false),
            row("512K", "a1", 64, 8192.0, 8192, false),
            row("512K", "a1", 65536, 8.0, 8, false),
            row("512K", "a2", 64, 512.0, 512, true),
            row("512K", "a3", 64, 7000.0, 8192, false),
        ];
        let n = batching_note(&rows).unwrap();
        assert!(n.contains("batch 1: messages per send call A1 1"), "{n}");
        assert!(n.contains("A1 8 to 8192"), "{n}");
        assert!(
            n.contains("A2 at 64 B held to 512 messages (sendmsg"),
            "{n}"
        );
        assert!(n.contains("1 of 4 cells' calls carried"), "{n}");
        assert!(row("64K", "a1", 1, 97.0, 100, false).as_planned(0.05));
        assert!(!row("64K", "a1", 1, 94.0, 100, false).as_planned(0.05));
    }
}
