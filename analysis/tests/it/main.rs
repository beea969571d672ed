//! sendpath-analysis's integration tests, in one binary: reports from committed records, and
//! the jq recipes.

mod batch;
mod jq;
mod profile;
mod report;
mod report_input;
