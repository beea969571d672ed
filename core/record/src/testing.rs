//! What a test that cannot run here says, so that nothing that did not run passes silently:
//! [`skip`] prints one line naming the test, why it did not run and of which [`Skip`] kind,
//! and appends the same line to the file [`SKIP_LOG_ENV`] names, when it names one. `.ci/run`
//! sets it, prints how many tests skipped and which, and fails when one skipped for a reason
//! CI should never have (it runs as root, on a kernel with io_uring and a sampler).

use std::io::Write;

/// The environment variable naming the file every skip is appended to.
pub const SKIP_LOG_ENV: &str = "SENDPATH_SKIP_LOG";

/// Why a test did not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// It needs root (network namespaces, qdiscs, nftables).
    NeedsRoot,
    /// This kernel's io_uring lacks what it needs.
    NoIoUring,
    /// The kernel refuses a CPU sampler (perf_event_paranoid, seccomp).
    NoSampler,
    /// A command it runs is not installed (jq, nstat): the one kind CI may have.
    MissingTool,
}

impl Skip {
    /// Its name in the line (`.ci/run` reads it).
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::NeedsRoot => "needs-root",
            Skip::NoIoUring => "no-io_uring",
            Skip::NoSampler => "no-sampler",
            Skip::MissingTool => "missing-tool",
        }
    }
}

/// The line a skip prints: `SKIPPED <test> [<kind>]: <why>`.
pub fn skip_line(test: &str, kind: Skip, why: &str) -> String {
    format!("SKIPPED {test} [{}]: {why}", kind.as_str())
}

/// Says that the calling test did not run, and why (see the module). The test is named by its
/// thread, as the test harness names it.
pub fn skip(kind: Skip, why: &str) {
    let log = std::env::var_os(SKIP_LOG_ENV).map(std::path::PathBuf::from);
    let thread = std::thread::current();
    skip_to(log.as_deref(), thread.name().unwrap_or("?"), kind, why);
}

/// [`skip`], with the log file and the test's name given.
fn skip_to(log: Option<&std::path::Path>, test: &str, kind: Skip, why: &str) {
    let line = skip_line(test, kind, why);
    eprintln!("{line}");
    if let Some(path) = log {
        // (One write per line on an O_APPEND file: tests skipping at once do not interleave.)
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = written {
            eprintln!("could not log the skip to {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_is_one_line_naming_the_test_and_logged_where_asked() {
        assert_eq!(
            skip_line("t::x", Skip::NeedsRoot, "network namespaces need root"),
            "SKIPPED t::x [needs-root]: network namespaces need root"
        );
        let path = std::env::temp_dir().join(format!("sp-skip-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        skip_to(
            Some(&path),
            "named::test",
            Skip::MissingTool,
            "jq is not installed",
        );
        skip_to(None, "other::test", Skip::NoIoUring, "not logged");
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            text,
            "SKIPPED named::test [missing-tool]: jq is not installed\n"
        );
    }
}
