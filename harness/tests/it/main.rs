//! sendpath-harness's integration tests, in one binary: the real `sendpath` command.

mod common;
mod faults;
mod impairments;
mod remote;
mod run_cli;
mod sweep_cli;
mod tcp_info;
mod topology;
