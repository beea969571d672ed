//! JSON record schema `sendpath/v1`: one object per measured cell and repetition, one per line.
//!
//! Units live in key names (`_ns`, `_bytes`, `_gbps`, `_s`). A counter the machine cannot count
//! is `null` and named in `unsupported`, never 0. Fields may be added; names never change
//! meaning within v1. The committed JSON Schema (`docs/schema/v1.json`) is generated from these
//! types and checked by a test. These are output types only: sendpath-core builds them from
//! its measurements.

use crate::axes::{Engine, Mode, Pattern, Placement, RxMode, UringOrdering};
use crate::batch::Batch;
pub use crate::latency_v1::Latency;
pub use crate::profile_v1::{BucketV1, ProfileV1, SideProfileV1, SymbolV1};
pub use crate::stages_v1::{StagesV1, TypicalStagesV1};
pub use crate::tcp_v1::{TcpFlowInfo, TcpFlowV1, TcpV1};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The schema identifier every v1 record carries.
pub const SCHEMA: &str = "sendpath/v1";

/// One measured cell and repetition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Record {
    /// Always `sendpath/v1`.
    pub schema: String,
    /// `ok`, or `failed` with `error` (what was measured before the failure is kept).
    pub status: Status,
    /// Why the cell failed.
    pub error: Option<String>,
    /// When the cell started, RFC 3339 UTC.
    pub started_at: String,
    /// The tool that measured.
    pub tool: Tool,
    /// The machine.
    pub host: Host,
    /// The fully resolved options.
    pub spec: Spec,
    /// Goodput over the measured window.
    pub throughput: Throughput,
    /// Per-message latency; null when not recorded (`--rx-discard`, `--no-latency`).
    pub latency_ns: Option<Latency>,
    /// `rate` only: latency from the actual send time, beside `latency_ns` which is measured
    /// from the intended send time (corrected for coordinated omission).
    #[serde(default)]
    pub latency_uncorrected_ns: Option<Latency>,
    /// `rate` only: the requested and achieved message rates.
    #[serde(default)]
    pub rate: Option<RateV1>,
    /// Sender threads over the window.
    pub sender: Side,
    /// Receiver threads over the window.
    pub receiver: Side,
    /// Machine CPU time by category over the window (/proc/stat); null if not sampled.
    pub host_cpu: Option<HostCpuV1>,
    /// Zero-copy accounting; null for modes that do not use zero-copy.
    pub zerocopy: Option<ZeroCopy>,
    /// Sequence and payload checks.
    pub integrity: Integrity,
    /// Figures computed from the above.
    pub derived: Derived,
    /// Runs across two hosts (`--remote`) only: who did what, both hosts' facts and the
    /// interfaces that carried the traffic, and which clock the latency is on. Absent from
    /// local runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteV1>,
    /// `--timestamps` only: where a sampled message's time went, stage by stage, from the
    /// kernel's software timestamps. Absent without `--timestamps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<StagesV1>,
    /// What TCP did over the window (TCP_INFO of each sending socket, read at the window's
    /// edges); null where no flow reported it (records from before this field).
    #[serde(default)]
    pub tcp: Option<TcpV1>,
    /// How fast the host ran just before and just after this repetition (a fixed arithmetic
    /// probe on the sender's CPU): on a shared host the CPU's speed moves with other tenants'
    /// load, and this says by how much. Absent where not probed: runs across hosts (`--remote`,
    /// the per-mode binaries), older records, a probe that could not be pinned to the sender's
    /// CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_speed: Option<HostSpeedV1>,
    /// What each send operation carried over the window: the sender's calls, messages and
    /// bytes per call (every mode, both engines; absent in records from before `--batch`, and
    /// from a far sender that did not report it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<CallsV1>,
    /// `--profile` only: where each side's CPU went over the window, by bucket and symbol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileV1>,
}

/// The host's speed around one repetition: nanoseconds a fixed loop of integer arithmetic
/// took (the fastest of a few runs), timed outside the window. Smaller is faster; probes
/// compare only under the same `probe` name (across machines too: the same loop, timed on
/// each).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HostSpeedV1 {
    /// The probe's workload (e.g. `alu6x500k-best3`).
    pub probe: String,
    /// The CPU it ran on (the sender's first pinned CPU); null when unpinned.
    pub cpu: Option<u64>,
    /// Before the flows started.
    pub before_ns: u64,
    /// After the flows ended.
    pub after_ns: u64,
}

/// A run between this host (the driver, whose facts are `host`) and a `sendpath serve`
/// daemon on the far host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RemoteV1 {
    /// Version of the control protocol spoken.
    pub protocol: u64,
    /// What the far host did: `receiver` (the default: this host's send path is measured) or
    /// `sender` (`--reverse`, as iperf3 -R: the far host's send path is measured).
    pub far_role: String,
    /// This host's end of the data connections.
    pub driver: RemoteEnd,
    /// The far host's end.
    pub far: RemoteEnd,
    /// The clock per-message latency was measured on: `rr` round trips on the host that sends
    /// the requests (the receiving side); stream and rate one-way latency on the receiving
    /// host's clock, with the sender's stamps moved onto it by `clock_offset_ns`.
    pub latency_clock: String,
    /// Sender's CLOCK_MONOTONIC minus the receiver's, estimated over the control connection
    /// before the cell (the probe with the shortest round trip of several, as NTP does).
    pub clock_offset_ns: i64,
    /// Half that probe's round trip: the most the offset (and so one-way latency) can be off.
    pub clock_uncertainty_ns: u64,
}

/// One host of a remote run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RemoteEnd {
    /// The address its data connections used (ip:port of the first flow).
    pub addr: String,
    /// The host's facts (for the driver, the same as the record's `host`).
    pub host: Host,
    /// The network interface that carried the traffic, where it could be read.
    pub interface: Option<Interface>,
}

/// A network interface, as the kernel describes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Interface {
    /// Its name (e.g. `eth0`, `lo`, `ns_vc`).
    pub name: String,
    /// Its driver as ethtool reports it (e.g. `veth`, `mlx5_core`), if readable.
    pub driver: Option<String>,
    /// MTU in bytes.
    pub mtu: Option<u64>,
    /// Link speed in Mbit/s, if the driver reports one.
    pub speed_mbps: Option<u64>,
    /// Offloads that are on (of tso, gso, gro, sg, tx_checksum, rx_checksum).
    pub offloads_on: Vec<String>,
    /// Offloads that are off, of the same list (one missing from both could not be read).
    pub offloads_off: Vec<String>,
}

/// Outcome of a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Measured as asked.
    Ok,
    /// Did not complete; `error` says why.
    Failed,
}

/// Tool identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tool {
    /// sendpath version.
    pub version: String,
    /// Git commit of the build.
    pub git_commit: String,
}

/// Host facts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Host {
    /// Kernel release.
    pub kernel: String,
    /// CPU model.
    pub cpu_model: String,
    /// CPUs available.
    pub cores: u64,
    /// Under a hypervisor.
    pub virtualized: bool,
    /// Counters collected on this machine.
    pub counters_supported: Vec<String>,
    /// io_uring opcodes supported (empty: no io_uring).
    pub io_uring_ops: Vec<String>,
    /// Why io_uring cannot be used here (null: it can); uring cells fail with this reason.
    pub io_uring_error: Option<String>,
    /// SO_ZEROCOPY available.
    pub so_zerocopy: bool,
}

/// The options of the cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Spec {
    /// The send path.
    pub mode: Mode,
    /// Who drove the send syscalls.
    pub engine: Engine,
    /// The traffic pattern.
    pub pattern: Pattern,
    /// Bytes per message, 16-byte header included.
    pub msg_size_bytes: u64,
    /// Connections.
    pub flows: u64,
    /// Sender worker threads.
    pub threads: u64,
    /// Measured window.
    pub duration_s: f64,
    /// Warm-up before the window.
    pub warmup_s: f64,
    /// Repetition index within the cell.
    pub rep: u64,
    /// `loopback` or `veth`.
    pub topology: String,
    /// Receiver: `copy` (recv into a large buffer), `discard` (MSG_TRUNC) or `uring` (io_uring
    /// multishot recv into a provided-buffer ring, parsed in place; checks as `copy`).
    pub rx: RxMode,
    /// Payload verification on.
    pub verify: bool,
    /// Per-message latency recorded.
    pub latency: bool,
    /// Zero-copy slots per flow.
    pub zc_slots: u64,
    /// io_uring engine tunables and ring setup; null on the threads engine.
    pub uring: Option<UringSpec>,
    /// `rr`: bytes of each response (null for other patterns).
    #[serde(default)]
    pub resp_size_bytes: Option<u64>,
    /// `rate`: requested messages per second per flow (null for other patterns).
    #[serde(default)]
    pub rate_per_flow_per_s: Option<f64>,
    /// `rate` cells of a sweep: the fraction of the measured stream capacity asked for.
    #[serde(default)]
    pub rate_fraction_of_stream: Option<f64>,
    /// Receivers (and both ends of `rr`) spun on non-blocking sockets instead of sleeping.
    #[serde(default)]
    pub busy_poll: bool,
    /// Nagle's algorithm was off on the data sockets (rr and rate: small writes go out at
    /// once instead of waiting for the peer's delayed ACK).
    #[serde(default)]
    pub tcp_nodelay: bool,
    /// CPUs the sender and receiver threads were pinned to (null: not pinned).
    #[serde(default)]
    pub pin: Option<PinV1>,
    /// How `pin` was chosen: `unpinned`, `apart`, `together` or `custom` (null in records
    /// from before the placement axis).
    #[serde(default)]
    pub placement: Option<Placement>,
    /// Test hook: the receiver paused reading (null normally).
    #[serde(default)]
    pub rx_stall: Option<RxStallV1>,
    /// `--timestamps`: one message in this many was stamped at every stage (see `stages`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamps_every: Option<u64>,
    /// `--batch`: messages per send operation asked for, the same for every mode and engine:
    /// `"1"`, or a size (`"512K"`: as many whole messages as fit). `calls` says what ran.
    /// Absent in records from before the batch axis (then the threads engine sent one
    /// message per call and io_uring its ordering's depth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Batch>,
    /// `--profile`: samples per second of each side's threads (absent without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_hz: Option<u64>,
    /// veth only: the impairment on the sender's end when the cell ran (its root qdisc as
    /// `tc qdisc show` says it, e.g. `netem 8001: root ... delay 2ms loss 0.5%`); absent when
    /// the pair was clean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impairment: Option<String>,
}

/// What the sender's send operations carried over the window (`--batch`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CallsV1 {
    /// Send operations whose messages are counted in the window: `send`/`sendmsg` calls on
    /// the threads engine, send SQEs on io_uring (the rest of a short send is another).
    pub calls: u64,
    /// Messages per operation, the window's average.
    pub messages_per_call: f64,
    /// Message bytes per operation, the window's average.
    pub bytes_per_call: f64,
    /// Messages one operation was built to carry: the batch in messages, after the limit of
    /// the mode and engine if one bound (`capped_by`).
    pub batch_messages: u64,
    /// What held the batch below the size asked for (e.g. sendmsg's 1024 iovecs for A2:
    /// 512 messages of header and payload); null when nothing did.
    pub capped_by: Option<String>,
}

/// CPU pinning of each side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PinV1 {
    /// CPUs of the sender (server) threads, round-robin.
    pub sender: Vec<u64>,
    /// CPUs of the receiver (client) threads, round-robin.
    pub receiver: Vec<u64>,
}

/// A receiver pause (test hook).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RxStallV1 {
    /// Seconds into the window.
    pub after_s: f64,
    /// Length of the pause in seconds.
    pub for_s: f64,
}

/// How the io_uring engine ran the cell. (rr and rate keep one send in flight per flow and
/// so ignore depth, batch and ordering; the requested values are recorded.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UringSpec {
    /// `link`: the one-message sends of one chain linked with IOSQE_IO_LINK and MSG_WAITALL;
    /// `bundle` and `coalesce`: the messages of the one send in flight, the batch in messages
    /// (`spec.batch`, after a mode's limit). A flow has one chain, bundle or coalesced send
    /// in flight at a time, so its stream stays in order.
    pub depth: u64,
    /// Completions each io_uring_enter waits for (capped at what is in flight).
    pub batch: u64,
    /// How each flow's sends go out in order: `link` (one SQE per message, linked chains of
    /// `depth` SQEs: `--batch 1`), `bundle` (the batch as entries of a provided-buffer ring,
    /// one send bundle) or `coalesce` (one SQE carries the batch: A1 staged back to back, A2
    /// in one iovec, A3 one `SEND_ZC`). Records before this field: `link`.
    #[serde(default)]
    pub ordering: UringOrdering,
    /// Ring setup flags the kernel accepted (e.g. single_issuer, defer_taskrun, submit_all);
    /// empty if no sender reported them.
    pub setup_flags: Vec<String>,
    /// The ring fd was registered (no fd lookup per io_uring_enter).
    pub registered_ring_fd: bool,
}

/// Goodput: message bytes received in the window / window length.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Throughput {
    /// Message bytes received in the window.
    pub bytes: u64,
    /// Messages received in the window.
    pub messages: u64,
    /// Window length.
    pub seconds: f64,
    /// Gigabits (1e9 bits) per second.
    pub gbps: f64,
    /// Messages per second (rr: transactions per second).
    pub msgs_per_s: f64,
    /// `rr` only: request/response transactions per second, all flows.
    #[serde(default)]
    pub transactions_per_s: Option<f64>,
    /// Each flow.
    pub per_flow: Vec<FlowThroughput>,
}

/// Requested and achieved rate of an open-loop (`rate`) cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RateV1 {
    /// Messages per second per flow asked for.
    pub requested_per_flow_per_s: f64,
    /// Messages per second per flow received in the window.
    pub achieved_per_flow_per_s: f64,
    /// Whether the achieved rate is within 5% of the requested one; when false the sender
    /// (or the path) could not keep up, and the corrected latency shows by how much.
    pub kept: bool,
}

/// One flow's goodput.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FlowThroughput {
    /// Flow index.
    pub flow: u64,
    /// Bytes in the window.
    pub bytes: u64,
    /// Messages in the window.
    pub messages: u64,
    /// Gigabits per second.
    pub gbps: f64,
}

/// CPU time of one side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Cpu {
    /// User mode.
    pub user_ns: u64,
    /// Kernel mode.
    pub sys_ns: u64,
}

/// Counters of one side; null = not countable here (and named in `unsupported`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Counters {
    /// On-CPU time.
    pub task_clock_ns: Option<u64>,
    /// Context switches.
    pub context_switches: Option<u64>,
    /// CPU migrations.
    pub cpu_migrations: Option<u64>,
    /// Page faults.
    pub page_faults: Option<u64>,
    /// Cycles.
    pub cycles: Option<u64>,
    /// Instructions.
    pub instructions: Option<u64>,
    /// Cache misses.
    pub cache_misses: Option<u64>,
    /// L1D load misses.
    pub l1d_load_misses: Option<u64>,
    /// LLC load misses.
    pub llc_load_misses: Option<u64>,
}

/// One side (sender or receiver threads).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Side {
    /// False when this side's figures never arrived (e.g. no end frame): all zero then.
    pub reported: bool,
    /// CPU time.
    pub cpu: Cpu,
    /// Counters.
    pub counters: Counters,
    /// Counters this machine or build cannot count.
    pub unsupported: Vec<String>,
    /// CPUs this side's threads were on when the window ended. Where they overlap the other
    /// side's, the two shared a CPU, which on loopback changes the numbers several-fold.
    #[serde(default)]
    pub cpus: Vec<u64>,
    /// Receiver with `--busy-poll` over an interface with NAPI (a real NIC; loopback and veth
    /// have none): the SO_BUSY_POLL microseconds set on its sockets. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub napi_busy_poll_us: Option<u64>,
}

/// Machine CPU time by category.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HostCpuV1 {
    /// User + nice.
    pub user_ns: u64,
    /// System.
    pub system_ns: u64,
    /// Softirq.
    pub softirq_ns: u64,
    /// Hard irq.
    pub irq_ns: u64,
    /// Idle + iowait.
    pub idle_ns: u64,
}

/// Zero-copy accounting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ZeroCopy {
    /// Zero-copy send calls.
    pub sends: u64,
    /// Completions received.
    pub completions: u64,
    /// Completions that report the kernel copied.
    pub copied: u64,
    /// copied / completions (null before any completion).
    pub copied_fraction: Option<f64>,
    /// Most buffers owned by the kernel at once.
    pub max_outstanding: u64,
    /// ENOBUFS retries.
    pub enobufs: u64,
    /// `achieved` (no completion copied), `partial`, `not_achieved` (every completion copied:
    /// the kernel copies for locally delivered data, e.g. loopback and veth), or `unknown`.
    pub verdict: String,
    /// Messages the zero-copy sends carried (a message finished by a second send after a
    /// short one counts once; 0 in records from before this field).
    #[serde(default)]
    pub messages: u64,
    /// messages / sends: 1 (or a little less, after short sends) when every send carries one
    /// message (threads, io_uring `link`), many when io_uring coalesces messages into one
    /// `SEND_ZC` (`coalesce`): the batching, not zero-copy, is then what saves syscalls.
    #[serde(default)]
    pub messages_per_send: Option<f64>,
    /// Times the sender had a message ready, no free slot, and waited for a completion.
    #[serde(default)]
    pub slot_waits: u64,
    /// How long the kernel held each slot: from the first send over it to the moment the
    /// sender saw the completion that released it (`kind` = `slot_hold`). The threads engine
    /// reads completions only when it needs a slot, so there this includes how long a
    /// completion sat unread.
    #[serde(default)]
    pub slot_hold_ns: Option<Latency>,
}

/// Sequence and payload checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Integrity {
    /// Whether every message in the window had its sequence checked (false with discard).
    pub seq_checked: bool,
    /// Gaps, repeats and reorders.
    pub seq_errors: u64,
    /// Payload bytes checked against the verify pattern.
    pub verified_bytes: u64,
    /// Messages whose payload was wrong.
    pub verify_errors: u64,
}

/// Derived figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Derived {
    /// Sender CPU (user + sys) per byte received.
    pub sender_cpu_ns_per_byte: Option<f64>,
    /// Receiver CPU per byte received.
    pub receiver_cpu_ns_per_byte: Option<f64>,
    /// Sender cycles per byte (hardware counters only).
    pub sender_cycles_per_byte: Option<f64>,
    /// Receiver cycles per byte (hardware counters only).
    pub receiver_cycles_per_byte: Option<f64>,
    /// Sender + receiver cache misses per GB (1e9 bytes).
    pub cache_misses_per_gb: Option<f64>,
    /// Sender + receiver L1D load misses per GB.
    pub l1d_misses_per_gb: Option<f64>,
    /// Sender + receiver LLC load misses per GB.
    pub llc_misses_per_gb: Option<f64>,
    /// Sender + receiver context switches per second.
    pub context_switches_per_s: Option<f64>,
}

impl Record {
    /// The record as one line of JSON.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("record serializes")
    }

    /// The JSON Schema of v1, as committed in `docs/schema/v1.json`.
    pub fn json_schema() -> String {
        let schema = schemars::schema_for!(Record);
        serde_json::to_string_pretty(&schema).expect("schema serializes") + "\n"
    }
}
