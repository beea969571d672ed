//! The end of a stream: the receiver's request and the sender's end frame, which carries its
//! side of the record. The frame's types are the record crate's ([`sendpath_record::end_v1`],
//! versioned with a committed schema); this module only frames them.

use super::message::{put_header, END_SEQ, HEADER_LEN};
pub use sendpath_record::end_v1::{SenderReport, UringSetup};

/// Largest end-frame JSON accepted.
pub const MAX_END_LEN: usize = 64 << 10;
/// The byte a stream or rate receiver sends when its window has ended: "send your end frame".
pub const END_REQUEST: u8 = b'E';

/// Encodes the end frame: header with [`END_SEQ`] then the JSON report.
pub fn encode_end(report: &SenderReport) -> Vec<u8> {
    let json = serde_json::to_vec(report).expect("sender report serializes");
    let mut out = vec![0u8; HEADER_LEN];
    put_header(&mut out, END_SEQ, json.len() as u64);
    out.extend_from_slice(&json);
    out
}
