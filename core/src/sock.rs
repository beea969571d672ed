//! Thin, checked wrappers over the socket syscalls every strategy uses.
//!
//! Every blocking call is bounded: sockets get send and receive timeouts ([`IO_TIMEOUT`]), so
//! a stalled or vanished peer ends a run with an error instead of hanging it.

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, SockFlag, SockType,
    SockaddrIn,
};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// Longest a blocking send or receive may wait for the peer before the run fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// `SO_ZEROCOPY` (not in every libc).
pub const SO_ZEROCOPY: libc::c_int = 60;
/// `MSG_ZEROCOPY`.
pub const MSG_ZEROCOPY: libc::c_int = 0x400_0000;

/// Binds a listening socket; a port in use gets a clear error.
pub fn listen(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => Error::io(
            format!(
                "cannot listen on {addr}: port {} is already in use",
                addr.port()
            ),
            e,
        ),
        _ => Error::io(format!("cannot listen on {addr}"), e),
    })
}

/// Accepts one connection, waiting at most until `deadline`.
pub fn accept_until(listener: &TcpListener, deadline: Instant) -> Result<TcpStream> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout(format!(
                "no client connected to {} in time",
                listener
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default()
            )));
        }
        let ms = left.as_millis().clamp(1, 1000) as u16;
        let mut pfd = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        let r = match poll(&mut pfd, PollTimeout::from(ms)) {
            Ok(r) => r,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::io("poll on listening socket", e.into())),
        };
        if r == 0 {
            continue;
        }
        let (s, _) = listener
            .accept()
            .map_err(|e| Error::io("accept a client", e))?;
        return Ok(s);
    }
}

/// Connects to `addr`, retrying a refused connection up to `tries` times `delay` apart
/// (the server may still be starting). Other errors fail at once.
pub fn connect_retry(addr: SocketAddr, tries: u32, delay: Duration) -> Result<TcpStream> {
    connect_retry_rcvbuf(addr, tries, delay, None)
}

/// Connects once; with `rcvbuf`, SO_RCVBUF is set *before* connecting (IPv4), because the
/// window scale is fixed by the handshake: shrinking the buffer afterwards makes the kernel
/// drop data it already advertised room for, and the flow crawls on retransmission timeouts.
fn connect_once(addr: SocketAddr, rcvbuf: Option<usize>) -> io::Result<TcpStream> {
    let (Some(n), SocketAddr::V4(v4)) = (rcvbuf, addr) else {
        return TcpStream::connect_timeout(&addr, IO_TIMEOUT);
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, sockopt::RcvBuf, &n)?;
    let stream = TcpStream::from(fd);
    // connect(2) on a blocking socket honours SO_SNDTIMEO as its timeout.
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    connect(stream.as_raw_fd(), &SockaddrIn::from(v4))?;
    Ok(stream)
}

/// [`connect_retry`], optionally with a receive buffer size set before the handshake.
pub fn connect_retry_rcvbuf(
    addr: SocketAddr,
    tries: u32,
    delay: Duration,
    rcvbuf: Option<usize>,
) -> Result<TcpStream> {
    let mut last = None;
    for i in 0..tries.max(1) {
        match connect_once(addr, rcvbuf) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                last = Some(e);
                if i + 1 < tries {
                    std::thread::sleep(delay);
                }
            }
            Err(e) => return Err(Error::io(format!("cannot connect to {addr}"), e)),
        }
    }
    Err(Error::io(
        format!(
            "connection to {addr} refused after {} tries over {:.1} s (is the server running?)",
            tries.max(1),
            delay.as_secs_f64() * tries.saturating_sub(1) as f64
        ),
        last.unwrap_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused)),
    ))
}

/// Turns `SO_ZEROCOPY` on (nix has no wrapper for it).
pub fn enable_so_zerocopy(fd: RawFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: passes a pointer to a live c_int and its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_ZEROCOPY,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Asks for a send buffer of `bytes` (the kernel doubles it).
pub fn set_send_buffer(s: &impl AsFd, bytes: usize) -> io::Result<()> {
    setsockopt(s, sockopt::SndBuf, &bytes).map_err(io::Error::from)
}

/// SO_BUSY_POLL microseconds set where a busy-polling receiver's traffic comes through NAPI.
pub const NAPI_BUSY_POLL_US: u64 = 50;

/// A busy-polling receiver's socket: if its packets arrive through a NAPI instance (a real
/// NIC's queue; loopback and veth have none), asks the kernel to poll that device queue from
/// `recv` for [`NAPI_BUSY_POLL_US`] (SO_BUSY_POLL) and returns that figure. Call after data
/// has arrived: the NAPI id is the last packet's.
pub fn busy_poll_napi(fd: RawFd) -> Option<u64> {
    let mut id: libc::c_uint = 0;
    let mut len = std::mem::size_of::<libc::c_uint>() as libc::socklen_t;
    // SAFETY: id and len are live and sized for the option read.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_INCOMING_NAPI_ID,
            (&mut id as *mut libc::c_uint).cast(),
            &mut len,
        )
    };
    if r != 0 || id == 0 {
        return None;
    }
    let us = NAPI_BUSY_POLL_US as libc::c_int;
    // SAFETY: us is a live c_int, the option's type.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BUSY_POLL,
            (&us as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    (r == 0).then_some(NAPI_BUSY_POLL_US)
}

/// Applies the run's bounded send/receive timeouts to a data socket.
pub fn set_io_timeouts(s: &TcpStream) -> Result<()> {
    s.set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|_| s.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| Error::io("set socket timeouts", e))
}

/// Turns an errno from a send or receive into the error a user can act on.
pub fn classify(e: io::Error, what: &str) -> Error {
    match e.raw_os_error() {
        Some(libc::EPIPE) | Some(libc::ECONNRESET) => {
            Error::PeerClosed(format!("during {what} ({e})"))
        }
        Some(libc::EAGAIN) => Error::Timeout(format!(
            "{what}: the peer made no progress for {} s",
            IO_TIMEOUT.as_secs()
        )),
        _ => Error::io(what.to_string(), e),
    }
}

/// `send()` the whole buffer, resuming after short sends.
#[inline]
pub fn send_all(fd: RawFd, buf: &[u8]) -> Result<()> {
    send_all_flags(fd, buf, 0).map(|_| ())
}

/// As [`send_all`], with `flags` (e.g. MSG_EOR) on every call; returns the calls that sent
/// bytes (more than one after a short send).
pub fn send_all_flags(fd: RawFd, mut buf: &[u8], flags: libc::c_int) -> Result<u64> {
    let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::from_bits_retain(flags);
    let mut calls = 0;
    while !buf.is_empty() {
        match send(fd, buf, flags) {
            Ok(n) => {
                buf = &buf[n..];
                calls += 1;
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(classify(e.into(), "send")),
        }
    }
    Ok(calls)
}

/// `sendmsg()` every byte `iov` names, resuming after short sends (the array is advanced
/// past what was sent); returns the calls that sent bytes.
pub fn sendmsg_all(
    fd: RawFd,
    iov: &mut [libc::iovec],
    flags: libc::c_int,
    what: &str,
) -> Result<u64> {
    let (mut first, mut calls) = (0, 0);
    while first < iov.len() {
        let n = sendmsg_once(fd, &mut iov[first..], flags).map_err(|e| classify(e, what))?;
        first = advance_iovecs(iov, n, first);
        calls += 1;
    }
    Ok(calls)
}

/// Advances an iovec array past `n` bytes that were sent; returns the index of the first
/// iovec with bytes left (== iov.len() when all were sent).
pub fn advance_iovecs(iov: &mut [libc::iovec], mut n: usize, mut first: usize) -> usize {
    while first < iov.len() && n >= iov[first].iov_len {
        n -= iov[first].iov_len;
        first += 1;
    }
    if first < iov.len() && n > 0 {
        // SAFETY: n < iov_len, so the new base stays inside the same buffer.
        iov[first].iov_base =
            unsafe { (iov[first].iov_base as *mut u8).add(n) } as *mut libc::c_void;
        iov[first].iov_len -= n;
    }
    first
}

/// One `sendmsg()` over `iov` with `flags`; returns bytes sent. EINTR is retried.
#[inline]
pub fn sendmsg_once(fd: RawFd, iov: &mut [libc::iovec], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: msghdr is plain data; zeroed is valid (no name, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = iov.len() as _;
    loop {
        // SAFETY: msg points at live iovecs whose buffers the caller keeps valid (and, for
        // MSG_ZEROCOPY, unmodified until the completion).
        let n = unsafe { libc::sendmsg(fd, &msg, flags | libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `recv()` into `buf` with `flags`; 0 means the peer closed. EINTR is retried.
#[inline]
pub fn recv_some(fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> Result<usize> {
    loop {
        // (With MSG_TRUNC the kernel does not write `buf` at all.)
        match recv(fd, buf, MsgFlags::from_bits_retain(flags)) {
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(classify(e.into(), "recv")),
        }
    }
}

/// Room for a read's receive timestamp (3 timespecs): allocate once per flow, not per read.
pub fn stamp_control() -> Vec<u8> {
    nix::cmsg_space!([libc::timespec; 3])
}

/// As [`recv_wait`] (no flags), with the read's receive timestamp (SO_TIMESTAMPING
/// RX_SOFTWARE, CLOCK_REALTIME ns) when the kernel attached one; `control` is from
/// [`stamp_control`].
#[allow(clippy::ptr_arg)] // nix's recvmsg takes the control buffer as a Vec
pub fn recv_wait_stamped(
    fd: RawFd,
    buf: &mut [u8],
    control: &mut Vec<u8>,
    spin: bool,
) -> Result<(usize, Option<u64>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    let flags = if spin {
        MsgFlags::MSG_DONTWAIT
    } else {
        MsgFlags::empty()
    };
    let mut bound = SpinBound::default();
    loop {
        let mut iov = [std::io::IoSliceMut::new(buf)];
        match recvmsg::<()>(fd, &mut iov, Some(control), flags) {
            Ok(m) => {
                let stamp = m.cmsgs().ok().and_then(|mut c| {
                    c.find_map(|c| match c {
                        ControlMessageOwned::ScmTimestampsns(t) => Some(
                            t.system.tv_sec() as u64 * 1_000_000_000 + t.system.tv_nsec() as u64,
                        ),
                        _ => None,
                    })
                });
                return Ok((m.bytes, stamp.filter(|&t| t > 0)));
            }
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) if spin => bound.spin()?,
            Err(e) => return Err(classify(e.into(), "recv")),
        }
    }
}

/// Bounds a busy-poll loop by [`IO_TIMEOUT`] without progress, reading the clock once per
/// 4096 spins.
#[derive(Default)]
struct SpinBound {
    started: Option<Instant>,
    spins: u32,
}

impl SpinBound {
    #[inline]
    fn spin(&mut self) -> Result<()> {
        std::hint::spin_loop();
        self.spins = self.spins.wrapping_add(1);
        if self.spins.is_multiple_of(4096) {
            let t = *self.started.get_or_insert_with(Instant::now);
            if t.elapsed() >= IO_TIMEOUT {
                return Err(Error::Timeout(format!(
                    "recv: the peer made no progress for {} s",
                    IO_TIMEOUT.as_secs()
                )));
            }
        }
        Ok(())
    }
}

/// Receives into `buf` with `flags`. With `spin`, polls with `MSG_DONTWAIT` in a busy loop
/// instead of sleeping in the kernel (the receiver's CPU is burnt to save the wake-up, as
/// sockperf's and netperf's busy-poll modes do); bounded by [`IO_TIMEOUT`] either way.
#[inline]
pub fn recv_wait(fd: RawFd, buf: &mut [u8], flags: libc::c_int, spin: bool) -> Result<usize> {
    if !spin {
        return recv_some(fd, buf, flags);
    }
    let mut bound = SpinBound::default();
    loop {
        match recv(
            fd,
            buf,
            MsgFlags::from_bits_retain(flags) | MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(n) => return Ok(n),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(e) => return Err(classify(e.into(), "recv")),
        }
        bound.spin()?;
    }
}

/// Receives exactly `buf.len()` bytes (spinning if `spin`); a close first is an error.
pub fn recv_exact_wait(fd: RawFd, buf: &mut [u8], spin: bool, what: &str) -> Result<()> {
    let mut got = 0;
    while got < buf.len() {
        let n = recv_wait(fd, &mut buf[got..], 0, spin)?;
        if n == 0 {
            return Err(Error::PeerClosed(format!(
                "before the {what} was complete ({got} of {} bytes)",
                buf.len()
            )));
        }
        got += n;
    }
    Ok(())
}

/// Receives exactly `buf.len()` bytes; a close before that is [`Error::PeerClosed`].
pub fn recv_exact(fd: RawFd, buf: &mut [u8], what: &str) -> Result<()> {
    recv_exact_wait(fd, buf, false, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_iovecs_handles_partial_and_whole() {
        let a = [0u8; 16];
        let b = [0u8; 100];
        let mk = || {
            [
                libc::iovec {
                    iov_base: a.as_ptr() as *mut _,
                    iov_len: 16,
                },
                libc::iovec {
                    iov_base: b.as_ptr() as *mut _,
                    iov_len: 100,
                },
            ]
        };
        let mut iov = mk();
        assert_eq!(advance_iovecs(&mut iov, 10, 0), 0);
        assert_eq!(iov[0].iov_len, 6);
        assert_eq!(advance_iovecs(&mut iov, 6 + 50, 0), 1);
        assert_eq!(iov[1].iov_len, 50);
        assert_eq!(iov[1].iov_base as usize, b.as_ptr() as usize + 50);
        assert_eq!(advance_iovecs(&mut iov, 50, 1), 2);
        let mut iov = mk();
        assert_eq!(advance_iovecs(&mut iov, 116, 0), 2);
    }

    #[test]
    fn connect_refused_is_bounded_and_clear() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let t = Instant::now();
        let e = connect_retry(addr, 3, Duration::from_millis(20)).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(e.to_string().contains("refused after 3 tries"), "{e}");
    }

    #[test]
    fn port_in_use_is_named() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let e = listen(l.local_addr().unwrap()).unwrap_err();
        assert!(e.to_string().contains("already in use"), "{e}");
    }
}

#[cfg(test)]
mod napi_tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn loopback_has_no_napi_so_no_busy_poll_is_set() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        c.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        assert_eq!(busy_poll_napi(s.as_raw_fd()), None);
        assert_eq!(busy_poll_napi(-1), None, "a bad fd is not a NAPI socket");
    }
}
