//! A2 on threads: `sendmsg()` over an iovec of stable buffers.

use super::strategy::BlockingSend;
use crate::error::Result;
use crate::sock::{self, advance_iovecs, sendmsg_once};
use crate::wire::message::{fill_payload, put_header, HEADER_LEN};
use std::os::fd::RawFd;

/// A2: `sendmsg()` with an iovec [header, payload] over stable buffers; no assembly.
pub struct A2Sendmsg {
    header: [u8; HEADER_LEN],
    payload: Vec<u8>,
    verify: bool,
    /// Extra send flags (MSG_EOR while a sample is sent).
    flags: libc::c_int,
}

impl A2Sendmsg {
    /// Header and payload buffers for `msg_size`-byte messages.
    pub fn new(msg_size: usize, verify: bool) -> Self {
        A2Sendmsg {
            header: [0; HEADER_LEN],
            payload: vec![0xA5; msg_size - HEADER_LEN],
            verify,
            flags: 0,
        }
    }
}

impl BlockingSend for A2Sendmsg {
    #[inline]
    fn send(&mut self, fd: RawFd, seq: u64, ts: u64) -> Result<()> {
        put_header(&mut self.header, seq, ts);
        if self.verify {
            fill_payload(&mut self.payload, seq);
        }
        let mut iov = [
            libc::iovec {
                iov_base: self.header.as_mut_ptr() as *mut libc::c_void,
                iov_len: HEADER_LEN,
            },
            libc::iovec {
                iov_base: self.payload.as_mut_ptr() as *mut libc::c_void,
                iov_len: self.payload.len(),
            },
        ];
        // A zero-length payload iovec (16-byte messages) is skipped by advance_iovecs.
        let mut first = 0;
        while first < iov.len() {
            let n = sendmsg_once(fd, &mut iov[first..], self.flags)
                .map_err(|e| sock::classify(e, "sendmsg"))?;
            first = advance_iovecs(&mut iov, n, first);
        }
        Ok(())
    }

    fn set_eor(&mut self, eor: bool) {
        self.flags = if eor { libc::MSG_EOR } else { 0 };
    }
}
