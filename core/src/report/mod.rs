//! Output types: the versioned JSON record, apart from the domain types so that internals can
//! change without breaking users. [`v1`] is the current schema (`sendpath/v1`).

pub mod text;
pub mod v1;
