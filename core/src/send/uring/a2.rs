//! A2 on io_uring: `sendmsg` over an iovec of stable buffers.

use super::strategy::{BundleSend, UringSend};
use crate::sock::advance_iovecs;
use crate::wire::message::{fill_payload, put_header, HEADER_LEN};
use io_uring::{opcode, squeue, types};

/// One A2 message in flight: its header, and the msghdr/iovecs the kernel reads.
struct A2Msg {
    header: [u8; HEADER_LEN],
    /// Index into the payload buffers (0 unless verifying: then one per position).
    payload: usize,
    iov: [libc::iovec; 2],
    msg: libc::msghdr,
}

/// A2 on io_uring: `SendMsg` with the iovec [header, payload] over stable buffers, no assembly.
/// Headers (and, with verify, payloads) are per chain position; without verify every position
/// shares one payload buffer, as the threads engine does.
pub struct A2UringSendMsg {
    /// Never resized: the kernel holds pointers into these while sends are in flight.
    msgs: Box<[A2Msg]>,
    payloads: Vec<Box<[u8]>>,
    verify: bool,
}

// SAFETY: the raw pointers in A2Msg point into buffers this struct owns (boxed, never moved);
// the struct moves between threads as a whole.
unsafe impl Send for A2UringSendMsg {}

impl A2UringSendMsg {
    /// Headers and payload buffers for `depth` positions of `msg_size`-byte messages.
    pub fn new(msg_size: usize, depth: usize, verify: bool) -> Self {
        let n_payloads = if verify { depth } else { 1 };
        A2UringSendMsg {
            msgs: (0..depth)
                .map(|i| A2Msg {
                    header: [0; HEADER_LEN],
                    payload: if verify { i } else { 0 },
                    iov: [libc::iovec {
                        iov_base: std::ptr::null_mut(),
                        iov_len: 0,
                    }; 2],
                    // SAFETY: msghdr is plain data; zeroed is valid (no name, no control).
                    msg: unsafe { std::mem::zeroed() },
                })
                .collect(),
            payloads: (0..n_payloads)
                .map(|_| vec![0xA5u8; msg_size - HEADER_LEN].into_boxed_slice())
                .collect(),
            verify,
        }
    }
}

impl UringSend for A2UringSendMsg {
    #[inline]
    fn prepare(&mut self, pos: usize, seq: u64, ts: u64, _max: usize) -> Option<(u16, usize)> {
        let m = &mut self.msgs[pos];
        put_header(&mut m.header, seq, ts);
        if self.verify {
            fill_payload(&mut self.payloads[m.payload], seq);
        }
        Some((pos as u16, 1))
    }

    #[inline]
    fn sqe(
        &mut self,
        fd: types::Fixed,
        buf: u16,
        done: u32,
        _now: u64,
        eor: bool,
    ) -> squeue::Entry {
        let m = &mut self.msgs[buf as usize];
        let p = &mut self.payloads[m.payload];
        m.iov = [
            libc::iovec {
                iov_base: m.header.as_mut_ptr() as *mut libc::c_void,
                iov_len: HEADER_LEN,
            },
            libc::iovec {
                iov_base: p.as_mut_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            },
        ];
        // A zero-length payload iovec (16-byte messages) is skipped by advance_iovecs.
        let first = advance_iovecs(&mut m.iov, done as usize, 0).min(1);
        m.msg.msg_iov = m.iov[first..].as_mut_ptr();
        m.msg.msg_iovlen = (2 - first) as _;
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
        let m = &self.msgs[buf as usize];
        [&m.header, &self.payloads[m.payload]]
    }
}
