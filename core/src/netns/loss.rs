//! Random loss on the sender -> receivers direction of the veth pair, made with nftables, so it
//! needs no `sch_netem` (which this kernel, CI's, and many cloud and container kernels lack).
//! One table, [`TABLE`], in the receivers' namespace, one rule on the prerouting hook:
//!
//! ```text
//! iifname "<receivers' veth end>" meta l4proto tcp numgen random mod 10000 < N counter drop
//! ```
//!
//! drops N in 10,000 of the TCP packets arriving from the sender at random, and counts them.
//! Where, matters: a rule on the sender's side (output or postrouting hook) drops the packet
//! inside the sender's own transmit call, which returns the error to TCP, and TCP sends the
//! segment again at once as if it had never left (measured here: 1% dropped, 37 retransmits for
//! 2,210 drops). Dropped on arrival, the sender learns of it only as a wire loss: from SACKs,
//! duplicate ACKs or a timeout.
//!
//! A packet is what the sender's stack hands its device: on veth, with segmentation offload,
//! one packet can carry dozens of segments, and dropping it loses them all at once (netem's
//! loss does the same on veth). So while the rule is in place the sender's end sends one
//! segment per packet (`gso_max_segs 1`, as a NIC without TSO would): the loss is per segment,
//! as on a wire, and the rule's counter is comparable with TCP_INFO's segments and
//! retransmissions. Deleting the namespaces (`topology down`) deletes the table too.

use crate::error::{Error, Result};
use std::io::Write;
use std::process::{Command, Stdio};

/// The nftables table that holds the loss rule (family inet).
pub const TABLE: &str = "sendpath_loss";
/// numgen's modulus: loss in steps of 0.01%.
const MODULUS: u32 = 10_000;
/// The kernel's default `gso_max_segs`, restored when the rule goes.
const DEFAULT_GSO_MAX_SEGS: u32 = 65_535;

/// A loss percentage as typed: `1%`, `0.5`, `0.01%`; `none` (or 0) for no loss. Steps of 0.01%.
pub fn parse_percent(s: &str) -> Result<Option<f64>> {
    let t = s.trim();
    if t == "none" {
        return Ok(None);
    }
    let bad = || {
        Error::InvalidSpec(format!(
            "--loss {s}: expected a percentage from 0.01% to 100% (e.g. 1%, 0.5), or none"
        ))
    };
    let p: f64 = t
        .strip_suffix('%')
        .unwrap_or(t)
        .trim()
        .parse()
        .map_err(|_| bad())?;
    if p == 0.0 {
        return Ok(None);
    }
    if !(0.01..=100.0).contains(&p) {
        return Err(bad());
    }
    Ok(Some(p))
}

/// The loss rule in place on a namespace, as nftables shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The device whose arriving TCP packets it drops.
    pub ifname: String,
    /// N of the rule's `mod 10000 < N`.
    pub below: u32,
    /// Packets it has dropped since it was put in place.
    pub dropped: u64,
}

impl Rule {
    /// The share of packets it drops, in percent.
    pub fn percent(&self) -> f64 {
        f64::from(self.below) * 100.0 / f64::from(MODULUS)
    }

    /// What ran, for `spec.impairment`: the rule as nftables holds it.
    pub fn describe(&self) -> String {
        format!(
            "nftables loss {}% on arrival: iifname \"{}\" meta l4proto tcp numgen random mod {MODULUS} < {} counter drop (gso_max_segs 1: one segment per packet)",
            self.percent(),
            self.ifname,
            self.below
        )
    }
}

/// The two ends of the link the rule impairs: each a namespace and its veth end.
#[derive(Clone, Copy, Debug)]
pub struct Link<'a> {
    /// Where the segments come from: its end sends one segment per packet.
    pub sender: (&'a str, &'a str),
    /// Where they arrive: the rule is here.
    pub receiver: (&'a str, &'a str),
}

/// Puts the rule dropping `percent` of the TCP packets arriving on `link`'s receiving end,
/// replacing any loss rule there, and makes its sending end send one segment per packet.
pub fn set(link: Link, percent: f64) -> Result<()> {
    let (ns, ifname) = link.receiver;
    let below = (percent * f64::from(MODULUS) / 100.0).round() as u32;
    if !(1..=MODULUS).contains(&below) {
        return Err(Error::InvalidSpec(format!(
            "loss {percent}%: expected 0.01% to 100%"
        )));
    }
    // (`table` then `delete table`: the table is made if missing, so the delete never fails,
    // and the definition after it starts from nothing, in one transaction.)
    let script = format!(
        "table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n  chain arriving {{\n    type filter hook prerouting priority 0; policy accept;\n    iifname \"{ifname}\" meta l4proto tcp numgen random mod {MODULUS} < {below} counter drop\n  }}\n}}\n"
    );
    nft(ns, &["-f", "-"], Some(&script))?;
    let (tx_ns, tx_if) = link.sender;
    one_segment_per_packet(tx_ns, tx_if, true)
}

/// Removes the loss rule from `link` (none there is fine) and gives its sending end back the
/// kernel's default segmentation.
pub fn remove(link: Link) -> Result<()> {
    let (ns, _) = link.receiver;
    if read(ns).is_some() {
        nft(ns, &["delete", "table", "inet", TABLE], None)?;
        let (tx_ns, tx_if) = link.sender;
        one_segment_per_packet(tx_ns, tx_if, false)?;
    }
    Ok(())
}

/// The loss rule in namespace `ns` with its counter; None when there is none (or no `nft`).
pub fn read(ns: &str) -> Option<Rule> {
    counter(ns).ok()
}

/// The loss rule in namespace `ns` with its counter, or why it could not be read.
pub fn counter(ns: &str) -> Result<Rule> {
    let out = nft(ns, &["-j", "list", "table", "inet", TABLE], None)?;
    parse_listing(&out).ok_or_else(|| {
        Error::Setup(format!(
            "no loss rule in {ns}'s table inet {TABLE} (nft listed {} bytes)",
            out.len()
        ))
    })
}

/// The rule in `nft -j list table` output.
fn parse_listing(json: &str) -> Option<Rule> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v["nftables"].as_array()?.iter().find_map(|item| {
        let expr = item["rule"]["expr"].as_array()?;
        let mut rule = Rule {
            ifname: String::new(),
            below: 0,
            dropped: 0,
        };
        let mut has_drop = false;
        for e in expr {
            let m = &e["match"];
            if m["left"]["meta"]["key"] == "iifname" {
                rule.ifname = m["right"].as_str()?.to_string();
            }
            if m["left"]["numgen"]["mod"].as_u64() == Some(u64::from(MODULUS)) && m["op"] == "<" {
                rule.below = u32::try_from(m["right"].as_u64()?).ok()?;
            }
            if let Some(n) = e["counter"]["packets"].as_u64() {
                rule.dropped = n;
            }
            has_drop |= e.get("drop").is_some();
        }
        (has_drop && rule.below > 0 && !rule.ifname.is_empty()).then_some(rule)
    })
}

/// Makes `ifname` in `ns` send one segment per packet (`gso_max_segs 1`), or as many as the
/// kernel's default allows.
pub fn one_segment_per_packet(ns: &str, ifname: &str, one: bool) -> Result<()> {
    let segs = if one { 1 } else { DEFAULT_GSO_MAX_SEGS }.to_string();
    run(Command::new("ip").args(["-n", ns, "link", "set", ifname, "gso_max_segs", &segs]))
        .map(|_| ())
}

/// Whether `ifname` in `ns` sends one segment per packet (None: unreadable).
pub fn sends_one_segment_per_packet(ns: &str, ifname: &str) -> Option<bool> {
    let out = run(Command::new("ip").args(["-n", ns, "-d", "-j", "link", "show", ifname])).ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    Some(v[0]["gso_max_segs"].as_u64()? == 1)
}

/// `nft ARGS` inside namespace `ns`, with `stdin` fed to it.
fn nft(ns: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    // (`ip netns exec` would report a missing nft as its own failure: ask nft first, once per
    // process: the drop counter is read at a window's edges, where every process spawned
    // costs the measurement.)
    static INSTALLED: std::sync::OnceLock<std::io::ErrorKind> = std::sync::OnceLock::new();
    let missing = *INSTALLED.get_or_init(|| match Command::new("nft").arg("--version").output() {
        Ok(_) => std::io::ErrorKind::Other,
        Err(e) => e.kind(),
    });
    if missing == std::io::ErrorKind::NotFound {
        return Err(Error::Setup(
            "random loss needs the `nft` command, which is not installed (Debian and Ubuntu: apt-get install nftables)".into(),
        ));
    }
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, "nft"]).args(args);
    match stdin {
        None => run(&mut cmd),
        Some(text) => {
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| Error::io("run `ip netns exec ... nft`", e))?;
            if let Some(mut i) = child.stdin.take() {
                i.write_all(text.as_bytes())
                    .map_err(|e| Error::io("write to nft", e))?;
            }
            let out = child
                .wait_with_output()
                .map_err(|e| Error::io("wait for nft", e))?;
            check(&cmd, out)
        }
    }
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .map_err(|e| Error::io("run `ip` (iproute2): is it installed?", e))?;
    check(cmd, out)
}

fn check(cmd: &Command, out: std::process::Output) -> Result<String> {
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let err = String::from_utf8_lossy(&out.stderr);
    // (nft's errors span several lines: the message, then the offending input underlined.)
    let first = err
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    Err(Error::Setup(format!(
        "`{} {}` failed: {first}",
        cmd.get_program().to_string_lossy(),
        args.join(" ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_parse_in_every_form_and_bad_ones_are_refused() {
        assert_eq!(parse_percent("1%").unwrap(), Some(1.0));
        assert_eq!(parse_percent(" 0.5 ").unwrap(), Some(0.5));
        assert_eq!(parse_percent("100%").unwrap(), Some(100.0));
        assert_eq!(parse_percent("none").unwrap(), None);
        assert_eq!(parse_percent("0%").unwrap(), None);
        for bad in ["", "x", "-1%", "0.001%", "101", "NaN", "1%%"] {
            let e = parse_percent(bad).unwrap_err().to_string();
            assert!(e.contains("--loss"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_rule_is_read_back_from_nft_json() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet", "name": "sendpath_loss", "handle": 1}}, {"chain": {"family": "inet", "table": "sendpath_loss", "name": "out", "handle": 1, "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}}, {"rule": {"family": "inet", "table": "sendpath_loss", "chain": "out", "handle": 2, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "tl_vc"}}, {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}, {"match": {"op": "<", "left": {"numgen": {"mode": "random", "mod": 10000, "offset": 0}}, "right": 100}}, {"counter": {"packets": 42, "bytes": 6000}}, {"drop": null}]}}]}"#;
        let r = parse_listing(json).unwrap();
        assert_eq!(
            r,
            Rule {
                ifname: "tl_vc".into(),
                below: 100,
                dropped: 42
            }
        );
        assert_eq!(r.percent(), 1.0);
        assert!(r.describe().contains("mod 10000 < 100 counter drop"));
        // A table without the drop (someone else's edit) is not our rule.
        assert_eq!(
            parse_listing(&json.replace(r#", {"drop": null}"#, "")),
            None
        );
        assert_eq!(parse_listing("not json"), None);
    }
}
