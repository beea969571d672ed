//! The ranges every option is checked against (each load loop and buffer is bounded).

pub use crate::wire::message::MAX_MSG_SIZE;
/// Most flows one run may have (each flow is a connection, and on the threads engine a thread
/// per side).
pub const MAX_FLOWS: usize = 1024;
/// Longest measured window, in seconds (every load loop is bounded).
pub const MAX_DURATION_S: f64 = 3600.0;
/// Most zero-copy buffer slots per flow.
pub const MAX_ZC_SLOTS: usize = 65536;
/// Zero-copy slots per flow unless asked otherwise (coalesced io_uring sends get more: see
/// [`super::RunSpec::resolve_batch`]).
pub const DEFAULT_ZC_SLOTS: usize = 64;
/// Most bytes of zero-copy slots per flow: the slots are one contiguous allocation, which io_uring
/// registers as one fixed buffer (the kernel's limit for one is 1 GiB).
pub const MAX_ZC_POOL_BYTES: usize = 1 << 30;
/// Most io_uring sends in flight per flow (one linked chain; the ring must hold a whole chain).
pub const MAX_URING_DEPTH: usize = 1024;
/// Most messages one coalesced zero-copy send carries (it cannot carry more than the flow's
/// slots either).
pub const MAX_COALESCE_DEPTH: usize = 16384;
/// Most completions one `io_uring_enter` may wait for.
pub const MAX_URING_BATCH: usize = 65536;
/// Most bytes of send buffers one io_uring flow may keep in flight (A1 stages each message).
pub const MAX_URING_FLOW_BUFFERS: usize = 1 << 30;
/// Most memory one run may make this host hold with both sides in one process (the
/// formula is [`super::memory`]; `sendpath serve` bounds its own side with `--max-buffer-mib`).
pub const MAX_RUN_MEMORY_BYTES: usize = 16 << 30;
