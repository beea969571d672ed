//! Tunables of the io_uring engine and the rules that choose them.

use super::limits::*;
use sendpath_record::{Engine, Mode, UringOrdering};
use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
