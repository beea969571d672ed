//! A1 on io_uring: the two-copy baseline.

use crate::send::uring::strategy::{BundleSend, UringSend};
use crate::wire::message::{write_messages, Body, HEADER_LEN};
use io_uring::opcode;
use io_uring::squeue::Entry;
use io_uring::types::Fixed;

/// A1 on io_uring: header and payload assembled in a staging buffer (the memcpy that makes A1
/// a two-copy path), then `Send` of it. One staging buffer per chain position, holding one
/// message (linked chains, bundles) or a whole batch back to back (coalesced sends).
pub struct A1UringSend {
    staging: Vec<Box<[u8]>>,
    /// Bytes staged in each buffer by the last `prepare`.
    staged: Vec<usize>,
    payload: Vec<u8>,
    msg_size: usize,
    verify: bool,
}

impl A1UringSend {
    /// `positions` staging buffers of `per_position` messages of `msg_size` bytes.
    pub fn new(msg_size: usize, positions: usize, per_position: usize, verify: bool) -> Self {
        A1UringSend {
            staging: (0..positions)
                .map(|_| vec![0u8; msg_size * per_position.max(1)].into_boxed_slice())
                .collect(),
            staged: vec![0; positions],
            payload: vec![0xA5; msg_size - HEADER_LEN],
            msg_size,
            verify,
        }
    }
}

impl UringSend for A1UringSend {
    #[inline]
    fn prepare(&mut self, pos: usize, seq: u64, ts: u64, max: usize) -> Option<(u16, usize)> {
        let b = &mut self.staging[pos];
        let n = max.clamp(1, b.len() / self.msg_size);
        // The assembly copy that makes A1 a two-copy path.
        let body = Body::new(self.verify, Some(&self.payload));
        write_messages(&mut b[..n * self.msg_size], self.msg_size, seq, ts, body);
        self.staged[pos] = n * self.msg_size;
        Some((pos as u16, n))
    }

    #[inline]
    fn sqe(&mut self, fd: Fixed, buf: u16, done: u32, _now: u64, eor: bool) -> Entry {
        let b = &self.staging[buf as usize][..self.staged[buf as usize]];
        let rest = &b[done as usize..];
        opcode::Send::new(fd, rest.as_ptr(), rest.len() as u32)
            .flags(libc::MSG_WAITALL | if eor { libc::MSG_EOR } else { 0 })
            .build()
    }

    fn bundle(&self) -> Option<&dyn BundleSend> {
        Some(self)
    }
}

impl BundleSend for A1UringSend {
    fn segments(&self, buf: u16) -> [&[u8]; 2] {
        [&self.staging[buf as usize][..self.msg_size], &[]]
    }
}
