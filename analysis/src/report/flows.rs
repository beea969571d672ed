//! What more flows do to the total.

use super::text::*;
use crate::document::Block;
use crate::plot::num_label;
use crate::stats::median_if_any;
use crate::summary::Analysis;
use std::collections::BTreeMap;

pub(super) fn flows_section(b: &mut Vec<Block>, a: &Analysis) {
    b.push(Block::Heading(
        2,
        "How flows change throughput and CPU per byte".into(),
    ));
    let fe = &a.flow_effects;
    if fe.is_empty() {
        b.push(Block::Para(
            "Every measured cell has a single flow count, so the data cannot say.".into(),
        ));
        return;
    }
    let mut by: BTreeMap<(u64, u64), Vec<&crate::summary::FlowEffect>> = BTreeMap::new();
    for e in fe {
        by.entry((e.low.flows, e.high_flows)).or_default().push(e);
    }
    let mut items = Vec::new();
    for ((lo, hi), v) in &by {
        let up = v.iter().filter(|e| e.gbps.1 > e.gbps.0).count();
        let r = median_if_any(
            &v.iter()
                .filter(|e| e.gbps.0 > 0.0)
                .map(|e| e.gbps.1 / e.gbps.0)
                .collect::<Vec<_>>(),
        );
        let cpu: Vec<(f64, f64)> = v.iter().filter_map(|e| e.sender_cpu_ns_per_byte).collect();
        let cpu_down = cpu.iter().filter(|c| c.1 < c.0).count();
        let cr = median_if_any(
            &cpu.iter()
                .filter(|c| c.0 > 0.0)
                .map(|c| c.1 / c.0)
                .collect::<Vec<_>>(),
        );
        let mut s = format!(
            "From {lo} to {hi} flows, median throughput rose in {up} of {} (mode, engine, size) \
             cells",
            v.len()
        );
        if let Some(r) = r {
            s.push_str(&format!(" (median ratio {r:.2}x)"));
        }
        if !cpu.is_empty() {
            s.push_str(&format!(
                "; sender CPU per byte fell in {cpu_down} of {}",
                cpu.len()
            ));
            if let Some(cr) = cr {
                s.push_str(&format!(" (median ratio {cr:.2}x)"));
            }
        }
        s.push('.');
        items.push(s);
    }
    b.push(Block::List(items));
    let rows = fe
        .iter()
        .map(|e| {
            let (c0, c1) = match e.sender_cpu_ns_per_byte {
                Some((x, y)) => (num_label(x), format!("{} ({})", num_label(y), ratio(x, y))),
                None => ("-".into(), "-".into()),
            };
            vec![
                e.low.pattern.to_string(),
                e.low.batch.to_string(),
                e.low.mode.as_str().to_uppercase(),
                e.low.engine.to_string(),
                e.low.msg_size_bytes.to_string(),
                format!("{} -> {}", e.low.flows, e.high_flows),
                num_label(e.gbps.0),
                format!("{} ({})", num_label(e.gbps.1), ratio(e.gbps.0, e.gbps.1)),
                c0,
                c1,
            ]
        })
        .collect();
    b.push(Block::Table(
        [
            "pattern",
            "batch",
            "mode",
            "engine",
            "msg size (B)",
            "flows",
            "Gbit/s (fewest)",
            "Gbit/s (most)",
            "sender ns/B (fewest)",
            "sender ns/B (most)",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    ));
}
