//! What `--batch` means for one cell: how many messages each send operation carries on its
//! mode and engine (the size asked for, or the limit that holds it below), and on io_uring the
//! ordering and depth that carry it. One function resolves a cell for every caller (the CLI,
//! the sweep, the benches), so a batch means the same thing everywhere.

use super::limits::*;
use super::run_spec::RunSpec;
use super::uring_opts::UringOpts;
use crate::error::{Error, Result};
use sendpath_record::{Batch, Pattern, UringOrdering};

/// Most iovecs one `sendmsg` takes (the kernel's UIO_MAXIOV).
pub const SENDMSG_MAX_IOVECS: usize = 1024;
/// Most entries of a flow's send-bundle ring (a provided-buffer ring has at most 32768); a
/// bundle flow keeps two per message of its batch (header and payload, or the staged message).
pub const BUNDLE_MAX_ENTRIES: usize = 1 << 15;

/// Messages per send operation of a cell, and what held them below the batch asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchPlan {
    /// Messages one send operation is built to carry (at least 1).
    pub messages: usize,
    /// Why fewer than the batch asked for, if so (for the record's `calls.capped_by`).
    pub capped_by: Option<String>,
}

impl RunSpec {
    /// The messages each send operation of this cell carries. rr and rate send one at a
    /// time; a stream carries the batch, within what the mode's send call can describe:
    /// a gathered send (A2) takes [`SENDMSG_MAX_IOVECS`] iovecs, a coalesced `SEND_ZC` at most
    /// [`MAX_COALESCE_DEPTH`] messages, a staged batch (A1) at most
    /// [`MAX_URING_FLOW_BUFFERS`] bytes.
    pub fn batch_plan(&self) -> BatchPlan {
        if self.pattern != Pattern::Stream {
            return BatchPlan {
                messages: 1,
                capped_by: None,
            };
        }
        let asked = self.batch.messages(self.msg_size);
        let facts = self.mode.facts();
        let limits = [
            (facts.gathered_segments > 0).then(|| {
                (
                    SENDMSG_MAX_IOVECS / facts.gathered_segments,
                    format!(
                        "sendmsg takes at most {SENDMSG_MAX_IOVECS} iovecs: {} messages of {} each",
                        SENDMSG_MAX_IOVECS / facts.gathered_segments,
                        facts.gathered_segments
                    ),
                )
            }),
            facts.zero_copy.then(|| {
                (
                    MAX_COALESCE_DEPTH,
                    format!("a zero-copy send carries at most {MAX_COALESCE_DEPTH} messages"),
                )
            }),
            Some((
                (MAX_URING_FLOW_BUFFERS / self.msg_size.max(1)).max(1),
                format!("a batch holds at most {} MiB", MAX_URING_FLOW_BUFFERS >> 20),
            )),
        ];
        match limits
            .into_iter()
            .flatten()
            .filter(|(limit, _)| *limit < asked)
            .min_by_key(|(limit, _)| *limit)
        {
            Some((limit, why)) => BatchPlan {
                messages: limit,
                capped_by: Some(why),
            },
            None => BatchPlan {
                messages: asked,
                capped_by: None,
            },
        }
    }

    /// The io_uring ordering that carries this cell's batch unless asked otherwise: linked
    /// chains of one-message SQEs for one message per send, one coalesced send of the batch
    /// otherwise.
    pub fn default_ordering(&self) -> UringOrdering {
        if self.batch_plan().messages > 1 {
            UringOrdering::Coalesce
        } else {
            UringOrdering::Link
        }
    }

    /// Resolves the io_uring ordering, depth, completions per enter and zero-copy slots of
    /// this cell for its batch, from what was asked (None: the default):
    /// - `--batch 1` runs linked chains (one message per SQE) of `depth` SQEs; `coalesce`
    ///   and `bundle` carry a larger batch, one send of the batch's messages per flow in
    ///   flight (then the depth is the batch in messages and not asked for);
    /// - zero-copy slots default to room for four batches (at least [`DEFAULT_ZC_SLOTS`]).
    pub fn resolve_batch(
        &mut self,
        ordering: Option<UringOrdering>,
        depth: Option<usize>,
        enter_batch: Option<usize>,
        zc_slots: Option<usize>,
    ) -> Result<()> {
        let n = self.batch_plan().messages;
        let ordering = ordering.unwrap_or_else(|| self.default_ordering());
        let depth = match ordering {
            UringOrdering::Link => {
                if n > 1 && self.engine.facts().rings {
                    return Err(Error::InvalidSpec(format!(
                        "--uring-ordering link sends one message per SQE: it carries --batch 1, not {} ({n} messages; coalesce or bundle carry a batch)",
                        self.batch
                    )));
                }
                depth.unwrap_or_else(|| {
                    UringOpts::auto_depth(ordering, self.mode, self.msg_size, self.verify)
                })
            }
            UringOrdering::Coalesce | UringOrdering::Bundle => {
                if depth.is_some() && self.engine.facts().rings {
                    return Err(Error::InvalidSpec(format!(
                        "--uring-depth sets a linked chain's length; with --uring-ordering {ordering} --batch sets the messages per send"
                    )));
                }
                n
            }
        };
        self.uring = UringOpts {
            depth,
            batch: enter_batch.unwrap_or(depth),
            ordering,
        };
        self.zc_slots = zc_slots.unwrap_or_else(|| {
            let by_bytes = (MAX_ZC_POOL_BYTES / self.msg_size.max(1)).max(1);
            (4 * n).clamp(DEFAULT_ZC_SLOTS, MAX_ZC_SLOTS).min(by_bytes)
        });
        Ok(())
    }

    /// The checks of the batch axis (part of [`RunSpec::validate`]).
    pub(super) fn validate_batch(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidSpec(m));
        let Batch::Bytes(b) = self.batch else {
            return Ok(());
        };
        if self.pattern != Pattern::Stream {
            return bad(format!(
                "--batch {}: rr and rate send one message at a time (--batch 1); batches are for streams",
                self.batch
            ));
        }
        if (b as usize) < self.msg_size {
            return bad(format!(
                "--batch {}: less than one {}-byte message (--batch 1 sends one message per call)",
                self.batch, self.msg_size
            ));
        }
        let n = self.batch_plan().messages;
        if self.mode.facts().zero_copy && self.zc_slots < n {
            return bad(format!(
                "--zc-slots {} cannot hold one batch of {n} messages: at least {n}",
                self.zc_slots
            ));
        }
        if !self.engine.facts().rings && n > 1 && self.timestamps.is_some() {
            return bad(
                "--timestamps with --batch above one message runs on io_uring only (the threads engine stamps one message per call)"
                    .into(),
            );
        }
        if self.engine.facts().rings
            && self.uring.ordering == UringOrdering::Bundle
            && 2 * n > BUNDLE_MAX_ENTRIES
        {
            return bad(format!(
                "--uring-ordering bundle cannot carry --batch {} ({n} messages: its ring holds {} of {} bytes): use coalesce or a larger message",
                self.batch,
                BUNDLE_MAX_ENTRIES / 2,
                self.msg_size
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Engine, Mode};

    fn stream(mode: Mode, engine: Engine, msg_size: usize, batch: &str) -> RunSpec {
        let mut s = RunSpec {
            mode,
            engine,
            msg_size,
            batch: batch.parse().unwrap(),
            ..RunSpec::default()
        };
        s.resolve_batch(None, None, None, None).unwrap();
        s
    }

    #[test]
    fn a_batch_is_the_same_messages_per_call_for_every_mode_within_their_limits() {
        for engine in [Engine::Threads, Engine::Uring] {
            for size in [64, 1024, 16384] {
                for mode in [Mode::A1, Mode::A2, Mode::A3] {
                    let s = stream(mode, engine, size, "32K");
                    assert_eq!(s.batch_plan().messages, 32768 / size);
                    assert_eq!(s.batch_plan().capped_by, None);
                    s.validate().unwrap();
                    let one = stream(mode, engine, size, "1");
                    assert_eq!(one.batch_plan().messages, 1);
                    assert_eq!(one.uring.ordering, UringOrdering::Link);
                }
            }
        }
        // 8192 messages of 64 B: A2's iovec holds 512 of them, and says so.
        let a2 = stream(Mode::A2, Engine::Uring, 64, "512K");
        assert_eq!(a2.batch_plan().messages, 512);
        assert!(a2.batch_plan().capped_by.unwrap().contains("1024 iovecs"));
        assert_eq!(a2.uring.depth, 512);
        let a3 = stream(Mode::A3, Engine::Uring, 64, "512K");
        assert_eq!(
            (a3.uring.ordering, a3.uring.depth, a3.zc_slots),
            (UringOrdering::Coalesce, 8192, 32768)
        );
        let a1 = stream(Mode::A1, Engine::Threads, 16, "512K");
        assert_eq!(a1.batch_plan().messages, 32768);
        assert_eq!(
            stream(Mode::A3, Engine::Threads, 16, "512K")
                .batch_plan()
                .messages,
            MAX_COALESCE_DEPTH
        );
        // rr and rate send one at a time, and refuse a batch.
        let rr = RunSpec {
            pattern: Pattern::Rr,
            batch: Batch::Bytes(4096),
            ..RunSpec::default()
        };
        assert_eq!(rr.batch_plan().messages, 1);
        assert!(rr
            .validate()
            .unwrap_err()
            .to_string()
            .contains("rr and rate"));
    }

    #[test]
    fn an_ordering_that_cannot_carry_the_batch_is_refused_in_one_line() {
        let mut s = RunSpec {
            mode: Mode::A1,
            engine: Engine::Uring,
            msg_size: 16,
            batch: "512K".parse().unwrap(),
            ..RunSpec::default()
        };
        let e = s
            .clone()
            .resolve_batch(Some(UringOrdering::Link), None, None, None)
            .unwrap_err();
        assert!(e.to_string().contains("carries --batch 1"), "{e}");
        let e = s
            .clone()
            .resolve_batch(None, Some(8), None, None)
            .unwrap_err();
        assert!(e.to_string().contains("--uring-depth"), "{e}");
        s.resolve_batch(Some(UringOrdering::Bundle), None, None, None)
            .unwrap();
        let e = s.validate().unwrap_err().to_string();
        assert!(
            e.contains("bundle cannot carry --batch 512K (32768 messages"),
            "{e}"
        );
        let small = RunSpec {
            msg_size: 1024,
            batch: "1000".parse().unwrap(),
            ..RunSpec::default()
        };
        assert!(small
            .validate()
            .unwrap_err()
            .to_string()
            .contains("less than one 1024-byte message"));
        let slots = RunSpec {
            mode: Mode::A3,
            msg_size: 1024,
            batch: "64K".parse().unwrap(),
            zc_slots: 32,
            ..RunSpec::default()
        };
        assert!(slots
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--zc-slots 32 cannot hold one batch of 64"));
    }
}
