//! `sendpath`: the harness binary. Everything lives in the library.
fn main() -> std::process::ExitCode {
    sendpath_harness::main()
}
