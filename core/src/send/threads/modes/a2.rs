//! A2 on threads: `sendmsg()` over an iovec of stable buffers.

use crate::error::Result;
use crate::send::threads::strategy::{BlockingSend, Sent};
use crate::sock;
use crate::wire::message::{fill_payload, put_header, HEADER_LEN};
use std::os::fd::RawFd;

/// A2: `sendmsg()` with an iovec [header, payload] per message over stable buffers; no
/// assembly. A batch gathers its messages' headers and payloads in one iovec (two entries a
/// message: see [`crate::spec::SENDMSG_MAX_IOVECS`]).
pub struct A2Sendmsg {
    headers: Vec<[u8; HEADER_LEN]>,
    /// One payload, or with --verify one per message of the batch.
    payloads: Vec<Vec<u8>>,
    iov: Vec<libc::iovec>,
    verify: bool,
    /// Extra send flags (MSG_EOR while a sample is sent).
    flags: libc::c_int,
}

// SAFETY: the iovecs only ever point into this struct's own buffers, rebuilt before each call.
unsafe impl Send for A2Sendmsg {}

impl A2Sendmsg {
    /// Headers and payload buffers for batches of up to `batch` `msg_size`-byte messages.
    pub fn new(msg_size: usize, batch: usize, verify: bool) -> Self {
        let batch = batch.max(1);
        A2Sendmsg {
            headers: vec![[0; HEADER_LEN]; batch],
            payloads: (0..if verify { batch } else { 1 })
                .map(|_| vec![0xA5; msg_size - HEADER_LEN])
                .collect(),
            iov: Vec::with_capacity(2 * batch),
            verify,
            flags: 0,
        }
    }
}

impl BlockingSend for A2Sendmsg {
    #[inline]
    fn send(&mut self, fd: RawFd, seq: u64, n: usize, ts: u64) -> Result<Sent> {
        let n = n.clamp(1, self.headers.len());
        self.iov.clear();
        for k in 0..n {
            let s = seq + k as u64;
            put_header(&mut self.headers[k], s, ts);
            let p = if self.verify {
                fill_payload(&mut self.payloads[k], s);
                &mut self.payloads[k]
            } else {
                &mut self.payloads[0]
            };
            self.iov.push(libc::iovec {
                iov_base: self.headers[k].as_mut_ptr() as *mut libc::c_void,
                iov_len: HEADER_LEN,
            });
            // A zero-length payload iovec (16-byte messages) is skipped by advance_iovecs.
            self.iov.push(libc::iovec {
                iov_base: p.as_mut_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            });
        }
        let calls = sock::sendmsg_all(fd, &mut self.iov, self.flags, "sendmsg")?;
        Ok(Sent { messages: n, calls })
    }

    fn set_eor(&mut self, eor: bool) {
        self.flags = if eor { libc::MSG_EOR } else { 0 };
    }
}
