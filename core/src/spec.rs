//! What to measure: the resolved options of one run (one grid cell and repetition).

use crate::error::{Error, Result};
use crate::wire::HEADER_LEN;
use serde::{Deserialize, Serialize};

/// Largest message the tool accepts (16 MiB). A message must fit the receiver's read buffer
/// and a zero-copy slot pool of `zc_slots` messages; beyond this size per-message effects are
/// gone and the run measures bulk transfer, which iperf3 already does.
pub const MAX_MSG_SIZE: usize = 16 << 20;
/// Most flows one run may have (each flow is a connection, and on the threads engine a thread
/// per side).
pub const MAX_FLOWS: usize = 1024;
/// Longest measured window, in seconds (every load loop is bounded).
pub const MAX_DURATION_S: f64 = 3600.0;
/// Most zero-copy buffer slots per flow.
pub const MAX_ZC_SLOTS: usize = 65536;
/// Zero-copy slots per flow unless asked otherwise (coalesced io_uring sends get more: see
/// [`UringOpts::auto_zc_slots`]).
pub const DEFAULT_ZC_SLOTS: usize = 64;
/// Most bytes of zero-copy slots per flow: the slots are one contiguous allocation, which io_uring
/// registers as one fixed buffer (the kernel's limit for one is 1 GiB).
pub const MAX_ZC_POOL_BYTES: usize = 1 << 30;
/// Most io_uring sends in flight per flow (one linked chain; the ring must hold a whole chain).
pub const MAX_URING_DEPTH: usize = 1024;
/// Most messages one coalesced zero-copy send carries (it cannot carry more than the flow's
/// slots either).
pub const MAX_COALESCE_DEPTH: usize = 16384;
/// Most completions one `io_uring_enter` may wait for.
pub const MAX_URING_BATCH: usize = 65536;
/// Most bytes of send buffers one io_uring flow may keep in flight (A1 stages each message).
pub const MAX_URING_FLOW_BUFFERS: usize = 1 << 30;

pub use sendpath_record::axes::{
    Engine, Mode, ModeFacts, Pattern, RxMode, UnknownName, UringOrdering, MODES,
};

/// The fully resolved options of one run. Everything a record needs to be reproduced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Copy discipline.
    pub mode: Mode,
    /// Syscall engine.
    pub engine: Engine,
    /// Traffic pattern.
    pub pattern: Pattern,
    /// Bytes per message, header included (>= 16).
    pub msg_size: usize,
    /// Concurrent connections.
    pub flows: usize,
    /// Measured window in seconds.
    pub duration_s: f64,
    /// Warm-up before the window, in seconds (not measured).
    pub warmup_s: f64,
    /// Zero-copy buffer slots per flow (A3 only), one message each, contiguous in memory: a
    /// slot is reused only after the kernel's completion for every send that referenced it.
    pub zc_slots: usize,
    /// Fill payloads as a function of (seq, offset) and check them at the receiver.
    pub verify: bool,
    /// Take a send timestamp per message and record per-message latency.
    pub latency: bool,
    /// How the receiver reads.
    pub rx: RxMode,
    /// Sender worker threads. `None`: one per flow (the threads engine always has one per
    /// flow; the io_uring engine runs one ring per thread and spreads flows over them).
    pub threads: Option<usize>,
    /// io_uring engine tunables (ignored by the threads engine).
    pub uring: UringOpts,
    /// Response size for `rr` (None: the request size).
    #[serde(default)]
    pub resp_size: Option<usize>,
    /// Messages per second per flow for `rate`.
    #[serde(default)]
    pub rate: Option<f64>,
    /// `rate` cells of a sweep: the fraction of the stream capacity measured for the same
    /// cell that `rate` was set to (informational; the sweep fills it).
    #[serde(default)]
    pub rate_fraction: Option<f64>,
    /// Receivers (and both ends of `rr`) spin on non-blocking sockets instead of sleeping.
    #[serde(default)]
    pub busy_poll: bool,
    /// CPUs of each side's threads (None: the scheduler decides).
    #[serde(default)]
    pub pin: Option<crate::affinity::Pin>,
    /// Test hook: the receiver stops reading for a while, with tiny socket buffers, so the
    /// sender blocks (shows what coordinated-omission correction does).
    #[serde(default)]
    pub rx_stall: Option<RxStall>,
}

/// A pause of the receiver: `after_s` into the window it stops reading for `for_s`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RxStall {
    /// Seconds into the measured window.
    pub after_s: f64,
    /// Length of the pause.
    pub for_s: f64,
}

/// Socket buffer size the stall hook asks for on both ends (the kernel doubles it): small
/// enough that the sender blocks soon after the receiver stops reading.
pub const STALL_SOCKET_BUFFER: usize = 16384;
/// Highest `--rate` accepted, messages per second per flow.
pub const MAX_RATE: f64 = 20e6;

/// Tunables of the io_uring engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UringOpts {
    /// Sends in flight per flow: the length of one linked chain (IOSQE_IO_LINK + MSG_WAITALL)
    /// submitted at once. A flow has at most one chain in flight, so its bytes stay in order.
    pub depth: usize,
    /// Completions one `io_uring_enter` waits for before the loop refills idle flows (capped
    /// at what is in flight). With `depth` it sets how many sends one syscall carries.
    pub batch: usize,
    /// How a flow's messages stay in order: linked chains of per-message SQEs, send bundles
    /// over a provided-buffer ring (then `depth` is the messages per bundle), or coalesced
    /// zero-copy sends (then `depth` is the most messages one `SEND_ZC` carries).
    #[serde(default)]
    pub ordering: UringOrdering,
}

impl UringOpts {
    /// Bytes of staged messages in flight the automatic depth of a linked chain aims at: A1
    /// stages every message in flight in its own buffer, and at 16 KiB a chain of 32 (512
    /// KiB, out of cache) measured slower than a chain of 4 here.
    pub const AUTO_STAGED_BYTES: usize = 64 << 10;
    /// The same for a bundle, which sends its messages in one `sendmsg`: at 16 KiB a bundle of
    /// 32 measured ~20% faster than one of 4 here (21.5 vs 17.7 Gbit/s).
    pub const AUTO_BUNDLE_BYTES: usize = 512 << 10;
    /// The most bytes one coalesced `SEND_ZC` carries by default (A3, `coalesce`). Measured
    /// here (loopback, discard receiver): sends of 256 KiB to 1 MiB run fastest at every size
    /// (64 KiB messages: 8 per send 19-28 Gbit/s, 4 per send 15-19; 64 B: 1024 per send 12).
    pub const AUTO_COALESCE_BYTES: usize = 512 << 10;

    /// The default for a cell: the mode's ordering ([`Self::auto_ordering`]); depth 32, or
    /// for modes that stage each message in flight (A1, A2 with --verify) as many as fit
    /// [`Self::AUTO_BUNDLE_BYTES`] (bundles) or [`Self::AUTO_STAGED_BYTES`] (chains), at
    /// least 1; batch = depth, so one enter carries a whole chain.
    pub fn auto(mode: Mode, msg_size: usize, verify: bool) -> Self {
        let ordering = Self::auto_ordering(mode);
        let depth = Self::auto_depth(ordering, mode, msg_size, verify);
        UringOpts {
            depth,
            batch: depth,
            ordering,
        }
    }

    /// The default depth for `ordering` (see [`Self::auto`]).
    pub fn auto_depth(ordering: UringOrdering, mode: Mode, msg_size: usize, verify: bool) -> usize {
        let d = Self::default().depth;
        let budget = match ordering {
            UringOrdering::Bundle => Self::AUTO_BUNDLE_BYTES,
            UringOrdering::Link => Self::AUTO_STAGED_BYTES,
            UringOrdering::Coalesce => {
                return (Self::AUTO_COALESCE_BYTES / msg_size.max(1)).clamp(1, MAX_COALESCE_DEPTH)
            }
        };
        if mode == Mode::A1 || (mode == Mode::A2 && verify) {
            (budget / msg_size.max(1)).clamp(1, d)
        } else {
            d
        }
    }

    /// Bundles where the mode has a bundle form (A1, A2: plain `Send` of ring entries),
    /// coalesced sends for A3 (`SEND_ZC` cannot take provided buffers, but messages laid out
    /// back to back in registered memory go out as one send).
    pub fn auto_ordering(mode: Mode) -> UringOrdering {
        mode.facts().default_ordering
    }

    /// The orderings `mode` can use on io_uring (the mode table's row).
    pub fn orderings_for(mode: Mode) -> &'static [UringOrdering] {
        mode.facts().orderings
    }

    /// SQEs per chain and messages per SQE: a linked chain has `depth` SQEs of one message
    /// each, a coalesced flow one SQE of up to `depth` messages (bundles: one SQE, see
    /// [`UringOrdering::Bundle`]).
    pub fn chain_shape(&self) -> (usize, usize) {
        match self.ordering {
            UringOrdering::Coalesce => (1, self.depth),
            _ => (self.depth, 1),
        }
    }

    /// The zero-copy slots per flow of a cell: `asked`, or [`Self::auto_zc_slots`]. When the
    /// slots were asked for and the depth was not (`depth_asked`), a coalesced depth shrinks to
    /// half the slots, so that one send can go out while the one before awaits its
    /// notification.
    pub fn resolve_zc_slots(
        &mut self,
        engine: Engine,
        mode: Mode,
        msg_size: usize,
        asked: Option<usize>,
        depth_asked: bool,
    ) -> usize {
        match asked {
            None => Self::auto_zc_slots(engine, mode, self, msg_size),
            Some(slots) => {
                if self.ordering == UringOrdering::Coalesce && !depth_asked {
                    self.depth = self.depth.min((slots / 2).max(1));
                    self.batch = self.batch.min(self.depth);
                }
                slots
            }
        }
    }

    /// Zero-copy slots per flow unless asked: [`DEFAULT_ZC_SLOTS`], or for coalesced io_uring
    /// sends room for four sends of `depth` messages (one in flight while the notifications of
    /// the ones before it are still coming), within [`MAX_ZC_SLOTS`] and
    /// [`MAX_ZC_POOL_BYTES`].
    pub fn auto_zc_slots(engine: Engine, mode: Mode, uring: &UringOpts, msg_size: usize) -> usize {
        if engine == Engine::Uring
            && mode.facts().zero_copy
            && uring.ordering == UringOrdering::Coalesce
        {
            let by_bytes = (MAX_ZC_POOL_BYTES / msg_size.max(1)).max(1);
            (4 * uring.depth)
                .clamp(DEFAULT_ZC_SLOTS, MAX_ZC_SLOTS)
                .min(by_bytes)
        } else {
            DEFAULT_ZC_SLOTS
        }
    }
}

impl Default for UringOpts {
    fn default() -> Self {
        UringOpts {
            depth: 32,
            batch: 32,
            ordering: UringOrdering::Link,
        }
    }
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            mode: Mode::A1,
            engine: Engine::Threads,
            pattern: Pattern::Stream,
            msg_size: 1024,
            flows: 1,
            duration_s: 1.0,
            warmup_s: 0.2,
            zc_slots: DEFAULT_ZC_SLOTS,
            verify: false,
            latency: true,
            rx: RxMode::Copy,
            threads: None,
            uring: UringOpts::default(),
            resp_size: None,
            rate: None,
            rate_fraction: None,
            busy_poll: false,
            pin: None,
            rx_stall: None,
        }
    }
}

impl RunSpec {
    /// Whether per-message latency is recorded: asked for, and the receiver reads the bytes.
    pub fn records_latency(&self) -> bool {
        self.latency && self.rx != RxMode::Discard
    }

    /// Sender worker threads this spec runs (resolved: one per flow unless set).
    pub fn sender_threads(&self) -> usize {
        match self.engine {
            // rr and rate keep one transaction or paced send per flow at a time: one thread each.
            _ if self.pattern != Pattern::Stream => self.flows,
            Engine::Threads => self.flows,
            Engine::Uring => self
                .threads
                .unwrap_or(self.flows)
                .clamp(1, self.flows.max(1)),
        }
    }

    /// The spec with every derived choice made explicit (threads per engine and pattern,
    /// latency as actually recorded): two specs that run the same cell compare equal.
    pub fn normalized(&self) -> RunSpec {
        RunSpec {
            threads: Some(self.sender_threads()),
            latency: self.records_latency(),
            // io_uring tunables mean nothing to the threads engine (and are not recorded).
            uring: match self.engine {
                Engine::Threads => UringOpts::default(),
                Engine::Uring => self.uring,
            },
            ..self.clone()
        }
    }

    /// Whether the data sockets disable Nagle's algorithm: for the latency patterns (rr,
    /// rate), as sockperf does, because Nagle holding a small write until the peer's delayed
    /// ACK adds up to 40 ms that has nothing to do with the send path (seen here: a 2000/s
    /// rate run at 15 ms p50 with Nagle, 15 us without). Streams keep the default, as iperf3.
    pub fn tcp_nodelay(&self) -> bool {
        self.pattern != Pattern::Stream || self.rx_stall.is_some()
    }

    /// Bytes of an `rr` response.
    pub fn response_size(&self) -> usize {
        self.resp_size.unwrap_or(self.msg_size)
    }

    /// Checks every option against its documented range; the error names the option.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidSpec(m));
        match self.pattern {
            Pattern::Rr => {
                let r = self.response_size();
                if !(HEADER_LEN..=MAX_MSG_SIZE).contains(&r) {
                    return bad(format!(
                        "--resp-size {r} must be between {HEADER_LEN} and {MAX_MSG_SIZE} bytes"
                    ));
                }
                if self.rx == RxMode::Discard {
                    return bad("--pattern rr reads every response; drop --rx-discard".into());
                }
                if self.rx == RxMode::Uring {
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
        if self.rx == RxMode::Discard && self.verify {
            return bad("--verify needs the payload, which --rx-discard throws away".into());
        }
        if let Some(t) = self.threads {
            if self.engine == Engine::Threads && t != self.flows {
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
        if u.ordering == UringOrdering::Coalesce {
            // (The threads engine ignores the io_uring tunables.)
            if self.engine == Engine::Uring
                && (u.depth == 0 || u.depth > MAX_COALESCE_DEPTH.min(self.zc_slots))
            {
                return bad(format!(
                    "--uring-depth {} must be between 1 and {} (messages per coalesced send: at most {MAX_COALESCE_DEPTH}, and at most --zc-slots {})",
                    u.depth,
                    MAX_COALESCE_DEPTH.min(self.zc_slots),
                    self.zc_slots
                ));
            }
        } else if u.depth == 0 || u.depth > MAX_URING_DEPTH {
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
        if self.engine == Engine::Uring && !self.mode.facts().zero_copy {
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
        if self.engine == Engine::Uring
            && !UringOpts::orderings_for(self.mode).contains(&u.ordering)
        {
            return bad(match u.ordering {
                UringOrdering::Bundle => "--uring-ordering bundle needs a1 or a2: SEND_ZC has no bundle form (a3 coalesces its messages instead: --uring-ordering coalesce)".into(),
                o => format!(
                    "--uring-ordering {o} needs a3: it coalesces zero-copy sends (a1 and a2 batch with bundle)"
                ),
            });
        }
        if self.mode.facts().zero_copy
            && self.zc_slots.saturating_mul(self.msg_size) > MAX_ZC_POOL_BYTES
        {
            return bad(format!(
                "--zc-slots {} x --msg-size {} = {} bytes of zero-copy slots per flow, above {} MiB: use fewer slots",
                self.zc_slots,
                self.msg_size,
                self.zc_slots.saturating_mul(self.msg_size),
                MAX_ZC_POOL_BYTES >> 20
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_round_trip() {
        for m in Mode::ALL {
            assert_eq!(m.as_str().parse::<Mode>().unwrap(), *m);
        }
        assert!("a4"
            .parse::<Mode>()
            .unwrap_err()
            .to_string()
            .contains("a1, a2, a3"));
        assert_eq!("URING".parse::<Engine>().unwrap(), Engine::Uring);
    }

    #[test]
    fn auto_depth_keeps_staged_bytes_in_cache() {
        assert_eq!(UringOpts::auto(Mode::A1, 64, false).depth, 32);
        assert_eq!(UringOpts::auto(Mode::A1, 16384, false).depth, 32);
        assert_eq!(UringOpts::auto(Mode::A1, 65536, false).depth, 8);
        assert_eq!(UringOpts::auto(Mode::A1, 1 << 20, false).depth, 1);
        assert_eq!(UringOpts::auto(Mode::A2, 1 << 20, false).depth, 32);
        assert_eq!(UringOpts::auto(Mode::A2, 1 << 20, true).depth, 1);
        let link = |m, size| UringOpts::auto_depth(UringOrdering::Link, m, size, false);
        assert_eq!(link(Mode::A1, 16384), 4);
        assert_eq!(link(Mode::A1, 1 << 20), 1);
        assert_eq!(link(Mode::A3, 65536), 32);
        let coalesce = |size| UringOpts::auto_depth(UringOrdering::Coalesce, Mode::A3, size, false);
        assert_eq!(coalesce(64), 8192);
        assert_eq!(coalesce(1024), 512);
        assert_eq!(coalesce(65536), 8);
        assert_eq!(coalesce(1 << 20), 1);
        assert_eq!(
            UringOpts::auto(Mode::A1, 64, false).ordering,
            UringOrdering::Bundle
        );
        assert_eq!(
            UringOpts::auto(Mode::A2, 64, false).ordering,
            UringOrdering::Bundle
        );
        assert_eq!(
            UringOpts::auto(Mode::A3, 64, false).ordering,
            UringOrdering::Coalesce
        );
        assert_eq!(
            "BUNDLE".parse::<UringOrdering>().unwrap(),
            UringOrdering::Bundle
        );
        let a = UringOpts::auto(Mode::A3, 65536, false);
        assert_eq!((a.depth, a.batch), (8, 8));
        let slots = |m, size| {
            let u = UringOpts::auto(m, size, false);
            UringOpts::auto_zc_slots(Engine::Uring, m, &u, size)
        };
        assert_eq!(slots(Mode::A3, 64), 32768, "four sends of 8192 messages");
        assert_eq!(slots(Mode::A3, 65536), DEFAULT_ZC_SLOTS);
        assert_eq!(
            slots(Mode::A3, MAX_MSG_SIZE),
            MAX_ZC_POOL_BYTES / MAX_MSG_SIZE
        );
        assert_eq!(slots(Mode::A1, 64), DEFAULT_ZC_SLOTS);
        assert_eq!(
            UringOpts::auto_zc_slots(
                Engine::Threads,
                Mode::A3,
                &UringOpts::auto(Mode::A3, 64, false),
                64
            ),
            DEFAULT_ZC_SLOTS
        );
    }

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
                RunSpec {
                    engine: Engine::Uring,
                    mode: Mode::A3,
                    zc_slots: 16,
                    uring: UringOpts {
                        depth: 17,
                        batch: 1,
                        ordering: UringOrdering::Coalesce,
                    },
                    ..ok.clone()
                },
                "at most --zc-slots 16",
            ),
            (
                RunSpec {
                    engine: Engine::Uring,
                    mode: Mode::A1,
                    uring: UringOpts {
                        ordering: UringOrdering::Coalesce,
                        ..UringOpts::default()
                    },
                    ..ok.clone()
                },
                "--uring-ordering coalesce needs a3",
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
