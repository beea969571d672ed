//! Human-readable renderings of a record.

use super::v1::{Record, Status};

fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

/// The one-line `SUMMARY ...` the per-mode clients print (the original study's contract).
pub fn summary_line(r: &Record) -> String {
    let (p50, p99, p999) = match &r.latency_ns {
        Some(l) => (us(l.p50), us(l.p99), us(l.p999)),
        None => ("na".into(), "na".into(), "na".into()),
    };
    format!(
        "SUMMARY bytes={} seconds={:.3} gbps={:.3} msgs={} p50_us={p50} p99_us={p99} p999_us={p999}",
        r.throughput.bytes, r.throughput.seconds, r.throughput.gbps, r.throughput.messages
    )
}

/// A few lines a person reads after `sendpath run`.
pub fn human(r: &Record) -> String {
    let s = &r.spec;
    let mut out = format!(
        "{} {} {} msg={} B flows={} window={} s (warm-up {} s), {}{}{}\n",
        s.mode,
        s.engine,
        s.pattern,
        s.msg_size_bytes,
        s.flows,
        s.duration_s,
        s.warmup_s,
        s.topology,
        if s.busy_poll { ", busy-poll" } else { "" },
        s.pin.as_ref().map_or(String::new(), |p| format!(
            ", pinned {:?}:{:?}",
            p.sender, p.receiver
        ))
    );
    match r.throughput.transactions_per_s {
        Some(tps) => {
            out += &format!(
            "  throughput  {tps:.0} transactions/s  ({} transactions, {:.3} Gbit/s both ways)\n",
            r.throughput.messages, r.throughput.gbps
        )
        }
        None => {
            out += &format!(
                "  throughput  {:.3} Gbit/s  {:.0} msgs/s  ({} messages)\n",
                r.throughput.gbps, r.throughput.msgs_per_s, r.throughput.messages
            )
        }
    }
    if let Some(rate) = &r.rate {
        out += &format!(
            "  rate        {:.0} msgs/s per flow asked, {:.0} achieved{}\n",
            rate.requested_per_flow_per_s,
            rate.achieved_per_flow_per_s,
            if rate.kept { "" } else { ": NOT kept" }
        );
    }
    let what = |kind: &str| match kind {
        "one_way" => "one-way, socket-buffer queueing included",
        "round_trip" => "request sent to whole response received",
        "one_way_from_intended" => "one-way from the intended send time",
        _ => "",
    };
    match &r.latency_ns {
        Some(l) => {
            out += &format!(
                "  latency     {} ({}): p50 {} us  p99 {} us  p99.9 {} us  max {} us\n",
                l.kind,
                what(&l.kind),
                us(l.p50),
                us(l.p99),
                us(l.p999),
                us(l.max)
            )
        }
        None => out += "  latency     not recorded\n",
    }
    if let Some(l) = &r.latency_uncorrected_ns {
        out += &format!(
            "  uncorrected from the actual send time: p50 {} us  p99 {} us  p99.9 {} us\n",
            us(l.p50),
            us(l.p99),
            us(l.p999)
        );
    }
    let per = |v: Option<f64>| v.map_or("n/a".to_string(), |x| format!("{x:.3}"));
    out += &format!(
        "  cpu         sender {} ns/B, receiver {} ns/B\n",
        per(r.derived.sender_cpu_ns_per_byte),
        per(r.derived.receiver_cpu_ns_per_byte)
    );
    if let Some(z) = &r.zerocopy {
        out += &format!(
            "  zero-copy   {} sends, {} completions, {} copied ({}): {}\n",
            z.sends,
            z.completions,
            z.copied,
            z.copied_fraction.map_or("n/a".into(), |f| format!("{:.0}%", f * 100.0)),
            match z.verdict.as_str() {
                "not_achieved" => "NOT achieved: the kernel copied every send (it does for data delivered locally, as on loopback and veth)",
                "partial" => "partly achieved: some sends were copied by the kernel",
                "achieved" => "achieved: no send was copied",
                _ => "unknown: no completion arrived",
            }
        );
        if let Some(m) = z.messages_per_send {
            out += &format!(
                "              {m:.1} messages per send{}; {} waits for a free slot",
                if m >= 1.5 {
                    " (coalesced: the batching saves syscalls, not the zero-copy)"
                } else {
                    ""
                },
                z.slot_waits
            );
            if let Some(h) = &z.slot_hold_ns {
                out += &format!("; slots held p50 {} us, p99 {} us", us(h.p50), us(h.p99));
            }
            out += "\n";
        }
    }
    let i = &r.integrity;
    out += &format!(
        "  integrity   {} sequence errors{}{}\n",
        i.seq_errors,
        if i.seq_checked {
            ""
        } else {
            " (not every message checked: discard receiver)"
        },
        if i.verified_bytes > 0 {
            format!(
                ", {} payload errors in {} verified bytes",
                i.verify_errors, i.verified_bytes
            )
        } else {
            String::new()
        }
    );
    if r.status == Status::Failed {
        out += &format!(
            "  FAILED: {}\n",
            r.error.as_deref().unwrap_or("unknown error")
        );
    }
    out
}
