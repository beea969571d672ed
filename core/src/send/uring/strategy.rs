//! What a send path is on io_uring: one type per mode implementing [`UringSend`], which owns
//! the flow's message buffers and builds its SQEs. A mode that can send its messages as
//! entries of a send bundle also implements [`BundleSend`]; a zero-copy mode also
//! implements [`ZeroCopyUring`], which owns the notification side.

use crate::error::Result;
use io_uring::squeue::Entry;
use io_uring::types::Fixed;
use sendpath_record::end_v1::ZeroCopyStats;

/// One send strategy of the io_uring engine. Buffers are named by a `u16` buffer id that
/// travels in the SQE's user_data; a buffer holds one message, or (A3 coalescing) several back
/// to back. A buffer is rewritten only when [`prepare`](UringSend::prepare) hands it out
/// again, which the loop does only after every send over it completed (and, for zero-copy,
/// was notified).
pub trait UringSend: Send {
    /// Writes messages `seq..` stamped `ts` for chain position `pos` (0-based; the loop never
    /// has more than `depth` positions in flight), at most `max` of them, and returns the id of
    /// the buffer holding them and how many it holds (at least 1), or None if no buffer is
    /// free (A3: every slot still owed a notification). Only A3 puts more than one message in
    /// a buffer.
    fn prepare(&mut self, pos: usize, seq: u64, ts: u64, max: usize) -> Option<(u16, usize)>;

    /// The SQE that sends the bytes of buffer `buf` from `done` on, on registered file `fd`,
    /// with `MSG_WAITALL`, and `MSG_EOR` if `eor` (a sampled message's call, see stamp.rs; the
    /// loop adds the link flag and user_data); `now` is the clock.
    fn sqe(&mut self, fd: Fixed, buf: u16, done: u32, now: u64, eor: bool) -> Entry;

    /// The strategy's send-bundle form, if the mode has one.
    fn bundle(&self) -> Option<&dyn BundleSend> {
        None
    }

    /// The strategy's zero-copy side, if the mode sends zero-copy.
    fn zero_copy(&mut self) -> Option<&mut dyn ZeroCopyUring> {
        None
    }

    /// The same, read only.
    fn zero_copy_ref(&self) -> Option<&dyn ZeroCopyUring> {
        None
    }
}

/// A strategy whose messages go out as entries of a provided-buffer ring (send bundles).
pub trait BundleSend {
    /// Buffer `buf`'s message as the byte ranges the ring gets, in order (the second may be
    /// empty).
    fn segments(&self, buf: u16) -> [&[u8]; 2];
}

/// The notification side of a zero-copy strategy: its registered memory, and the result and
/// notification CQEs that say when a buffer may be written again.
pub trait ZeroCopyUring {
    /// The memory to register with the ring as one fixed buffer.
    fn fixed_buffer(&self) -> libc::iovec;

    /// The index, in the ring's registered buffer table, of that buffer.
    fn set_fixed_index(&mut self, index: u16);

    /// A result CQE for `buf` arrived at `now`: a notification follows (the CQE had
    /// `F_MORE`), or the buffer is released now (the send failed before the kernel took it).
    fn on_result(&mut self, buf: u16, notif_follows: bool, now: u64);

    /// A notification CQE for `buf` arrived at `now` with `res`; the buffer may be reused if
    /// no other send over it is owed one.
    fn on_notif(&mut self, buf: u16, res: i32, now: u64) -> Result<()>;

    /// Notifications still owed by the kernel.
    fn owed(&self) -> u64;

    /// Zero-copy accounting.
    fn stats(&self) -> ZeroCopyStats;
}
