//! The axes of a cell as named values (mode, engine, pattern, receiver, io_uring ordering), and
//! the one table of what each send-path mode is ([`MODES`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The copy discipline of the sender.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Two-copy baseline: header and payload assembled in a staging buffer, then `send()`.
    A1,
    /// One-copy: `sendmsg()` with an iovec over stable, reused buffers.
    A2,
    /// Zero-copy: as A2 plus `MSG_ZEROCOPY` (threads) or `SEND_ZC` (io_uring).
    A3,
}

/// Who drives the send syscalls.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// One blocking thread per flow.
    Threads,
    /// io_uring submission and completion rings.
    Uring,
}

/// The traffic pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Pattern {
    /// The sender sends as fast as it can; latency is one-way and includes queueing.
    Stream,
    /// Request/response (netperf TCP_RR): one transaction in flight per flow; the client
    /// times each round trip.
    Rr,
    /// Open loop at a fixed message rate per flow; latency from the intended send time
    /// (corrected for coordinated omission), the uncorrected figure beside it.
    Rate,
}

/// How the io_uring engine carries a flow's send operations while keeping its bytes in order
/// (several plain sends in flight on one TCP socket may run out of order). How many messages
/// one operation carries is the batch's (`--batch`), not the ordering's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UringOrdering {
    /// One SQE per message (`Send`, `SendMsg`, `SendZc`), linked with `IOSQE_IO_LINK` and
    /// `MSG_WAITALL` into one chain of `depth` SQEs per flow in flight: the syscalls are
    /// batched, the sends are not (`--batch 1`, the default). Every mode can do it. Records
    /// from before the ordering was recorded read `link`.
    #[default]
    Link,
    /// One `Send` bundle per flow in flight over a provided-buffer ring (Linux 6.10): the
    /// batch's messages are ring entries (A1: the staged message; A2: header and payload), and
    /// the kernel sends them in `sendmsg` calls of up to 256 entries each. `SEND_ZC` has no
    /// bundle form, so A3 cannot.
    Bundle,
    /// One send of the whole batch per flow in flight (the default for `--batch` above one
    /// message): A1 stages the messages back to back in one buffer and `Send`s it, A2 gathers
    /// them in one `SendMsg` iovec, A3 writes them back to back into registered slots and one
    /// `SEND_ZC` sends them (one notification releases them all). Every mode can do it.
    Coalesce,
}

/// How the receiver reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RxMode {
    /// `recv()` into a large buffer, every message parsed and checked (the default).
    Copy,
    /// `recv(MSG_TRUNC)`: the kernel discards the bytes without copying them, isolating the
    /// send path. No sequence check and no latency then.
    Discard,
    /// io_uring multishot `Recv` into a provided-buffer ring, every message parsed and
    /// checked in place as with `copy` (stream and rate; rr keeps its own loop).
    Uring,
}

/// Where each side's threads run (on a small machine this alone moves loopback results
/// several-fold, so it is an axis of its own and recorded).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// The scheduler decides (as iperf3 does).
    #[default]
    Unpinned,
    /// Senders pinned to one CPU, receivers to another.
    Apart,
    /// Senders and receivers pinned to the same CPU.
    Together,
    /// CPU lists given by hand (`--pin S:R`; `spec.pin` has them).
    Custom,
}

/// A name that is none of an axis's values: what was given, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    /// The axis (`mode`, `engine`, ...).
    pub what: &'static str,
    /// The name given.
    pub given: String,
    /// The names it may take.
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} '{}' (expected one of: {})",
            self.what,
            self.given,
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for UnknownName {}

macro_rules! named {
    ($t:ty, $what:literal, $($v:ident => $s:literal),+) => {
        impl $t {
            /// The name used on the command line and in JSON.
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),+ }
            }
            /// Every value, in order.
            pub const ALL: &'static [$t] = &[$(<$t>::$v),+];
            /// Every value's name, in order.
            pub const NAMES: &'static [&'static str] = &[$($s),+];
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s.to_ascii_lowercase().as_str() {
                    $($s => Ok(<$t>::$v),)+
                    _ => Err(UnknownName { what: $what, given: s.into(), expected: Self::NAMES }),
                }
            }
        }
    };
}
named!(Mode, "mode", A1 => "a1", A2 => "a2", A3 => "a3");
named!(Engine, "engine", Threads => "threads", Uring => "uring");
named!(Pattern, "pattern", Stream => "stream", Rr => "rr", Rate => "rate");
named!(RxMode, "receiver", Copy => "copy", Discard => "discard", Uring => "uring");
named!(UringOrdering, "io_uring ordering", Link => "link", Bundle => "bundle", Coalesce => "coalesce");
named!(Placement, "placement", Unpinned => "unpinned", Apart => "apart", Together => "together", Custom => "custom");

/// What a send-path mode is: the one place each fact about a mode lives. Code that needs a
/// fact reads the row (`mode.facts()`); nobody matches on mode names elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeFacts {
    /// The mode.
    pub mode: Mode,
    /// Its byte in the hello frame.
    pub wire_code: u8,
    /// How reports and plots name it.
    pub label: &'static str,
    /// Whether it sends zero-copy (and so reports zero-copy accounting).
    pub zero_copy: bool,
    /// Whether it has a send-bundle form on io_uring (plain `Send` of ring entries).
    pub bundle_form: bool,
    /// How many separate buffers a message goes out from when a batch gathers its messages
    /// (A2: header and payload, two iovecs or ring entries each), or 0 when a batch's
    /// messages lie back to back in one buffer (A1's staging, A3's slots: one for all).
    pub gathered_segments: usize,
    /// Every io_uring ordering it can run; `link` (one message per SQE) is the default for
    /// `--batch 1`, `coalesce` for a larger batch.
    pub orderings: &'static [UringOrdering],
}

/// The table of modes, in order. Adding a send path adds a row here (and one strategy type
/// per engine in sendpath-core; a test there fails until each exists).
pub const MODES: &[ModeFacts] = &[
    ModeFacts {
        mode: Mode::A1,
        wire_code: 1,
        label: "A1 copy+send",
        zero_copy: false,
        bundle_form: true,
        gathered_segments: 0,
        orderings: &[
            UringOrdering::Link,
            UringOrdering::Coalesce,
            UringOrdering::Bundle,
        ],
    },
    ModeFacts {
        mode: Mode::A2,
        wire_code: 2,
        label: "A2 sendmsg",
        zero_copy: false,
        bundle_form: true,
        gathered_segments: 2,
        orderings: &[
            UringOrdering::Link,
            UringOrdering::Coalesce,
            UringOrdering::Bundle,
        ],
    },
    ModeFacts {
        mode: Mode::A3,
        wire_code: 3,
        label: "A3 zero-copy",
        zero_copy: true,
        bundle_form: false,
        gathered_segments: 0,
        orderings: &[UringOrdering::Link, UringOrdering::Coalesce],
    },
];

impl Mode {
    /// This mode's row of [`MODES`].
    pub fn facts(self) -> &'static ModeFacts {
        MODES
            .iter()
            .find(|f| f.mode == self)
            .expect("every mode has a row in MODES (checked by a test)")
    }

    /// The mode whose hello byte is `code`.
    pub fn from_wire(code: u8) -> Option<Mode> {
        MODES.iter().find(|f| f.wire_code == code).map(|f| f.mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_has_one_row_with_a_distinct_wire_code_and_label() {
        for m in Mode::ALL {
            assert_eq!(MODES.iter().filter(|f| f.mode == *m).count(), 1, "{m}");
            let f = m.facts();
            assert_eq!(Mode::from_wire(f.wire_code), Some(*m));
            assert!(!f.label.is_empty());
            for o in [UringOrdering::Link, UringOrdering::Coalesce] {
                assert!(f.orderings.contains(&o), "{m}: every mode can {o}");
            }
            assert_eq!(
                f.orderings.contains(&UringOrdering::Bundle),
                f.bundle_form,
                "{m}: bundles need a bundle form"
            );
        }
        assert_eq!(MODES.len(), Mode::ALL.len());
        let labels: std::collections::BTreeSet<_> = MODES.iter().map(|f| f.label).collect();
        assert_eq!(labels.len(), MODES.len());
        assert_eq!(Mode::from_wire(0), None);
    }

    #[test]
    fn names_round_trip_and_unknown_ones_say_what_is_expected() {
        for m in Mode::ALL {
            assert_eq!(m.as_str().parse::<Mode>().unwrap(), *m);
            assert_eq!(serde_json::to_string(m).unwrap(), format!("\"{m}\""));
        }
        assert_eq!("URING".parse::<Engine>().unwrap(), Engine::Uring);
        let e = "a4".parse::<Mode>().unwrap_err().to_string();
        assert_eq!(e, "unknown mode 'a4' (expected one of: a1, a2, a3)");
        assert!(Engine::Uring.as_str() == "uring" && Pattern::Rr != Pattern::Rate);
        for o in UringOrdering::ALL {
            assert_eq!(o.as_str().parse::<UringOrdering>().unwrap(), *o);
        }
    }
}
