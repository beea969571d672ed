//! The wire format: hello frame, fixed-size messages, end frame.
//!
//! ```text
//! hello   96 B: magic "SENDPATH", version u16, mode u8, engine u8, pattern u8, flags u8,
//!               reserved u16, msg_size u32, flow u32, flows u32, zc_slots u32,
//!               warmup_ns u64, duration_ns u64, resp_size u32, reserved u32,
//!               rate_milli u64 (messages per 1000 s), sched0_ns u64 (the sender's schedule
//!               origin on CLOCK_MONOTONIC), reserved [u8; 24]      (all little endian)
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

use crate::cpu::SideCounters;
use crate::error::{Error, Result};
use crate::spec::{Engine, Mode, Pattern};
use crate::zerocopy::ZeroCopyStats;
use serde::{Deserialize, Serialize};

/// Magic at the start of every connection.
pub const MAGIC: [u8; 8] = *b"SENDPATH";
/// Wire format version; a receiver rejects any other.
pub const VERSION: u16 = 3;
/// Length of the hello frame.
pub const HELLO_LEN: usize = 96;
/// Length of the per-message header (seq + send timestamp); the smallest message.
pub const HEADER_LEN: usize = 16;
/// The `seq` value that marks the end frame.
pub const END_SEQ: u64 = u64::MAX;
/// Largest end-frame JSON accepted.
pub const MAX_END_LEN: usize = 64 << 10;
/// The byte a stream or rate receiver sends when its window has ended: "send your end frame".
pub const END_REQUEST: u8 = b'E';

const FLAG_VERIFY: u8 = 1;
const FLAG_LATENCY: u8 = 2;
const FLAG_BUSY_POLL: u8 = 4;

/// The first frame of every data connection: everything the receiver needs to know.
#[derive(Clone, Debug, PartialEq)]
pub struct Hello {
    /// Sender's copy discipline.
    pub mode: Mode,
    /// Sender's engine.
    pub engine: Engine,
    /// Traffic pattern.
    pub pattern: Pattern,
    /// Bytes per message, header included.
    pub msg_size: u32,
    /// Index of this flow (0-based).
    pub flow: u32,
    /// Flows in the run.
    pub flows: u32,
    /// Zero-copy slots per flow (informational for the receiver's record).
    pub zc_slots: u32,
    /// Warm-up before the measured window, from the hello.
    pub warmup_ns: u64,
    /// Length of the measured window.
    pub duration_ns: u64,
    /// Payloads are a function of (seq, offset) and should be checked.
    pub verify: bool,
    /// Messages carry real send timestamps (latency recorded).
    pub latency: bool,
    /// `rr`: bytes of each response.
    pub resp_size: u32,
    /// `rate`: messages per second per flow (0 otherwise).
    pub rate: f64,
    /// `rate`: the sender's schedule origin; message `seq` is intended at
    /// `sched0_ns + seq * 1e9 / rate` on CLOCK_MONOTONIC.
    pub sched0_ns: u64,
    /// The receiving side should busy-poll too (in-process runs and rr).
    pub busy_poll: bool,
}

impl Hello {
    /// Encodes to the 64-byte frame.
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut b = [0u8; HELLO_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&VERSION.to_le_bytes());
        b[10] = self.mode.facts().wire_code;
        b[11] = match self.engine {
            Engine::Threads => 0,
            Engine::Uring => 1,
        };
        b[12] = match self.pattern {
            Pattern::Stream => 0,
            Pattern::Rr => 1,
            Pattern::Rate => 2,
        };
        b[13] = (if self.verify { FLAG_VERIFY } else { 0 })
            | (if self.latency { FLAG_LATENCY } else { 0 })
            | (if self.busy_poll { FLAG_BUSY_POLL } else { 0 });
        b[16..20].copy_from_slice(&self.msg_size.to_le_bytes());
        b[20..24].copy_from_slice(&self.flow.to_le_bytes());
        b[24..28].copy_from_slice(&self.flows.to_le_bytes());
        b[28..32].copy_from_slice(&self.zc_slots.to_le_bytes());
        b[32..40].copy_from_slice(&self.warmup_ns.to_le_bytes());
        b[40..48].copy_from_slice(&self.duration_ns.to_le_bytes());
        b[48..52].copy_from_slice(&self.resp_size.to_le_bytes());
        b[56..64].copy_from_slice(&((self.rate * 1000.0).round() as u64).to_le_bytes());
        b[64..72].copy_from_slice(&self.sched0_ns.to_le_bytes());
        b
    }

    /// Decodes and checks a 64-byte frame; a wrong peer gets a clear error.
    pub fn decode(b: &[u8; HELLO_LEN]) -> Result<Hello> {
        if b[0..8] != MAGIC {
            return Err(Error::Protocol(format!(
                "the peer is not a sendpath sender (first bytes {:02x?}, expected \"SENDPATH\")",
                &b[0..8]
            )));
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != VERSION {
            return Err(Error::Protocol(format!(
                "the peer speaks sendpath wire version {version}, this build speaks {VERSION}"
            )));
        }
        let mode = Mode::from_wire(b[10])
            .ok_or_else(|| Error::Protocol(format!("unknown mode {} in hello", b[10])))?;
        let engine = match b[11] {
            0 => Engine::Threads,
            1 => Engine::Uring,
            e => return Err(Error::Protocol(format!("unknown engine {e} in hello"))),
        };
        let pattern = match b[12] {
            0 => Pattern::Stream,
            1 => Pattern::Rr,
            2 => Pattern::Rate,
            p => return Err(Error::Protocol(format!("unknown pattern {p} in hello"))),
        };
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        let h = Hello {
            mode,
            engine,
            pattern,
            msg_size: u32_at(16),
            flow: u32_at(20),
            flows: u32_at(24),
            zc_slots: u32_at(28),
            warmup_ns: u64_at(32),
            duration_ns: u64_at(40),
            verify: b[13] & FLAG_VERIFY != 0,
            latency: b[13] & FLAG_LATENCY != 0,
            busy_poll: b[13] & FLAG_BUSY_POLL != 0,
            resp_size: u32_at(48),
            rate: u64_at(56) as f64 / 1000.0,
            sched0_ns: u64_at(64),
        };
        if h.pattern == Pattern::Rr
            && ((h.resp_size as usize) < HEADER_LEN
                || h.resp_size as usize > crate::spec::MAX_MSG_SIZE)
        {
            return Err(Error::Protocol(format!(
                "hello carries an impossible response size {}",
                h.resp_size
            )));
        }
        if h.pattern == Pattern::Rate && h.rate <= 0.0 {
            return Err(Error::Protocol("hello of a rate run without a rate".into()));
        }
        if (h.msg_size as usize) < HEADER_LEN || h.msg_size as usize > crate::spec::MAX_MSG_SIZE {
            return Err(Error::Protocol(format!(
                "hello carries an impossible message size {}",
                h.msg_size
            )));
        }
        Ok(h)
    }
}

impl Hello {
    /// The run this hello announces, as seen by a receiver that reads with `rx` (io_uring
    /// tunables are not in the hello: they arrive in the end frame).
    pub fn to_spec(&self, rx: crate::spec::RxMode) -> crate::spec::RunSpec {
        crate::spec::RunSpec {
            mode: self.mode,
            engine: self.engine,
            pattern: self.pattern,
            msg_size: self.msg_size as usize,
            flows: self.flows as usize,
            duration_s: self.duration_ns as f64 / 1e9,
            warmup_s: self.warmup_ns as f64 / 1e9,
            zc_slots: self.zc_slots as usize,
            verify: self.verify,
            latency: self.latency,
            rx,
            resp_size: (self.pattern == Pattern::Rr).then_some(self.resp_size as usize),
            rate: (self.pattern == Pattern::Rate).then_some(self.rate),
            busy_poll: self.busy_poll,
            ..crate::spec::RunSpec::default()
        }
    }

    /// `rate`: the intended send time of message `seq`.
    #[inline]
    pub fn intended_ns(&self, seq: u64) -> u64 {
        self.sched0_ns + (seq as f64 * 1e9 / self.rate) as u64
    }
}

/// Writes a message header (seq, send timestamp) into the first 16 bytes of `buf`.
#[inline]
pub fn put_header(buf: &mut [u8], seq: u64, send_ts_ns: u64) {
    buf[0..8].copy_from_slice(&seq.to_le_bytes());
    buf[8..16].copy_from_slice(&send_ts_ns.to_le_bytes());
}

/// Reads a message header (seq, send timestamp) from the first 16 bytes of `buf`.
#[inline]
pub fn get_header(buf: &[u8]) -> (u64, u64) {
    (
        u64::from_le_bytes(buf[0..8].try_into().unwrap()),
        u64::from_le_bytes(buf[8..16].try_into().unwrap()),
    )
}

/// The 8-byte word at word index `k` of the payload of message `seq`.
#[inline]
fn payload_word(seq: u64, k: u64) -> u64 {
    // An odd multiplier keeps every byte, even the first, different for nearby seqs.
    seq.wrapping_mul(0xD6E8_FEB8_6659_FD93)
        ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ 0xA5A5_5A5A_0F0F_F0F0
}

/// Fills `payload` (the bytes after the header) with the verify pattern of message `seq`.
pub fn fill_payload(payload: &mut [u8], seq: u64) {
    let mut chunks = payload.chunks_exact_mut(8);
    let mut k = 0u64;
    for c in &mut chunks {
        c.copy_from_slice(&payload_word(seq, k).to_le_bytes());
        k += 1;
    }
    let rem = chunks.into_remainder();
    let last = payload_word(seq, k).to_le_bytes();
    rem.copy_from_slice(&last[..rem.len()]);
}

/// Whether `part`, the payload bytes of message `seq` from byte `offset` on, match the verify
/// pattern (for a receiver that sees a payload in pieces).
pub fn payload_matches_at(part: &[u8], seq: u64, offset: usize) -> bool {
    let byte = |at: usize| payload_word(seq, (at / 8) as u64).to_le_bytes()[at % 8];
    let mut i = 0;
    while i < part.len() && (offset + i) % 8 != 0 {
        if part[i] != byte(offset + i) {
            return false;
        }
        i += 1;
    }
    while i + 8 <= part.len() {
        let word = u64::from_le_bytes(part[i..i + 8].try_into().expect("8 bytes"));
        if word != payload_word(seq, ((offset + i) / 8) as u64) {
            return false;
        }
        i += 8;
    }
    part[i..]
        .iter()
        .enumerate()
        .all(|(j, &b)| b == byte(offset + i + j))
}

/// Checks `payload` against the verify pattern of message `seq`; returns the first bad offset.
pub fn check_payload(payload: &[u8], seq: u64) -> Option<usize> {
    let mut chunks = payload.chunks_exact(8);
    let mut k = 0u64;
    for c in &mut chunks {
        if u64::from_le_bytes(c.try_into().unwrap()) != payload_word(seq, k) {
            return Some(k as usize * 8);
        }
        k += 1;
    }
    let rem = chunks.remainder();
    let last = payload_word(seq, k).to_le_bytes();
    if rem != &last[..rem.len()] {
        return Some(k as usize * 8);
    }
    None
}

/// The sender's side of the record, sent in the end frame.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SenderReport {
    /// Messages whose send call started inside the measured window.
    pub messages: u64,
    /// Bytes of those messages.
    pub bytes: u64,
    /// CPU time and counters of the sender's thread over the window.
    pub counters: SideCounters,
    /// Zero-copy accounting (A3 only).
    pub zerocopy: Option<ZeroCopyStats>,
    /// Send calls that failed and were retried (e.g. EAGAIN); fatal errors end the run.
    pub send_errors: u64,
    /// Why the sender stopped early, if it did.
    pub error: Option<String>,
    /// How the io_uring engine was set up (None on the threads engine).
    #[serde(default)]
    pub uring: Option<UringSetup>,
}

/// How the io_uring engine ran a flow: the tunables and what the kernel accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UringSetup {
    /// Sender worker threads (one ring each).
    pub threads: u32,
    /// Sends in flight per flow (one linked chain).
    pub depth: u32,
    /// Completions each io_uring_enter waits for.
    pub batch: u32,
    /// `link` or `bundle` (see `UringOrdering`); empty from a sender that predates it.
    #[serde(default)]
    pub ordering: String,
    /// Ring setup flags the kernel accepted (fewer when it refused the fast set).
    pub setup_flags: Vec<String>,
    /// The ring fd was registered (no fd lookup per io_uring_enter).
    pub registered_ring_fd: bool,
}

/// Encodes the end frame: header with [`END_SEQ`] then the JSON report.
pub fn encode_end(report: &SenderReport) -> Vec<u8> {
    let json = serde_json::to_vec(report).expect("sender report serializes");
    let mut out = vec![0u8; HEADER_LEN];
    put_header(&mut out, END_SEQ, json.len() as u64);
    out.extend_from_slice(&json);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_checks_in_any_pieces() {
        let mut p = vec![0u8; 1003];
        fill_payload(&mut p, 77);
        for cut in [0, 1, 7, 8, 9, 500, 1002, 1003] {
            for cut2 in [cut, (cut + 13).min(1003), 1003] {
                assert!(payload_matches_at(&p[..cut], 77, 0));
                assert!(payload_matches_at(&p[cut..cut2], 77, cut), "{cut}..{cut2}");
                assert!(payload_matches_at(&p[cut2..], 77, cut2));
            }
        }
        assert!(
            !payload_matches_at(&p[3..], 78, 3),
            "another message's pattern"
        );
        for bad in [3, 8, 515, 1002] {
            let mut q = p.clone();
            q[bad] ^= 1;
            assert!(!payload_matches_at(&q[1..], 77, 1), "byte {bad}");
            assert!(
                !payload_matches_at(&q[bad..bad + 1], 77, bad),
                "byte {bad} alone"
            );
        }
    }

    fn hello() -> Hello {
        Hello {
            mode: Mode::A3,
            engine: Engine::Uring,
            pattern: Pattern::Stream,
            msg_size: 4096,
            flow: 3,
            flows: 8,
            zc_slots: 16,
            warmup_ns: 200_000_000,
            duration_ns: 1_000_000_000,
            verify: true,
            latency: false,
            resp_size: 0,
            rate: 0.0,
            sched0_ns: 0,
            busy_poll: false,
        }
    }

    #[test]
    fn hello_round_trips() {
        let h = hello();
        assert_eq!(Hello::decode(&h.encode()).unwrap(), h);
        let rr = Hello {
            pattern: Pattern::Rr,
            resp_size: 100,
            busy_poll: true,
            ..hello()
        };
        assert_eq!(Hello::decode(&rr.encode()).unwrap(), rr);
        let rate = Hello {
            pattern: Pattern::Rate,
            rate: 12345.5,
            sched0_ns: 987654321,
            ..hello()
        };
        assert_eq!(Hello::decode(&rate.encode()).unwrap(), rate);
    }

    #[test]
    fn hello_rejects_wrong_magic_and_version() {
        let mut b = hello().encode();
        b[0] = b'X';
        assert!(Hello::decode(&b)
            .unwrap_err()
            .to_string()
            .contains("not a sendpath sender"));
        let mut b = hello().encode();
        b[8] = 9;
        assert!(Hello::decode(&b)
            .unwrap_err()
            .to_string()
            .contains("wire version 9"));
        let mut b = hello().encode();
        b[16..20].copy_from_slice(&3u32.to_le_bytes());
        assert!(Hello::decode(&b).is_err());
    }

    #[test]
    fn payload_pattern_detects_another_seq() {
        for len in [0usize, 1, 7, 8, 9, 48, 1000] {
            let mut p = vec![0u8; len];
            fill_payload(&mut p, 42);
            assert_eq!(check_payload(&p, 42), None);
            if len > 0 {
                assert!(check_payload(&p, 43).is_some(), "len {len}");
                p[len - 1] ^= 1;
                assert_eq!(check_payload(&p, 42), Some((len - 1) / 8 * 8));
            }
        }
    }
}
