//! sendpath-core's integration tests, in one binary (one link instead of one per file):
//! real sockets on 127.0.0.1, every mode on both engines, the patterns, the io_uring receiver,
//! the schema against real records, and the shape of the source (`layers`).

mod batch;
mod common;
mod layers;
mod loopback;
mod patterns;
mod profile;
mod rx_uring;
mod schema;
mod stages;
mod uring;
