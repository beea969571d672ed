//! A test ends by the server's clock: at its deadline (warm-up + window + [`END_GRACE`] after
//! its data connections arrived) every data socket still open is aborted, whatever the peer
//! does. A peer that never asks for the end, never answers it, or keeps an rr responder busy
//! cannot hold `sendpath serve`: each blocked call on those sockets returns at once, each side
//! ends with an error, and the test reports `failed`.
//!
//! How a socket is aborted: `shutdown(SHUT_RDWR)` wakes every thread and io_uring request
//! waiting on it, then `connect(AF_UNSPEC)` (the kernel's `tcp_disconnect`) resets the
//! connection and frees its unsent data, so the zero-copy completions a sender's teardown
//! waits for arrive at once instead of when a peer that stopped reading acknowledges them.
//! The watchdog holds its own descriptors of the sockets (`try_clone`), so a number it acts
//! on is never one the test has closed and the process has reused.

use crate::error::{Error, Result};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Time a test has past its warm-up and window to end (drain, completions, end frames)
/// before the server aborts it.
pub const END_GRACE: Duration = Duration::from_secs(5);

/// An armed deadline over a test's data sockets; [`Cutoff::disarm`] when the test ended.
pub struct Cutoff {
    stop: mpsc::Sender<()>,
    fired: Arc<AtomicBool>,
    watchdog: Option<JoinHandle<()>>,
}

impl Cutoff {
    /// Aborts `streams` at `deadline` unless disarmed before.
    pub fn arm(streams: &[TcpStream], deadline: Instant) -> Result<Cutoff> {
        let socks = streams
            .iter()
            .map(TcpStream::try_clone)
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| Error::io("hold the data sockets for the test's deadline", e))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        let watchdog = std::thread::Builder::new()
            .name("cutoff".into())
            .spawn(move || {
                let left = deadline.saturating_duration_since(Instant::now());
                if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(left) {
                    flag.store(true, Ordering::SeqCst);
                    for s in &socks {
                        abort(s);
                    }
                }
            })
            .map_err(|e| Error::io("start the test's deadline watchdog", e))?;
        Ok(Cutoff {
            stop,
            fired,
            watchdog: Some(watchdog),
        })
    }

    /// Stops the watchdog; returns whether it had already aborted the sockets.
    pub fn disarm(mut self) -> bool {
        let _ = self.stop.send(());
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Cutoff {
    fn drop(&mut self) {
        let _ = self.stop.send(());
    }
}

/// Wakes everyone waiting on `s` and resets its connection (see the module's doc).
fn abort(s: &TcpStream) {
    let _ = s.shutdown(std::net::Shutdown::Both);
    let unspec = libc::sockaddr {
        sa_family: libc::AF_UNSPEC as libc::sa_family_t,
        sa_data: [0; 14],
    };
    // SAFETY: a valid fd we own (a clone) and a sockaddr of the size passed.
    unsafe {
        libc::connect(
            s.as_raw_fd(),
            &unspec,
            std::mem::size_of::<libc::sockaddr>() as libc::socklen_t,
        )
    };
}

/// The deadline of a test whose data connections are all in now.
pub fn deadline_for(warmup_s: f64, duration_s: f64) -> Instant {
    Instant::now() + Duration::from_secs_f64(warmup_s + duration_s) + END_GRACE
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        (l.accept().unwrap().0, c)
    }

    #[test]
    fn a_blocked_reader_and_a_blocked_writer_are_woken_at_the_deadline() {
        let (reader, _quiet_peer) = pair();
        let (writer, _non_reading_peer) = pair();
        let cut = Cutoff::arm(
            &[reader.try_clone().unwrap(), writer.try_clone().unwrap()],
            Instant::now() + Duration::from_millis(300),
        )
        .unwrap();
        let t = Instant::now();
        let r = std::thread::spawn(move || {
            let mut b = [0u8; 16];
            (&reader).read(&mut b)
        });
        let w = std::thread::spawn(move || {
            let chunk = vec![0u8; 1 << 20];
            loop {
                if let Err(e) = (&writer).write_all(&chunk) {
                    return e;
                }
            }
        });
        assert!(matches!(r.join().unwrap(), Ok(0) | Err(_)));
        w.join().unwrap();
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(3),
            "{took:?}"
        );
        assert!(cut.disarm(), "it fired");
    }

    #[test]
    fn a_disarmed_cutoff_leaves_the_sockets_alone() {
        let (a, b) = pair();
        let cut = Cutoff::arm(
            &[a.try_clone().unwrap()],
            Instant::now() + Duration::from_millis(100),
        )
        .unwrap();
        assert!(!cut.disarm());
        std::thread::sleep(Duration::from_millis(200));
        (&a).write_all(b"still open").unwrap();
        let mut got = [0u8; 10];
        (&b).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"still open");
    }
}
