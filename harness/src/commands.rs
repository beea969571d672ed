//! One function per command of `sendpath` but the sweep ([`crate::sweep_cmd`]).

use crate::args::{
    BenchArgs, CompareArgs, LossArg, ReportArgs, RunArgs, ServeArgs, Target, TopologyAction,
    TopologyArgs,
};
use crate::{append_line, bench, render};
use sendpath_core::report::text;
use sendpath_core::report::v1::Status;
use sendpath_core::run;
use std::path::PathBuf;
use std::process::ExitCode;

/// `sendpath report`: renders a results file's report.
pub(crate) fn report(a: ReportArgs) -> anyhow::Result<ExitCode> {
    let results = a.results;
    let out = a.out.unwrap_or_else(|| {
        results
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from("."))
    });
    render(&results, &out)?;
    Ok(ExitCode::SUCCESS)
}

/// `sendpath compare`: two runs side by side.
pub(crate) fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let read =
        |p: &std::path::Path| -> anyhow::Result<(PathBuf, Vec<sendpath_core::report::v1::Record>)> {
            let file = if p.is_dir() {
                p.join("results.jsonl")
            } else {
                p.to_path_buf()
            };
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            let recs = sendpath_analysis::parse_records(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            if recs.records.is_empty() {
                anyhow::bail!("{}: no records", file.display());
            }
            Ok((file, recs.records))
        };
    let (fa, ra) = read(&args.a)?;
    let (fb, rb) = read(&args.b)?;
    let c = sendpath_analysis::compare::compare(&ra, &rb);
    sendpath_core::say!(
        "{}",
        sendpath_analysis::compare::text(&c, &fa.display().to_string(), &fb.display().to_string())
            .trim_end()
    );
    Ok(ExitCode::SUCCESS)
}

/// `sendpath serve`: the daemon on the far host.
pub(crate) fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    use sendpath_core::remote::{auth::Token, server};
    if a.max_flows == 0
        || !(a.max_seconds > 0.0 && a.max_seconds.is_finite())
        || a.max_buffer_mib == 0
    {
        anyhow::bail!("--max-flows, --max-seconds and --max-buffer-mib must be positive");
    }
    let token = a.token_file.as_deref().map(Token::from_file).transpose()?;
    if token.is_none() && !a.listen.is_loopback() {
        if !a.no_auth {
            anyhow::bail!(
                "serving on {} without a token lets anyone who reaches the port run tests: give --token-file FILE, or --no-auth to allow that (or --listen 127.0.0.1)",
                a.listen
            );
        }
        eprintln!(
            "sendpath serve: WARNING: --no-auth on {}: anyone who can reach the port can run tests on this host",
            a.listen
        );
    }
    let srv = server::Server::bind(server::ServeOptions {
        listen: std::net::SocketAddr::new(a.listen, a.port),
        data_port: a.data_port,
        token,
        limits: server::ServerLimits {
            max_flows: a.max_flows,
            max_seconds: a.max_seconds,
            max_buffer_bytes: a.max_buffer_mib.saturating_mul(1 << 20),
        },
    })?;
    sendpath_core::say!(
        "sendpath serve: listening on {} (control protocol {}); {}",
        srv.local_addr()?,
        sendpath_core::remote::proto::PROTOCOL,
        srv.reach()
    );
    let stop = std::sync::atomic::AtomicBool::new(false);
    srv.run(&stop)?;
    Ok(ExitCode::SUCCESS)
}

/// `sendpath topology`: the veth pair, and its impairment.
pub(crate) fn topology(a: TopologyArgs) -> anyhow::Result<ExitCode> {
    let TopologyArgs {
        action,
        net,
        netem,
        loss,
    } = a;
    let v = net.veth()?;
    if (netem.is_some() || loss.is_some()) && !matches!(action, TopologyAction::Up) {
        anyhow::bail!("--netem and --loss go with `topology up`");
    }
    match action {
        TopologyAction::Up => {
            v.up()?;
            if let Some(args) = &netem {
                v.set_netem(args)?;
            }
            if let Some(LossArg(percent)) = loss {
                v.set_loss(percent)?;
            }
            sendpath_core::say!(
                "up: {} ({}) <-veth-> {} ({})",
                v.server_ns,
                v.server_ip,
                v.client_ns,
                v.client_ip
            );
        }
        TopologyAction::Down => {
            v.down()?;
            sendpath_core::say!("down: {} and {} removed", v.server_ns, v.client_ns);
        }
        TopologyAction::Status => sendpath_core::say!("{}", v.status().trim_end()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `sendpath bench`: back-to-back speed comparisons.
pub(crate) fn bench(b: BenchArgs) -> anyhow::Result<ExitCode> {
    if b.rounds == 0 {
        anyhow::bail!("--rounds must be at least 1");
    }
    let place = sendpath_core::cli::placement_of(
        b.placement,
        b.pin.as_deref(),
        sendpath_core::spec::Placement::Unpinned,
    )?;
    bench::run(b.suite, b.rounds, b.duration, place, |r| match &b.out {
        Some(p) => append_line(p, &r.to_json_line()),
        None => Ok(()),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `sendpath run`: one cell.
pub(crate) fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let spec = a.send.to_spec(a.mode, a.flows, a.recv.rx())?;
    let record = match a.place.resolve()? {
        Target::Local(t) => run::run_cell(&spec, a.rep, &t)?,
        Target::Remote(mut d) => d.run(&spec, a.rep)?,
    };
    sendpath_core::say!("{}", text::human(&record).trim_end());
    let line = record.to_json_line();
    if let Some(path) = &a.out {
        append_line(path, &line)?;
    }
    sendpath_core::say!("{line}");
    Ok(if record.status == Status::Ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
