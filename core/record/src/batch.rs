//! The batch axis: messages per send operation, the same for every mode on both engines, so
//! that a comparison of send paths never mixes copy discipline with batching. And the one size
//! syntax every size option takes (`64`, `16K`, `16M`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Parses a size: plain bytes or with a K/M suffix (binary: 16K = 16384; `KiB`/`MiB` too).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let u = s.trim().to_ascii_uppercase();
    let (num, mult) = if let Some(n) = u.strip_suffix("KIB").or_else(|| u.strip_suffix('K')) {
        (n, 1024)
    } else if let Some(n) = u.strip_suffix("MIB").or_else(|| u.strip_suffix('M')) {
        (n, 1 << 20)
    } else {
        (u.as_str(), 1)
    };
    num.parse::<usize>()
        .map_err(|_| format!("'{s}' is not a size (e.g. 64, 1024, 16K, 16M)"))
        .and_then(|n| {
            n.checked_mul(mult)
                .ok_or_else(|| format!("'{s}' is too large"))
        })
}

/// `b` bytes in the shortest form [`parse_size`] reads back (`512K`, `16M`, `1000`).
pub fn size_label(b: u64) -> String {
    match b {
        0 => "0".into(),
        b if b.is_multiple_of(1 << 20) => format!("{}M", b >> 20),
        b if b.is_multiple_of(1 << 10) => format!("{}K", b >> 10),
        b => b.to_string(),
    }
}

/// Messages per send operation (`--batch`), for every mode on both engines: one `send`,
/// `sendmsg` or `sendmsg(MSG_ZEROCOPY)` call on the threads engine, one SQE on io_uring.
/// Written `1` (one message per operation, the original study's semantics) or as a size
/// (`512K`: as many whole messages as fit that many bytes, at least one). In JSON it is that
/// label, a string.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum Batch {
    /// One message per send operation.
    #[default]
    One,
    /// As many whole messages as fit this many bytes (validation refuses a size below one
    /// message).
    Bytes(u64),
}

impl Batch {
    /// Messages per send operation at `msg_size` bytes each (before any limit of the mode).
    pub fn messages(self, msg_size: usize) -> usize {
        match self {
            Batch::One => 1,
            Batch::Bytes(b) => (b / msg_size.max(1) as u64).clamp(1, usize::MAX as u64) as usize,
        }
    }

    /// The label: `1`, or the size (`512K`).
    pub fn label(self) -> String {
        match self {
            Batch::One => "1".into(),
            Batch::Bytes(b) => size_label(b),
        }
    }
}

impl fmt::Display for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

impl FromStr for Batch {
    type Err = String;

    /// `1` is one message per operation; any other size is bytes per operation.
    fn from_str(s: &str) -> Result<Batch, String> {
        let bad = |why: String| {
            format!("{why}: --batch takes 1 (one message per send) or a size such as 64K")
        };
        match parse_size(s).map_err(bad)? {
            0 => Err(bad("0 messages per send".into())),
            1 => Ok(Batch::One),
            n => Ok(Batch::Bytes(n as u64)),
        }
    }
}

impl TryFrom<String> for Batch {
    type Error = String;
    fn try_from(s: String) -> Result<Batch, String> {
        s.parse()
    }
}

impl From<Batch> for String {
    fn from(b: Batch) -> String {
        b.label()
    }
}

impl JsonSchema for Batch {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Batch".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "Messages per send operation: \"1\", or a size such as \"512K\" (as many whole messages as fit).",
            "pattern": "^[0-9]+[KM]?$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_every_form_and_garbage_says_what_is_expected() {
        assert_eq!(parse_size("64"), Ok(64));
        assert_eq!(parse_size("16K"), Ok(16384));
        assert_eq!(parse_size("16kib"), Ok(16384));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert!(parse_size("lots").unwrap_err().contains("16K"));
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999M").is_err());
        for b in [64u64, 1000, 16384, 1 << 20, 3 << 20] {
            assert_eq!(parse_size(&size_label(b)), Ok(b as usize));
        }
    }

    #[test]
    fn a_batch_is_one_message_or_a_size_and_round_trips_as_its_label() {
        assert_eq!("1".parse::<Batch>(), Ok(Batch::One));
        assert_eq!("512K".parse::<Batch>(), Ok(Batch::Bytes(512 << 10)));
        for bad in ["0", "", "x", "1.5K", "-3"] {
            assert!(bad.parse::<Batch>().is_err(), "{bad}");
        }
        assert_eq!(Batch::Bytes(512 << 10).messages(64), 8192);
        assert_eq!(Batch::Bytes(512 << 10).messages(1 << 20), 1);
        assert_eq!(Batch::One.messages(64), 1);
        let j = serde_json::to_string(&Batch::Bytes(512 << 10)).unwrap();
        assert_eq!(j, "\"512K\"");
        assert_eq!(
            serde_json::from_str::<Batch>(&j).unwrap(),
            Batch::Bytes(512 << 10)
        );
        assert_eq!(serde_json::from_str::<Batch>("\"1\"").unwrap(), Batch::One);
        assert!(serde_json::from_str::<Batch>("\"0\"").is_err());
        assert!(Batch::One < Batch::Bytes(2));
    }
}
