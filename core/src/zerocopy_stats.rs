//! Zero-copy accounting of one flow or one run. A leaf of its own, below both the zero-copy
//! slots ([`crate::zerocopy`], which lay messages out by the wire's header) and the wire's end
//! frame ([`crate::wire`], which carries this accounting back): in either, the two would
//! import each other.

use crate::latency::LatencyHistogram;
use serde::{Deserialize, Serialize};

/// Zero-copy accounting of one flow or (summed) one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ZeroCopyStats {
    /// Zero-copy send calls issued (each is owed one completion).
    pub sends: u64,
    /// Send calls whose completion arrived.
    pub completions: u64,
    /// Completions that said the kernel copied after all.
    pub copied: u64,
    /// Most slots (message buffers) owned by the kernel at once.
    pub max_outstanding: u64,
    /// ENOBUFS answers (socket option memory for notifications exhausted), each followed by
    /// reaping and a retry.
    pub enobufs: u64,
    /// Messages the zero-copy sends carried (a message finished by a second send after a
    /// short one counts once): `messages / sends` is how many one send carried.
    #[serde(default)]
    pub messages: u64,
    /// Times the sender had a message to send and no free slot, and waited for a completion.
    #[serde(default)]
    pub slot_waits: u64,
    /// Per slot: from the first send over it to the moment the sender saw the completion that
    /// released it (ns). The threads engine reaps the error queue only when it needs a slot,
    /// so there this includes how long the completion sat unread.
    #[serde(default)]
    pub slot_hold: LatencyHistogram,
}

impl ZeroCopyStats {
    /// Adds another flow's accounting (max_outstanding: the largest of the two).
    pub fn merge(&mut self, o: &ZeroCopyStats) {
        self.sends += o.sends;
        self.completions += o.completions;
        self.copied += o.copied;
        self.max_outstanding = self.max_outstanding.max(o.max_outstanding);
        self.enobufs += o.enobufs;
        self.messages += o.messages;
        self.slot_waits += o.slot_waits;
        self.slot_hold.merge(&o.slot_hold);
    }

    /// Fraction of completions that were copies (None before any completion).
    pub fn copied_fraction(&self) -> Option<f64> {
        (self.completions > 0).then(|| self.copied as f64 / self.completions as f64)
    }

    /// Messages per zero-copy send call (None before any send).
    pub fn messages_per_send(&self) -> Option<f64> {
        (self.sends > 0).then(|| self.messages as f64 / self.sends as f64)
    }
}
