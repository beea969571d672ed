//! The hello frame: the first bytes of every data connection, everything the receiver needs.

use super::message::{HEADER_LEN, MAX_MSG_SIZE};
use crate::error::{Error, Result};
use sendpath_record::{Engine, Mode, Pattern};

/// Magic at the start of every connection.
pub const MAGIC: [u8; 8] = *b"SENDPATH";
/// Wire format version; a receiver rejects any other.
pub const VERSION: u16 = 3;
/// Length of the hello frame.
pub const HELLO_LEN: usize = 96;

const FLAG_VERIFY: u8 = 1;
const FLAG_LATENCY: u8 = 2;
const FLAG_BUSY_POLL: u8 = 4;
const FLAG_TIMESTAMPS: u8 = 8;

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
    /// `--timestamps`: one message in this many (the last of each run: seq + 1 a multiple of it) is stamped at every
    /// stage; 0: off.
    pub stamp_every: u32,
}

/// The parts of a hello a receiver can insist on: the run it agreed to receive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExpectedHello {
    mode: Mode,
    engine: Engine,
    pattern: Pattern,
    msg_size: u32,
    flows: u32,
    warmup_ns: u64,
    duration_ns: u64,
    resp_size: u32,
}

impl ExpectedHello {
    /// What a sender of the run `h` announces (whatever its flow index).
    pub fn of(h: &Hello) -> Self {
        ExpectedHello {
            mode: h.mode,
            engine: h.engine,
            pattern: h.pattern,
            msg_size: h.msg_size,
            flows: h.flows,
            warmup_ns: h.warmup_ns,
            duration_ns: h.duration_ns,
            resp_size: h.resp_size,
        }
    }

    /// `Ok` if `h` announces this run with a flow index inside it.
    pub fn check(&self, h: &Hello) -> Result<()> {
        if ExpectedHello::of(h) != *self || h.flow >= h.flows {
            return Err(Error::Protocol(format!(
                "the data connection announces another run ({} {} {} B, flow {} of {}, {:.3} s) than the one agreed ({} {} {} B, {} flows, {:.3} s)",
                h.mode,
                h.engine.as_str(),
                h.msg_size,
                h.flow,
                h.flows,
                h.duration_ns as f64 / 1e9,
                self.mode,
                self.engine.as_str(),
                self.msg_size,
                self.flows,
                self.duration_ns as f64 / 1e9
            )));
        }
        Ok(())
    }
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
            stamp_every: if b[13] & FLAG_TIMESTAMPS != 0 {
                u32_at(72).max(1)
            } else {
                0
            },
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
}
