//! Real records validate against the committed JSON Schema (that the schema matches the types
//! is checked in sendpath-record, which owns them).

use crate::common;

use sendpath_core::report::v1::Record;
use sendpath_core::run::run_loopback;
use sendpath_core::spec::{Mode, RunSpec, RxMode};
use std::path::PathBuf;

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/schema/v1.json")
}

#[test]
fn real_records_validate_against_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path()).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let specs = [
        common::short(Mode::A1, 512, 1),
        common::short(Mode::A3, 4096, 2),
        RunSpec {
            rx: RxMode::Discard,
            ..common::short(Mode::A2, 1024, 1)
        },
        RunSpec {
            engine: sendpath_core::spec::Engine::Uring,
            ..common::short(Mode::A3, 4096, 2)
        },
    ];
    for spec in specs {
        let r = run_loopback(&spec, 1).unwrap();
        let v: serde_json::Value = serde_json::from_str(&r.to_json_line()).unwrap();
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{spec:?}: {errors:?}");
        // And it reads back as the same record.
        let back: Record = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back.to_json_line(), r.to_json_line());
    }
    // A broken record does not validate: the check has teeth.
    let mut bad: serde_json::Value = serde_json::from_str(
        &run_loopback(&common::short(Mode::A1, 64, 1), 0)
            .unwrap()
            .to_json_line(),
    )
    .unwrap();
    bad["throughput"]["gbps"] = serde_json::json!("fast");
    assert!(!validator.is_valid(&bad));
}
