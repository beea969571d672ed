//! The per-mode binaries' command line: `server` listens, accepts N clients and streams to
//! each; `client` connects, receives, and prints `SUMMARY ...` (and with `--json` its v1
//! record). As in the original study, the server sends and the clients receive.

use clap::{Parser, Subcommand};
use sendpath_core::cli::{RecvArgs, SendArgs};
use sendpath_core::report::text;
use sendpath_core::report::v1::Status;
use sendpath_core::run;
use sendpath_core::spec::Mode;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(version, about = "One TCP send path, server and client")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Listen, accept --clients connections, then send to each for the run.
    Server {
        /// Port to listen on.
        #[arg(long, default_value_t = 9090)]
        port: u16,
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0")]
        bind: IpAddr,
        /// Clients to wait for; all flows start when the last one connects.
        #[arg(long, default_value_t = 1)]
        clients: usize,
        /// Longest wait for all clients, in seconds.
        #[arg(long, default_value_t = 60.0)]
        accept_timeout: f64,
        #[command(flatten)]
        send: Box<SendArgs>,
    },
    /// Connect to a server, receive one flow, print its summary.
    Client {
        /// Server address, HOST:PORT.
        #[arg(long)]
        connect: String,
        /// Also print the v1 JSON record.
        #[arg(long)]
        json: bool,
        /// Spin on a non-blocking socket instead of sleeping in recv (also on when the
        /// server runs with --busy-poll).
        #[arg(long)]
        busy_poll: bool,
        #[command(flatten)]
        recv: RecvArgs,
    },
}

/// Runs the binary for `mode`; returns its exit code: 0 ok, 1 the run started and failed, 2
/// refused before it started (bad input, a port in use, no server, a peer of another mode).
pub fn main(mode: Mode) -> ExitCode {
    let cli = Cli::parse();
    match execute(mode, cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn execute(mode: Mode, cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Server {
            port,
            bind,
            clients,
            accept_timeout,
            send,
        } => {
            if !(accept_timeout.is_finite() && accept_timeout > 0.0) {
                anyhow::bail!(
                    "--accept-timeout {accept_timeout} must be a positive number of seconds"
                );
            }
            let spec = send.to_spec(mode, clients, sendpath_core::spec::RxMode::Copy)?;
            let served = run::serve(
                &spec,
                SocketAddr::new(bind, port),
                clients,
                Duration::from_secs_f64(accept_timeout),
                |a| {
                    eprintln!(
                        "sendpath-{mode} server listening on {a}, waiting for {clients} client(s)"
                    )
                },
            )?;
            let msgs: u64 = served.reports.iter().map(|r| r.messages).sum();
            let bytes: u64 = served.reports.iter().map(|r| r.bytes).sum();
            sendpath_core::say!(
                "SERVER mode={mode} engine={} clients={clients} sent_msgs={msgs} sent_bytes={bytes} gbps={:.3}",
                spec.engine,
                bytes as f64 * 8.0 / spec.duration_s / 1e9
            );
            match served.failure {
                // The run started and failed: exit 1 (2 is for input refused before it).
                Some(e) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(1))
                }
                None => Ok(ExitCode::SUCCESS),
            }
        }
        Cmd::Client {
            connect,
            json,
            busy_poll,
            recv,
        } => {
            let addr = connect
                .to_socket_addrs()
                .map_err(|e| anyhow::anyhow!("--connect {connect}: not a HOST:PORT address ({e})"))?
                .next()
                .ok_or_else(|| anyhow::anyhow!("--connect {connect}: no address"))?;
            let record = run::client(addr, recv.rx(), Some(mode), busy_poll)?;
            sendpath_core::say!("{}", text::summary_line(&record));
            if json {
                sendpath_core::say!("{}", record.to_json_line());
            }
            if record.status == Status::Failed {
                eprintln!("error: {}", record.error.as_deref().unwrap_or("run failed"));
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
