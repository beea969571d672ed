//! Every option against its documented range: the error names the option.

use super::limits::*;
use super::run_spec::{RunSpec, MAX_RATE};
use super::uring_opts::UringOpts;
use crate::error::{Error, Result};
use crate::wire::message::HEADER_LEN;
use sendpath_record::{Mode, Pattern, RxMode, UringOrdering};

impl RunSpec {
    /// Checks every option against its documented range; the error names the option.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidSpec(m));
        if let Some(n) = self.stamp_every() {
            if n == 0 || n > u32::MAX as u64 {
                return bad(format!(
                    "--timestamps {n}: stamp one message in 1 to {} ",
                    u32::MAX
                ));
            }
            if self.rx != RxMode::Copy {
                return bad(
                    "--timestamps: the receive stamps need the copy receiver (drop --rx)".into(),
                );
            }
        }
        match self.pattern {
            Pattern::Rr => {
                let r = self.response_size();
                if !(HEADER_LEN..=MAX_MSG_SIZE).contains(&r) {
                    return bad(format!(
                        "--resp-size {r} must be between {HEADER_LEN} and {MAX_MSG_SIZE} bytes"
                    ));
                }
                if !self.rx.facts().reads_messages {
                    return bad("--pattern rr reads every response; drop --rx-discard".into());
                }
                if !self.rx.facts().serves_rr {
                    return bad(
                        "--rx uring receives streams; rr keeps one transaction in flight with its own loop: drop --rx uring".into(),
                    );
                }
                if !self.latency {
                    return bad("--pattern rr measures round trips; drop --no-latency".into());
                }
            }
            Pattern::Rate => match self.rate {
                None => {
                    return bad(
                        "--pattern rate needs --rate N (messages per second per flow)".into(),
                    )
                }
                Some(r) if !(r.is_finite() && r > 0.0 && r <= MAX_RATE) => {
                    return bad(format!(
                        "--rate {r} must be > 0 and <= {MAX_RATE} messages per second"
                    ))
                }
                Some(_) if !self.records_latency() => {
                    return bad(
                        "--pattern rate measures latency: drop --no-latency and --rx-discard"
                            .into(),
                    )
                }
                Some(_) => {}
            },
            Pattern::Stream => {}
        }
        if self.pattern != Pattern::Stream && self.threads.is_some_and(|t| t != self.flows) {
            return bad(
                "--threads multiplexes io_uring stream flows; rr and rate run one thread per flow"
                    .into(),
            );
        }
        if self.pattern != Pattern::Rate && self.rate.is_some() {
            return bad("--rate needs --pattern rate".into());
        }
        if self.pattern != Pattern::Rr && self.resp_size.is_some() {
            return bad("--resp-size needs --pattern rr".into());
        }
        if let Some(st) = self.rx_stall {
            if !(st.after_s >= 0.0 && st.for_s > 0.0 && st.for_s <= 60.0)
                || self.pattern == Pattern::Rr
            {
                return bad("--rx-stall AFTER:FOR needs AFTER >= 0, 0 < FOR <= 60 and a stream or rate pattern".into());
            }
        }
        if self.msg_size < HEADER_LEN {
            return bad(format!(
                "--msg-size {} is below the {HEADER_LEN}-byte message header (seq + send timestamp)",
                self.msg_size
            ));
        }
        if self.msg_size > MAX_MSG_SIZE {
            return bad(format!(
                "--msg-size {} exceeds the limit of {MAX_MSG_SIZE} bytes (16 MiB)",
                self.msg_size
            ));
        }
        if self.flows == 0 || self.flows > MAX_FLOWS {
            return bad(format!(
                "--flows {} must be between 1 and {MAX_FLOWS}",
                self.flows
            ));
        }
        if !(self.duration_s.is_finite()
            && self.duration_s > 0.0
            && self.duration_s <= MAX_DURATION_S)
        {
            return bad(format!(
                "--duration {} must be > 0 and <= {MAX_DURATION_S} seconds",
                self.duration_s
            ));
        }
        if !(self.warmup_s.is_finite() && self.warmup_s >= 0.0 && self.warmup_s <= MAX_DURATION_S) {
            return bad(format!(
                "--warmup {} must be >= 0 and <= {MAX_DURATION_S} seconds",
                self.warmup_s
            ));
        }
        if self.zc_slots == 0 || self.zc_slots > MAX_ZC_SLOTS {
            return bad(format!(
                "--zc-slots {} must be between 1 and {MAX_ZC_SLOTS}",
                self.zc_slots
            ));
        }
        if !self.rx.facts().reads_messages && self.verify {
            return bad("--verify needs the payload, which --rx-discard throws away".into());
        }
        if let Some(t) = self.threads {
            if !self.engine.facts().shares_threads && t != self.flows {
                return bad(format!(
                    "--threads {t} needs --engine uring: the threads engine runs one thread per flow ({})",
                    self.flows
                ));
            }
            if t == 0 || t > self.flows {
                return bad(format!(
                    "--threads {t} must be between 1 and --flows ({})",
                    self.flows
                ));
            }
        }
        let u = self.uring;
        if self.engine.facts().rings && !UringOpts::orderings_for(self.mode).contains(&u.ordering) {
            return bad(format!(
                "--uring-ordering {} cannot carry {}: SEND_ZC has no bundle form (a3 carries a batch with --uring-ordering coalesce)",
                u.ordering, self.mode
            ));
        }
        // (The threads engine ignores the io_uring tunables; rr and rate send one at a time.)
        let carries_batch = self.carries_batch_on_rings();
        let n = self.batch_plan().messages;
        if carries_batch && u.ordering != UringOrdering::Link && u.depth != n {
            return bad(format!(
                "--uring-ordering {} sends the batch ({n} messages) per SQE, not --uring-depth {}: --batch sets it",
                u.ordering, u.depth
            ));
        }
        if carries_batch && u.ordering == UringOrdering::Link && n > 1 {
            return bad(format!(
                "--uring-ordering link sends one message per SQE: it carries --batch 1, not {} (coalesce or bundle carry a batch)",
                self.batch
            ));
        }
        if u.ordering == UringOrdering::Link && (u.depth == 0 || u.depth > MAX_URING_DEPTH) {
            return bad(format!(
                "--uring-depth {} must be between 1 and {MAX_URING_DEPTH} (sends in flight per flow)",
                u.depth
            ));
        }
        if u.batch == 0 || u.batch > MAX_URING_BATCH {
            return bad(format!(
                "--uring-batch {} must be between 1 and {MAX_URING_BATCH} (completions per io_uring_enter)",
                u.batch
            ));
        }
        if self.engine.facts().rings && !self.mode.facts().zero_copy {
            // A1 stages every message in flight; A2 with --verify needs a payload per message.
            let per_msg = if self.mode == Mode::A1 || self.verify {
                self.msg_size
            } else {
                HEADER_LEN
            };
            let bytes = u.depth * per_msg;
            if bytes > MAX_URING_FLOW_BUFFERS {
                return bad(format!(
                    "--uring-depth {} x {per_msg}-byte buffers = {bytes} bytes per flow, above {} MiB: lower --uring-depth",
                    u.depth,
                    MAX_URING_FLOW_BUFFERS >> 20
                ));
            }
        }
        // rr's server fills its slots with responses, its client with requests.
        let (size_flag, slot_size) =
            if self.pattern == Pattern::Rr && self.response_size() > self.msg_size {
                ("--resp-size", self.response_size())
            } else {
                ("--msg-size", self.msg_size)
            };
        if self.mode.facts().zero_copy
            && self.zc_slots.saturating_mul(slot_size) > MAX_ZC_POOL_BYTES
        {
            return bad(format!(
                "--zc-slots {} x {size_flag} {slot_size} = {} bytes of zero-copy slots per flow, above {} MiB: use fewer slots",
                self.zc_slots,
                self.zc_slots.saturating_mul(slot_size),
                MAX_ZC_POOL_BYTES >> 20
            ));
        }
        self.validate_batch()?;
        if let Some(hz) = self.profile {
            if !crate::profile::HZ_RANGE.contains(&hz) {
                return bad(format!(
                    "--profile {hz}: samples per second must be between {} and {}",
                    crate::profile::HZ_RANGE.start(),
                    crate::profile::HZ_RANGE.end()
                ));
            }
        }
        let memory = self.memory_local();
        if memory.total() > MAX_RUN_MEMORY_BYTES {
            return bad(format!(
                "the run would hold about {} ({}), above the {} a run may hold: fewer flows, slots or a smaller --msg-size/--resp-size",
                super::memory::mib(memory.total()),
                memory.describe(),
                super::memory::mib(MAX_RUN_MEMORY_BYTES)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sendpath_record::Engine;

    #[test]
    fn validate_rejects_each_bad_option() {
        let ok = RunSpec::default();
        ok.validate().unwrap();
        for (spec, needle) in [
            (
                RunSpec {
                    msg_size: 15,
                    ..ok.clone()
                },
                "--msg-size 15",
            ),
            (
                RunSpec {
                    msg_size: MAX_MSG_SIZE + 1,
                    ..ok.clone()
                },
                "16 MiB",
            ),
            (
                RunSpec {
                    flows: 0,
                    ..ok.clone()
                },
                "--flows 0",
            ),
            (
                RunSpec {
                    duration_s: 0.0,
                    ..ok.clone()
                },
                "--duration",
            ),
            (
                RunSpec {
                    duration_s: f64::NAN,
                    ..ok.clone()
                },
                "--duration",
            ),
            (
                RunSpec {
                    warmup_s: -1.0,
                    ..ok.clone()
                },
                "--warmup",
            ),
            (
                RunSpec {
                    zc_slots: 0,
                    ..ok.clone()
                },
                "--zc-slots",
            ),
            (
                RunSpec {
                    rx: RxMode::Discard,
                    verify: true,
                    ..ok.clone()
                },
                "--rx-discard",
            ),
            (
                RunSpec {
                    rx: RxMode::Uring,
                    pattern: Pattern::Rr,
                    ..ok.clone()
                },
                "--rx uring",
            ),
            (
                RunSpec {
                    engine: Engine::Uring,
                    uring: UringOpts {
                        depth: 0,
                        ..UringOpts::default()
                    },
                    ..ok.clone()
                },
                "--uring-depth 0",
            ),
            (
                RunSpec {
                    engine: Engine::Uring,
                    uring: UringOpts {
                        batch: 0,
                        ..UringOpts::default()
                    },
                    ..ok.clone()
                },
                "--uring-batch 0",
            ),
            (
                RunSpec {
                    threads: Some(2),
                    flows: 4,
                    ..ok.clone()
                },
                "needs --engine uring",
            ),
            (
                RunSpec {
                    engine: Engine::Uring,
                    threads: Some(3),
                    flows: 2,
                    ..ok.clone()
                },
                "--threads 3",
            ),
            (
                RunSpec {
                    mode: Mode::A3,
                    zc_slots: 4096,
                    msg_size: 1 << 20,
                    ..ok.clone()
                },
                "bytes of zero-copy slots",
            ),
            (
                // 16 MiB responses in 65536 zero-copy slots: a terabyte per flow.
                RunSpec {
                    mode: Mode::A3,
                    pattern: Pattern::Rr,
                    msg_size: 16,
                    resp_size: Some(16 << 20),
                    zc_slots: 65536,
                    ..ok.clone()
                },
                "--zc-slots 65536 x --resp-size 16777216",
            ),
            (
                // Each flow's slots fit a registered buffer; 16 flows on two ends do not fit.
                RunSpec {
                    mode: Mode::A3,
                    pattern: Pattern::Rr,
                    msg_size: 16,
                    resp_size: Some(16 << 20),
                    zc_slots: 63,
                    flows: 16,
                    ..ok.clone()
                },
                "send buffers",
            ),
            (
                RunSpec {
                    msg_size: 16 << 20,
                    flows: 300,
                    ..ok.clone()
                },
                "receive buffers",
            ),
            (
                // A coalesced send carries the batch, whatever depth a request names.
                RunSpec {
                    engine: Engine::Uring,
                    mode: Mode::A1,
                    uring: UringOpts {
                        ordering: UringOrdering::Coalesce,
                        ..UringOpts::default()
                    },
                    ..ok.clone()
                },
                "not --uring-depth 32",
            ),
            (
                RunSpec {
                    engine: Engine::Uring,
                    batch: sendpath_record::Batch::Bytes(8192),
                    ..ok.clone()
                },
                "carries --batch 1, not 8K",
            ),
            (
                RunSpec {
                    engine: Engine::Uring,
                    mode: Mode::A3,
                    uring: UringOpts {
                        ordering: UringOrdering::Bundle,
                        ..UringOpts::default()
                    },
                    ..ok.clone()
                },
                "SEND_ZC has no bundle form",
            ),
        ] {
            let e = spec.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{e} should mention {needle}");
        }
    }
}
