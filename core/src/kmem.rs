//! Memory the kernel may use after the call that named it has returned: zero-copy slots
//! (`MSG_ZEROCOPY` pages, io_uring registered buffers), provided-buffer rings and the buffers
//! they name, the iovecs and headers of sends in flight. The soundness argument lives here,
//! once:
//!
//! 1. Such memory is allocated by [`KernelMem`] (zeroed, page aligned, never moved or resized)
//!    or lives in a box whose address never changes while it is lent.
//! 2. Whatever owns it is kept in a [`Lent`] until the kernel is known to be done with it:
//!    every send completed and, for zero-copy, every notification arrived; every request that
//!    may write it ended (or was cancelled and its last completion seen).
//! 3. If that cannot be known (a bounded drain or cancellation timed out, a run failed with
//!    requests in flight), the owner says so with [`Lent::hold`] and its `Drop` leaks the
//!    memory instead of freeing it under the kernel. A leak is bounded by one run's buffers
//!    and only happens on failure.

use std::alloc::{alloc_zeroed, dealloc, handle_alloc_error, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// Page size the allocations are aligned to.
pub const PAGE: usize = 4096;

/// A zeroed, page-aligned allocation of a fixed size that never moves.
pub struct KernelMem {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: plain memory with one owner; it moves between threads with that owner.
unsafe impl Send for KernelMem {}

impl KernelMem {
    /// `bytes` zeroed bytes (at least 1), aligned to [`PAGE`].
    pub fn zeroed(bytes: usize) -> KernelMem {
        let layout = Layout::from_size_align(bytes.max(1), PAGE).expect("kernel memory layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) })
            .unwrap_or_else(|| handle_alloc_error(layout));
        KernelMem { ptr, layout }
    }

    /// The first byte.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Bytes allocated.
    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// Never true: at least one byte is allocated.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl Drop for KernelMem {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout. The rule above (a `Lent` owner that
        // leaks when the kernel may still use it) keeps this from running too early.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// An owner of memory lent to the kernel. It derefs to the value; dropping it drops the value
/// unless [`hold`](Lent::hold) said the kernel may still use it, in which case it is leaked.
pub struct Lent<T> {
    value: std::mem::ManuallyDrop<T>,
    held: bool,
}

impl<T> Lent<T> {
    /// `value`, which the kernel is not using yet.
    pub fn new(value: T) -> Self {
        Lent {
            value: std::mem::ManuallyDrop::new(value),
            held: false,
        }
    }

    /// Records whether the kernel may still use the memory: if so when dropped, it leaks.
    pub fn hold(&mut self, kernel_may_use_it: bool) {
        self.held = kernel_may_use_it;
    }

    /// Whether dropping it now would leak it.
    pub fn is_held(&self) -> bool {
        self.held
    }
}

impl<T> Deref for Lent<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Lent<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T> Drop for Lent<T> {
    fn drop(&mut self) {
        if !self.held {
            // SAFETY: dropped once, here; the value is not used afterwards.
            unsafe { std::mem::ManuallyDrop::drop(&mut self.value) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn a_held_value_is_leaked_and_a_free_one_dropped() {
        let witness = Rc::new(());
        let free = Lent::new(witness.clone());
        drop(free);
        assert_eq!(Rc::strong_count(&witness), 1, "dropped");
        let mut held = Lent::new(witness.clone());
        held.hold(true);
        assert!(held.is_held());
        drop(held);
        assert_eq!(Rc::strong_count(&witness), 2, "leaked, never freed");
        let mem = KernelMem::zeroed(10_000);
        assert_eq!(mem.as_ptr() as usize % PAGE, 0);
        assert!(mem.len() >= 10_000);
        // SAFETY: within the allocation.
        assert_eq!(unsafe { *mem.as_ptr().add(9_999) }, 0, "zeroed");
    }
}
