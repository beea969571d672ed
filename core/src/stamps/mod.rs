//! Where the microseconds go (`--timestamps`): the kernel's software timestamps of each
//! stage a sampled message passes, folded into one histogram per stage.
//!
//! Sender (SO_TIMESTAMPING on the sending socket, OPT_ID so each stamp names the byte offset
//! of the last byte of the send call it belongs to): `SCHED` when the data entered the
//! queueing layer (dev_queue_xmit), `SND` (software) when the driver took it (loopback and
//! veth call skb_tx_timestamp), `ACK` when the peer acknowledged all of it. Only one message in
//! `every` is stamped: the socket's TX flags are switched on for its send call and off after,
//! while OPT_ID stays on so the offsets keep counting from the same origin. Receiver:
//! RX_SOFTWARE, the time the receiving stack got the packet, as `recvmsg` reports it (for TCP,
//! that of the last packet the read copied: exact when one read holds one message, as in rr;
//! for a stream read that spans many messages it is late for the earlier ones, which moves
//! time from stack->user into device->stack but never changes their sum).
//!
//! Kernel stamps are CLOCK_REALTIME; every stage is computed on CLOCK_MONOTONIC (the clock of
//! the messages' send stamps) after moving them by the offset between the two clocks, read
//! next to each sample (over a run the two drift apart by microseconds).

use sendpath_record::end_v1::{Thinned, TxStages};

pub mod join;
use crate::time::now_ns;
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;

const SOF_TIMESTAMPING_TX_SOFTWARE: u32 = 1 << 1;
const SOF_TIMESTAMPING_RX_SOFTWARE: u32 = 1 << 3;
const SOF_TIMESTAMPING_SOFTWARE: u32 = 1 << 4;
const SOF_TIMESTAMPING_OPT_ID: u32 = 1 << 7;
const SOF_TIMESTAMPING_TX_SCHED: u32 = 1 << 8;
const SOF_TIMESTAMPING_TX_ACK: u32 = 1 << 9;
const SOF_TIMESTAMPING_OPT_TSONLY: u32 = 1 << 11;
const SOF_TIMESTAMPING_OPT_ID_TCP: u32 = 1 << 16;
/// Whether this kernel took SOF_TIMESTAMPING_OPT_ID_TCP (Linux 6.2): 0 not tried yet, 1 yes,
/// 2 no.
static OPT_ID_TCP: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
/// `SO_EE_ORIGIN_TIMESTAMPING`: an error-queue entry that is a timestamp.
pub const SO_EE_ORIGIN_TIMESTAMPING: u8 = 4;
/// Most samples per flow the sender keeps for joining with the receiver's stamps: they travel
/// in its end frame (64 KiB at most with everything else in it; up to about 75 bytes
/// each as JSON, so 30 KB at most). Spread over the window:
/// when full, every other one is dropped and only every other one is kept from then on.
pub const MAX_JOIN_SAMPLES: usize = 400;
/// Most samples per flow the receiver keeps (its own memory; thinned the same way, so it
/// keeps every sample the sender keeps while its stride is no larger).
pub const MAX_RX_SAMPLES: usize = 1 << 16;

/// Whether message `seq` is a sample when one in `every` is: the last of each run of
/// `every` (seq + 1 a multiple of it), so that a sender that sends runs of a whole multiple of
/// `every` messages per call (io_uring) ends each call with a sample without cutting any short.
/// Both sides key a sample by `seq / every`.
#[inline]
pub fn is_sample(seq: u64, every: u64) -> bool {
    (seq + 1).is_multiple_of(every)
}

/// Most sampled sends waiting for their stamps; older ones are given up (counted unmatched).
pub const MAX_PENDING: usize = 4096;

/// Which stamp an error-queue entry carries (`ee_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StampKind {
    /// SCM_TSTAMP_SND: the driver took the data.
    Device,
    /// SCM_TSTAMP_SCHED: the data entered the queueing layer.
    Sched,
    /// SCM_TSTAMP_ACK: the peer acknowledged all of it.
    Ack,
}

impl StampKind {
    /// From `ee_info`.
    pub fn from_info(info: u32) -> Option<StampKind> {
        match info {
            0 => Some(StampKind::Device),
            1 => Some(StampKind::Sched),
            2 => Some(StampKind::Ack),
            _ => None,
        }
    }
}

/// A TX timestamp read from the error queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Which stage.
    pub kind: StampKind,
    /// OPT_ID key: the offset of the last byte of the stamped send call (wrapping u32).
    pub key: u32,
    /// CLOCK_REALTIME, ns.
    pub real_ns: u64,
}

fn set_timestamping(fd: RawFd, flags: u32) -> io::Result<()> {
    let v = flags as libc::c_int;
    // SAFETY: v is a live c_int, the option's type.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPING,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Switches the TX stamps of the next send calls on or off (OPT_ID stays on: offsets keep
/// their origin, set the first time this is called). The origin is the next byte written
/// (OPT_ID_TCP): without it TCP counts from the oldest unacknowledged byte, so a hello not yet
/// acknowledged (any delay on the path) would shift every key and join nothing. Kernels
/// before 6.2 lack OPT_ID_TCP: there the origin is right only once the hello is acknowledged.
pub fn set_tx(fd: RawFd, stamping: bool) -> io::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let base = SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY | SOF_TIMESTAMPING_SOFTWARE;
    let tx = SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_TX_ACK;
    let flags = if stamping { base | tx } else { base };
    if OPT_ID_TCP.load(Relaxed) != 2 {
        match set_timestamping(fd, flags | SOF_TIMESTAMPING_OPT_ID_TCP) {
            Ok(()) => {
                OPT_ID_TCP.store(1, Relaxed);
                return Ok(());
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && OPT_ID_TCP.load(Relaxed) == 0 => {
                OPT_ID_TCP.store(2, Relaxed);
            }
            Err(e) => return Err(e),
        }
    }
    set_timestamping(fd, flags)
}

/// Asks for the receive stamp with every read of `fd`.
pub fn set_rx(fd: RawFd) -> io::Result<()> {
    set_timestamping(fd, SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE)
}

/// CLOCK_REALTIME minus this crate's CLOCK_MONOTONIC, read now (the kernel's stamps are
/// realtime). Each try brackets our clock between two realtime reads; a try that was
/// preempted is wide, so the narrowest of a few is kept (a preempted read once put a stage
/// out of order by its delay).
pub fn real_minus_mono() -> i64 {
    let real = || {
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME).map_or(0i128, |t| {
            t.tv_sec() as i128 * 1_000_000_000 + t.tv_nsec() as i128
        })
    };
    let mut best: Option<(i128, i64)> = None;
    for _ in 0..5 {
        let r0 = real();
        let m = now_ns() as i128;
        let r1 = real();
        let width = r1 - r0;
        if best.is_none_or(|(w, _)| width < w) {
            best = Some((width, ((r0 + r1) / 2 - m) as i64));
        }
        if width < 1_000 {
            break;
        }
    }
    best.map_or(0, |(_, o)| o)
}

fn to_mono(real_ns: u64, real_minus_mono: i64) -> u64 {
    (real_ns as i64).wrapping_sub(real_minus_mono) as u64
}

struct Pending {
    key: u32,
    seq: u64,
    user: u64,
    /// CLOCK_REALTIME minus our clock, read right after the send call: the two clocks drift
    /// apart by microseconds over a run (the TSC mapping's slope, NTP slewing realtime), so
    /// each sample's stamps are moved by an offset read next to them.
    offset: i64,
    sched: Option<u64>,
    device: Option<u64>,
    in_window: bool,
}

/// Stamps one message in `every` of a flow and folds what the kernel reports.
pub struct TxStamper {
    every: u64,
    /// Bytes of messages sent since OPT_ID's origin.
    bytes: u64,
    pending: VecDeque<Pending>,
    out: TxStages,
}

impl TxStamper {
    /// Starts on `fd` (before its first message: OPT_ID's origin is the next byte).
    pub fn new(fd: RawFd, every: u64) -> io::Result<TxStamper> {
        set_tx(fd, false)?;
        Ok(TxStamper::unarmed(every))
    }

    /// A stamper that touches no socket (unit tests of its users).
    #[cfg(test)]
    pub(crate) fn for_test(every: u64) -> TxStamper {
        TxStamper::unarmed(every)
    }

    fn unarmed(every: u64) -> TxStamper {
        TxStamper {
            every: every.max(1),
            bytes: 0,
            pending: VecDeque::new(),
            out: TxStages {
                every: every.max(1),
                ..Default::default()
            },
        }
    }

    /// Whether message `seq` is one to stamp.
    #[inline]
    pub fn wants(&self, seq: u64) -> bool {
        is_sample(seq, self.every)
    }

    /// Before the send call of a message to stamp.
    pub fn arm(&mut self, fd: RawFd) -> io::Result<()> {
        set_tx(fd, true)
    }

    /// After every message's send (`len` bytes): a stamped one (`armed`) disarms the socket
    /// and waits for its stamps.
    pub fn sent(
        &mut self,
        fd: RawFd,
        seq: u64,
        user_ns: u64,
        len: u64,
        armed: bool,
        in_window: bool,
    ) -> io::Result<()> {
        self.bytes += len;
        if armed {
            self.sampled(fd, seq, user_ns, self.bytes, in_window)?;
        }
        Ok(())
    }

    /// The first sample at or after message `seq`.
    #[inline]
    pub fn next_sample(&self, seq: u64) -> u64 {
        (seq + 1).next_multiple_of(self.every) - 1
    }

    /// The armed send call (or calls) that ended with sample `seq` completed: disarms the
    /// socket and waits for the stamps of the call's last byte, `bytes_through - 1` bytes
    /// after OPT_ID's origin (the sample's last byte: calls are cut so that it ends them).
    pub fn sampled(
        &mut self,
        fd: RawFd,
        seq: u64,
        user_ns: u64,
        bytes_through: u64,
        in_window: bool,
    ) -> io::Result<()> {
        set_tx(fd, false)?;
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
            self.out.unmatched += 1;
        }
        self.pending.push_back(Pending {
            key: bytes_through.wrapping_sub(1) as u32,
            seq,
            user: user_ns,
            offset: real_minus_mono(),
            sched: None,
            device: None,
            in_window,
        });
        self.out.sampled += u64::from(in_window);
        Ok(())
    }

    /// Folds one stamp from the error queue.
    pub fn on_stamp(&mut self, s: Stamp) {
        let Some(i) = self.pending.iter().position(|p| p.key == s.key) else {
            self.out.unmatched += 1;
            return;
        };
        let p = &mut self.pending[i];
        let t = to_mono(s.real_ns, p.offset);
        // A retransmitted packet is stamped again with the same key: keep the first stamps,
        // those of the transmission the data first left on (a later one made the device
        // stamp follow the receive stamp of the data that had already arrived).
        match s.kind {
            StampKind::Sched => {
                p.sched.get_or_insert(t);
            }
            StampKind::Device => {
                p.device.get_or_insert(t);
            }
            StampKind::Ack => {
                let p = self.pending.remove(i).expect("found above");
                if p.in_window {
                    self.fold(&p, t);
                }
            }
        }
    }

    fn fold(&mut self, p: &Pending, ack: u64) {
        let o = &mut self.out;
        o.send_to_ack.record(ack.saturating_sub(p.user));
        if let Some(s) = p.sched {
            o.user_to_sched.record(s.saturating_sub(p.user));
            if let Some(d) = p.device {
                o.sched_to_device.record(d.saturating_sub(s));
            }
        }
        if let (Some(s), Some(d)) = (p.sched, p.device) {
            o.joinable
                .offer(p.seq / o.every, (p.user, s, d), MAX_JOIN_SAMPLES);
        }
    }

    /// Whether stamps are still awaited.
    pub fn waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The flow's stages; sends never acknowledged count as unmatched.
    pub fn finish(mut self) -> TxStages {
        self.out.unmatched += self.pending.len() as u64;
        self.out
    }
}

/// The receiver's side of the stages of one flow.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RxStages {
    /// One message in this many is a sample (the sender's choice).
    pub every: u64,
    /// (receive stamp, read) on CLOCK_MONOTONIC of at most [`MAX_RX_SAMPLES`] samples, by
    /// seq / every.
    pub received: Thinned<(u64, u64)>,
}

/// Receive stamps of one flow's sampled messages.
pub struct RxStamper {
    out: RxStages,
}

impl RxStamper {
    /// Starts stamping reads of `fd`; samples are those of [`is_sample`].
    pub fn new(fd: RawFd, every: u64) -> io::Result<RxStamper> {
        set_rx(fd)?;
        Ok(RxStamper {
            out: RxStages {
                every: every.max(1),
                ..Default::default()
            },
        })
    }

    /// Message `seq` was read at `now` by a read whose receive stamp (CLOCK_REALTIME) is
    /// `rx_real_ns`.
    #[inline]
    pub fn message(&mut self, seq: u64, now: u64, rx_real_ns: Option<u64>) {
        if !is_sample(seq, self.out.every) {
            return;
        }
        if let Some(rx) = rx_real_ns {
            // The offset is read next to the sample (see `Pending::offset`).
            let rx = to_mono(rx, real_minus_mono());
            let k = seq / self.out.every;
            self.out.received.offer(k, (rx, now), MAX_RX_SAMPLES);
        }
    }

    /// What was measured.
    pub fn finish(self) -> RxStages {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_a_spread_and_the_senders_keys_are_the_receivers() {
        let mut tx: Thinned<u64> = Thinned::default();
        let mut rx: Thinned<u64> = Thinned::default();
        for k in 0..10_000u64 {
            rx.offer(k, k, 1000);
            if k % 3 != 0 {
                tx.offer(k, k, 100);
            }
        }
        assert!(tx.kept.len() < 100 && rx.kept.len() < 1000);
        assert!(
            tx.kept.last().unwrap().0 > 9_000,
            "spread to the end: {:?}",
            tx.kept.last()
        );
        assert!(tx.stride >= rx.stride);
        for (k, _) in &tx.kept {
            assert!(rx.kept.iter().any(|(r, _)| r == k), "{k} kept by both");
        }
    }

    #[test]
    fn kinds_come_from_ee_info() {
        assert_eq!(StampKind::from_info(0), Some(StampKind::Device));
        assert_eq!(StampKind::from_info(1), Some(StampKind::Sched));
        assert_eq!(StampKind::from_info(2), Some(StampKind::Ack));
        assert_eq!(StampKind::from_info(3), None);
    }
}
