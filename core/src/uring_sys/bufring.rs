//! Provided-buffer rings: entries the kernel takes buffers from (bundles to send, multishot
//! receives to fill).

use crate::kmem::KernelMem;
use io_uring::{types, IoUring};
use std::io;
use std::os::fd::RawFd;

/// A provided-buffer ring (`IORING_REGISTER_PBUF_RING`): the entries live in our
/// [`KernelMem`]; the kernel takes the entries between its head and the tail we publish, in
/// ring order, until the ring it is registered with is gone. Whoever owns a `BufRing` keeps
/// it (and the buffers its entries name) in a [`crate::kmem::Lent`] until then.
pub struct BufRing {
    mem: KernelMem,
    /// Entries (a power of two, at most 32768).
    entries: u16,
    /// Our tail: entries pushed, published to the kernel by [`BufRing::publish`].
    tail: u16,
}

impl BufRing {
    /// A ring of at least `min_entries` entries.
    pub fn new(min_entries: usize) -> BufRing {
        let entries = min_entries.clamp(1, 1 << 15).next_power_of_two() as u16;
        BufRing {
            mem: KernelMem::zeroed(entries as usize * std::mem::size_of::<types::BufRingEntry>()),
            entries,
            tail: 0,
        }
    }

    fn base(&self) -> *mut types::BufRingEntry {
        self.mem.as_ptr().cast()
    }

    /// Entries in the ring.
    pub fn entries(&self) -> u16 {
        self.entries
    }

    /// Our tail (entries pushed so far, mod 2^16).
    pub fn tail(&self) -> u16 {
        self.tail
    }

    /// Entry `i` (mod the ring size). Only while the kernel is not selecting entries (no
    /// request that takes from this ring is in flight) may it be rewritten.
    pub fn entry_mut(&mut self, i: u16) -> &mut types::BufRingEntry {
        let i = (i & (self.entries - 1)) as usize;
        // SAFETY: i < entries, inside our allocation; `&mut self` keeps this side exclusive,
        // and the caller's contract keeps the kernel from reading it meanwhile.
        unsafe { &mut *self.base().add(i) }
    }

    /// Appends `seg` with buffer id `bid` (the caller keeps it alive and unchanged until a
    /// request consumed it, and never has more than `entries` unconsumed).
    pub fn push(&mut self, seg: &[u8], bid: u16) {
        let tail = self.tail;
        let e = self.entry_mut(tail);
        e.set_addr(seg.as_ptr() as u64);
        e.set_len(seg.len() as u32);
        e.set_bid(bid);
        self.tail = tail.wrapping_add(1);
    }

    /// Registers this ring as buffer group `bgid` of `ring`. The caller drops `ring` (or
    /// leaks this) before this ring: the kernel reads its entries until then.
    pub fn register(&self, ring: &IoUring, bgid: u16) -> io::Result<()> {
        // SAFETY: the memory is ours and stays allocated until after the ring (see above).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(self.base() as u64, self.entries, bgid, 0)
        }
    }

    /// Makes the pushed entries visible to the kernel.
    pub fn publish(&self) {
        // SAFETY: the tail field lives in entry 0 of our allocation, is 2-byte aligned, and the
        // kernel only reads it: an atomic release store orders the entries before it.
        unsafe {
            let tail =
                types::BufRingEntry::tail(self.base()) as *const std::sync::atomic::AtomicU16;
            (*tail).store(self.tail, std::sync::atomic::Ordering::Release);
        }
    }
}

/// `IORING_REGISTER_PBUF_STATUS` (Linux 6.8; not wrapped by the io-uring crate): reads the
/// kernel's head of a provided-buffer ring.
const IORING_REGISTER_PBUF_STATUS: libc::c_long = 26;

/// `struct io_uring_buf_status`.
#[repr(C)]
struct BufStatus {
    buf_group: u32,
    head: u32,
    resv: [u32; 8],
}

/// The kernel's head of buffer ring `bgid`: how many entries bundles consumed (mod 2^16).
pub fn buf_ring_head(ring_fd: RawFd, bgid: u16) -> io::Result<u16> {
    let mut st = BufStatus {
        buf_group: bgid as u32,
        head: 0,
        resv: [0; 8],
    };
    // SAFETY: io_uring_register with a live ring fd and one properly sized, writable argument.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring_fd as libc::c_long,
            IORING_REGISTER_PBUF_STATUS,
            &mut st as *mut BufStatus,
            1 as libc::c_long,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(st.head as u16)
    }
}
