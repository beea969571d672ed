//! The decoders of everything that crosses the wire, under a seeded mutation fuzzer: the hello
//! frame (and the check of a run's hellos), the stream parser with its end frame, the control
//! line parser and the sealed-line opener. Each input is a valid one cut, flipped, spliced or
//! with a field set to an edge value; none may panic, and none may make the decoder hold more
//! than [`ALLOC_BOUND`] bytes at once (a counting allocator, per thread, watches). cargo-fuzz
//! needs a nightly toolchain, which this project does not assume; the seed is fixed, so a
//! failure repeats, and its input is printed.
//!
//! CI runs [`CI_INPUTS`] inputs per decoder (a few seconds); `SENDPATH_FUZZ_INPUTS=1000000
//! cargo test --release -p sendpath-core --test fuzz -- --nocapture` runs the long campaign and
//! prints how many inputs each decoder took.

use sendpath_core::remote::auth::{Role, Token};
use sendpath_core::remote::conn::unseal;
use sendpath_core::remote::proto::{parse, FarRole, Msg, TestRequest};
use sendpath_core::send::hello_for;
use sendpath_core::spec::{Engine, Mode, Pattern, RunSpec};
use sendpath_core::wire::hello::check_run;
use sendpath_core::wire::message::{fill_payload, put_header};
use sendpath_core::wire::{encode_end, Hello, Parsed, Parser, SenderReport, HELLO_LEN};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Inputs per decoder in a plain `cargo test`.
const CI_INPUTS: u64 = 50_000;
/// The most bytes a decoder may hold at once while it takes one input (every input is under
/// 64 KiB; the parser's end frame is at most `MAX_END_LEN`).
const ALLOC_BOUND: isize = 1 << 20;

/// Counts the bytes each thread holds, and the most it held since the last [`reset_peak`].
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + delta;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

// SAFETY: every call is passed to the system allocator unchanged; the bookkeeping touches
// only const-initialized thread locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            note(l.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: as alloc.
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            note(l.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        note(-(l.size() as isize));
        // SAFETY: as alloc.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: as alloc.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            note(new as isize - l.size() as isize);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns what it returned and the most bytes it held at once beyond what the
/// thread held before.
fn held_by<T>(f: impl FnOnce() -> T) -> (T, isize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(Cell::get) - base)
}

fn inputs() -> u64 {
    std::env::var("SENDPATH_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CI_INPUTS)
}

/// xorshift64: a fixed seed per decoder, so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values decoders get wrong: zero, one, the top of each width, sign bits.
const EDGES: &[u64] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

/// One to four mutations of `input`, splicing from `seeds`.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>], tokens: &[u8]) {
    for _ in 0..rng.below(4) + 1 {
        let at = rng.below(input.len() + 1);
        match rng.below(7) {
            0 => input.truncate(at),
            1 if !input.is_empty() => {
                let i = at.min(input.len() - 1);
                input[i] ^= 1 << rng.below(8);
            }
            2 if !input.is_empty() => {
                let i = at.min(input.len() - 1);
                input[i] = rng.next() as u8;
            }
            3 => input.insert(at, tokens[rng.below(tokens.len())]),
            4 => {
                let edge = EDGES[rng.below(EDGES.len())].to_le_bytes();
                let w = [1, 2, 4, 8][rng.below(4)];
                for (k, b) in edge[..w].iter().enumerate() {
                    if let Some(x) = input.get_mut(at + k) {
                        *x = *b;
                    }
                }
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                input.extend_from_slice(&other[from..]);
            }
            _ => {
                // A run of the input repeated (lengths and counts grow).
                let from = rng.below(input.len());
                let to = (from + rng.below(64)).min(input.len());
                let piece = input[from..to].to_vec();
                input.splice(at.min(input.len())..at.min(input.len()), piece);
            }
        }
    }
}

/// Feeds `decode` the mutated seeds; fails with the input on a panic or an allocation beyond
/// the bound. Returns how many inputs it took.
fn campaign(name: &str, seed: u64, seeds: &[Vec<u8>], tokens: &[u8], decode: impl Fn(&[u8])) {
    let mut rng = Rng(seed);
    let n = inputs();
    let mut worst = 0;
    for i in 0..n {
        let mut input = seeds[(i as usize) % seeds.len()].clone();
        mutate(&mut rng, &mut input, seeds, tokens);
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            held_by(|| decode(&input)).1
        }));
        match run {
            Ok(held) => {
                worst = worst.max(held);
                assert!(
                    held <= ALLOC_BOUND,
                    "{name}: input {i} held {held} bytes: {:?}",
                    String::from_utf8_lossy(&input)
                );
            }
            Err(_) => panic!(
                "{name}: input {i} panicked: {:?}",
                String::from_utf8_lossy(&input)
            ),
        }
    }
    eprintln!("FUZZ {name}: {n} inputs, 0 panics, at most {worst} bytes held at once");
}

fn specs() -> Vec<RunSpec> {
    vec![
        RunSpec::default(),
        RunSpec {
            mode: Mode::A3,
            engine: Engine::Uring,
            pattern: Pattern::Rr,
            msg_size: 64,
            resp_size: Some(4096),
            flows: 3,
            verify: true,
            ..RunSpec::default()
        },
        RunSpec {
            mode: Mode::A2,
            pattern: Pattern::Rate,
            rate: Some(12345.0),
            timestamps: Some(16),
            busy_poll: true,
            ..RunSpec::default()
        },
    ]
}

#[test]
fn hello_frames() {
    // A fixed schedule origin (hello_for stamps the clock): the same seeds every run, so a
    // failure repeats.
    let agreed: Vec<Hello> = specs()
        .iter()
        .map(|s| Hello {
            sched0_ns: 1_000_000_000_000,
            ..hello_for(s, 0)
        })
        .collect();
    let seeds: Vec<Vec<u8>> = agreed.iter().map(|h| h.encode().to_vec()).collect();
    campaign(
        "hello",
        0x9e37_79b9_7f4a_7c15,
        &seeds,
        &[0, 1, 3, 0xff],
        |b| {
            let mut frame = [0u8; HELLO_LEN];
            let n = b.len().min(HELLO_LEN);
            frame[..n].copy_from_slice(&b[..n]);
            if let Ok(h) = Hello::decode(&frame) {
                assert_eq!(Hello::decode(&h.encode()).unwrap(), h, "re-encodes");
            }
            for a in &agreed {
                let _ = check_run(a, &[frame, frame], a.sched0_ns, 1_000_000_000);
            }
        },
    );
}

#[test]
fn stream_and_end_frames() {
    let report = SenderReport {
        messages: 7,
        bytes: 700,
        error: Some("x".into()),
        ..SenderReport::default()
    };
    let stream = |msg: usize, n: u64| {
        let mut out = Vec::new();
        for seq in 0..n {
            let mut m = vec![0u8; msg];
            put_header(&mut m, seq, 1000 + seq);
            fill_payload(&mut m[16..], seq);
            out.extend_from_slice(&m);
        }
        out.extend_from_slice(&encode_end(&report));
        out
    };
    let seeds = vec![
        stream(16, 3),
        stream(64, 5),
        stream(100, 2),
        encode_end(&report),
    ];
    let sizes = [16usize, 17, 64, 100];
    campaign(
        "stream+end",
        0x2545_f491_4f6c_dd1d,
        &seeds,
        b"{}[]\":,0-9e\xff",
        |b| {
            // The size and the read sizes come from the input itself, so they vary too.
            let msg = sizes[b.first().map_or(0, |x| *x as usize) % sizes.len()];
            let piece = 1 + b.get(1).map_or(7, |x| *x as usize);
            let mut p = Parser::new(msg, b.len() % 2 == 0);
            for chunk in b.chunks(piece) {
                match p.feed(chunk, |_, _, _| {}) {
                    Ok(Parsed::More) => {}
                    Ok(Parsed::End(_)) | Err(_) => break,
                }
            }
        },
    );
}

#[test]
fn control_lines() {
    let mut seeds: Vec<Vec<u8>> = [
        r#"{"type":"login","protocol":2,"response":"00","challenge":"11"}"#,
        r#"{"type":"clock","t0_ns":1}"#,
        r#"{"type":"error","code":"busy","message":"m"}"#,
        r#"{"type":"bye"}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    for spec in specs() {
        seeds.push(
            serde_json::to_vec(&Msg::Test(Box::new(TestRequest {
                spec,
                far_role: FarRole::Sender,
                sender_clock_ahead_ns: -3,
            })))
            .unwrap(),
        );
    }
    campaign(
        "control line",
        0xd1b5_4a32_d192_ed03,
        &seeds,
        b"{}[]\":,0-9e-.",
        |b| {
            if let Ok(m) = parse(b) {
                let again = serde_json::to_vec(&m).unwrap();
                assert_eq!(parse(&again).unwrap(), m, "re-parses");
            }
        },
    );
}

#[test]
fn sealed_lines() {
    let key = Token::new(b"fuzz").session_key("s", "d");
    let seal = |n: u64, body: &str| {
        format!(
            r#"{{"n":{n},"mac":"{}","msg":{body}}}"#,
            key.seal(Role::Driver, n, body.as_bytes())
        )
        .into_bytes()
    };
    let seeds = vec![
        seal(0, r#"{"type":"bye"}"#),
        seal(1, r#"{"type":"clock","t0_ns":5}"#),
        seal(2, r#"{"type":"error","code":"auth","message":"m"}"#),
    ];
    campaign(
        "sealed line",
        0x94d0_49bb_1331_11eb,
        &seeds,
        b"{}\":,0-9",
        |b| {
            for n in 0..3 {
                let _ = unseal(&key, Role::Driver, n, b);
            }
        },
    );
}
