//! The network interface that carries a connection: found by the connection's local address,
//! described with the ioctls ethtool uses (so it reads the calling thread's namespace, not
//! whichever one /sys was mounted for), plus the link speed from /sys where there is one.

use sendpath_record::v1::Interface;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GDRVINFO: u32 = 0x3;
/// (name in the record, ethtool "get" command) for each offload read.
const OFFLOADS: [(&str, u32); 6] = [
    ("rx_checksum", 0x14),
    ("tx_checksum", 0x16),
    ("sg", 0x18),
    ("tso", 0x1e),
    ("gso", 0x23),
    ("gro", 0x2b),
];

/// `struct ifreq` with the data pointer ethtool takes.
#[repr(C)]
struct IfReqData {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

/// `struct ifreq` with an int (MTU).
#[repr(C)]
struct IfReqInt {
    name: [libc::c_char; libc::IFNAMSIZ],
    value: libc::c_int,
    _pad: [u8; 20],
}

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

#[repr(C)]
struct EthtoolDrvinfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    counts: [u32; 5],
}

fn name_field(name: &str) -> Option<[libc::c_char; libc::IFNAMSIZ]> {
    if name.len() >= libc::IFNAMSIZ {
        return None;
    }
    let mut out = [0 as libc::c_char; libc::IFNAMSIZ];
    for (o, b) in out.iter_mut().zip(name.bytes()) {
        *o = b as libc::c_char;
    }
    Some(out)
}

/// The interface holding `ip`, described (None if no interface has it).
pub fn for_local_ip(ip: IpAddr) -> Option<Interface> {
    let name = nix::ifaddrs::getifaddrs().ok()?.find_map(|a| {
        let addr = a.address?;
        let has = match ip {
            IpAddr::V4(v4) => addr.as_sockaddr_in().is_some_and(|s| s.ip() == v4),
            IpAddr::V6(v6) => addr.as_sockaddr_in6().is_some_and(|s| s.ip() == v6),
        };
        has.then_some(a.interface_name)
    })?;
    Some(describe(&name))
}

/// What the kernel says of the interface `name`.
pub fn describe(name: &str) -> Interface {
    let mut i = Interface {
        name: name.to_string(),
        ..Interface::default()
    };
    let Some(field) = name_field(name) else {
        return i;
    };
    // SAFETY: socket(2) has no memory preconditions; the fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return i;
    }
    // SAFETY: fd is a fresh descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut mtu = IfReqInt {
        name: field,
        value: 0,
        _pad: [0; 20],
    };
    // SAFETY: SIOCGIFMTU reads the name and writes the int of a live, ifreq-sized struct.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFMTU, &mut mtu) } == 0 {
        i.mtu = Some(mtu.value as u64);
    }
    let ethtool = |data: *mut libc::c_void| {
        let mut req = IfReqData {
            name: field,
            data,
            _pad: [0; 16],
        };
        // SAFETY: SIOCETHTOOL reads the name and the command at `data`, which points to a
        // live struct of the size that command writes.
        unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL, &mut req) == 0 }
    };
    let mut drv = EthtoolDrvinfo {
        cmd: ETHTOOL_GDRVINFO,
        driver: [0; 32],
        version: [0; 32],
        fw_version: [0; 32],
        bus_info: [0; 32],
        erom_version: [0; 32],
        reserved2: [0; 12],
        counts: [0; 5],
    };
    if ethtool((&mut drv as *mut EthtoolDrvinfo).cast()) {
        let end = drv.driver.iter().position(|&b| b == 0).unwrap_or(32);
        i.driver = Some(String::from_utf8_lossy(&drv.driver[..end]).into_owned());
    } else if name == "lo" {
        i.driver = Some("loopback".into());
    }
    for (label, cmd) in OFFLOADS {
        let mut v = EthtoolValue { cmd, data: 0 };
        if ethtool((&mut v as *mut EthtoolValue).cast()) {
            if v.data != 0 {
                i.offloads_on.push(label.into());
            } else {
                i.offloads_off.push(label.into());
            }
        }
    }
    i.speed_mbps = std::fs::read_to_string(format!("/sys/class/net/{name}/speed"))
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|&s| s > 0)
        .map(|s| s as u64);
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found_by_its_address() {
        let i = for_local_ip("127.0.0.1".parse().unwrap()).expect("lo holds 127.0.0.1");
        assert_eq!(i.name, "lo");
        assert_eq!(i.mtu, Some(65536), "{i:?}");
        assert!(i.driver.is_some());
        assert!(
            i.offloads_on.len() + i.offloads_off.len() >= 3,
            "offloads read: {i:?}"
        );
        assert!(for_local_ip("192.0.2.77".parse().unwrap()).is_none());
        assert!(describe("no-such-if0").mtu.is_none());
    }
}
