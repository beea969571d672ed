//! What to measure: the resolved options of one run (one grid cell and repetition), their
//! limits and defaults, and the checks that reject what cannot run.

pub mod batch;
pub mod limits;
pub mod memory;
pub mod run_spec;
pub mod uring_opts;
pub mod validate;

pub use batch::{BatchPlan, BUNDLE_MAX_ENTRIES, SENDMSG_MAX_IOVECS};
pub use limits::*;
pub use memory::{Memory, Side};
pub use run_spec::{RunSpec, RxStall, MAX_RATE, STALL_SOCKET_BUFFER};
pub use sendpath_record::axes::{
    Engine, Mode, ModeFacts, Pattern, Placement, RxMode, UnknownName, UringOrdering, MODES,
};
pub use sendpath_record::batch::{parse_size, Batch};
pub use uring_opts::UringOpts;
