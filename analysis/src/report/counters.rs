//! What the counters show (and which the machine lacks).

use super::text::*;
use crate::derive::Metric;
use crate::document::Block;
use crate::summary::Analysis;

pub(super) fn counters_section(b: &mut Vec<Block>, a: &Analysis) {
    b.push(Block::Heading(2, "Counters".into()));
    let c = &a.counters;
    if c.records == 0 {
        b.push(Block::Para("No ok record to look at.".into()));
        return;
    }
    let mut items = vec![format!(
        "present in every ok record: {}",
        if c.always_present.is_empty() {
            "none".to_string()
        } else {
            join(&c.always_present)
        }
    )];
    if c.unsupported.is_empty() {
        items.push("no counter was unsupported or null.".into());
    } else {
        items.push(format!(
            "unavailable (named in `unsupported` or null): {}",
            join(
                c.unsupported
                    .iter()
                    .map(|(k, n)| format!("{k} in {n} of {} records", c.records))
            )
        ));
    }
    b.push(Block::List(items));
    let hw_missing = [
        "cycles",
        "cache_misses",
        "l1d_load_misses",
        "llc_load_misses",
    ]
    .iter()
    .any(|n| c.unsupported.contains_key(*n));
    let mut p = String::new();
    if hw_missing {
        let plotted: Vec<&str> = Metric::ALL
            .iter()
            .filter(|m| m.needs_hardware_counters() && a.table.has(**m))
            .map(|m| m.key())
            .collect();
        p.push_str(&format!(
            "Hardware counters are missing in at least part of the data, so cycles per byte and \
             misses per GB are {}. What stands in: CPU ns per byte (user + system CPU time of \
             each side per byte received), present in {} of {} ok records.",
            if plotted.is_empty() {
                "not reported".to_string()
            } else {
                format!("reported only where present ({})", plotted.join(", "))
            },
            c.cpu_per_byte_records,
            c.records
        ));
    } else {
        p.push_str(&format!(
            "Hardware counters were present: cycles per byte and misses per GB are reported \
             beside CPU ns per byte ({} of {} ok records have it).",
            c.cpu_per_byte_records, c.records
        ));
    }
    if a.host
        .topologies
        .iter()
        .any(|t| t == "loopback" || t == "veth")
    {
        p.push_str(
            " On loopback and veth much receive processing runs in the sender's softirq \
             context, so the split between sender and receiver CPU is approximate.",
        );
    }
    b.push(Block::Para(p));
}
