//! The committed JSON Schemas match the types: the record's (`docs/schema/v1.json`) and the
//! sender's end frame (`docs/schema/end-v1.json`). To regenerate after a deliberate change:
//! `SENDPATH_BLESS=1 cargo test -p sendpath-record --test schema` (and bump the version if the
//! change breaks readers: the record's schema version, or for the end frame a new module and
//! the wire version). That real records and end frames validate against them is checked in
//! sendpath-core, which makes them.

use sendpath_record::end_v1::SenderReport;
use sendpath_record::v1::Record;
use std::path::PathBuf;

fn check(file: &str, generated: String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/schema")
        .join(file);
    if std::env::var_os("SENDPATH_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("docs/schema/{file} is committed: {e}"));
    assert_eq!(
        committed, generated,
        "docs/schema/{file} is stale: regenerate with SENDPATH_BLESS=1 and bump the version if \
         the change breaks readers"
    );
}

#[test]
fn committed_record_schema_matches_the_types() {
    check("v1.json", Record::json_schema());
}

#[test]
fn committed_end_frame_schema_matches_the_types() {
    check("end-v1.json", SenderReport::json_schema());
}
