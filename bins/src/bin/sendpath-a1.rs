//! `sendpath-a1`: the A1 send path as a server (listens and sends) and a client (receives).
fn main() -> std::process::ExitCode {
    sendpath_bins::main(sendpath_core::spec::Mode::A1)
}
