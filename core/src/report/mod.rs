//! Output: the versioned JSON record (its types live in sendpath-record, re-exported here as
//! [`v1`]), how a record is built from measurements ([`build`]), and the human summary
//! ([`text`]).

pub mod build;
pub mod profile;
pub mod text;

pub use build::{failed, from_flows, Context};
pub use sendpath_record::v1;
