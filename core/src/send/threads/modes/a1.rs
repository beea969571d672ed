//! A1 on threads: assemble, then `send()`.

use crate::error::Result;
use crate::send::threads::strategy::{BlockingSend, Sent};
use crate::sock;
use crate::wire::message::{write_messages, Body, HEADER_LEN};
use std::os::fd::RawFd;

/// A1: header and payload assembled in a staging buffer (a user-space memcpy), then `send()`;
/// a batch of messages is assembled back to back and sent by one call.
pub struct A1Copy {
    staging: Vec<u8>,
    payload: Vec<u8>,
    msg_size: usize,
    verify: bool,
    /// Extra send flags (MSG_EOR while a sample is sent).
    flags: libc::c_int,
}

impl A1Copy {
    /// Staging for `batch` messages of `msg_size` bytes, and the payload source.
    pub fn new(msg_size: usize, batch: usize, verify: bool) -> Self {
        A1Copy {
            staging: vec![0; msg_size * batch.max(1)],
            payload: vec![0xA5; msg_size - HEADER_LEN],
            msg_size,
            verify,
            flags: 0,
        }
    }
}

impl BlockingSend for A1Copy {
    #[inline]
    fn send(&mut self, fd: RawFd, seq: u64, n: usize, ts: u64) -> Result<Sent> {
        let n = n.clamp(1, self.staging.len() / self.msg_size);
        let staged = &mut self.staging[..n * self.msg_size];
        // The assembly copy that makes A1 a two-copy path.
        let body = Body::new(self.verify, Some(&self.payload));
        write_messages(staged, self.msg_size, seq, ts, body);
        let calls = sock::send_all_flags(fd, staged, self.flags)?;
        Ok(Sent { messages: n, calls })
    }

    fn set_eor(&mut self, eor: bool) {
        self.flags = if eor { libc::MSG_EOR } else { 0 };
    }
}
