//! Two network namespaces joined by a veth pair, as in the original study (`ns_srv` with
//! 10.200.1.1, `ns_cli` with 10.200.1.2), and entering them per thread.
//!
//! Made with `ip` from iproute2 rather than the rtnetlink crate: it is on every Linux that has
//! namespaces, the commands are the ones a user would type (and the study documented), and it
//! keeps an async netlink stack out of a tool whose hot paths are plain syscalls. Entering a
//! namespace is `setns(CLONE_NEWNET)`, which is per thread: sockets made after it live in that
//! namespace, and keep living there whichever thread uses them later.

pub mod drops;
pub mod loss;

use crate::error::{Error, Result};
use std::net::Ipv4Addr;
use std::process::Command;

/// A topology: namespace and interface names and the addresses of both ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Veth {
    /// Namespace of the sender (the server in the per-mode binaries).
    pub server_ns: String,
    /// Namespace of the receivers.
    pub client_ns: String,
    /// veth end inside `server_ns`.
    pub server_if: String,
    /// veth end inside `client_ns`.
    pub client_if: String,
    /// Address of the server end.
    pub server_ip: Ipv4Addr,
    /// Address of the client end.
    pub client_ip: Ipv4Addr,
    /// Prefix length.
    pub prefix_len: u8,
}

impl Veth {
    /// The topology named `name` (namespaces `<name>_srv`, `<name>_cli`) on `prefix`
    /// (`a.b.c.d/len`: the server gets host .1, the client .2).
    pub fn new(name: &str, prefix: &str) -> Result<Veth> {
        let bad = |m: &str| Error::InvalidSpec(format!("--prefix {prefix}: {m}"));
        let (net, len) = prefix
            .split_once('/')
            .ok_or_else(|| bad("expected a.b.c.d/len"))?;
        let net: Ipv4Addr = net.parse().map_err(|_| bad("not an IPv4 address"))?;
        let len: u8 = len.parse().map_err(|_| bad("bad prefix length"))?;
        if !(8..=30).contains(&len) {
            return Err(bad("prefix length must be 8..30"));
        }
        if name.is_empty()
            || name.len() > 10
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(Error::InvalidSpec(format!(
                "--name {name}: 1-10 letters, digits or '_'"
            )));
        }
        let mask = u32::MAX << (32 - len);
        let base = u32::from(net) & mask;
        Ok(Veth {
            server_ns: format!("{name}_srv"),
            client_ns: format!("{name}_cli"),
            server_if: format!("{name}_vs"),
            client_if: format!("{name}_vc"),
            server_ip: Ipv4Addr::from(base + 1),
            client_ip: Ipv4Addr::from(base + 2),
            prefix_len: len,
        })
    }

    /// The study's topology: `ns_srv`/`ns_cli` on 10.200.1.0/24.
    pub fn study() -> Veth {
        Veth::new("ns", "10.200.1.0/24").expect("valid default topology")
    }

    fn ns_exists(ns: &str) -> bool {
        std::path::Path::new("/var/run/netns").join(ns).exists()
    }

    /// Whether both namespaces exist and the server address answers inside them.
    pub fn is_up(&self) -> bool {
        Self::ns_exists(&self.server_ns)
            && Self::ns_exists(&self.client_ns)
            && ip(&["-n", &self.client_ns, "link", "show", &self.client_if]).is_ok()
    }

    /// Creates the namespaces, the veth pair and the addresses; does nothing that already
    /// exists. Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN).
    pub fn up(&self) -> Result<()> {
        require_root()?;
        for ns in [&self.server_ns, &self.client_ns] {
            if !Self::ns_exists(ns) {
                ip(&["netns", "add", ns])?;
            }
        }
        if ip(&["-n", &self.server_ns, "link", "show", &self.server_if]).is_err() {
            // Create the pair in the server namespace, then move the client end over.
            ip(&[
                "-n",
                &self.server_ns,
                "link",
                "add",
                &self.server_if,
                "type",
                "veth",
                "peer",
                "name",
                &self.client_if,
            ])?;
            ip(&[
                "-n",
                &self.server_ns,
                "link",
                "set",
                &self.client_if,
                "netns",
                &self.client_ns,
            ])?;
        }
        for (ns, ifname, addr) in [
            (&self.server_ns, &self.server_if, self.server_ip),
            (&self.client_ns, &self.client_if, self.client_ip),
        ] {
            let cidr = format!("{addr}/{}", self.prefix_len);
            let shown = ip(&["-n", ns, "-4", "addr", "show", "dev", ifname])?;
            if !shown.contains(&format!("inet {cidr}")) {
                ip(&["-n", ns, "addr", "add", &cidr, "dev", ifname])?;
            }
            ip(&["-n", ns, "link", "set", ifname, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// Removes everything [`up`](Self::up) made (deleting a namespace deletes its veth end,
    /// and with it the pair). Missing pieces are not an error.
    pub fn down(&self) -> Result<()> {
        require_root()?;
        for ns in [&self.server_ns, &self.client_ns] {
            if Self::ns_exists(ns) {
                ip(&["netns", "del", ns])?;
            }
        }
        Ok(())
    }

    /// Impairs the server end's egress (sender -> receivers) with `tc qdisc replace ... netem
    /// ARGS`, as a user would type it (e.g. `delay 2ms 0.5ms loss 0.5% reorder 1%`); an empty
    /// ARGS or `none` removes the qdisc (not a loss rule: [`set_loss`](Self::set_loss)).
    pub fn set_netem(&self, args: &str) -> Result<()> {
        self.set_qdisc("netem", args)
    }

    /// Puts `preset` on the server end in place of whatever impairment was there: its qdisc
    /// and its random loss. Returns what of it this kernel could not apply, where the preset
    /// runs without it (`lossy` without netem: its loss runs, its delay and reordering do not).
    pub fn apply(&self, preset: &Impairment) -> Result<Option<String>> {
        self.clear()?;
        let mut missing = None;
        if let Some((kind, args)) = preset.qdisc {
            match self.set_qdisc(kind, args) {
                Err(Error::Setup(m)) if preset.qdisc_optional && m.contains(NOT_IN_KERNEL) => {
                    missing = Some(format!(
                        "{}: {kind} is not available in this kernel: its `{args}` is not applied, only its {}% random loss (nftables)",
                        preset.name,
                        preset.loss_percent.unwrap_or(0.0)
                    ));
                }
                r => r?,
            }
        }
        let rest = match preset.loss_percent {
            Some(p) => self.set_loss(Some(p)),
            None if preset.one_segment_per_packet => {
                loss::one_segment_per_packet(&self.server_ns, &self.server_if, true)
            }
            None => Ok(()),
        };
        if let Err(e) = rest {
            let _ = self.clear();
            return Err(e);
        }
        Ok(missing)
    }

    /// Drops `percent` of the TCP segments the server end sends, at random, as they arrive at
    /// the client end (nftables in the client's namespace; see [`loss`]); None removes it.
    pub fn set_loss(&self, percent: Option<f64>) -> Result<()> {
        require_root()?;
        self.require_up()?;
        match percent {
            Some(p) => loss::set(self.link(), p),
            None => loss::remove(self.link()),
        }
    }

    /// The sender -> receivers direction, for [`loss`].
    fn link(&self) -> loss::Link<'_> {
        loss::Link {
            sender: (&self.server_ns, &self.server_if),
            receiver: (&self.client_ns, &self.client_if),
        }
    }

    /// The loss rule on the sender -> receivers direction, with what it has dropped so far.
    pub fn loss_rule(&self) -> Option<loss::Rule> {
        loss::read(&self.client_ns)
    }

    /// Removes every impairment: the qdisc, the loss rule, one segment per packet.
    pub fn clear(&self) -> Result<()> {
        let qdisc = self.set_netem("none");
        self.set_loss(None)?;
        if self.one_segment_per_packet() {
            loss::one_segment_per_packet(&self.server_ns, &self.server_if, false)?;
        }
        qdisc
    }

    /// Whether the server end sends one segment per packet (`gso_max_segs 1`).
    fn one_segment_per_packet(&self) -> bool {
        loss::sends_one_segment_per_packet(&self.server_ns, &self.server_if) == Some(true)
    }

    fn require_up(&self) -> Result<()> {
        if !self.is_up() {
            return Err(Error::Setup(format!(
                "the veth topology {}/{} is not up",
                self.server_ns, self.client_ns
            )));
        }
        Ok(())
    }

    /// `tc qdisc replace dev SERVER_IF root KIND ARGS` in the server's namespace; an empty
    /// ARGS or `none` removes the root qdisc (the veth default, noqueue, comes back).
    fn set_qdisc(&self, kind: &str, args: &str) -> Result<()> {
        require_root()?;
        self.require_up()?;
        let args = args.trim();
        if args.is_empty() || args == "none" {
            // Deleting the root qdisc restores the default (noqueue); none set is fine too.
            let _ = tc(
                &self.server_ns,
                &["qdisc", "del", "dev", &self.server_if, "root"],
            );
            return Ok(());
        }
        let mut cmd = vec!["qdisc", "replace", "dev", &self.server_if, "root", kind];
        cmd.extend(args.split_whitespace());
        tc(&self.server_ns, &cmd).map_err(|e| match e {
            Error::Setup(m) if m.contains("qdisc kind is unknown") || m.contains("Unknown qdisc") => {
                Error::Setup(format!(
                    "{kind} {NOT_IN_KERNEL} (CONFIG_NET_SCH_{} / the sch_{kind} module): cannot impair the veth pair ({m})",
                    kind.to_uppercase()
                ))
            }
            e => e,
        })?;
        Ok(())
    }

    /// The impairment in place on the server end, as the kernel holds it: its root qdisc when
    /// it is not the veth default (`noqueue`), as `tc qdisc show` says it (e.g. `netem 8001:
    /// root refcnt 2 limit 1000 delay 2ms`, or a `tbf` a user set by hand), then the loss rule
    /// (see [`loss::Rule::describe`]), joined by "; ". None when unimpaired or unreadable.
    pub fn impairment(&self) -> Option<String> {
        let qdisc = tc(
            &self.server_ns,
            &["qdisc", "show", "dev", &self.server_if, "root"],
        )
        .ok()
        .and_then(|out| impairment_of(&out));
        // (The loss rule's description says it sends one segment per packet.)
        let loss = match self.loss_rule() {
            Some(r) => Some(r.describe()),
            None => self.one_segment_per_packet().then(|| SEGMENTED.to_string()),
        };
        let parts: Vec<String> = qdisc.into_iter().chain(loss).collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// One line per piece: what exists.
    pub fn status(&self) -> String {
        let mut out = String::new();
        for (ns, ifname, addr) in [
            (&self.server_ns, &self.server_if, self.server_ip),
            (&self.client_ns, &self.client_if, self.client_ip),
        ] {
            let present = Self::ns_exists(ns);
            let link = present && ip(&["-n", ns, "link", "show", ifname]).is_ok();
            out += &format!(
                "{ns}: {}, {ifname} {} {addr}/{}\n",
                if present { "present" } else { "absent" },
                if link { "up with" } else { "missing, wants" },
                self.prefix_len
            );
        }
        if Self::ns_exists(&self.server_ns) {
            out += &format!(
                "impairment on {} (sender -> receivers): {}\n",
                self.server_if,
                self.impairment().unwrap_or_else(|| "none".into())
            );
        }
        out
    }

    /// Bytes sent and received by the server-side veth end (from its namespace's sysfs view).
    pub fn server_if_bytes(&self) -> Result<(u64, u64)> {
        let out = ip(&[
            "-n",
            &self.server_ns,
            "-s",
            "-j",
            "link",
            "show",
            &self.server_if,
        ])?;
        let v: serde_json::Value = serde_json::from_str(&out)
            .map_err(|e| Error::Setup(format!("unreadable `ip -j` output: {e}")))?;
        let s = &v[0]["stats64"];
        match (s["tx"]["bytes"].as_u64(), s["rx"]["bytes"].as_u64()) {
            (Some(tx), Some(rx)) => Ok((tx, rx)),
            _ => Err(Error::Setup("ip -s -j link gave no byte counters".into())),
        }
    }
}

/// What `impairment()` says of the server end sending one segment per packet, no loss rule.
const SEGMENTED: &str = "gso_max_segs 1: one segment per packet, no loss";

/// What a qdisc error says when the kernel lacks that kind.
const NOT_IN_KERNEL: &str = "is not available in this kernel";

/// A named impairment of the sender -> receivers direction (`sweep --impairments`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Impairment {
    /// Its name.
    pub name: &'static str,
    /// The root qdisc and its arguments, as `tc` takes them; None: the veth default.
    pub qdisc: Option<(&'static str, &'static str)>,
    /// Whether the impairment still runs, without its qdisc, on a kernel that lacks the
    /// qdisc's kind (saying so in one line): true where the loss is the point.
    pub qdisc_optional: bool,
    /// Random loss of the sender's segments, percent (nftables: any kernel with nf_tables;
    /// the sender's end then sends one segment per packet, see [`loss`]).
    pub loss_percent: Option<f64>,
    /// The sender's end sends one segment per packet (`gso_max_segs 1`), as under loss.
    pub one_segment_per_packet: bool,
    /// What it stands for.
    pub what: &'static str,
}

/// The named impairments, mildest first.
pub const IMPAIRMENTS: [Impairment; 6] = [
    Impairment {
        name: "clean",
        qdisc: None,
        qdisc_optional: false,
        loss_percent: None,
        one_segment_per_packet: false,
        what: "none: the veth default",
    },
    Impairment {
        name: "segmented",
        qdisc: None,
        qdisc_optional: false,
        loss_percent: None,
        one_segment_per_packet: true,
        what: "no loss, but one segment per packet as under loss (gso_max_segs 1): what the loss presets cost before any loss",
    },
    Impairment {
        name: "lan",
        qdisc: Some(("netem", "delay 200us 50us")),
        qdisc_optional: false,
        loss_percent: None,
        one_segment_per_packet: false,
        what: "a LAN: 0.2 ms +- 0.05 ms each way (netem)",
    },
    Impairment {
        name: "wan",
        qdisc: Some(("netem", "delay 10ms 1ms")),
        qdisc_optional: false,
        loss_percent: Some(0.1),
        one_segment_per_packet: true,
        what: "a WAN: 10 ms +- 1 ms (netem), 0.1% random loss (nftables)",
    },
    Impairment {
        name: "lossy",
        qdisc: Some(("netem", "delay 1ms 200us reorder 1%")),
        qdisc_optional: true,
        loss_percent: Some(1.0),
        one_segment_per_packet: true,
        what: "1% random loss (nftables); 1 ms +- 0.2 ms, 1% reordered (netem, where the kernel has it)",
    },
    Impairment {
        name: "bottleneck",
        qdisc: Some(("tbf", "rate 1gbit burst 64kb latency 1ms")),
        qdisc_optional: false,
        loss_percent: None,
        one_segment_per_packet: false,
        what: "a 1 Gbit/s link with a 1 ms queue that drops when full (tbf: no netem needed)",
    },
];

/// The named impairment `name`, or an error that lists the names.
pub fn impairment(name: &str) -> Result<&'static Impairment> {
    IMPAIRMENTS
        .iter()
        .find(|i| i.name == name.trim())
        .ok_or_else(|| {
            Error::InvalidSpec(format!(
                "unknown impairment {name:?} (known: {})",
                IMPAIRMENTS.map(|i| i.name).join(", ")
            ))
        })
}

fn require_root() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::Setup(
            "network namespaces need root (CAP_NET_ADMIN and CAP_SYS_ADMIN): run as root".into(),
        ));
    }
    Ok(())
}

/// The impairment a `tc qdisc show` line describes (None for the veth default).
fn impairment_of(show: &str) -> Option<String> {
    let line = show.lines().next()?.trim();
    let kind = line.strip_prefix("qdisc ")?.split_whitespace().next()?;
    (kind != "noqueue").then(|| line.trim_start_matches("qdisc ").to_string())
}

fn tc(ns: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "tc"])
        .args(args)
        .output()
        .map_err(|e| Error::io("run `ip netns exec ... tc` (iproute2)", e))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if err.contains("No such file") && err.contains("tc") {
            return Err(Error::Setup(
                "`tc` (iproute2) is not installed: impairments need it".into(),
            ));
        }
        return Err(Error::Setup(format!(
            "`tc {}` failed: {err}",
            args.join(" ")
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new("ip").args(args).output().map_err(|e| {
        Error::io(
            "run `ip` (iproute2) to manage the veth topology: is it installed?",
            e,
        )
    })?;
    if !out.status.success() {
        return Err(Error::Setup(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Moves the calling thread into network namespace `ns` (made by `ip netns add`).
pub fn enter(ns: &str) -> Result<()> {
    let path = std::path::Path::new("/var/run/netns").join(ns);
    let f = std::fs::File::open(&path).map_err(|e| {
        Error::io(
            format!(
                "open network namespace {} (run `sendpath topology up` first)",
                path.display()
            ),
            e,
        )
    })?;
    // setns affects only the calling thread.
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
        Error::io(
            format!("enter network namespace {ns} (needs root)"),
            e.into(),
        )
    })
}

/// The calling thread's network namespace id (`net:[inode]`).
pub fn current() -> String {
    std::fs::read_link("/proc/thread-self/ns/net")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs `f` on a new thread inside namespace `ns` and returns its result (the caller's own
/// namespace is untouched).
pub fn run_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter(&ns)?;
        f()
    })
    .join()
    .map_err(|_| Error::Internal("a namespace worker thread panicked".into()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_impairments_are_found_and_unknown_ones_listed() {
        assert_eq!(impairment("lossy").unwrap().qdisc.unwrap().0, "netem");
        assert_eq!(impairment(" clean ").unwrap().qdisc, None);
        let e = impairment("satellite").unwrap_err().to_string();
        assert!(
            e.contains("satellite") && e.contains("clean, segmented, lan, wan, lossy, bottleneck"),
            "{e}"
        );
    }

    #[test]
    fn impairments_are_named_from_tc_show() {
        assert_eq!(impairment_of("qdisc noqueue 0: root refcnt 2 \n"), None);
        assert_eq!(
            impairment_of(
                "qdisc netem 8001: root refcnt 2 limit 1000 delay 2ms  500us loss 0.5%\n"
            )
            .as_deref(),
            Some("netem 8001: root refcnt 2 limit 1000 delay 2ms  500us loss 0.5%")
        );
        assert!(impairment_of("qdisc tbf 8002: root rate 400Mbit")
            .unwrap()
            .starts_with("tbf"));
        assert_eq!(impairment_of(""), None);
    }

    #[test]
    fn names_and_addresses() {
        let v = Veth::study();
        assert_eq!(v.server_ns, "ns_srv");
        assert_eq!(v.client_ns, "ns_cli");
        assert_eq!(v.server_ip, Ipv4Addr::new(10, 200, 1, 1));
        assert_eq!(v.client_ip, Ipv4Addr::new(10, 200, 1, 2));
        let w = Veth::new("t1", "10.201.7.77/24").unwrap();
        assert_eq!(w.server_ip, Ipv4Addr::new(10, 201, 7, 1));
        assert!(Veth::new("t1", "10.201.7.0").is_err());
        assert!(Veth::new("t1", "10.201.7.0/31").is_err());
        assert!(Veth::new("bad name", "10.201.7.0/24").is_err());
    }
}
