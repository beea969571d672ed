//! Errors of the library: one variant per thing a user can act on.

use std::io;

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a run, each with a message a human can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option is out of range or options contradict each other.
    #[error("invalid option: {0}")]
    InvalidSpec(String),
    /// A syscall failed; `context` says what we were doing. The OS error is part of the
    /// message, not a chained source, so a caller printing the whole chain says it once.
    #[error("{context}: {os}")]
    Io {
        /// What the tool was doing.
        context: String,
        /// The OS error.
        os: io::Error,
    },
    /// The peer spoke something other than the sendpath wire format, or broke it.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The peer closed the connection before the run ended.
    #[error("peer closed the connection {0}")]
    PeerClosed(String),
    /// The kernel cannot do what the strategy needs (e.g. no SO_ZEROCOPY).
    #[error("unsupported by this kernel: {0}")]
    Unsupported(String),
    /// Something did not happen within its bound.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The environment is not ready for the run (e.g. a topology that is not up, not root).
    #[error("{0}")]
    Setup(String),
    /// The data that arrived is not the data that was sent.
    #[error("integrity error: {0}")]
    Integrity(String),
    /// The kernel answered something its interface does not allow (a completion for a send
    /// never made, a ring that is out of step): reported, never worked around.
    #[error("unexpected answer from the kernel: {0}")]
    Kernel(String),
    /// A bug in sendpath (a thread that panicked, a queue sized too small): the run stops.
    #[error("internal error (please report it): {0}")]
    Internal(String),
}

impl Error {
    /// The same error as a message (io::Error is not Clone), for reporting it to many flows.
    pub fn clone_msg(&self) -> Error {
        Error::Setup(self.to_string())
    }

    /// Wraps the last OS error with context.
    pub fn last_os(context: impl Into<String>) -> Self {
        Error::Io {
            context: context.into(),
            os: io::Error::last_os_error(),
        }
    }

    /// Wraps an io::Error with context.
    pub fn io(context: impl Into<String>, os: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            os,
        }
    }
}
