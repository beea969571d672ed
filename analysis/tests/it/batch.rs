//! Comparisons at equal batch only: cells that sent different messages per send operation are
//! never paired (crossovers, best mode, `sendpath compare`), and every findings row names the
//! batch it holds at. Built on the committed fixture of real records, with the batch edited.

use sendpath_analysis::compare::compare;
use sendpath_analysis::findings::findings;
use sendpath_analysis::parse_records;
use sendpath_analysis::summary::analyze;
use sendpath_record::v1::Record;
use sendpath_record::{Batch, Mode};
use std::path::Path;

fn records() -> Vec<Record> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/loopback_threads.jsonl"),
    )
    .unwrap();
    parse_records(&text).unwrap().records
}

/// The fixture with every record of `mode` at `batch`, the others at one message per send.
fn with_batch(mode: Mode, batch: Batch) -> Vec<Record> {
    let mut v = records();
    for r in &mut v {
        r.spec.batch = Some(if r.spec.mode == mode {
            batch
        } else {
            Batch::One
        });
    }
    v
}

#[test]
fn a3_at_another_batch_is_not_compared_with_a1() {
    let a = analyze(&with_batch(Mode::A3, Batch::Bytes(512 << 10)), &[]);
    assert!(!a.crossovers.is_empty(), "A2 and A1 share a batch");
    for c in &a.crossovers {
        assert_ne!(c.challenger, "a3", "A3 ran another batch than A1: {c:?}");
        assert_eq!(c.batch.to_string(), "1");
    }
    // Best mode per size: the contenders of a row share its batch.
    for b in &a.best {
        let lone = b.batch.to_string() == "512K";
        assert_eq!(lone, b.leader.starts_with("A3"), "{b:?}");
        assert_eq!(lone, b.runner_up.is_none(), "{b:?}");
    }
    // The same records at one batch pair A3 with A1 again.
    let same = analyze(&with_batch(Mode::A3, Batch::One), &[]);
    assert!(same.crossovers.iter().any(|c| c.challenger == "a3"));
}

#[test]
fn findings_rows_name_the_batch() {
    let f = findings(&analyze(
        &with_batch(Mode::A3, Batch::Bytes(512 << 10)),
        &[],
    ));
    for (k, _) in f.rows() {
        if k != "zero-copy" {
            assert!(k.contains(" batch "), "{k}");
        }
    }
    assert!(f.crossovers.iter().all(|c| c.batch == "1"));
    let json = serde_json::to_string(&f).unwrap();
    assert!(json.contains("\"batch\":\"512K\""), "{json}");
}

#[test]
fn compare_pairs_cells_only_at_the_same_batch() {
    let one = with_batch(Mode::A1, Batch::One);
    let batched = with_batch(Mode::A1, Batch::Bytes(64 << 10));
    let c = compare(&one, &batched);
    assert!(
        c.cells.iter().all(|x| x.key.mode != Mode::A1),
        "A1 at 1 and at 64K are different cells"
    );
    assert_eq!(
        c.only,
        (6, 6),
        "A1's 3 sizes x 2 flows on each side, unpaired"
    );
    assert!(c.cells.iter().any(|x| x.key.mode == Mode::A2));
}
