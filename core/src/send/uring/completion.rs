//! What a send ring's CQE is about, in one type for both rings (the stream driver's and the
//! one-shot ring of rr and rate): the [`Tag`] every SQE carries in its user_data, and the
//! [`Event`] a CQE decodes to. Zero-copy completions are applied to the strategy here, once,
//! for both rings ([`apply_zero_copy`]).

use super::strategy::UringSend;
use crate::error::{Error, Result};
use io_uring::cqueue;

/// Which of a flow's operations an SQE is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    /// Position `pos` of the flow's linked chain (a coalesced send is a chain of one).
    Link(u16),
    /// The flow's send bundle.
    Bundle,
    /// The plain send that finishes the entry a short bundle stopped in.
    Loose,
    /// The one-byte receive of the end request.
    EndRecv,
    /// The cancellation of that receive.
    CancelEnd,
}

/// The user_data of an SQE: the flow (its index on the ring), the operation, and the buffer
/// the send names (its zero-copy notification names the same). Encoded as flow (bits 32..),
/// operation (16..32: a chain position below [`Self::FIRST_SPECIAL`], or one of the codes
/// above it), buffer (0..16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Tag {
    pub(super) flow: u32,
    pub(super) op: Op,
    pub(super) buf: u16,
}

impl Tag {
    /// Codes from here up name the operations that are not chain positions (a chain is at
    /// most `MAX_URING_DEPTH` long, far below).
    const FIRST_SPECIAL: u16 = 0xfffc;

    /// Position `pos` of flow `flow`'s chain, sending buffer `buf`.
    pub(super) fn link(flow: usize, pos: usize, buf: u16) -> Tag {
        debug_assert!(pos < Self::FIRST_SPECIAL as usize);
        Tag {
            flow: flow as u32,
            op: Op::Link(pos as u16),
            buf,
        }
    }

    /// Operation `op` (not a chain position) of flow `flow`.
    pub(super) fn of(flow: usize, op: Op) -> Tag {
        Tag {
            flow: flow as u32,
            op,
            buf: 0,
        }
    }

    /// The SQE's user_data.
    pub(super) fn encode(self) -> u64 {
        let op = match self.op {
            Op::Link(pos) => pos,
            Op::CancelEnd => Self::FIRST_SPECIAL,
            Op::EndRecv => Self::FIRST_SPECIAL + 1,
            Op::Loose => Self::FIRST_SPECIAL + 2,
            Op::Bundle => Self::FIRST_SPECIAL + 3,
        };
        (u64::from(self.flow) << 32) | (u64::from(op) << 16) | u64::from(self.buf)
    }

    /// The tag a CQE's user_data carries.
    pub(super) fn decode(ud: u64) -> Tag {
        let op = match ((ud >> 16) & 0xffff) as u16 {
            pos if pos < Self::FIRST_SPECIAL => Op::Link(pos),
            Self::FIRST_SPECIAL => Op::CancelEnd,
            c if c == Self::FIRST_SPECIAL + 1 => Op::EndRecv,
            c if c == Self::FIRST_SPECIAL + 2 => Op::Loose,
            _ => Op::Bundle,
        };
        Tag {
            flow: (ud >> 32) as u32,
            op,
            buf: ud as u16,
        }
    }
}

/// What a CQE says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Event {
    /// A send (chain link, bundle or loose send) completed with `res`; with `more`, more
    /// CQEs of the same send follow (a bundle going on, or a zero-copy notification).
    Sent { res: i32, more: bool },
    /// A zero-copy notification: the kernel is done with the send's buffer; `res` says
    /// whether it copied after all.
    Notified { res: i32 },
    /// The receive of the end request completed with `res`.
    EndRequest { res: i32 },
    /// A cancellation completed (nothing to do).
    Cancelled,
}

/// A CQE decoded: whose, and what.
pub(super) fn decode(cqe: &cqueue::Entry) -> (Tag, Event) {
    let tag = Tag::decode(cqe.user_data());
    let (res, flags) = (cqe.result(), cqe.flags());
    let event = match tag.op {
        Op::EndRecv => Event::EndRequest { res },
        Op::CancelEnd => Event::Cancelled,
        _ if cqueue::notif(flags) => Event::Notified { res },
        _ => Event::Sent {
            res,
            more: cqueue::more(flags),
        },
    };
    (tag, event)
}

/// Applies a send's completion to `strategy`'s zero-copy side at `now`: a notification frees
/// the buffer (an error for a strategy that does not send zero-copy); a result says whether a
/// notification follows. Every other event leaves the strategy alone.
pub(super) fn apply_zero_copy(
    strategy: &mut dyn UringSend,
    tag: Tag,
    event: Event,
    now: u64,
) -> Result<()> {
    match (event, strategy.zero_copy()) {
        (Event::Notified { res }, Some(z)) => z.on_notif(tag.buf, res, now),
        (Event::Notified { .. }, None) => Err(Error::Kernel(format!(
            "a notification CQE for buffer {} of flow {}, whose mode does not send zero-copy",
            tag.buf, tag.flow
        ))),
        (Event::Sent { more, .. }, Some(z)) if matches!(tag.op, Op::Link(_)) => {
            z.on_result(tag.buf, more, now);
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tag_survives_its_user_data() {
        let tags = [
            Tag::link(0, 0, 0),
            Tag::link(7, 63, 4095),
            Tag::link(u32::MAX as usize, 0xfffb, u16::MAX),
            Tag::of(3, Op::Bundle),
            Tag::of(3, Op::Loose),
            Tag::of(3, Op::EndRecv),
            Tag::of(3, Op::CancelEnd),
        ];
        for t in tags {
            assert_eq!(Tag::decode(t.encode()), t, "{t:?}");
        }
        let codes: std::collections::BTreeSet<u64> = tags.iter().map(|t| t.encode()).collect();
        assert_eq!(codes.len(), tags.len(), "distinct tags, distinct user_data");
    }
}
