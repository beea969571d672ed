//! Tunables of the io_uring engine and the rules that choose them.

use sendpath_record::{Mode, UringOrdering};
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
    /// How a flow's send operations stay in order: linked chains of one-message SQEs
    /// (`--batch 1`), or one send of the batch per flow in flight, coalesced or as a send
    /// bundle (then `depth` is the batch in messages: [`crate::spec::RunSpec::resolve_batch`]).
    #[serde(default)]
    pub ordering: UringOrdering,
}

impl UringOpts {
    /// Bytes of staged messages in flight the automatic depth of a linked chain aims at: A1
    /// stages every message in flight in its own buffer, and at 16 KiB a chain of 32 (512
    /// KiB, out of cache) measured slower than a chain of 4 here.
    pub const AUTO_STAGED_BYTES: usize = 64 << 10;

    /// The default length of a linked chain (one message per SQE, `--batch 1`): 32, or for
    /// modes that stage each message in flight (A1, A2 with --verify) as many as fit
    /// [`Self::AUTO_STAGED_BYTES`], at least 1. (`coalesce` and `bundle` carry the batch:
    /// their depth is its messages, see [`RunSpec::resolve_batch`](super::RunSpec::resolve_batch).)
    pub fn auto_depth(ordering: UringOrdering, mode: Mode, msg_size: usize, verify: bool) -> usize {
        let d = Self::default().depth;
        if ordering == UringOrdering::Link && (mode == Mode::A1 || (mode == Mode::A2 && verify)) {
            (Self::AUTO_STAGED_BYTES / msg_size.max(1)).clamp(1, d)
        } else {
            d
        }
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
    fn a_chain_keeps_staged_bytes_in_cache() {
        let link = |m, size, verify| UringOpts::auto_depth(UringOrdering::Link, m, size, verify);
        assert_eq!(link(Mode::A1, 64, false), 32);
        assert_eq!(link(Mode::A1, 16384, false), 4);
        assert_eq!(link(Mode::A1, 1 << 20, false), 1);
        assert_eq!(link(Mode::A2, 1 << 20, false), 32);
        assert_eq!(link(Mode::A2, 1 << 20, true), 1);
        assert_eq!(link(Mode::A3, 65536, false), 32);
        assert_eq!(
            "BUNDLE".parse::<UringOrdering>().unwrap(),
            UringOrdering::Bundle
        );
        let c = UringOpts {
            depth: 7,
            batch: 7,
            ordering: UringOrdering::Coalesce,
        };
        assert_eq!(c.chain_shape(), (1, 7));
    }
}
