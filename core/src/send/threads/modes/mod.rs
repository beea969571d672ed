//! The blocking strategy of each mode: the one place a new send path is added on this engine
//! (with its row in the mode table).

pub mod a1;
pub mod a2;
pub mod a3;

use crate::error::Result;
use crate::send::threads::strategy::BlockingSend;
use crate::spec::{Mode, RunSpec};
use a1::A1Copy;
use a2::A2Sendmsg;
use a3::A3ZeroCopy;
use std::os::fd::RawFd;

/// Builds the blocking strategy for `spec.mode` on socket `fd`, for calls of up to the cell's
/// batch ([`RunSpec::batch_plan`]).
pub fn for_mode(spec: &RunSpec, fd: RawFd) -> Result<Box<dyn BlockingSend>> {
    let batch = spec.batch_plan().messages;
    Ok(match spec.mode {
        Mode::A1 => Box::new(A1Copy::new(spec.msg_size, batch, spec.verify)),
        Mode::A2 => Box::new(A2Sendmsg::new(spec.msg_size, batch, spec.verify)),
        Mode::A3 => Box::new(A3ZeroCopy::new(
            fd,
            spec.msg_size,
            spec.zc_slots,
            batch,
            spec.verify,
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn every_mode_has_a_blocking_strategy() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        for m in Mode::ALL {
            let spec = RunSpec {
                mode: *m,
                ..RunSpec::default()
            };
            assert!(for_mode(&spec, c.as_raw_fd()).is_ok(), "{m}");
        }
    }
}
