//! What the records say about where they were measured: kernels, CPUs, topologies,
//! placements, impairments, the far host and its interfaces.

use sendpath_record::v1::Record;
use serde::Serialize;
use std::collections::BTreeSet;

/// What the records say about where they were measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HostSummary {
    /// Distinct kernels.
    pub kernels: BTreeSet<String>,
    /// Distinct CPU models.
    pub cpu_models: BTreeSet<String>,
    /// Distinct core counts.
    pub cores: BTreeSet<u64>,
    /// Any record from a virtual machine.
    pub virtualized: bool,
    /// Distinct topologies.
    pub topologies: BTreeSet<String>,
    /// Distinct impairments of veth cells (the root qdisc on the sender's end, as `tc`
    /// shows it, and the loss rule); "none" for clean veth cells.
    pub impairments: BTreeSet<String>,
    /// Distinct tool versions with commits.
    pub tools: BTreeSet<String>,
    /// How io_uring streams kept each flow in order, per mode: `A1 bundle`, `A3 link`.
    pub uring_orderings: BTreeSet<String>,
    /// Distinct receivers (`copy`, `discard`, `uring`).
    pub receivers: BTreeSet<String>,
    /// Distinct placements, with the CPUs where pinned (`apart (0:1)`); records from before
    /// the placement axis say `unpinned` or `custom` from their pin.
    pub placements: BTreeSet<String>,
    /// Earliest and latest `started_at`.
    pub span: Option<(String, String)>,
    /// Runs across two hosts: the far host, what it did, and the interfaces on each side.
    pub remote: BTreeSet<String>,
}

fn interface_text(i: Option<&sendpath_record::v1::Interface>) -> String {
    match i {
        None => "an interface that could not be read".into(),
        Some(i) => {
            let mut parts = vec![i.driver.clone().unwrap_or_else(|| "driver unknown".into())];
            if let Some(m) = i.mtu {
                parts.push(format!("MTU {m}"));
            }
            if let Some(s) = i.speed_mbps {
                parts.push(format!("{s} Mbit/s"));
            }
            if !i.offloads_on.is_empty() {
                parts.push(format!("offloads {}", i.offloads_on.join(",")));
            }
            format!("{} ({})", i.name, parts.join(", "))
        }
    }
}

/// Host facts across the records.
pub fn host_summary(records: &[Record]) -> HostSummary {
    let mut h = HostSummary::default();
    for r in records {
        h.kernels.insert(r.host.kernel.clone());
        h.cpu_models.insert(r.host.cpu_model.clone());
        h.cores.insert(r.host.cores);
        h.virtualized |= r.host.virtualized;
        h.topologies.insert(r.spec.topology.clone());
        if r.spec.topology == "veth" {
            h.impairments
                .insert(r.spec.impairment.clone().unwrap_or_else(|| "none".into()));
        }
        h.receivers.insert(r.spec.rx.to_string());
        let cpus = |v: &[u64]| {
            v.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        h.placements.insert(match (&r.spec.placement, &r.spec.pin) {
            (Some(p), Some(pin)) => format!("{p} ({}:{})", cpus(&pin.sender), cpus(&pin.receiver)),
            (Some(p), None) => p.to_string(),
            (None, Some(pin)) => format!("custom ({}:{})", cpus(&pin.sender), cpus(&pin.receiver)),
            (None, None) => "unpinned".into(),
        });
        if let (Some(u), sendpath_record::Pattern::Stream) = (&r.spec.uring, r.spec.pattern) {
            h.uring_orderings.insert(format!(
                "{} {}",
                r.spec.mode.as_str().to_uppercase(),
                u.ordering
            ));
        }
        if let Some(rm) = &r.remote {
            h.remote.insert(format!(
                "far host {} ({}, {} CPUs, kernel {}) {}; data from {} on {} to {} on {}",
                rm.far
                    .addr
                    .rsplit_once(':')
                    .map_or(rm.far.addr.as_str(), |(ip, _)| ip),
                rm.far.host.cpu_model,
                rm.far.host.cores,
                rm.far.host.kernel,
                if rm.far_role == "sender" {
                    "sending (its send path measured, --reverse)"
                } else {
                    "receiving (this host's send path measured)"
                },
                if rm.far_role == "sender" {
                    "far host"
                } else {
                    "this host"
                },
                interface_text(if rm.far_role == "sender" {
                    rm.far.interface.as_ref()
                } else {
                    rm.driver.interface.as_ref()
                }),
                if rm.far_role == "sender" {
                    "this host"
                } else {
                    "far host"
                },
                interface_text(if rm.far_role == "sender" {
                    rm.driver.interface.as_ref()
                } else {
                    rm.far.interface.as_ref()
                }),
            ));
        }
        let c = &r.tool.git_commit;
        h.tools
            .insert(format!("{} ({})", r.tool.version, &c[..c.len().min(12)]));
    }
    let mut times: Vec<&String> = records.iter().map(|r| &r.started_at).collect();
    times.sort();
    if let (Some(a), Some(b)) = (times.first(), times.last()) {
        h.span = Some(((*a).clone(), (*b).clone()));
    }
    h
}
