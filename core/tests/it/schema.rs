//! Real records and end frames validate against the committed JSON Schemas (that the schemas
//! match the types is checked in sendpath-record, which owns them).

use crate::common;
use crate::common::pair;
use sendpath_core::pattern::{run_receiver, run_sender};
use sendpath_core::recv::RecvOptions;

use sendpath_core::report::v1::Record;
use sendpath_core::run::run_loopback;
use sendpath_core::spec::{Engine, Mode, RunSpec, RxMode};
use std::path::PathBuf;

fn validator(file: &str) -> jsonschema::Validator {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/schema")
        .join(file);
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("schema compiles")
}

/// The end frame a real sender sends for `spec` (one flow over a socket pair).
fn real_end_frame(spec: &RunSpec) -> serde_json::Value {
    let (s, c) = pair();
    let sp = spec.clone();
    let t = std::thread::spawn(move || run_sender(s, &sp, 0));
    let f = run_receiver(c, RecvOptions::new(spec.rx));
    let sent = t.join().unwrap().unwrap();
    assert_eq!(f.error, None, "{spec:?}");
    // What the receiver read off the wire is what the sender sent.
    assert_eq!(f.sender.as_ref(), Some(&sent), "{spec:?}");
    serde_json::to_value(&sent).unwrap()
}

#[test]
fn real_end_frames_validate_against_the_end_frame_schema() {
    let validator = validator("end-v1.json");
    let stamped = |mode, engine| RunSpec {
        engine,
        timestamps: Some(16),
        ..common::short(mode, 4096, 1)
    };
    let mut specs = vec![stamped(Mode::A3, Engine::Threads)];
    match sendpath_core::send::uring::missing_for(Mode::A3) {
        None => specs.push(stamped(Mode::A3, Engine::Uring)),
        Some(why) => sendpath_core::testing::skip(sendpath_core::testing::Skip::NoIoUring, &why),
    }
    let frames: Vec<serde_json::Value> = specs.iter().map(real_end_frame).collect();
    for (spec, v) in specs.iter().zip(&frames) {
        let errors: Vec<String> = validator.iter_errors(v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{spec:?}: {errors:?}");
        // The parts that need the schema's nested types are there.
        assert!(v["zerocopy"]["slot_hold"].is_string(), "{v}");
        assert!(v["stages"]["joinable"]["kept"].is_array(), "{v}");
        assert_eq!(v["uring"].is_object(), spec.engine == Engine::Uring, "{v}");
    }
    // A broken frame does not validate.
    let mut bad = frames[0].clone();
    bad["zerocopy"]["sends"] = serde_json::json!(-1);
    assert!(!validator.is_valid(&bad));
}

#[test]
fn real_records_validate_against_the_schema() {
    let validator = validator("v1.json");
    let specs = [
        common::short(Mode::A1, 512, 1),
        common::short(Mode::A3, 4096, 2),
        RunSpec {
            rx: RxMode::Discard,
            ..common::short(Mode::A2, 1024, 1)
        },
        RunSpec {
            engine: Engine::Uring,
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
