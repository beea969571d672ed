//! The wire format: hello frame, fixed-size messages, end frame.
//!
//! ```text
//! hello   96 B: magic "SENDPATH", version u16, mode u8, engine u8, pattern u8, flags u8,
//!               reserved u16, msg_size u32, flow u32, flows u32, zc_slots u32,
//!               warmup_ns u64, duration_ns u64, resp_size u32, reserved u32,
//!               rate_milli u64 (messages per 1000 s), sched0_ns u64 (the sender's schedule
//!               origin on CLOCK_MONOTONIC), stamp_every u32, profile_hz u32, batch_bytes u64
//!               (--batch: 0 for one message per send), reserved [u8; 8]   (all little endian)
//! message msg_size B: seq u64, send_ts_ns u64 (CLOCK_MONOTONIC just before the send call),
//!               payload (msg_size - 16 B)
//! end     16 B header with seq = END_SEQ and send_ts_ns = n, then n bytes of JSON: the
//!               sender's side of the record ([`SenderReport`])
//! ```
//! Ending a stream or rate flow: when its window ends the receiver sends one byte,
//! [`END_REQUEST`], back over the data connection; the sender keeps sending messages until it
//! reads that byte (so the receiver's reads never starve before its window ends), then sends
//! the end frame. The end frame therefore never arrives before the receiver asked for it, so a
//! receiver that discards bytes unread (`recv(MSG_TRUNC)`) cannot discard it: it stops
//! discarding before asking. (rr ends with its own exchange; see `rr`.)
//! Sequence numbers start at 0 and increase by one per message of a flow. With `verify`, the
//! payload of message `seq` is [`fill_payload`]'s function of (seq, offset), so a zero-copy
//! buffer rewritten before its completion shows up as a payload mismatch at the receiver.

pub mod end;
pub mod hello;
pub mod message;
pub mod parse;

pub use end::{encode_end, SenderReport, UringSetup, END_REQUEST, MAX_END_LEN};
pub use hello::{Hello, HELLO_LEN, MAGIC, VERSION};
pub use message::{
    check_payload, fill_payload, get_header, payload_matches_at, put_header, END_SEQ, HEADER_LEN,
    MAX_MSG_SIZE,
};
pub use parse::{Parsed, Parser};
