//! The hello frame: the first bytes of every data connection, everything the receiver needs.

use super::message::{HEADER_LEN, MAX_MSG_SIZE};
use crate::error::{Error, Result};
use sendpath_record::{Batch, Engine, Mode, Pattern};

/// Magic at the start of every connection.
pub const MAGIC: [u8; 8] = *b"SENDPATH";
/// Wire format version; a receiver rejects any other.
pub const VERSION: u16 = 4;
/// Length of the hello frame.
pub const HELLO_LEN: usize = 96;
/// Highest `--rate` accepted, messages per second per flow; a hello above it is refused (the
/// rate travels in millihertz, which above ~4e12 no longer survives the trip through f64).
pub const MAX_RATE: f64 = 20e6;

const FLAG_VERIFY: u8 = 1;
const FLAG_LATENCY: u8 = 2;
const FLAG_BUSY_POLL: u8 = 4;
const FLAG_TIMESTAMPS: u8 = 8;

/// The first frame of every data connection: everything the receiver needs to know.
#[derive(Clone, Copy, Debug, PartialEq)]
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
    /// `--timestamps`: one message in this many (the last of each run: seq + 1 a multiple of it) is stamped at every
    /// stage; 0: off.
    pub stamp_every: u32,
    /// `--batch`: messages per send operation (the receiver's record says what the sender
    /// did; 0 on the wire for one message per send).
    pub batch: Batch,
    /// `--profile`: samples per second of each side's threads; 0: off (the receiving side
    /// profiles itself as the sender asks).
    pub profile_hz: u32,
}

/// What each byte range of the frame holds, for saying which field of a hello disagrees.
const FIELDS: &[(std::ops::Range<usize>, &str)] = &[
    (0..8, "magic"),
    (8..10, "version"),
    (10..11, "mode"),
    (11..12, "engine"),
    (12..13, "pattern"),
    (13..14, "flags (verify, latency, busy-poll, timestamps)"),
    (14..16, "reserved bytes"),
    (16..20, "message size"),
    (20..24, "flow index"),
    (24..28, "flows"),
    (28..32, "zero-copy slots"),
    (32..40, "warm-up"),
    (40..48, "window"),
    (48..52, "response size"),
    (52..56, "reserved bytes"),
    (56..64, "rate"),
    (64..72, "schedule start"),
    (72..76, "stamp interval"),
    (76..80, "profile rate"),
    (80..88, "batch"),
    (88..HELLO_LEN, "reserved bytes"),
];
/// The fields that differ between the flows of one run: the flow index and the schedule's
/// start (each sender stamps its own).
const PER_FLOW: [std::ops::Range<usize>; 2] = [20..24, 64..72];

/// Checks the hellos of one run's data connections, frames as they arrived, against the hello
/// its sender agreed to send (`agreed`, for any flow): every byte equal but the flow index and
/// the schedule's start; the flow indexes all different and below the run's flows; each
/// schedule start within `slack_ns` of `sender_now_ns` (now, on the sender's clock). This is
/// how a receiver that does not trust its sender (`sendpath serve`) makes sure it builds
/// nothing from a field it did not admit. Returns the decoded hellos, in the frames' order.
pub fn check_run(
    agreed: &Hello,
    frames: &[[u8; HELLO_LEN]],
    sender_now_ns: u64,
    slack_ns: u64,
) -> Result<Vec<Hello>> {
    let mut want = agreed.encode();
    for r in PER_FLOW {
        want[r].fill(0);
    }
    let mut seen = vec![false; agreed.flows as usize];
    let mut out = Vec::with_capacity(frames.len());
    for (i, frame) in frames.iter().enumerate() {
        let h = Hello::decode(frame)?;
        let bad = |what: String| {
            Err(Error::Protocol(format!(
                "data connection {i}: {what}: not the run that was agreed"
            )))
        };
        if let Some((_, field)) = FIELDS
            .iter()
            .filter(|(r, _)| !PER_FLOW.contains(r))
            .find(|(r, _)| frame[r.clone()] != want[r.clone()])
        {
            return bad(format!("its hello's {field} differ"));
        }
        match seen.get_mut(h.flow as usize) {
            None => return bad(format!("flow index {} of {}", h.flow, agreed.flows)),
            Some(true) => return bad(format!("flow index {} announced twice", h.flow)),
            Some(s) => *s = true,
        }
        if h.sched0_ns.abs_diff(sender_now_ns) > slack_ns {
            return bad(format!(
                "its schedule starts {:.1} s away from now",
                h.sched0_ns.abs_diff(sender_now_ns) as f64 / 1e9
            ));
        }
        out.push(h);
    }
    Ok(out)
}

impl Hello {
    /// Encodes to the frame.
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut b = [0u8; HELLO_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&VERSION.to_le_bytes());
        b[10] = self.mode.facts().wire_code;
        b[11] = self.engine.facts().wire_code;
        b[12] = match self.pattern {
            Pattern::Stream => 0,
            Pattern::Rr => 1,
            Pattern::Rate => 2,
        };
        b[13] = (if self.verify { FLAG_VERIFY } else { 0 })
            | (if self.latency { FLAG_LATENCY } else { 0 })
            | (if self.busy_poll { FLAG_BUSY_POLL } else { 0 })
            | (if self.stamp_every > 0 {
                FLAG_TIMESTAMPS
            } else {
                0
            });
        b[16..20].copy_from_slice(&self.msg_size.to_le_bytes());
        b[20..24].copy_from_slice(&self.flow.to_le_bytes());
        b[24..28].copy_from_slice(&self.flows.to_le_bytes());
        b[28..32].copy_from_slice(&self.zc_slots.to_le_bytes());
        b[32..40].copy_from_slice(&self.warmup_ns.to_le_bytes());
        b[40..48].copy_from_slice(&self.duration_ns.to_le_bytes());
        b[48..52].copy_from_slice(&self.resp_size.to_le_bytes());
        b[56..64].copy_from_slice(&((self.rate * 1000.0).round() as u64).to_le_bytes());
        b[64..72].copy_from_slice(&self.sched0_ns.to_le_bytes());
        b[72..76].copy_from_slice(&self.stamp_every.to_le_bytes());
        let batch_bytes = match self.batch {
            Batch::One => 0,
            Batch::Bytes(n) => n,
        };
        b[76..80].copy_from_slice(&self.profile_hz.to_le_bytes());
        b[80..88].copy_from_slice(&batch_bytes.to_le_bytes());
        b
    }

    /// Decodes and checks a frame; a wrong peer gets a clear error.
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
        let engine = Engine::from_wire(b[11])
            .ok_or_else(|| Error::Protocol(format!("unknown engine {} in hello", b[11])))?;
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
            stamp_every: if b[13] & FLAG_TIMESTAMPS != 0 {
                u32_at(72).max(1)
            } else {
                0
            },
            batch: match u64_at(80) {
                0 | 1 => Batch::One,
                n => Batch::Bytes(n),
            },
            profile_hz: u32_at(76),
        };
        if h.pattern == Pattern::Rr
            && ((h.resp_size as usize) < HEADER_LEN || h.resp_size as usize > MAX_MSG_SIZE)
        {
            return Err(Error::Protocol(format!(
                "hello carries an impossible response size {}",
                h.resp_size
            )));
        }
        if h.pattern == Pattern::Rate && h.rate <= 0.0 {
            return Err(Error::Protocol("hello of a rate run without a rate".into()));
        }
        if h.rate > MAX_RATE {
            return Err(Error::Protocol(format!(
                "hello carries an impossible rate {} messages per second",
                h.rate
            )));
        }
        if (h.msg_size as usize) < HEADER_LEN || h.msg_size as usize > MAX_MSG_SIZE {
            return Err(Error::Protocol(format!(
                "hello carries an impossible message size {}",
                h.msg_size
            )));
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            stamp_every: 0,
            batch: Batch::Bytes(65536),
            profile_hz: 0,
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
            stamp_every: 16,
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
        // Every rate a hello may carry comes back as it went (in millihertz through f64, which
        // a rate of 4.5e12 did not: the fuzzer found it); one above the bound is refused.
        for r in [0.001, 1.0, 999_999.999, MAX_RATE] {
            let h = Hello { rate: r, ..rate };
            assert_eq!(Hello::decode(&h.encode()).unwrap(), h);
        }
        let e = Hello::decode(
            &Hello {
                rate: 4_456_796_083_060.737,
                ..rate
            }
            .encode(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("impossible rate"), "{e}");
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
    fn a_run_is_checked_field_by_field_and_flow_by_flow() {
        let agreed = Hello {
            flows: 3,
            ..hello()
        };
        let frame = |flow: u32, sched0_ns: u64| {
            Hello {
                flow,
                sched0_ns,
                ..agreed
            }
            .encode()
        };
        let now = 50_000_000_000;
        let good = [frame(2, now), frame(0, now - 1000), frame(1, now + 1000)];
        let got = check_run(&agreed, &good, now, 1_000_000_000).unwrap();
        assert_eq!(got.iter().map(|h| h.flow).collect::<Vec<_>>(), [2, 0, 1]);
        let err = |frames: &[[u8; HELLO_LEN]]| {
            check_run(&agreed, frames, now, 1_000_000_000)
                .unwrap_err()
                .to_string()
        };
        assert!(err(&[frame(0, now), frame(0, now)]).contains("flow index 0 announced twice"));
        assert!(err(&[frame(3, now)]).contains("flow index 3 of 3"));
        assert!(err(&[frame(0, now + 5_000_000_000)]).contains("5.0 s away"));
        assert!(err(&[frame(0, 0)]).contains("schedule"));
        // Every other field, and bytes no field uses, must be as agreed.
        for (at, field) in [
            (10, "mode"),
            (13, "flags"),
            (15, "reserved"),
            (16, "message size"),
            (24, "flows"),
            (28, "zero-copy slots"),
            (31, "zero-copy slots"),
            (33, "warm-up"),
            (41, "window"),
            (48, "response size"),
            (57, "rate"),
            (72, "stamp interval"),
            (81, "batch"),
            (77, "profile rate"),
            (95, "reserved"),
        ] {
            let mut f = frame(0, now);
            f[at] ^= if at == 10 { 3 } else { 1 };
            let e = err(&[f]);
            assert!(e.contains(field), "byte {at}: {e}");
        }
        let mut f = frame(0, now);
        f[0] = b'X';
        assert!(err(&[f]).contains("not a sendpath sender"));
    }
}
