//! What each engine and each receiver is: one row per value, as [`MODES`](crate::MODES) is for
//! the send paths. Code that needs a fact reads the row (`engine.facts()`, `rx.facts()`);
//! nobody matches on an engine or a receiver to learn what it can do.

use crate::axes::{Engine, RxMode};

/// What an engine is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineFacts {
    /// The engine.
    pub engine: Engine,
    /// Its byte in the hello frame.
    pub wire_code: u8,
    /// Whether its sends go through io_uring rings: it has the ring's tunables (`--uring-*`,
    /// `--threads`), a stream's batch is carried by an ordering (link, bundle, coalesce), and
    /// A3 needs the kernel's `SEND_ZC`.
    pub rings: bool,
    /// Whether several stream flows can share one sending thread (`--threads`); otherwise
    /// each flow has its own.
    pub shares_threads: bool,
}

/// The table of engines, in order.
pub const ENGINES: &[EngineFacts] = &[
    EngineFacts {
        engine: Engine::Threads,
        wire_code: 0,
        rings: false,
        shares_threads: false,
    },
    EngineFacts {
        engine: Engine::Uring,
        wire_code: 1,
        rings: true,
        shares_threads: true,
    },
];

impl Engine {
    /// This engine's row of [`ENGINES`].
    pub fn facts(self) -> &'static EngineFacts {
        ENGINES
            .iter()
            .find(|f| f.engine == self)
            .expect("every engine has a row in ENGINES (checked by a test)")
    }

    /// The engine whose hello byte is `code`.
    pub fn from_wire(code: u8) -> Option<Engine> {
        ENGINES
            .iter()
            .find(|f| f.wire_code == code)
            .map(|f| f.engine)
    }
}

/// What a receiver is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxFacts {
    /// The receiver.
    pub rx: RxMode,
    /// Whether it reads every message's header: sequences checked, one-way latency recorded,
    /// `--verify` possible. A receiver that discards the bytes unread does none of these.
    pub reads_messages: bool,
    /// Whether it has a loop of its own for `rr`; where not, rr runs the copy receiver.
    pub serves_rr: bool,
    /// Whether it receives through io_uring.
    pub rings: bool,
}

/// The table of receivers, in order.
pub const RECEIVERS: &[RxFacts] = &[
    RxFacts {
        rx: RxMode::Copy,
        reads_messages: true,
        serves_rr: true,
        rings: false,
    },
    RxFacts {
        rx: RxMode::Discard,
        reads_messages: false,
        serves_rr: false,
        rings: false,
    },
    RxFacts {
        rx: RxMode::Uring,
        reads_messages: true,
        serves_rr: false,
        rings: true,
    },
];

impl RxMode {
    /// This receiver's row of [`RECEIVERS`].
    pub fn facts(self) -> &'static RxFacts {
        RECEIVERS
            .iter()
            .find(|f| f.rx == self)
            .expect("every receiver has a row in RECEIVERS (checked by a test)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_engine_and_receiver_has_one_row() {
        for e in Engine::ALL {
            assert_eq!(ENGINES.iter().filter(|f| f.engine == *e).count(), 1, "{e}");
            assert_eq!(Engine::from_wire(e.facts().wire_code), Some(*e));
        }
        assert_eq!(ENGINES.len(), Engine::ALL.len());
        assert_eq!(Engine::from_wire(7), None);
        for r in RxMode::ALL {
            assert_eq!(RECEIVERS.iter().filter(|f| f.rx == *r).count(), 1, "{r}");
        }
        assert_eq!(RECEIVERS.len(), RxMode::ALL.len());
        assert!(
            RxMode::Copy.facts().serves_rr && RxMode::Copy.facts().reads_messages,
            "rr falls back to the copy receiver, which must read messages"
        );
    }
}
