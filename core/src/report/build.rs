//! Building a v1 record from what the flows measured: aggregation over flows, the rules that
//! make a record `failed`, derived metrics and the zero-copy verdict. The record types
//! themselves live in sendpath-record.

use crate::cpu::SideCounters;
use crate::host::{HostCpu, HostFacts};
use crate::results::FlowResult;
use crate::spec::{Pattern, RunSpec, UringOpts};
use sendpath_record::end_v1::ZeroCopyStats;
use sendpath_record::histogram::LatencyHistogram;
use sendpath_record::v1::*;

fn side(c: Option<&SideCounters>) -> Side {
    let zero = crate::cpu::empty_side();
    let c0 = c.unwrap_or(&zero);
    Side {
        reported: c.is_some(),
        cpu: Cpu {
            user_ns: c0.user_ns,
            sys_ns: c0.sys_ns,
        },
        counters: c0.counters.clone(),
        unsupported: c0.unsupported.clone(),
        cpus: c0.cpus.iter().map(|&c| c as u64).collect(),
        napi_busy_poll_us: None,
    }
}

/// Where the flows ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// `loopback` or `veth`.
    pub topology: String,
    /// Repetition index.
    pub rep: u64,
    /// Sender worker threads.
    pub threads: u64,
    /// When the cell started (RFC 3339).
    pub started_at: String,
}

/// Builds the record of a cell from its flows. A flow error, a missing side or a failed
/// integrity check makes the record `failed`, keeping every figure that was measured.
pub fn from_flows(spec: &RunSpec, ctx: &Context, host: &HostFacts, flows: &[FlowResult]) -> Record {
    let secs = spec.duration_s;
    let mut errors: Vec<String> = Vec::new();
    let mut hist = LatencyHistogram::new();
    let mut rx: Option<SideCounters> = Some(crate::cpu::empty_side());
    let mut tx: Option<SideCounters> = Some(crate::cpu::empty_side());
    let mut zc: Option<ZeroCopyStats> = None;
    let mut per_flow = Vec::new();
    let (mut bytes, mut messages) = (0u64, 0u64);
    let mut integrity = Integrity {
        seq_checked: !flows.is_empty(),
        seq_errors: 0,
        verified_bytes: 0,
        verify_errors: 0,
    };
    let mut host_cpu: Option<HostCpu> = None;
    for (i, f) in flows.iter().enumerate() {
        let flow = f.hello.as_ref().map_or(i as u64, |h| h.flow as u64);
        bytes += f.bytes;
        messages += f.messages;
        per_flow.push(FlowThroughput {
            flow,
            bytes: f.bytes,
            messages: f.messages,
            gbps: f.bytes as f64 * 8.0 / secs / 1e9,
        });
        hist.merge(&f.latency);
        integrity.seq_checked &= f.seq_checked;
        integrity.seq_errors += f.seq_errors;
        integrity.verified_bytes += f.verified_bytes;
        integrity.verify_errors += f.verify_errors;
        match (&mut rx, &f.counters) {
            (Some(sum), Some(c)) => sum.merge(c),
            _ => rx = None,
        }
        match (&mut tx, &f.sender) {
            (Some(sum), Some(s)) => sum.merge(&s.counters),
            _ => tx = None,
        }
        if let Some(z) = f.sender.as_ref().and_then(|s| s.zerocopy.as_ref()) {
            zc.get_or_insert_with(ZeroCopyStats::default).merge(z);
        }
        if host_cpu.is_none() {
            host_cpu = f.host_cpu.clone();
        }
        if let Some(e) = &f.error {
            errors.push(format!("flow {flow}: {e}"));
        }
        if let Some(e) = f.sender.as_ref().and_then(|s| s.error.as_ref()) {
            errors.push(format!("flow {flow} sender: {e}"));
        }
    }
    per_flow.sort_by_key(|f| f.flow);
    if errors.is_empty() && spec.pattern == Pattern::Stream {
        // A stream that delivered nothing in a whole window did not measure anything.
        for f in per_flow.iter().filter(|f| f.messages == 0) {
            errors.push(format!(
                "flow {}: no message arrived in the measured window",
                f.flow
            ));
        }
    }
    if integrity.seq_errors > 0 {
        errors.push(format!("{} sequence errors", integrity.seq_errors));
    }
    if integrity.verify_errors > 0 {
        errors.push(format!(
            "{} messages with a wrong payload (a buffer rewritten before the kernel was done with it?)",
            integrity.verify_errors
        ));
    }
    if spec.mode.facts().zero_copy && zc.is_none() && errors.is_empty() {
        errors.push("zero-copy accounting missing from the sender's report".into());
    }
    let latency_recorded = spec.records_latency();
    let kind = match spec.pattern {
        Pattern::Stream => "one_way",
        Pattern::Rr => "round_trip",
        Pattern::Rate => "one_way_from_intended",
    };
    let latency_ns = latency_recorded.then(|| hist.summary(kind));
    let latency_uncorrected_ns = (spec.pattern == Pattern::Rate && latency_recorded).then(|| {
        let mut u = LatencyHistogram::new();
        for f in flows {
            if let Some(h) = &f.latency_uncorrected {
                u.merge(h);
            }
        }
        u.summary("one_way")
    });
    let rate = spec
        .rate
        .filter(|_| spec.pattern == Pattern::Rate)
        .map(|req| {
            let achieved = messages as f64 / secs / spec.flows.max(1) as f64;
            RateV1 {
                requested_per_flow_per_s: req,
                achieved_per_flow_per_s: achieved,
                kept: achieved >= 0.95 * req,
            }
        });
    let sender = side(tx.as_ref());
    let receiver = Side {
        napi_busy_poll_us: flows.iter().find_map(|f| f.napi_busy_poll_us),
        ..side(rx.as_ref())
    };
    let per_byte = |ns: u64| (bytes > 0).then(|| ns as f64 / bytes as f64);
    let per_gb = |a: Option<u64>, b: Option<u64>| {
        let t = a? + b?;
        (bytes > 0).then(|| t as f64 / (bytes as f64 / 1e9))
    };
    let both = tx.is_some() && rx.is_some();
    let derived = Derived {
        sender_cpu_ns_per_byte: tx.as_ref().and_then(|c| per_byte(c.cpu_ns())),
        receiver_cpu_ns_per_byte: rx.as_ref().and_then(|c| per_byte(c.cpu_ns())),
        sender_cycles_per_byte: tx
            .as_ref()
            .and_then(|c| c.counters.cycles)
            .and_then(per_byte),
        receiver_cycles_per_byte: rx
            .as_ref()
            .and_then(|c| c.counters.cycles)
            .and_then(per_byte),
        cache_misses_per_gb: per_gb(sender.counters.cache_misses, receiver.counters.cache_misses)
            .filter(|_| both),
        l1d_misses_per_gb: per_gb(
            sender.counters.l1d_load_misses,
            receiver.counters.l1d_load_misses,
        )
        .filter(|_| both),
        llc_misses_per_gb: per_gb(
            sender.counters.llc_load_misses,
            receiver.counters.llc_load_misses,
        )
        .filter(|_| both),
        context_switches_per_s: match (
            both,
            sender.counters.context_switches,
            receiver.counters.context_switches,
        ) {
            (true, Some(a), Some(b)) => Some((a + b) as f64 / secs),
            _ => None,
        },
    };
    let zerocopy = zc.map(|z| {
        let fraction = z.copied_fraction();
        ZeroCopy {
            sends: z.sends,
            completions: z.completions,
            copied: z.copied,
            copied_fraction: fraction,
            max_outstanding: z.max_outstanding,
            enobufs: z.enobufs,
            messages: z.messages,
            messages_per_send: z.messages_per_send(),
            slot_waits: z.slot_waits,
            slot_hold_ns: (z.slot_hold.count() > 0).then(|| z.slot_hold.summary("slot_hold")),
            verdict: match fraction {
                None => "unknown",
                Some(0.0) => "achieved",
                Some(f) if f >= 1.0 => "not_achieved",
                Some(_) => "partial",
            }
            .into(),
        }
    });
    Record {
        schema: SCHEMA.into(),
        status: if errors.is_empty() {
            Status::Ok
        } else {
            Status::Failed
        },
        error: (!errors.is_empty()).then(|| errors.join("; ")),
        started_at: ctx.started_at.clone(),
        tool: Tool {
            version: crate::TOOL_VERSION.into(),
            git_commit: crate::GIT_COMMIT.into(),
        },
        host: host_v1(host),
        spec: spec_v1(spec, ctx, flows),
        throughput: Throughput {
            bytes,
            messages,
            seconds: secs,
            gbps: bytes as f64 * 8.0 / secs / 1e9,
            msgs_per_s: messages as f64 / secs,
            transactions_per_s: (spec.pattern == Pattern::Rr).then(|| messages as f64 / secs),
            per_flow,
        },
        latency_ns,
        latency_uncorrected_ns,
        rate,
        sender,
        receiver,
        host_cpu: host_cpu.map(|h| HostCpuV1 {
            user_ns: h.user_ns,
            system_ns: h.system_ns,
            softirq_ns: h.softirq_ns,
            irq_ns: h.irq_ns,
            idle_ns: h.idle_ns,
        }),
        zerocopy,
        integrity,
        derived,
        remote: None,
        stages: spec.stamp_every().and_then(|every| stages_of(every, flows)),
        tcp: tcp_of(flows),
        host_speed: None,
        calls: calls_of(spec, flows),
        profile: spec
            .profile
            .and_then(|hz| crate::report::profile::profile_v1(hz, tx.as_ref(), rx.as_ref(), bytes)),
    }
}

/// What the senders' send operations carried over the window: None unless every flow's
/// sender counted its calls.
fn calls_of(spec: &RunSpec, flows: &[FlowResult]) -> Option<CallsV1> {
    let (mut calls, mut messages, mut bytes) = (0u64, 0u64, 0u64);
    for f in flows {
        let s = f.sender.as_ref()?;
        if s.calls == 0 {
            return None;
        }
        calls += s.calls;
        messages += s.messages;
        bytes += s.bytes;
    }
    let plan = spec.batch_plan();
    (calls > 0).then(|| CallsV1 {
        calls,
        messages_per_call: messages as f64 / calls as f64,
        bytes_per_call: bytes as f64 / calls as f64,
        batch_messages: plan.messages as u64,
        capped_by: plan.capped_by,
    })
}

/// The stages of every flow's sampled messages: the four that add up to end-to-end over the
/// messages both sides stamped (joined by seq), send -> ACK from the sender.
fn stages_of(every: u64, flows: &[FlowResult]) -> Option<StagesV1> {
    let mut joined = crate::stamps::join::Joined::default();
    let mut ack = LatencyHistogram::new();
    let (mut sampled, mut unmatched, mut any) = (0, 0, false);
    for f in flows {
        let tx = f.sender.as_ref().and_then(|s| s.stages.as_ref());
        if let Some(tx) = tx {
            any = true;
            sampled += tx.sampled;
            unmatched += tx.unmatched;
            ack.merge(&tx.send_to_ack);
        }
        if let (Some(tx), Some(rx)) = (tx, f.stages.as_ref()) {
            crate::stamps::join::join(tx, rx, &mut joined);
        }
        any |= f.stages.is_some();
    }
    let some = |h: &LatencyHistogram, kind: &str| (h.count() > 0).then(|| h.summary(kind));
    any.then(|| StagesV1 {
        every,
        sampled,
        joined: joined.count,
        out_of_order: joined.out_of_order,
        unmatched_stamps: unmatched,
        user_to_sched_ns: some(&joined.user_to_sched, "user_to_sched"),
        sched_to_device_ns: some(&joined.sched_to_device, "sched_to_device"),
        device_to_stack_ns: some(&joined.device_to_stack, "device_to_stack"),
        stack_to_user_ns: some(&joined.stack_to_user, "stack_to_user"),
        send_to_ack_ns: some(&ack, "send_to_ack"),
        end_to_end_ns: some(&joined.end_to_end, "end_to_end"),
        typical: joined.typical().map(|(n, s)| TypicalStagesV1 {
            messages: n as u64,
            user_to_sched_ns: s[0],
            sched_to_device_ns: s[1],
            device_to_stack_ns: s[2],
            stack_to_user_ns: s[3],
            end_to_end_ns: s.iter().sum(),
        }),
    })
}

/// The flows' TCP_INFO (from their senders' reports) and the sums; None if no flow has it.
fn tcp_of(flows: &[FlowResult]) -> Option<TcpV1> {
    let per_flow: Vec<TcpFlowV1> = flows
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let info = f.sender.as_ref()?.tcp.clone()?;
            Some(TcpFlowV1 {
                flow: f.hello.as_ref().map_or(i as u64, |h| h.flow as u64),
                info,
            })
        })
        .collect();
    if per_flow.is_empty() {
        return None;
    }
    let sum = |get: fn(&TcpFlowInfo) -> Option<u64>| -> Option<u64> {
        per_flow.iter().map(|f| get(&f.info)).sum()
    };
    Some(TcpV1 {
        side: "sender".into(),
        retransmits: sum(|i| i.retransmits),
        bytes_retrans: sum(|i| i.bytes_retrans),
        busy_us: sum(|i| i.busy_us),
        rwnd_limited_us: sum(|i| i.rwnd_limited_us),
        sndbuf_limited_us: sum(|i| i.sndbuf_limited_us),
        max_rtt_us: per_flow.iter().filter_map(|f| f.info.rtt_us).max(),
        segs_out: sum(|i| i.segs_out),
        dsack_dups: sum(|i| i.dsack_dups),
        impairment_dropped: None,
        per_flow,
    })
}

/// A record for a cell that failed before anything was measured.
pub fn failed(spec: &RunSpec, ctx: &Context, host: &HostFacts, error: String) -> Record {
    let mut r = from_flows(spec, ctx, host, &[]);
    r.status = Status::Failed;
    r.error = Some(error);
    r.latency_ns = None;
    r.latency_uncorrected_ns = None;
    r.rate = None;
    r.zerocopy = None;
    r
}

/// A host's facts as the record writes them.
pub fn host_v1(h: &HostFacts) -> Host {
    Host {
        kernel: h.kernel.clone(),
        cpu_model: h.cpu_model.clone(),
        cores: h.cores as u64,
        virtualized: h.virtualized,
        counters_supported: h.counters_supported.clone(),
        io_uring_ops: h.io_uring_ops.clone(),
        io_uring_error: h.io_uring_error.clone(),
        so_zerocopy: h.so_zerocopy,
    }
}

fn spec_v1(s: &RunSpec, ctx: &Context, flows: &[FlowResult]) -> Spec {
    let setup = flows
        .iter()
        .find_map(|f| f.sender.as_ref().and_then(|r| r.uring.as_ref()));
    let uring = s.engine.facts().rings.then(|| UringSpec {
        depth: s.uring.depth as u64,
        batch: s.uring.batch as u64,
        ordering: s.uring.ordering,
        setup_flags: setup
            .map(|u| u.uring.setup_flags.clone())
            .unwrap_or_default(),
        registered_ring_fd: setup.is_some_and(|u| u.uring.registered_ring_fd),
    });
    Spec {
        mode: s.mode,
        engine: s.engine,
        pattern: s.pattern,
        msg_size_bytes: s.msg_size as u64,
        flows: s.flows as u64,
        threads: ctx.threads,
        duration_s: s.duration_s,
        warmup_s: s.warmup_s,
        rep: ctx.rep,
        topology: ctx.topology.clone(),
        rx: s.rx,
        verify: s.verify,
        latency: s.records_latency(),
        zc_slots: s.zc_slots as u64,
        uring,
        resp_size_bytes: (s.pattern == Pattern::Rr).then_some(s.response_size() as u64),
        rate_per_flow_per_s: s.rate,
        rate_fraction_of_stream: s.rate_fraction,
        busy_poll: s.busy_poll,
        tcp_nodelay: s.tcp_nodelay(),
        placement: Some(s.placement),
        pin: s.pin.as_ref().map(|p| PinV1 {
            sender: p.sender.iter().map(|&c| c as u64).collect(),
            receiver: p.receiver.iter().map(|&c| c as u64).collect(),
        }),
        rx_stall: s.rx_stall.map(|x| RxStallV1 {
            after_s: x.after_s,
            for_s: x.for_s,
        }),
        timestamps_every: s.stamp_every(),
        batch: Some(s.batch),
        profile_hz: s.profile.map(u64::from),
        impairment: None,
    }
}

impl RunSpec {
    /// The domain spec a record describes (for resume and re-runs).
    pub fn from_record(s: &Spec) -> RunSpec {
        RunSpec {
            mode: s.mode,
            engine: s.engine,
            pattern: s.pattern,
            msg_size: s.msg_size_bytes as usize,
            flows: s.flows as usize,
            duration_s: s.duration_s,
            warmup_s: s.warmup_s,
            zc_slots: s.zc_slots as usize,
            verify: s.verify,
            latency: s.latency,
            rx: s.rx,
            threads: s
                .engine
                .facts()
                .shares_threads
                .then_some(s.threads as usize),
            uring: s
                .uring
                .as_ref()
                .map_or_else(UringOpts::default, |u| UringOpts {
                    depth: u.depth as usize,
                    batch: u.batch as usize,
                    ordering: u.ordering,
                }),
            resp_size: s.resp_size_bytes.map(|r| r as usize),
            rate: s.rate_per_flow_per_s,
            rate_fraction: s.rate_fraction_of_stream,
            busy_poll: s.busy_poll,
            placement: s.placement.unwrap_or(if s.pin.is_some() {
                crate::spec::Placement::Custom
            } else {
                crate::spec::Placement::Unpinned
            }),
            pin: s.pin.as_ref().map(|p| crate::affinity::Pin {
                sender: p.sender.iter().map(|&c| c as usize).collect(),
                receiver: p.receiver.iter().map(|&c| c as usize).collect(),
            }),
            rx_stall: s.rx_stall.as_ref().map(|x| crate::spec::RxStall {
                after_s: x.after_s,
                for_s: x.for_s,
            }),
            timestamps: s.timestamps_every,
            batch: s.batch.unwrap_or_default(),
            profile: s.profile_hz.map(|h| h as u32),
        }
    }
}
