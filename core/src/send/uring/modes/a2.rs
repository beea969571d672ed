//! A2 on io_uring: `sendmsg` over an iovec of stable buffers.

use crate::send::uring::strategy::{BundleSend, UringSend};
use crate::sock::advance_iovecs;
use crate::wire::message::{fill_payload, put_header, HEADER_LEN};
use io_uring::opcode;
use io_uring::squeue::Entry;
use io_uring::types::Fixed;

/// One A2 send in flight: the headers of its messages, and the msghdr/iovecs the kernel reads
/// (header and payload per message).
struct A2Send {
    headers: Box<[[u8; HEADER_LEN]]>,
    /// Index of each message's payload buffer (0 unless verifying).
    payloads: Box<[usize]>,
    /// Messages prepared for this send.
    n: usize,
    /// Rebuilt for every SQE (a short send resumes from a byte inside it).
    iov: Box<[libc::iovec]>,
    msg: libc::msghdr,
}

/// A2 on io_uring: `SendMsg` with the iovec [header, payload] of each message over stable
/// buffers, no assembly: one message per SQE (linked chains, bundles) or a whole batch in
/// one iovec (coalesced sends). Headers (and, with verify, payloads) are per message in
/// flight; without verify every message shares one payload buffer, as on the threads engine.
pub struct A2UringSendMsg {
    /// Never resized: the kernel holds pointers into these while sends are in flight.
    sends: Box<[A2Send]>,
    payloads: Vec<Box<[u8]>>,
    verify: bool,
}

// SAFETY: the raw pointers in A2Send point into buffers this struct owns (boxed, never moved);
// the struct moves between threads as a whole.
unsafe impl Send for A2UringSendMsg {}

impl A2UringSendMsg {
    /// `positions` sends of up to `per_position` `msg_size`-byte messages.
    pub fn new(msg_size: usize, positions: usize, per_position: usize, verify: bool) -> Self {
        let per = per_position.max(1);
        let empty = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        A2UringSendMsg {
            sends: (0..positions)
                .map(|pos| A2Send {
                    headers: vec![[0; HEADER_LEN]; per].into_boxed_slice(),
                    payloads: (0..per)
                        .map(|k| if verify { pos * per + k } else { 0 })
                        .collect(),
                    n: 0,
                    iov: vec![empty; 2 * per].into_boxed_slice(),
                    // SAFETY: msghdr is plain data; zeroed is valid (no name, no control).
                    msg: unsafe { std::mem::zeroed() },
                })
                .collect(),
            payloads: (0..if verify { positions * per } else { 1 })
                .map(|_| vec![0xA5u8; msg_size - HEADER_LEN].into_boxed_slice())
                .collect(),
            verify,
        }
    }
}

impl UringSend for A2UringSendMsg {
    #[inline]
    fn prepare(&mut self, pos: usize, seq: u64, ts: u64, max: usize) -> Option<(u16, usize)> {
        let m = &mut self.sends[pos];
        let n = max.clamp(1, m.headers.len());
        for k in 0..n {
            put_header(&mut m.headers[k], seq + k as u64, ts);
            if self.verify {
                fill_payload(&mut self.payloads[m.payloads[k]], seq + k as u64);
            }
        }
        m.n = n;
        Some((pos as u16, n))
    }

    #[inline]
    fn sqe(&mut self, fd: Fixed, buf: u16, done: u32, _now: u64, eor: bool) -> Entry {
        let m = &mut self.sends[buf as usize];
        for k in 0..m.n {
            let p = &mut self.payloads[m.payloads[k]];
            m.iov[2 * k] = libc::iovec {
                iov_base: m.headers[k].as_mut_ptr() as *mut libc::c_void,
                iov_len: HEADER_LEN,
            };
            m.iov[2 * k + 1] = libc::iovec {
                iov_base: p.as_mut_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            };
        }
        let len = 2 * m.n;
        // A zero-length payload iovec (16-byte messages) is skipped by advance_iovecs.
        let first = advance_iovecs(&mut m.iov[..len], done as usize, 0).min(len - 1);
        m.msg.msg_iov = m.iov[first..].as_mut_ptr();
        m.msg.msg_iovlen = (len - first) as _;
        opcode::SendMsg::new(fd, &m.msg)
            .flags((libc::MSG_WAITALL | if eor { libc::MSG_EOR } else { 0 }) as u32)
            .build()
    }

    fn bundle(&self) -> Option<&dyn BundleSend> {
        Some(self)
    }
}

impl BundleSend for A2UringSendMsg {
    fn segments(&self, buf: u16) -> [&[u8]; 2] {
        let m = &self.sends[buf as usize];
        [&m.headers[0], &self.payloads[m.payloads[0]]]
    }
}
