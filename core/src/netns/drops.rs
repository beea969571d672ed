//! What the loss rule ([`super::loss`]) dropped over one measured window: its counter read at
//! the window's edges, by the run's clock, on a thread of its own (each read is an `nft`
//! process, 10-40 ms, which must not hold up a flow). A run that failed stops the watch at
//! once: it keeps the count if both edges had been read, and gets none if its window was cut
//! short (that count would not be the window's).

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A window's drop count being taken.
pub struct DropWatch {
    stop: Sender<()>,
    handle: JoinHandle<Option<u64>>,
}

impl DropWatch {
    /// Starts watching the rule in namespace `ns`: its window opens `warmup` from now and
    /// lasts `window`. A read that fails twice (a process that could not start on a loaded
    /// machine) is one line on stderr and no count.
    pub fn start(ns: String, warmup: Duration, window: Duration) -> DropWatch {
        let start = Instant::now() + warmup;
        let end = start + window;
        let read = move || {
            super::loss::counter(&ns)
                .or_else(|_| {
                    thread::sleep(Duration::from_millis(5));
                    super::loss::counter(&ns)
                })
                .map(|r| r.dropped)
                .map_err(|e| {
                    eprintln!("warning: the loss rule's drop counter could not be read: {e}")
                })
                .ok()
        };
        Self::with_reader(start, end, read)
    }

    fn with_reader(
        start: Instant,
        end: Instant,
        read: impl FnMut() -> Option<u64> + Send + 'static,
    ) -> DropWatch {
        let (stop, stopped) = mpsc::channel();
        let handle = thread::Builder::new()
            .name("loss-counter".into())
            .spawn(move || count_window(start, end, &stopped, read))
            .expect("spawn the loss counter's thread");
        DropWatch { stop, handle }
    }

    /// The window's drops, once its end has been read: for a run whose flows all ran their
    /// window (they end after it), so this waits at most for the last read.
    pub fn finish(self) -> Option<u64> {
        self.handle.join().ok().flatten()
    }

    /// For a run that failed, perhaps before its window ended: stops the watch now. The count
    /// if both edges had already been read, else None.
    pub fn cancel(self) -> Option<u64> {
        let _ = self.stop.send(());
        self.handle.join().ok().flatten()
    }
}

/// Reads the counter at `start` and at `end` unless told to stop first (then None).
fn count_window(
    start: Instant,
    end: Instant,
    stop: &Receiver<()>,
    mut read: impl FnMut() -> Option<u64>,
) -> Option<u64> {
    let wait_until =
        |t: Instant| match stop.recv_timeout(t.saturating_duration_since(Instant::now())) {
            Err(RecvTimeoutError::Timeout) => Some(()),
            // Told to stop, or the watch was dropped: no count.
            Ok(()) | Err(RecvTimeoutError::Disconnected) => None,
        };
    wait_until(start)?;
    let before = read()?;
    wait_until(end)?;
    let after = read()?;
    window_drops(before, after)
        .map_err(|e| eprintln!("warning: {e}; the record has no drop count"))
        .ok()
}

/// What the loss rule dropped between two reads of its counter. The counter only grows while
/// the rule stands, so a second read below the first is a read that cannot be trusted (the rule
/// replaced mid-window, or a listing without its counter): no count, rather than a count of 0.
fn window_drops(before: u64, after: u64) -> std::result::Result<u64, String> {
    after.checked_sub(before).ok_or_else(|| {
        format!(
            "the loss rule's drop counter went backwards over the window ({before} then {after})"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_drop_counter_that_goes_backwards_is_no_count_not_zero() {
        assert_eq!(window_drops(26, 127), Ok(101));
        assert_eq!(window_drops(5, 5), Ok(0));
        let e = window_drops(950, 0).unwrap_err();
        assert!(
            e.contains("went backwards") && e.contains("950 then 0"),
            "{e}"
        );
    }

    /// A fake counter that grows by 100 at each read, and counts its reads.
    fn counter() -> (Arc<AtomicU64>, impl FnMut() -> Option<u64> + Send + 'static) {
        let reads = Arc::new(AtomicU64::new(0));
        let r = reads.clone();
        (reads, move || Some(100 * r.fetch_add(1, Ordering::SeqCst)))
    }

    #[test]
    fn the_window_is_read_at_both_edges() {
        let now = Instant::now();
        let (reads, read) = counter();
        let w = DropWatch::with_reader(now, now + Duration::from_millis(50), read);
        assert_eq!(w.finish(), Some(100));
        assert!(now.elapsed() >= Duration::from_millis(50));
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_stopped_window_has_no_count_and_reads_nothing_after_the_stop() {
        let far = Instant::now() + Duration::from_secs(60);
        // Stopped before the window opens: no read at all, and no wait for it.
        let (tx, rx) = mpsc::channel();
        tx.send(()).unwrap();
        let (reads, read) = counter();
        assert_eq!(count_window(far, far, &rx, read), None);
        assert_eq!(reads.load(Ordering::SeqCst), 0);
        // Stopped inside the window (right after its first edge was read): that one read only.
        let (tx, rx) = mpsc::channel();
        let (reads, mut read) = counter();
        let t = Instant::now();
        let first_edge_then_stop = move || {
            let v = read();
            tx.send(()).unwrap();
            v
        };
        assert_eq!(count_window(t, far, &rx, first_edge_then_stop), None);
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    }

    #[test]
    fn cancelling_a_watch_ends_it_without_waiting_for_its_window() {
        let now = Instant::now();
        let (_, read) = counter();
        let w = DropWatch::with_reader(
            now + Duration::from_secs(60),
            now + Duration::from_secs(120),
            read,
        );
        assert_eq!(w.cancel(), None);
        assert!(
            now.elapsed() < Duration::from_secs(10),
            "{:?}",
            now.elapsed()
        );
    }

    #[test]
    fn cancelling_a_watch_whose_window_was_read_keeps_its_count() {
        let now = Instant::now();
        let (reads, read) = counter();
        let w = DropWatch::with_reader(now, now, read);
        while reads.load(Ordering::SeqCst) < 2 {
            assert!(now.elapsed() < Duration::from_secs(10), "never read");
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(w.cancel(), Some(100));
    }
}
