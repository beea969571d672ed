//! Whether zero-copy happened, and what it carried.

use super::text::*;
use crate::document::Block;
use crate::plot::num_label;
use crate::summary::Analysis;
use std::collections::BTreeSet;

/// Where A3 coalesces messages into one zero-copy send: how many, beside the zero-copy
/// verdict, so that a win from batching syscalls is not read as a win from zero-copy.
pub(super) fn zerocopy_section(b: &mut Vec<Block>, a: &Analysis) {
    b.push(Block::Heading(2, "Was zero-copy achieved?".into()));
    let z = &a.zerocopy;
    if z.records == 0 {
        b.push(Block::Para(
            "No ok record carries zero-copy accounting (no A3 cell was measured successfully), \
             so the data cannot say."
                .into(),
        ));
        return;
    }
    let verdicts = join(z.verdicts.iter().map(|(k, v)| format!("{k}: {v}")));
    let mut p = format!(
        "{} with zero-copy accounting: {} zero-copy sends, {} completions, {} reported copied by \
         the kernel",
        plural(z.records, "record", "records"),
        z.sends,
        z.completions,
        z.copied
    );
    match z.copied_fraction {
        Some(f) => p.push_str(&format!(", an overall copied fraction of {f:.4}")),
        None => p.push_str(", no completions, so no copied fraction"),
    }
    if let Some((lo, hi)) = z.fraction_range {
        p.push_str(&format!(
            " (per record {} .. {})",
            num_label(lo),
            num_label(hi)
        ));
    }
    p.push_str(&format!(". Verdicts per record: {verdicts}."));
    let by_engine: BTreeSet<&String> = z.batching.iter().map(|x| &x.engine).collect();
    if !by_engine.is_empty() {
        p.push_str(" Messages per zero-copy send (median per size): ");
        p.push_str(&join(by_engine.into_iter().map(|e| {
            let sizes = join(z.batching.iter().filter(|x| &x.engine == e).map(|x| {
                format!(
                    "{} at {} B",
                    num_label(x.messages_per_send),
                    x.msg_size_bytes
                )
            }));
            format!("{e}: {sizes}")
        })));
        p.push('.');
    }
    if z.enobufs > 0 {
        p.push_str(&format!(" ENOBUFS retries: {}.", z.enobufs));
    }
    b.push(Block::Para(p));
    let local: Vec<&String> = z
        .topologies
        .iter()
        .filter(|t| *t == "loopback" || *t == "veth")
        .collect();
    let verdict = match z.copied_fraction {
        None => "Whether zero-copy happened is unknown: no completion arrived.".to_string(),
        Some(f) if f >= 1.0 => format!(
            "Zero-copy was not achieved: every completion reported that the kernel copied the \
             data, so A3's figures here measure MSG_ZEROCOPY/SEND_ZC bookkeeping plus a copy, not \
             zero-copy.{}",
            if local.is_empty() {
                String::new()
            } else {
                format!(
                    " These records ran on {}: the kernel copies data it delivers locally \
                     (loopback and veth), so this is expected there; real zero-copy needs a \
                     NIC to another host.",
                    join(&local)
                )
            }
        ),
        Some(f) if f <= 0.0 => "Zero-copy was achieved: no completion reported a copy.".to_string(),
        Some(f) => format!(
            "Zero-copy was achieved only in part: {} of completions reported a copy.",
            pct(f)
        ),
    };
    b.push(Block::Para(verdict));
}
