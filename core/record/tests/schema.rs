//! The committed JSON Schema matches the types. To regenerate after a deliberate change:
//! `SENDPATH_BLESS=1 cargo test -p sendpath-record --test schema` (and bump the schema version
//! if the change breaks readers). That real records validate against it is checked in
//! sendpath-core, which makes them.

use sendpath_record::v1::Record;
use std::path::PathBuf;

#[test]
fn committed_schema_matches_the_types() {
    let generated = Record::json_schema();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema/v1.json");
    if std::env::var_os("SENDPATH_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).expect("docs/schema/v1.json is committed");
    assert_eq!(
        committed, generated,
        "docs/schema/v1.json is stale: regenerate with SENDPATH_BLESS=1 and bump the schema \
         version if the change breaks readers"
    );
}
