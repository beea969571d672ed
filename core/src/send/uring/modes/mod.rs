//! The io_uring strategy of each mode, and the opcode it needs: the one place a new send path
//! is added on this engine (with its row in the mode table).

pub mod a1;
pub mod a2;
pub mod a3;

use crate::send::uring::strategy::UringSend;
use crate::spec::{Mode, RunSpec, UringOrdering};
use crate::uring_sys::probe::{known_ops, probe_ops};
use a1::A1UringSend;
use a2::A2UringSendMsg;
use a3::A3UringSendZc;
use io_uring::opcode;

/// Builds the io_uring strategy for `spec.mode`: buffers for the sends one flow has in
/// flight (a chain's `depth` one-message SQEs, or one send of the batch), or the slot pool for
/// A3.
pub fn for_mode(spec: &RunSpec) -> Box<dyn UringSend> {
    let (positions, per_position) = spec.uring.chain_shape();
    match spec.mode {
        Mode::A1 => Box::new(A1UringSend::new(
            spec.msg_size,
            positions,
            per_position,
            spec.verify,
        )),
        Mode::A2 => Box::new(A2UringSendMsg::new(
            spec.msg_size,
            positions,
            per_position,
            spec.verify,
        )),
        Mode::A3 => Box::new(A3UringSendZc::new(
            spec.msg_size,
            spec.zc_slots,
            spec.verify,
            spec.uring.ordering == UringOrdering::Coalesce,
        )),
    }
}

/// The opcode a mode submits on this engine, with its name.
pub fn op_for(mode: Mode) -> (&'static str, u8) {
    match mode {
        Mode::A1 => ("send", opcode::Send::CODE),
        Mode::A2 => ("sendmsg", opcode::SendMsg::CODE),
        Mode::A3 => ("send_zc", opcode::SendZc::CODE),
    }
}

/// Why `mode` cannot run on the io_uring engine here, or None if it can (for tests that skip).
pub fn missing_for(mode: Mode) -> Option<String> {
    match probe_ops() {
        Err(e) => Some(e),
        Ok(ops) => lacks_op(mode, |code| {
            known_ops()
                .iter()
                .any(|(n, c)| *c == code && ops.iter().any(|o| o == n))
        }),
    }
}

/// The error for `mode` on a kernel whose io_uring supports the opcodes `supported` says
/// yes to, or None if it has the one the mode needs.
pub(crate) fn lacks_op(mode: Mode, supported: impl Fn(u8) -> bool) -> Option<String> {
    let (name, code) = op_for(mode);
    (!supported(code)).then(|| {
        format!(
            "this kernel's io_uring lacks the {name} opcode that {mode} needs{}",
            if mode.facts().zero_copy {
                " (SEND_ZC: Linux >= 6.0); A3 never falls back to a copying send"
            } else {
                ""
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_without_send_zc_is_named_in_the_error() {
        let no_zc = |c: u8| c != opcode::SendZc::CODE;
        let e = lacks_op(Mode::A3, no_zc).expect("A3 needs SEND_ZC");
        assert!(
            e.contains("send_zc") && e.contains("never falls back"),
            "{e}"
        );
        assert_eq!(lacks_op(Mode::A1, no_zc), None);
        assert!(lacks_op(Mode::A2, |_| false).unwrap().contains("sendmsg"));
    }

    #[test]
    fn every_mode_has_a_strategy_with_the_forms_the_table_says() {
        for m in Mode::ALL {
            for &ordering in m.facts().orderings {
                let spec = RunSpec {
                    mode: *m,
                    uring: crate::spec::UringOpts {
                        depth: 4,
                        batch: 4,
                        ordering,
                    },
                    ..RunSpec::default()
                };
                let mut s = for_mode(&spec);
                assert_eq!(
                    s.bundle().is_some(),
                    m.facts().bundle_form,
                    "{m} {ordering}"
                );
                assert_eq!(
                    s.zero_copy().is_some(),
                    m.facts().zero_copy,
                    "{m} {ordering}"
                );
                assert!(s.prepare(0, 0, 0, 4).is_some(), "{m} {ordering}");
            }
            assert!(!op_for(*m).0.is_empty());
        }
    }
}
