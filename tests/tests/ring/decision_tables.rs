//! The recovery decision tables of the docs (the ring log's and the file
//! WAL's) against the one function both recoveries decide with: every cell
//! names the action `decide` gives for its case and mode.

use nori_wal_core::ring::{Action, RecoveryCase, RecoveryMode, decide};

/// The table in the module docs of `source`: its rows, each a case name
/// and the action named at the start of each mode's cell.
fn table(source: &str) -> Vec<(String, Vec<String>)> {
    let rows: Vec<&str> =
        source.lines().filter_map(|l| l.strip_prefix("//! | `")).map(|l| l.trim_end_matches(" |")).collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<&str> = row.split(" | ").collect();
            assert_eq!(cells.len(), 6, "a row of six cells: {row}");
            let case = cells[0].trim_end_matches('`').to_owned();
            let actions = cells[2..]
                .iter()
                .map(|cell| {
                    let name = cell.strip_prefix('`').and_then(|c| c.split('`').next());
                    name.unwrap_or_else(|| panic!("a cell that names no action: {cell:?} in {row}"))
                        .to_owned()
                })
                .collect();
            (case, actions)
        })
        .collect()
}

/// The columns, in the tables' order.
const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateTornTail,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipDamaged,
    RecoveryMode::Strict,
];

fn check(source: &str, what: &str) {
    let rows = table(source);
    let cases: Vec<String> = RecoveryCase::ALL.iter().map(|c| format!("{c:?}")).collect();
    let documented: Vec<&String> = rows.iter().map(|(case, _)| case).collect();
    assert_eq!(documented, cases.iter().collect::<Vec<_>>(), "{what}: one row per case, in order");
    for ((_, actions), case) in rows.iter().zip(RecoveryCase::ALL) {
        for (action, mode) in actions.iter().zip(MODES) {
            let decided: Action = decide(case, mode);
            assert_eq!(action, &format!("{decided:?}"), "{what}: {case:?} in {mode:?}");
        }
    }
}

#[test]
fn the_ring_logs_table_is_the_decision_function() {
    check(include_str!("../../../core/src/ring/mod.rs"), "core/src/ring/mod.rs");
}

#[test]
fn the_file_wals_table_is_the_decision_function() {
    check(include_str!("../../../std-fs/src/wal/mod.rs"), "std-fs/src/wal/mod.rs");
}
