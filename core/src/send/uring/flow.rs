//! A flow on a ring: its state (`state.rs`) and the carrier of its io_uring ordering
//! (`carrier.rs`: a linked chain, a coalesced send, or a send bundle), chosen once by
//! `Flow::new`.

use super::bundled::Bundled;
use super::carrier::Carrier;
use super::chain::Chain;
use super::state::FlowState;
use super::strategy::UringSend;
use crate::error::{Error, Result};
use crate::spec::{RunSpec, UringOrdering};

/// A flow on a ring.
pub(super) struct Flow {
    /// What it is and has done.
    pub(super) state: FlowState,
    /// How its sends reach the ring.
    pub(super) carrier: Box<dyn Carrier>,
}

impl Flow {
    /// Flow `flow` with `strategy`, carried by `spec`'s ordering, nothing in flight yet; an
    /// error if the ordering asks for bundles of a strategy without a bundle form.
    pub(super) fn new(flow: u32, strategy: Box<dyn UringSend>, spec: &RunSpec) -> Result<Flow> {
        let carrier: Box<dyn Carrier> = match spec.uring.ordering {
            UringOrdering::Bundle if strategy.bundle().is_none() => {
                return Err(Error::InvalidSpec(
                    "this mode has no send-bundle form: use --uring-ordering link".into(),
                ))
            }
            UringOrdering::Bundle => Box::new(Bundled::new(spec.uring.depth)),
            UringOrdering::Link | UringOrdering::Coalesce => {
                let (links, per_link) = spec.uring.chain_shape();
                Box::new(Chain::new(links, per_link, spec.msg_size as u32))
            }
        };
        Ok(Flow {
            state: FlowState::new(flow, strategy),
            carrier,
        })
    }

    /// Nothing in flight on the ring (zero-copy notifications aside).
    pub(super) fn idle(&self) -> bool {
        self.carrier.pending() == 0
    }

    /// Done: nothing in flight or left to send, stopped, and every notification in.
    pub(super) fn finished(&self) -> bool {
        self.idle() && self.carrier.drained() && self.state.stopped && self.state.owed() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_of_a_strategy_without_a_bundle_form_are_refused() {
        let zc = crate::send::uring::modes::a3::A3UringSendZc::new(64, 4, false, false);
        let spec = RunSpec {
            uring: crate::spec::UringOpts {
                ordering: UringOrdering::Bundle,
                depth: 4,
                ..Default::default()
            },
            ..RunSpec::default()
        };
        let e = Flow::new(0, Box::new(zc), &spec).err().unwrap();
        assert!(e.to_string().contains("no send-bundle form"), "{e}");
    }
}
