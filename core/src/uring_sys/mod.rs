//! io_uring plumbing shared by the io_uring sender and receiver: rings and how they are made
//! and entered ([`ring`]), what the kernel supports ([`probe`]), provided-buffer rings
//! ([`bufring`]). Nothing here knows about send paths.

pub mod bufring;
pub mod probe;
pub mod ring;
