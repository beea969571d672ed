//! Names for sampled addresses: the kernel's from /proc/kallsyms, ours (this binary, libc)
//! from their ELF symbol tables, both through blazesym, cached for the process. libc keeps its
//! `memcpy`/`memmove`/`memset` implementations out of its dynamic symbol table (the one a
//! stripped libc has), so a user address without a name is checked against the routines the
//! dynamic linker chose for them.

use blazesym::symbolize::source::{Kernel, Process, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use blazesym::{MaybeDefault, Pid};
use std::collections::HashMap;
use std::sync::{mpsc, Mutex, OnceLock};

/// Bytes after a libc routine's entry still counted as that routine (its variants are a few
/// hundred bytes to a few KiB of code).
const LIBC_ROUTINE_SPAN: u64 = 4096;

/// Whether `addr` is a kernel address (x86-64: the upper half).
pub fn is_kernel(addr: u64) -> bool {
    addr >= 0xffff_8000_0000_0000
}

/// The symbolizer and what it named so far. blazesym's symbolizer is not `Send`, so it lives
/// on a thread of its own for the whole process ([`resolve`] asks it), and keeps what it read
/// (kallsyms, our ELF files) between the windows of a sweep.
struct Names {
    symbolizer: Symbolizer,
    cache: HashMap<u64, Option<String>>,
    /// (entry, name) of the libc routines the dynamic linker chose.
    libc: Vec<(u64, &'static str)>,
}

type Request = (Vec<u64>, mpsc::Sender<Vec<Option<String>>>);

/// The symbolizer thread's mailbox, started on first use.
fn mailbox() -> Option<&'static Mutex<mpsc::Sender<Request>>> {
    static MAILBOX: OnceLock<Option<Mutex<mpsc::Sender<Request>>>> = OnceLock::new();
    MAILBOX
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Request>();
            std::thread::Builder::new()
                .name("symbolizer".into())
                .spawn(move || {
                    let mut names = Names {
                        symbolizer: Symbolizer::new(),
                        cache: HashMap::new(),
                        libc: vec![
                            (libc::memcpy as *const () as u64, "memcpy"),
                            (libc::memmove as *const () as u64, "memmove"),
                            (libc::memset as *const () as u64, "memset"),
                        ],
                    };
                    for (addrs, reply) in rx {
                        let _ = reply.send(names.resolve(&addrs));
                    }
                })
                .ok()
                .map(|_| Mutex::new(tx))
        })
        .as_ref()
}

/// Bytes of /proc/kallsyms read to tell whether its addresses are hidden.
const KALLSYMS_HEAD: usize = 64 << 10;

/// Reads what naming needs once per process (/proc/kallsyms, our ELF files), so that the
/// first window profiled does not pay for it.
pub fn warm_up() {
    if kernel_hidden().is_none() {
        // Any kernel address: this function's caller's syscall entry is as good as another.
        let _ = resolve(&[0xffff_ffff_8100_0000]);
    }
    let _ = resolve(&[warm_up as *const () as u64]);
}

/// Why kernel addresses cannot be named here, if they cannot: the kernel shows zeros in
/// /proc/kallsyms to this process (`kernel.kptr_restrict`, or no privilege).
pub fn kernel_hidden() -> Option<String> {
    static HIDDEN: OnceLock<Option<String>> = OnceLock::new();
    HIDDEN
        .get_or_init(|| {
            // Its first 64 KiB (the whole file takes ~80 ms to read here, more under load).
            let mut head = Vec::with_capacity(KALLSYMS_HEAD);
            let read = std::fs::File::open("/proc/kallsyms").and_then(|f| {
                use std::io::Read;
                f.take(KALLSYMS_HEAD as u64).read_to_end(&mut head)
            });
            if let Err(e) = read {
                return Some(format!("/proc/kallsyms cannot be read: {e}"));
            }
            let named = String::from_utf8_lossy(&head)
                .lines()
                .take(1000)
                .any(|l| l.split_whitespace().next().is_some_and(|a| !a.trim_start_matches('0').is_empty()));
            (!named).then(|| {
                "the kernel hides its symbols' addresses (/proc/kallsyms shows zeros: kernel.kptr_restrict, or too little privilege)".to_string()
            })
        })
        .clone()
}

/// The names of `addrs` (None where none is known), kernel and user addresses alike.
pub fn resolve(addrs: &[u64]) -> Vec<Option<String>> {
    let asked = mailbox().and_then(|m| {
        let (tx, rx) = mpsc::channel();
        m.lock()
            .unwrap_or_else(|p| p.into_inner())
            .send((addrs.to_vec(), tx))
            .ok()?;
        rx.recv().ok()
    });
    asked.unwrap_or_else(|| vec![None; addrs.len()])
}

impl Names {
    fn resolve(&mut self, addrs: &[u64]) -> Vec<Option<String>> {
        let mut missing: Vec<u64> = addrs
            .iter()
            .copied()
            .filter(|a| !self.cache.contains_key(a))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        let (kernel, user): (Vec<u64>, Vec<u64>) = missing.into_iter().partition(|&a| is_kernel(a));
        let kernel_src = Source::Kernel(Kernel {
            vmlinux: MaybeDefault::None,
            ..Default::default()
        });
        let mut process = Process::new(Pid::Slf);
        process.perf_map = false;
        process.debug_syms = false;
        let user_src = Source::Process(process);
        for (src, batch) in [(&kernel_src, &kernel), (&user_src, &user)] {
            if batch.is_empty() {
                continue;
            }
            let found: Vec<Option<String>> =
                match self.symbolizer.symbolize(src, Input::AbsAddr(batch)) {
                    Ok(v) => v
                        .into_iter()
                        .map(|s| match s {
                            Symbolized::Sym(sym) => Some(sym.name.into_owned()),
                            Symbolized::Unknown(_) => None,
                        })
                        .collect(),
                    Err(_) => vec![None; batch.len()],
                };
            for (&a, name) in batch.iter().zip(found) {
                let name = name.or_else(|| {
                    self.libc
                        .iter()
                        .find(|(entry, _)| a >= *entry && a < entry + LIBC_ROUTINE_SPAN)
                        .map(|(_, name)| name.to_string())
                });
                self.cache.insert(a, name);
            }
        }
        addrs
            .iter()
            .map(|a| self.cache.get(a).cloned().flatten())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_function_of_ours(x: u64) -> u64 {
        std::hint::black_box(x.wrapping_mul(3))
    }

    #[test]
    fn our_functions_libc_routines_and_kernel_symbols_are_named() {
        let ours = a_function_of_ours as *const () as u64;
        let copy = libc::memcpy as *const () as u64;
        let got = resolve(&[ours, copy + 16]);
        assert!(
            got[0]
                .as_deref()
                .is_some_and(|n| n.contains("a_function_of_ours")),
            "{got:?}"
        );
        assert!(
            got[1].as_deref().is_some_and(|n| n.contains("mem")),
            "{got:?}"
        );
        assert!(!is_kernel(ours) && is_kernel(0xffff_ffff_8100_0000));
        if kernel_hidden().is_none() {
            // The address of a function every kernel has, from kallsyms itself.
            let text = std::fs::read_to_string("/proc/kallsyms").unwrap();
            let addr = text
                .lines()
                .find(|l| l.ends_with(" do_syscall_64"))
                .and_then(|l| u64::from_str_radix(l.split_whitespace().next()?, 16).ok())
                .expect("do_syscall_64 in kallsyms");
            let got = resolve(&[addr + 4]);
            assert_eq!(got[0].as_deref(), Some("do_syscall_64"), "{got:?}");
        }
    }
}
