//! Every example runs to the end and shows what it is for.

use std::process::Command;

fn run(exe: &str) -> String {
    let out = Command::new(exe).output().expect("run the example");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{exe} failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

#[test]
fn the_key_value_store_rebuilds_the_same_map_after_a_restart() {
    let text = run(env!("CARGO_BIN_EXE_kv-store"));
    assert!(text.contains("after the restart: identical"), "{text}");
    assert!(text.contains("checkpoint at LSN"), "{text}");
}

#[test]
fn the_raft_log_drops_a_conflicting_suffix() {
    let text = run(env!("CARGO_BIN_EXE_raft-log"));
    assert!(text.contains("terms [1, 1, 1, 1, 1, 2, 2, 2, 2]"), "{text}");
}

#[test]
fn event_sourcing_rebuilds_from_a_snapshot_and_the_events_after_it() {
    let text = run(env!("CARGO_BIN_EXE_event-sourcing"));
    assert!(text.contains("identical") && text.contains("and 50 events"), "{text}");
}

#[test]
fn the_raw_partition_logger_keeps_the_newest_lines() {
    let text = run(env!("CARGO_BIN_EXE_raw-logger"));
    assert!(text.contains("newest lines kept"), "{text}");
}

#[test]
fn the_tours_run() {
    assert!(run(env!("CARGO_BIN_EXE_ring-tour")).contains("boot"));
    run(env!("CARGO_BIN_EXE_codec-tour"));
}
