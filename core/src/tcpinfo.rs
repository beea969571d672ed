//! What TCP itself did to a flow: `getsockopt(TCP_INFO)` on the sending socket at the window's
//! edges. Accumulating counters become deltas over the window; state (RTT, cwnd, delivery
//! rate) is the value at the window's end. Parsed by offset from the kernel's `struct
//! tcp_info` (include/uapi/linux/tcp.h), so a field an older kernel does not fill is `None`.

use std::os::fd::RawFd;

/// One reading of TCP_INFO (the fields sendpath uses), None where the kernel's struct is
/// shorter.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Snapshot {
    rtt_us: Option<u32>,
    rttvar_us: Option<u32>,
    snd_cwnd: Option<u32>,
    snd_mss: Option<u32>,
    lost: Option<u32>,
    total_retrans: Option<u32>,
    segs_out: Option<u32>,
    min_rtt_us: Option<u32>,
    delivery_rate: Option<u64>,
    busy_us: Option<u64>,
    rwnd_limited_us: Option<u64>,
    sndbuf_limited_us: Option<u64>,
    bytes_sent: Option<u64>,
    bytes_retrans: Option<u64>,
    dsack_dups: Option<u32>,
    reord_seen: Option<u32>,
    snd_wnd: Option<u32>,
}

pub use sendpath_record::v1::TcpFlowInfo;

fn u32_at(b: &[u8], len: usize, off: usize) -> Option<u32> {
    (off + 4 <= len).then(|| u32::from_ne_bytes(b[off..off + 4].try_into().unwrap()))
}

fn u64_at(b: &[u8], len: usize, off: usize) -> Option<u64> {
    (off + 8 <= len).then(|| u64::from_ne_bytes(b[off..off + 8].try_into().unwrap()))
}

/// Reads TCP_INFO of `fd`; None if it is not a TCP socket.
pub fn read(fd: RawFd) -> Option<Snapshot> {
    let mut b = [0u8; 256];
    let mut len = b.len() as libc::socklen_t;
    // SAFETY: b and len are live; the kernel writes at most len bytes and stores the length.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            b.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 {
        return None;
    }
    let n = (len as usize).min(b.len());
    // Offsets of struct tcp_info (8 bytes of u8 fields, then u32s, then u64s).
    Some(Snapshot {
        snd_mss: u32_at(&b, n, 16),
        lost: u32_at(&b, n, 32),
        rtt_us: u32_at(&b, n, 68),
        rttvar_us: u32_at(&b, n, 72),
        snd_cwnd: u32_at(&b, n, 80),
        total_retrans: u32_at(&b, n, 100),
        segs_out: u32_at(&b, n, 136),
        min_rtt_us: u32_at(&b, n, 148),
        delivery_rate: u64_at(&b, n, 160),
        busy_us: u64_at(&b, n, 168),
        rwnd_limited_us: u64_at(&b, n, 176),
        sndbuf_limited_us: u64_at(&b, n, 184),
        bytes_sent: u64_at(&b, n, 200),
        bytes_retrans: u64_at(&b, n, 208),
        dsack_dups: u32_at(&b, n, 216),
        reord_seen: u32_at(&b, n, 220),
        snd_wnd: u32_at(&b, n, 228),
    })
}

fn d32(a: Option<u32>, b: Option<u32>) -> Option<u64> {
    Some(b?.wrapping_sub(a?) as u64)
}

fn d64(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    Some(b?.saturating_sub(a?))
}

impl Snapshot {
    /// What happened between `self` (the window's start) and `end`.
    pub fn until(&self, end: &Snapshot) -> TcpFlowInfo {
        TcpFlowInfo {
            retransmits: d32(self.total_retrans, end.total_retrans),
            bytes_retrans: d64(self.bytes_retrans, end.bytes_retrans),
            bytes_sent: d64(self.bytes_sent, end.bytes_sent),
            dsack_dups: d32(self.dsack_dups, end.dsack_dups),
            segs_out: d32(self.segs_out, end.segs_out),
            reord_seen: d32(self.reord_seen, end.reord_seen),
            rtt_us: end.rtt_us.map(u64::from),
            rttvar_us: end.rttvar_us.map(u64::from),
            min_rtt_us: end.min_rtt_us.map(u64::from),
            cwnd: end.snd_cwnd.map(u64::from),
            mss: end.snd_mss.map(u64::from),
            lost: end.lost.map(u64::from),
            snd_wnd_bytes: end.snd_wnd.map(u64::from),
            delivery_rate_bytes_per_s: end.delivery_rate,
            busy_us: d64(self.busy_us, end.busy_us),
            rwnd_limited_us: d64(self.rwnd_limited_us, end.rwnd_limited_us),
            sndbuf_limited_us: d64(self.sndbuf_limited_us, end.sndbuf_limited_us),
        }
    }
}

/// TCP_INFO of a flow's socket over a window: read at its start, folded at its end.
#[derive(Debug, Default)]
pub struct Watch {
    start: Option<Snapshot>,
    result: Option<TcpFlowInfo>,
}

impl Watch {
    /// The window opens.
    pub fn open(&mut self, fd: RawFd) {
        if self.start.is_none() && self.result.is_none() {
            self.start = read(fd);
        }
    }

    /// The window closes (once; later calls do nothing).
    pub fn close(&mut self, fd: RawFd) {
        if let (Some(s), None) = (self.start.take(), &self.result) {
            self.result = read(fd).map(|e| s.until(&e));
        }
    }

    /// What the window saw (None if it never opened or the socket is not TCP).
    pub fn take(&mut self) -> Option<TcpFlowInfo> {
        self.result.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn a_window_over_a_loopback_transfer_counts_what_was_sent() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let mut w = Watch::default();
        w.open(c.as_raw_fd());
        let data = vec![7u8; 1 << 20];
        let reader = std::thread::spawn(move || {
            let mut got = 0;
            let mut b = vec![0u8; 65536];
            while got < (1 << 20) {
                got += s.read(&mut b).unwrap();
            }
        });
        c.write_all(&data).unwrap();
        reader.join().unwrap();
        w.close(c.as_raw_fd());
        w.close(c.as_raw_fd());
        let t = w.take().expect("TCP_INFO read at both edges");
        assert!(t.bytes_sent.unwrap() >= 1 << 20, "{t:?}");
        assert!(t.segs_out.unwrap() > 0);
        assert_eq!(t.retransmits, Some(0), "loopback does not lose");
        assert!(t.cwnd.unwrap() >= 1 && t.mss.unwrap() > 0);
        assert!(t.rtt_us.is_some() && t.busy_us.is_some());
        assert!(w.take().is_none(), "taken once");
        assert!(read(-1).is_none());
    }
}
