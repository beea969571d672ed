//! What the veth tests share: the root check, the guard that removes a test's namespaces
//! even when an assert fails, and the impairment any kernel with `tc` can make.

use sendpath_core::netns::Veth;
pub use sendpath_core::testing::{skip, Skip};
use std::process::Command;

/// The real `sendpath` command.
pub fn sendpath() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sendpath"))
}

/// Network namespaces need root (CI runs as root).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Removes the test's namespaces (and with them the pair and its qdisc) when dropped.
pub struct Cleanup(pub Veth);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.0.down();
    }
}

/// A veth pair of the test's own, up: namespaces `<stem><pid>_srv`/`_cli` on
/// `10.<octet>.<pid>.0/24` (a stem and octet per test, so tests running at once never share a
/// pair), with the guard that removes it. Returns the pair, its guard, its name and prefix.
pub fn veth_up(stem: &str, octet: u32) -> (Veth, Cleanup, String, String) {
    let pid = std::process::id();
    let name = format!("{stem}{}", pid % 10_000);
    let prefix = format!("10.{octet}.{}.0/24", pid % 250);
    let veth = Veth::new(&name, &prefix).unwrap();
    let guard = Cleanup(veth.clone());
    veth.up().unwrap();
    (veth, guard, name, prefix)
}

/// A token bucket on the sender's end (`tbf` ARGS): with a queue too short for the offered
/// load it drops packets, the loss this kernel can make without netem.
pub fn tbf(veth: &Veth, args: &[&str]) {
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &veth.server_ns,
            "tc",
            "qdisc",
            "replace",
            "dev",
        ])
        .arg(&veth.server_if)
        .args(["root", "tbf"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
