//! # sendpath-analysis
//!
//! Reads only v1 JSON Lines records: the analysis never talks to the measuring code, so any
//! results file, old or new, from this host or another, can be analysed the same way.

use sendpath_core::report::v1::{Record, SCHEMA};

/// A records file that cannot be read as v1.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A line is not a v1 record.
    #[error("line {line}: {msg}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        msg: String,
    },
}

/// Records read from a file, and warnings about lines skipped.
#[derive(Debug, Default)]
pub struct Records {
    /// The records, in file order.
    pub records: Vec<Record>,
    /// Lines skipped, with the reason (e.g. a truncated last line from a killed sweep).
    pub warnings: Vec<String>,
}

/// Parses JSON Lines text of v1 records. A truncated *last* line (a sweep killed mid-write)
/// is skipped with a warning; any other unreadable line, or a record of another schema, is an
/// error naming the line.
pub fn parse_records(text: &str) -> Result<Records, ReadError> {
    let mut out = Records::default();
    let lines: Vec<&str> = text.lines().collect();
    let last_has_newline = text.ends_with('\n');
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let n = i + 1;
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) if i + 1 == lines.len() && !last_has_newline => {
                out.warnings
                    .push(format!("line {n}: skipped a truncated last record ({e})"));
                continue;
            }
            Err(e) => {
                return Err(ReadError::Line {
                    line: n,
                    msg: format!("not JSON: {e}"),
                })
            }
        };
        match value.get("schema").and_then(|s| s.as_str()) {
            Some(SCHEMA) => {}
            Some(other) => {
                return Err(ReadError::Line {
                    line: n,
                    msg: format!("schema '{other}' is not supported (this build reads {SCHEMA})"),
                })
            }
            None => {
                return Err(ReadError::Line {
                    line: n,
                    msg: "no \"schema\" field: not a sendpath record".into(),
                })
            }
        }
        let record: Record = serde_json::from_value(value).map_err(|e| ReadError::Line {
            line: n,
            msg: format!("not a valid {SCHEMA} record: {e}"),
        })?;
        out.records.push(record);
    }
    Ok(out)
}
