//! Helpers shared by the integration tests.
#![allow(dead_code)]

use sendpath_core::report::v1::{Record, Status};
use sendpath_core::send::hello_for;
use sendpath_core::spec::{Mode, RunSpec};
use sendpath_core::wire::{encode_end, fill_payload, put_header, SenderReport};
use std::io::Write;
use std::net::{TcpListener, TcpStream};

/// A connected pair of sockets on 127.0.0.1: (accepted side, connecting side).
pub fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (s, c)
}

/// A hand-driven sender: hello, then the given messages (payloads in the verify pattern,
/// message `corrupt` with one byte flipped), then maybe an end frame.
pub fn fake_sender(
    mut s: TcpStream,
    spec: RunSpec,
    seqs: Vec<u64>,
    corrupt: Option<u64>,
    end: bool,
) {
    s.write_all(&hello_for(&spec, 0).encode()).unwrap();
    for seq in seqs {
        let mut m = vec![0u8; spec.msg_size];
        put_header(&mut m, seq, sendpath_core::time::mono_ns());
        fill_payload(&mut m[16..], seq);
        if corrupt == Some(seq) {
            m[20] ^= 0xff;
        }
        s.write_all(&m).unwrap();
    }
    if end {
        s.write_all(&encode_end(&SenderReport::default())).unwrap();
    }
}

/// A short spec: 0.3 s window after 0.1 s warm-up.
pub fn short(mode: Mode, msg_size: usize, flows: usize) -> RunSpec {
    RunSpec {
        mode,
        msg_size,
        flows,
        duration_s: 0.3,
        warmup_s: 0.1,
        ..RunSpec::default()
    }
}

/// Asserts the invariants every good stream record keeps.
pub fn assert_good_stream(r: &Record) {
    assert_eq!(r.status, Status::Ok, "{:?}", r.error);
    assert!(r.throughput.bytes > 0, "no bytes");
    assert_eq!(
        r.throughput.bytes,
        r.throughput.messages * r.spec.msg_size_bytes,
        "bytes are whole messages"
    );
    assert_eq!(r.throughput.per_flow.len() as u64, r.spec.flows);
    for f in &r.throughput.per_flow {
        assert!(f.messages > 0, "flow {} received nothing", f.flow);
    }
    assert!(r.integrity.seq_checked);
    assert!(!r.spec.tcp_nodelay, "streams keep Nagle, like iperf3");
    assert_eq!(r.integrity.seq_errors, 0);
    let l = r.latency_ns.as_ref().expect("latency recorded");
    assert_eq!(
        l.count, r.throughput.messages,
        "one latency sample per message"
    );
    assert!(l.min > 0 && l.p50 >= l.min && l.p99 >= l.p50 && l.max >= l.p999);
    assert!(r.sender.reported && r.receiver.reported);
    assert_tcp_info(r, r.throughput.bytes);
    assert!(r.sender.counters.task_clock_ns.unwrap() > 0);
    assert!(r.derived.sender_cpu_ns_per_byte.unwrap() > 0.0);
    // Hardware counters are unknown on this VM: null and named, never 0.
    for side in [&r.sender, &r.receiver] {
        if side.counters.cycles.is_none() {
            assert!(side.unsupported.iter().any(|u| u == "cycles"));
        }
    }
}

/// Every flow's TCP_INFO is in the record, the window's bytes sent (retransmissions included)
/// at least `counted` over all flows, the sums equal to the flows'.
pub fn assert_tcp_info(r: &Record, counted: u64) {
    let t = r.tcp.as_ref().expect("TCP_INFO recorded");
    assert_eq!(t.side, "sender");
    assert_eq!(t.per_flow.len() as u64, r.spec.flows, "{t:?}");
    let mut flows: Vec<u64> = t.per_flow.iter().map(|f| f.flow).collect();
    flows.sort();
    assert_eq!(flows, (0..r.spec.flows).collect::<Vec<_>>());
    let sent: u64 = t.per_flow.iter().map(|f| f.info.bytes_sent.unwrap()).sum();
    // What the window counted was sent in it, give or take the messages in flight at its
    // edges: the sending socket's and the receiving socket's buffers per flow at most
    // (loopback autotunes them up to tcp_wmem's 4 MiB and tcp_rmem's 6 MiB).
    let slack = r.spec.flows * (12 << 20);
    assert!(sent + slack >= counted, "sent {sent}, counted {counted}");
    for f in &t.per_flow {
        let i = &f.info;
        assert!(
            i.segs_out.unwrap() > 0 && i.mss.unwrap() > 0 && i.cwnd.unwrap() > 0,
            "{i:?}"
        );
        assert!(i.rtt_us.is_some() && i.busy_us.is_some());
    }
    assert_eq!(
        t.retransmits,
        Some(t.per_flow.iter().map(|f| f.info.retransmits.unwrap()).sum())
    );
}

/// One flow of `spec` whose receiver (reading as `rx`) starts `delay` after the sender sent
/// its hello, so the receiver's window ends that much later than the sender's: the end
/// frame arrives long before the receiver's window is over. Returns what the receiver saw.
pub fn late_receiver(
    spec: RunSpec,
    rx: sendpath_core::spec::RxMode,
    delay: std::time::Duration,
) -> sendpath_core::results::FlowResult {
    let (s, c) = pair();
    let sender = std::thread::spawn(move || sendpath_core::pattern::run_sender(s, &spec, 0));
    std::thread::sleep(delay);
    let f = sendpath_core::pattern::run_receiver(c, sendpath_core::recv::RecvOptions::new(rx));
    let sent = sender.join().unwrap();
    assert!(sent.is_ok(), "sender: {:?}", sent.err());
    f
}
