//! A1 on threads: assemble, then `send()`.

use super::strategy::BlockingSend;
use crate::error::Result;
use crate::sock;
use crate::wire::message::{fill_payload, put_header, HEADER_LEN};
use std::os::fd::RawFd;

/// A1: header and payload assembled in a staging buffer (a user-space memcpy), then `send()`.
pub struct A1Copy {
    staging: Vec<u8>,
    payload: Vec<u8>,
    verify: bool,
    /// Extra send flags (MSG_EOR while a sample is sent).
    flags: libc::c_int,
}

impl A1Copy {
    /// Staging buffer and payload source for `msg_size`-byte messages.
    pub fn new(msg_size: usize, verify: bool) -> Self {
        A1Copy {
            staging: vec![0; msg_size],
            payload: vec![0xA5; msg_size - HEADER_LEN],
            verify,
            flags: 0,
        }
    }
}

impl BlockingSend for A1Copy {
    #[inline]
    fn send(&mut self, fd: RawFd, seq: u64, ts: u64) -> Result<()> {
        put_header(&mut self.staging, seq, ts);
        if self.verify {
            fill_payload(&mut self.staging[HEADER_LEN..], seq);
        } else {
            // The assembly copy that makes A1 a two-copy path.
            self.staging[HEADER_LEN..].copy_from_slice(&self.payload);
        }
        sock::send_all_flags(fd, &self.staging, self.flags)
    }

    fn set_eor(&mut self, eor: bool) {
        self.flags = if eor { libc::MSG_EOR } else { 0 };
    }
}
