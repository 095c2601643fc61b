//! The ring log on simulated media: recovery case by case (and the decision
//! tables of the docs against the code), crash and bit-flip sweeps, device
//! faults, hostile images, a model check, flash sweeps and group commit
//! built on its hooks.

#[path = "../common/ticks.rs"]
mod ticks;

mod decision_tables;
mod flash_sweep;
mod group_commit;
mod mixed_versions;
mod ring_bitflip;
mod ring_crash;
mod ring_faults;
mod ring_hostile;
mod ring_model;
mod ring_recovery;
mod ring_recovery_v2;
mod shared_ring;
