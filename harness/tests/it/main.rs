//! sendpath-harness's integration tests, in one binary: the real `sendpath` command.

mod common;
mod faults;
mod hostile;
mod impairments;
mod remote;
mod run_cli;
mod serve_util;
mod sweep_cli;
mod tcp_info;
mod topology;
