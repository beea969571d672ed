//! `sendpath compare A B`: two runs side by side, cell by cell (the ratio of medians, and
//! whether its confidence interval says they differ) and finding by finding (as critcmp does
//! for criterion). Useful across kernels, machines, commits and placements.

use crate::derive::{CellKey, Metric};
use crate::findings::{agreement, findings};
use crate::stats::{ratio_ci, Ratio};
use crate::summary::analyze;
use sendpath_record::v1::Record;
use std::collections::BTreeMap;

/// One cell measured in both runs.
#[derive(Clone, Debug, PartialEq)]
pub struct CellChange {
    /// The cell.
    pub key: CellKey,
    /// Median Gbit/s in A and in B.
    pub gbps: (f64, f64),
    /// B / A, with its CI.
    pub ratio: Ratio,
}

impl CellChange {
    /// Whether B clearly differs from A (the ratio's CI excludes 1).
    pub fn differs(&self) -> bool {
        self.ratio.above() || self.ratio.below()
    }
}

/// What comparing two runs found.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Cells measured in both, in key order.
    pub cells: Vec<CellChange>,
    /// Cells only in A, only in B.
    pub only: (usize, usize),
    /// Findings rows both runs answer, and how many agree.
    pub findings_agree: (usize, usize),
    /// Findings rows that differ: key, answer in A, answer in B.
    pub findings_differ: Vec<(String, String, String)>,
    /// The host-speed probe's median time in A and in B (ns per repetition, the mean of the
    /// two probes around it), where both runs probed with the same workload: how much faster
    /// or slower B's host ran than A's, apart from the send paths.
    pub host_probe_ns: Option<(f64, f64)>,
}

/// The median probe time of a run's ok repetitions, and the probe's name; None if none was
/// probed or the run mixes probe workloads.
fn host_probe(records: &[Record]) -> Option<(String, f64)> {
    let probes: Vec<(&str, f64)> = records
        .iter()
        .filter(|r| r.status == sendpath_record::v1::Status::Ok)
        .filter_map(|r| {
            let h = r.host_speed.as_ref()?;
            Some((h.probe.as_str(), crate::host_speed::probe_ns(h)))
        })
        .collect();
    let name = probes.first()?.0;
    if probes.iter().any(|(n, _)| *n != name) {
        return None;
    }
    let ns: Vec<f64> = probes.iter().map(|(_, ns)| *ns).collect();
    Some((name.to_string(), crate::stats::median(&ns)))
}

/// Compares run `b` against run `a`.
pub fn compare(a: &[Record], b: &[Record]) -> Comparison {
    let (fa, fb) = (analyze(a, &[]), analyze(b, &[]));
    let index = |t: &crate::derive::DerivedTable| -> BTreeMap<CellKey, Vec<f64>> {
        t.rows
            .iter()
            .filter_map(|r| Some((r.key.clone(), r.get(Metric::Gbps)?.values.clone())))
            .collect()
    };
    let (ia, ib) = (index(&fa.table), index(&fb.table));
    let mut cells = Vec::new();
    for (k, va) in &ia {
        let Some(vb) = ib.get(k) else { continue };
        if let Some(ratio) = ratio_ci(va, vb) {
            cells.push(CellChange {
                key: k.clone(),
                gbps: (crate::stats::median(va), crate::stats::median(vb)),
                ratio,
            });
        }
    }
    let only = (
        ia.keys().filter(|k| !ib.contains_key(*k)).count(),
        ib.keys().filter(|k| !ia.contains_key(*k)).count(),
    );
    let (agree, both, differ) = agreement(&findings(&fa), &findings(&fb));
    let host_probe_ns = match (host_probe(a), host_probe(b)) {
        (Some((na, pa)), Some((nb, pb))) if na == nb => Some((pa, pb)),
        _ => None,
    };
    Comparison {
        cells,
        only,
        findings_agree: (agree, both),
        findings_differ: differ,
        host_probe_ns,
    }
}

/// The comparison as text for the terminal.
pub fn text(c: &Comparison, a: &str, b: &str) -> String {
    let mut out = format!("A: {a}\nB: {b}\n\n");
    out += &format!(
        "{:<44} {:>10} {:>10} {:>28}\n",
        "cell (Gbit/s medians)", "A", "B", "B / A"
    );
    for x in &c.cells {
        out += &format!(
            "{:<44} {:>10.3} {:>10.3} {:>28}{}\n",
            x.key.to_string(),
            x.gbps.0,
            x.gbps.1,
            x.ratio.text(),
            if x.differs() { "  differs" } else { "" }
        );
    }
    let differ = c.cells.iter().filter(|x| x.differs()).count();
    out += &format!(
        "\n{differ} of {} cells differ beyond the noise (90% CI of the ratio wholly above {m} or below 1/{m}); {} only in A, {} only in B.\n",
        c.cells.len(),
        c.only.0,
        c.only.1,
        m = crate::stats::MARGIN
    );
    out += &format!(
        "findings: {} of {} rows agree{}\n",
        c.findings_agree.0,
        c.findings_agree.1,
        if c.findings_agree.1 > 0 {
            format!(
                " ({:.0}%)",
                c.findings_agree.0 as f64 * 100.0 / c.findings_agree.1 as f64
            )
        } else {
            String::new()
        }
    );
    for (k, va, vb) in &c.findings_differ {
        out += &format!("  {k}: A says {va}, B says {vb}\n");
    }
    if let Some((pa, pb)) = c.host_probe_ns {
        out += &format!(
            "host speed: B's host ran at {:.2}x A's (median host-speed probe {:.3} ms in A, {:.3} ms in B); a figure that moved by about as much may be the host's, not the send path's\n",
            pa / pb,
            pa / 1e6,
            pb / 1e6
        );
    }
    out
}
