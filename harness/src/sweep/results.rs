//! The results file: what it already holds (a `--resume` skips it, cutting a torn last line
//! first), the claim one sweep at a time holds on it, and where a new sweep writes.

use super::cell::{capacity_key, cell_id, headline, key};
use super::stopping::Values;
use anyhow::Context as _;
use sendpath_core::host;
use sendpath_core::report::v1::Status;
use sendpath_core::spec::{Pattern, RunSpec};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// Stream capacity (messages/s per flow) measured so far, per [`capacity_key`].
pub type Capacity = BTreeMap<String, Vec<f64>>;

/// What a results file already holds: the (cell, rep) keys recorded, the stream capacities
/// measured, and each cell's headline values.
pub struct Recorded {
    /// The (cell, rep) keys recorded.
    pub done: HashSet<String>,
    /// Stream capacities measured.
    pub capacity: Capacity,
    /// Each cell's headline values.
    pub values: Values,
}

/// Cuts a torn last line (a sweep killed mid-write) off `path` and returns what it already
/// holds.
pub fn recorded_cells(path: &Path) -> anyhow::Result<Recorded> {
    let mut done = HashSet::new();
    let mut capacity = Capacity::new();
    let mut values = Values::new();
    if !path.exists() {
        return Ok(Recorded {
            done,
            capacity,
            values,
        });
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    if !text.is_empty() && !text.ends_with('\n') {
        let keep = text.rfind('\n').map_or(0, |i| i + 1);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("open {}", path.display()))?;
        f.set_len(keep as u64)
            .with_context(|| format!("truncate the torn last line of {}", path.display()))?;
        eprintln!(
            "resume: removed a torn last record ({} bytes) from {}",
            text.len() - keep,
            path.display()
        );
    }
    let recs = sendpath_analysis::parse_records(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    for r in recs.records {
        {
            let spec = RunSpec::from_record(&r.spec);
            done.insert(key(&spec, r.spec.rep));
            if r.status == Status::Ok {
                values
                    .entry(cell_id(&spec))
                    .or_default()
                    .push((r.spec.rep, headline(&r).0));
            }
            if r.status == Status::Ok && spec.pattern == Pattern::Stream {
                capacity
                    .entry(capacity_key(&spec))
                    .or_default()
                    .push(r.throughput.msgs_per_s / spec.flows as f64);
            }
        }
    }
    Ok(Recorded {
        done,
        capacity,
        values,
    })
}

/// An exclusive claim on a results file: one sweep at a time appends to it. Held (an
/// advisory `flock` on `results.jsonl.lock`, which names the holder's pid) until dropped; the
/// kernel releases it if the process dies.
pub struct ResultsLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl ResultsLock {
    /// Claims `results`, or says which process holds it.
    pub fn claim(results: &Path) -> anyhow::Result<ResultsLock> {
        use std::io::{Read, Seek, Write};
        let path = results.with_extension("jsonl.lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                lock.set_len(0)
                    .and_then(|_| lock.rewind())
                    .and_then(|_| write!(lock, "{}", std::process::id()))
                    .with_context(|| format!("write {}", path.display()))?;
                Ok(ResultsLock { _lock: lock })
            }
            Err((mut f, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = f.read_to_string(&mut pid);
                anyhow::bail!(
                    "another sweep (pid {}) is writing {}: wait for it to end or stop it",
                    pid.trim(),
                    results.display()
                )
            }
            Err((_, e)) => Err(anyhow::anyhow!("lock {}: {e}", path.display())),
        }
    }
}

/// Where a new sweep writes when no `--out` is given: `runs/<date>-<time>`.
pub fn default_out_dir() -> PathBuf {
    let stamp = host::utc_now_rfc3339()
        .replace([':', '-'], "")
        .replace('T', "-")
        .trim_end_matches('Z')
        .to_string();
    PathBuf::from("runs").join(stamp)
}
