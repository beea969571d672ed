//! A1 on io_uring: the two-copy baseline.

use super::strategy::{BundleSend, UringSend};
use crate::wire::message::{fill_payload, put_header, HEADER_LEN};
use io_uring::{opcode, squeue, types};

/// A1 on io_uring: header and payload assembled in a staging buffer (the memcpy that makes A1
/// a two-copy path), then `Send` of it. One staging buffer per chain position.
pub struct A1UringSend {
    staging: Vec<Box<[u8]>>,
    payload: Vec<u8>,
    verify: bool,
}

impl A1UringSend {
    /// `depth` staging buffers for `msg_size`-byte messages.
    pub fn new(msg_size: usize, depth: usize, verify: bool) -> Self {
        A1UringSend {
            staging: (0..depth)
                .map(|_| vec![0u8; msg_size].into_boxed_slice())
                .collect(),
            payload: vec![0xA5; msg_size - HEADER_LEN],
            verify,
        }
    }
}

impl UringSend for A1UringSend {
    #[inline]
    fn prepare(&mut self, pos: usize, seq: u64, ts: u64, _max: usize) -> Option<(u16, usize)> {
        let b = &mut self.staging[pos];
        put_header(b, seq, ts);
        if self.verify {
            fill_payload(&mut b[HEADER_LEN..], seq);
        } else {
            b[HEADER_LEN..].copy_from_slice(&self.payload);
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
        let b = &self.staging[buf as usize];
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
        [&self.staging[buf as usize], &[]]
    }
}
