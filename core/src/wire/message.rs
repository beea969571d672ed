//! A message on the wire: the 16-byte header (seq, send timestamp) and the payload, whose bytes
//! with `verify` are a function of (seq, offset).

/// Length of the per-message header (seq + send timestamp); the smallest message.
pub const HEADER_LEN: usize = 16;
/// Largest message the tool accepts (16 MiB). A message must fit the receiver's read buffer
/// and a zero-copy slot pool of `zc_slots` messages; beyond this size per-message effects are
/// gone and the run measures bulk transfer, which iperf3 already does.
pub const MAX_MSG_SIZE: usize = 16 << 20;
/// The `seq` value that marks the end frame.
pub const END_SEQ: u64 = u64::MAX;

/// Writes a message header (seq, send timestamp) into the first 16 bytes of `buf`.
#[inline]
pub fn put_header(buf: &mut [u8], seq: u64, send_ts_ns: u64) {
    buf[0..8].copy_from_slice(&seq.to_le_bytes());
    buf[8..16].copy_from_slice(&send_ts_ns.to_le_bytes());
}

/// What a message's payload becomes when its header is written.
#[derive(Clone, Copy, Debug)]
pub enum Body<'a> {
    /// The verify pattern of its sequence number (`--verify`).
    Verify,
    /// A copy of these bytes (A1's assembly copy: what makes it a two-copy path).
    Copy(&'a [u8]),
    /// Left as it is (a payload buffer reused as is).
    Unchanged,
}

impl<'a> Body<'a> {
    /// The verify pattern with `--verify`; otherwise a copy of `copy`, or (None) the payload
    /// as it is.
    pub fn new(verify: bool, copy: Option<&'a [u8]>) -> Body<'a> {
        match (verify, copy) {
            (true, _) => Body::Verify,
            (false, Some(p)) => Body::Copy(p),
            (false, None) => Body::Unchanged,
        }
    }
}

/// Writes message `seq` into `m` (header then payload): its header stamped `send_ts_ns`, its
/// payload as `body` says.
#[inline]
pub fn write_message(m: &mut [u8], seq: u64, send_ts_ns: u64, body: Body) {
    put_header(m, seq, send_ts_ns);
    match body {
        Body::Verify => fill_payload(&mut m[HEADER_LEN..], seq),
        Body::Copy(p) => m[HEADER_LEN..].copy_from_slice(p),
        Body::Unchanged => {}
    }
}

/// Writes messages `seq..` back to back into `buf`, `msg_size` bytes each (as many as fill
/// it), all stamped `send_ts_ns`.
#[inline]
pub fn write_messages(buf: &mut [u8], msg_size: usize, seq: u64, send_ts_ns: u64, body: Body) {
    for (k, m) in buf.chunks_exact_mut(msg_size).enumerate() {
        write_message(m, seq + k as u64, send_ts_ns, body);
    }
}

/// Reads a message header (seq, send timestamp) from the first 16 bytes of `buf`.
#[inline]
pub fn get_header(buf: &[u8]) -> (u64, u64) {
    (
        u64::from_le_bytes(buf[0..8].try_into().unwrap()),
        u64::from_le_bytes(buf[8..16].try_into().unwrap()),
    )
}

/// The 8-byte word at word index `k` of the payload of message `seq`.
#[inline]
fn payload_word(seq: u64, k: u64) -> u64 {
    // An odd multiplier keeps every byte, even the first, different for nearby seqs.
    seq.wrapping_mul(0xD6E8_FEB8_6659_FD93)
        ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ 0xA5A5_5A5A_0F0F_F0F0
}

/// Fills `payload` (the bytes after the header) with the verify pattern of message `seq`.
pub fn fill_payload(payload: &mut [u8], seq: u64) {
    let mut chunks = payload.chunks_exact_mut(8);
    let mut k = 0u64;
    for c in &mut chunks {
        c.copy_from_slice(&payload_word(seq, k).to_le_bytes());
        k += 1;
    }
    let rem = chunks.into_remainder();
    let last = payload_word(seq, k).to_le_bytes();
    rem.copy_from_slice(&last[..rem.len()]);
}

/// Whether `part`, the payload bytes of message `seq` from byte `offset` on, match the verify
/// pattern (for a receiver that sees a payload in pieces).
pub fn payload_matches_at(part: &[u8], seq: u64, offset: usize) -> bool {
    let byte = |at: usize| payload_word(seq, (at / 8) as u64).to_le_bytes()[at % 8];
    let mut i = 0;
    while i < part.len() && !(offset + i).is_multiple_of(8) {
        if part[i] != byte(offset + i) {
            return false;
        }
        i += 1;
    }
    while i + 8 <= part.len() {
        let word = u64::from_le_bytes(part[i..i + 8].try_into().expect("8 bytes"));
        if word != payload_word(seq, ((offset + i) / 8) as u64) {
            return false;
        }
        i += 8;
    }
    part[i..]
        .iter()
        .enumerate()
        .all(|(j, &b)| b == byte(offset + i + j))
}

/// Checks `payload` against the verify pattern of message `seq`; returns the first bad offset.
pub fn check_payload(payload: &[u8], seq: u64) -> Option<usize> {
    let mut chunks = payload.chunks_exact(8);
    let mut k = 0u64;
    for c in &mut chunks {
        if u64::from_le_bytes(c.try_into().unwrap()) != payload_word(seq, k) {
            return Some(k as usize * 8);
        }
        k += 1;
    }
    let rem = chunks.remainder();
    let last = payload_word(seq, k).to_le_bytes();
    if rem != &last[..rem.len()] {
        return Some(k as usize * 8);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_checks_in_any_pieces() {
        let mut p = vec![0u8; 1003];
        fill_payload(&mut p, 77);
        for cut in [0, 1, 7, 8, 9, 500, 1002, 1003] {
            for cut2 in [cut, (cut + 13).min(1003), 1003] {
                assert!(payload_matches_at(&p[..cut], 77, 0));
                assert!(payload_matches_at(&p[cut..cut2], 77, cut), "{cut}..{cut2}");
                assert!(payload_matches_at(&p[cut2..], 77, cut2));
            }
        }
        assert!(
            !payload_matches_at(&p[3..], 78, 3),
            "another message's pattern"
        );
        for bad in [3, 8, 515, 1002] {
            let mut q = p.clone();
            q[bad] ^= 1;
            assert!(!payload_matches_at(&q[1..], 77, 1), "byte {bad}");
            assert!(
                !payload_matches_at(&q[bad..bad + 1], 77, bad),
                "byte {bad} alone"
            );
        }
    }

    #[test]
    fn payload_pattern_detects_another_seq() {
        for len in [0usize, 1, 7, 8, 9, 48, 1000] {
            let mut p = vec![0u8; len];
            fill_payload(&mut p, 42);
            assert_eq!(check_payload(&p, 42), None);
            if len > 0 {
                assert!(check_payload(&p, 43).is_some(), "len {len}");
                p[len - 1] ^= 1;
                assert_eq!(check_payload(&p, 42), Some((len - 1) / 8 * 8));
            }
        }
    }
}
