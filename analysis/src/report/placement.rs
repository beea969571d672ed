//! Where each side ran.

use super::text::*;
use crate::document::Block;
use crate::summary::Analysis;

pub(super) fn placement_section(b: &mut Vec<Block>, a: &Analysis) {
    let p = &a.placement;
    if p.known == 0 {
        return;
    }
    b.push(Block::Heading(2, "Where the threads ran".into()));
    let mut text = if p.pinned == p.known {
        format!(
            "Every ok record ran pinned (placement {}): in {} of {} a sender thread and a \
             receiver thread shared a CPU, as the placement asked.",
            join(&a.host.placements),
            p.shared,
            p.known
        )
    } else {
        format!(
            "In {} of {} ok records a sender thread and a receiver thread ended the window on \
             the same CPU ({} of them pinned; the others unpinned: the scheduler decides, and \
             this is where they were when the window ended). On loopback this can matter, since \
             the receive path runs in the sender's softirq and a shared CPU keeps the copied data \
             in its cache; pin (`--placement`, `--pin`) to compare like with like.",
            p.shared, p.known, p.pinned
        )
    };
    if p.mixed.is_empty() {
        b.push(Block::Para(text));
        return;
    }
    text.push_str(&format!(
        " Cells measured both ways across their repetitions ({}):",
        p.mixed.len()
    ));
    b.push(Block::Para(text));
    b.push(Block::List(
        p.mixed
            .iter()
            .map(|(cell, shared, apart)| {
                format!(
                    "{cell}: {shared:.3} Gbit/s sharing a CPU, {apart:.3} apart ({:.2}x)",
                    if *apart > 0.0 {
                        shared / apart
                    } else {
                        f64::NAN
                    }
                )
            })
            .collect(),
    ));
}
