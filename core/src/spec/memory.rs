//! What one run makes a host hold, as one formula in one place. The CLI's `validate` bounds a
//! local run (both sides in one process) with it, and `sendpath serve` bounds its own side of
//! a test with it before anything is bound or spawned; `docs/control-protocol.md` lists the
//! terms. A term is the size of what the code allocates, computed by the function the code
//! allocates with (the receive buffers), or an upper bound of it (the send buffers: the larger
//! of request and response size times every message a flow may keep).

use super::run_spec::RunSpec;
use crate::stamps::{MAX_JOIN_SAMPLES, MAX_PENDING, MAX_RX_SAMPLES};
use crate::wire::end::MAX_END_LEN;
use crate::wire::message::HEADER_LEN;
use sendpath_record::Pattern;

/// Smallest receive buffer of the copying and discarding receivers.
pub const MIN_RX_BUF: usize = 256 << 10;
/// Provided buffers per flow of the io_uring receiver (`--rx uring`).
pub const RX_BUFFERS: usize = 32;
/// Bytes per provided buffer of the io_uring receiver.
pub const RX_BUFFER_LEN: usize = 64 << 10;
/// What a flow holds on each side whatever its options: its thread's stack as touched, its
/// latency histograms (two of ~220 KiB at 1 ns .. 60 s, 3 digits), the end frame, TCP_INFO.
pub const FIXED_PER_FLOW: usize = 1 << 20;
/// Bytes an io_uring submission entry takes in the ring.
const SQE_BYTES: usize = 64;
/// Bytes a completion entry takes.
const CQE_BYTES: usize = 16;
/// Bytes a provided-buffer ring entry takes (send bundles).
const BUF_RING_ENTRY_BYTES: usize = 16;
/// Bytes one kept stamp sample may take (key, stamps, offsets), rounded up.
const STAMP_SAMPLE_BYTES: usize = 64;
/// Most bytes a stamp sample of the sender's pending queue takes.
const PENDING_STAMP_BYTES: usize = 64;

/// The receive buffer of the copying and discarding receivers for `msg_size`-byte messages:
/// several messages per read, and room for the end frame.
pub fn rx_buf_len(msg_size: usize) -> usize {
    (4 * msg_size).max(MIN_RX_BUF) + HEADER_LEN + MAX_END_LEN
}

/// One end of a run's flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The end that sends the messages (and, in rr, answers with responses).
    Sender,
    /// The end that receives them (and, in rr, sends the requests).
    Receiver,
}

/// Bytes a run makes one host hold, by what holds them (each term over all flows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// Send buffers: per flow, the larger of request and response size times the messages its
    /// send strategy keeps (zero-copy slots, io_uring depth, or one staged message), plus the
    /// payload template. rr's receiving end sends too (its requests).
    pub messages: usize,
    /// Receive buffers: the copying receiver's several messages per read
    /// ([`rx_buf_len`]), the io_uring receiver's provided buffers, rr's response buffer, the
    /// end frame.
    pub receive: usize,
    /// io_uring rings: submission and completion entries, provided-buffer rings.
    pub rings: usize,
    /// `--timestamps`: the samples each side keeps (bounded by the stamps module's limits).
    pub stamps: usize,
    /// `--profile`: each thread's sampler ring ([`crate::profile::ring_bytes`]).
    pub profile: usize,
    /// [`FIXED_PER_FLOW`] per flow.
    pub fixed: usize,
}

impl Memory {
    /// Every term added up (saturating: a bound, never a wrapped number).
    pub fn total(&self) -> usize {
        [
            self.messages,
            self.receive,
            self.rings,
            self.stamps,
            self.profile,
            self.fixed,
        ]
        .into_iter()
        .fold(0usize, usize::saturating_add)
    }

    fn plus(self, o: Memory) -> Memory {
        Memory {
            messages: self.messages.saturating_add(o.messages),
            receive: self.receive.saturating_add(o.receive),
            rings: self.rings.saturating_add(o.rings),
            stamps: self.stamps.saturating_add(o.stamps),
            profile: self.profile.saturating_add(o.profile),
            fixed: self.fixed.saturating_add(o.fixed),
        }
    }

    fn times(self, n: usize) -> Memory {
        Memory {
            messages: self.messages.saturating_mul(n),
            receive: self.receive.saturating_mul(n),
            rings: self.rings.saturating_mul(n),
            stamps: self.stamps.saturating_mul(n),
            profile: self.profile.saturating_mul(n),
            fixed: self.fixed.saturating_mul(n),
        }
    }

    /// The terms in MiB, largest first, for an error message.
    pub fn describe(&self) -> String {
        let mut terms = [
            ("send buffers", self.messages),
            ("receive buffers", self.receive),
            ("io_uring rings", self.rings),
            ("stamps", self.stamps),
            ("profile rings", self.profile),
            ("per-flow fixed", self.fixed),
        ];
        terms.sort_by_key(|t| std::cmp::Reverse(t.1));
        terms
            .iter()
            .filter(|t| t.1 > 0)
            .map(|(name, b)| format!("{name} {}", mib(*b)))
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

/// `b` bytes as MiB, rounded up (a bound reads as a bound).
pub fn mib(b: usize) -> String {
    format!("{} MiB", b.div_ceil(1 << 20))
}

impl RunSpec {
    /// What one side of this run holds, over all its flows.
    pub fn memory(&self, side: Side) -> Memory {
        self.flow_memory(side).times(self.flows)
    }

    /// What a run with both sides in one process holds (`sendpath run`, a sweep's cell).
    pub fn memory_local(&self) -> Memory {
        self.memory(Side::Sender).plus(self.memory(Side::Receiver))
    }

    /// One flow's side.
    fn flow_memory(&self, side: Side) -> Memory {
        let rr = self.pattern == Pattern::Rr;
        let message = self.msg_size.max(if rr { self.response_size() } else { 0 });
        let zero_copy = self.mode.facts().zero_copy;
        // A stream's sends on io_uring keep `depth` messages in flight; rr and rate send one
        // at a time (the one-shot ring); zero-copy keeps every slot until its completion.
        let in_flight = if self.carries_batch_on_rings() {
            self.uring.depth
        } else {
            1
        };
        let kept = if zero_copy { self.zc_slots } else { in_flight };
        // Slots of one message per call keep a gap (zerocopy::pool): at most 128 bytes each.
        let send_buffers = kept
            .saturating_add(1)
            .saturating_mul(message.saturating_add(128));
        let ring = |sq: usize, cq: usize| {
            sq.saturating_mul(SQE_BYTES)
                .saturating_add(cq.saturating_mul(CQE_BYTES))
        };
        let send_ring = if self.engine.facts().rings {
            let sq = in_flight.max(8);
            let zc = if zero_copy { self.zc_slots } else { 0 };
            ring(sq, 2 * sq + 2 * zc + 16).saturating_add(2 * in_flight * BUF_RING_ENTRY_BYTES)
        } else {
            0
        };
        let stamps_on = self.timestamps.is_some();
        let profile = self
            .profile
            .map_or(0, |hz| crate::profile::ring_bytes(hz, self.duration_s));
        match side {
            Side::Sender => Memory {
                messages: send_buffers,
                // rr's server reads whole requests; everyone reads the end request.
                receive: if rr { self.msg_size + HEADER_LEN } else { 0 },
                rings: send_ring,
                stamps: if stamps_on {
                    MAX_PENDING * PENDING_STAMP_BYTES + MAX_JOIN_SAMPLES * STAMP_SAMPLE_BYTES
                } else {
                    0
                },
                profile,
                fixed: FIXED_PER_FLOW,
            },
            Side::Receiver => {
                let (receive, rings) = match (rr, self.rx.facts().rings) {
                    (true, _) => (message.max(HEADER_LEN + MAX_END_LEN), send_ring),
                    (false, true) => (
                        RX_BUFFERS * RX_BUFFER_LEN + HEADER_LEN + MAX_END_LEN,
                        ring(4, 4 * RX_BUFFERS) + RX_BUFFERS * BUF_RING_ENTRY_BYTES,
                    ),
                    (false, _) => (rx_buf_len(self.msg_size), 0),
                };
                Memory {
                    messages: if rr { send_buffers } else { 0 },
                    receive,
                    rings,
                    stamps: if stamps_on {
                        MAX_RX_SAMPLES * STAMP_SAMPLE_BYTES
                    } else {
                        0
                    },
                    profile,
                    fixed: FIXED_PER_FLOW,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Engine, Mode, RxMode, UringOpts, UringOrdering};

    const MIB: usize = 1 << 20;

    /// Each term with a spec that only it makes large: the figures are what the code
    /// allocates, written out by hand, so a term dropped from the formula fails here.
    #[test]
    fn each_term_counts_what_the_code_allocates() {
        // Send buffers: rr responses of 16 MiB in 64 zero-copy slots, on both ends.
        let rr = RunSpec {
            mode: Mode::A3,
            pattern: Pattern::Rr,
            msg_size: 16,
            resp_size: Some(16 * MIB),
            zc_slots: 64,
            ..RunSpec::default()
        };
        assert!(rr.memory(Side::Sender).messages >= 64 * 16 * MIB);
        assert!(rr.memory(Side::Receiver).messages >= 64 * 16 * MIB);
        // Receive buffers: 64 flows of 16 MiB messages read four at a time.
        let big = RunSpec {
            msg_size: 16 * MIB,
            flows: 64,
            zc_slots: 1,
            ..RunSpec::default()
        };
        assert!(big.memory(Side::Receiver).receive >= 64 * 4 * 16 * MIB);
        assert_eq!(big.memory(Side::Sender).receive, 0);
        let uring_rx = RunSpec {
            rx: RxMode::Uring,
            ..RunSpec::default()
        };
        assert!(uring_rx.memory(Side::Receiver).receive >= RX_BUFFERS * RX_BUFFER_LEN);
        assert!(uring_rx.memory(Side::Receiver).rings > 0);
        // Rings: a coalesced io_uring flow with 65536 slots completes up to 2 per slot.
        let ring = RunSpec {
            mode: Mode::A3,
            engine: Engine::Uring,
            msg_size: 16,
            zc_slots: 65536,
            uring: UringOpts {
                depth: 16384,
                batch: 16,
                ordering: UringOrdering::Coalesce,
            },
            ..RunSpec::default()
        };
        assert!(ring.memory(Side::Sender).rings >= 2 * 65536 * CQE_BYTES + 16384 * SQE_BYTES);
        assert_eq!(RunSpec::default().memory(Side::Sender).rings, 0, "threads");
        // Stamps: the receiver keeps up to MAX_RX_SAMPLES samples per flow.
        let stamped = RunSpec {
            timestamps: Some(1),
            flows: 4,
            ..RunSpec::default()
        };
        assert!(stamped.memory(Side::Receiver).stamps >= 4 * MAX_RX_SAMPLES * 24);
        assert!(stamped.memory(Side::Sender).stamps >= 4 * MAX_PENDING * 40);
        assert_eq!(RunSpec::default().memory(Side::Receiver).stamps, 0);
        // Profile rings: one per thread and side, for the window at the rate.
        let profiled = RunSpec {
            profile: Some(20_000),
            duration_s: 3600.0,
            flows: 8,
            ..RunSpec::default()
        };
        assert_eq!(
            profiled.memory_local().profile,
            16 * crate::profile::MAX_RING
        );
        assert_eq!(RunSpec::default().memory_local().profile, 0);
        // Fixed: a MiB per flow per side.
        let many = RunSpec {
            flows: 1000,
            ..RunSpec::default()
        };
        assert_eq!(many.memory(Side::Sender).fixed, 1000 * MIB);
        assert_eq!(many.memory_local().fixed, 2000 * MIB);
        // The total adds every term, and saturates rather than wraps.
        let m = stamped.memory_local();
        assert_eq!(
            m.total(),
            m.messages + m.receive + m.rings + m.stamps + m.profile + m.fixed
        );
        let huge = Memory {
            messages: usize::MAX,
            fixed: 1,
            ..Memory::default()
        };
        assert_eq!(huge.total(), usize::MAX);
    }

    #[test]
    fn the_receive_buffer_holds_several_messages_and_the_end_frame() {
        assert_eq!(rx_buf_len(64), MIN_RX_BUF + HEADER_LEN + MAX_END_LEN);
        assert_eq!(rx_buf_len(MIB), 4 * MIB + HEADER_LEN + MAX_END_LEN);
        let d = RunSpec {
            msg_size: 16 * MIB,
            flows: 64,
            ..RunSpec::default()
        }
        .memory_local()
        .describe();
        assert!(
            d.starts_with("receive buffers 4101 MiB + send buffers"),
            "{d}"
        );
    }
}
