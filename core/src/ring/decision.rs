//! The recovery decision, written once: what a recovery does with each
//! case it meets, in each mode. The ring log's recovery and the file WAL's
//! both call [`decide`]; the decision tables in the docs are checked
//! against it by a test.
//!
//! A leaf module: the segment layer, which classifies how a segment ends,
//! and the ring layer above it share this vocabulary.

use super::config::RecoveryMode;

/// Which row of the recovery decision table applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RecoveryCase {
    /// No valid segment: an empty log.
    Empty,
    /// The log ends in blank or never-written space.
    Clean,
    /// The newest segment ends in a torn frame, cut.
    TornTail,
    /// Damage in the newest segment with valid frames after it that were
    /// never durable: cut from the damage.
    InFlight,
    /// Damage in the newest segment's durable region.
    DurableDamage,
    /// Damage in an older segment (always durable).
    DamagedSegment,
    /// A segment between the log's start and the newest is missing.
    MissingSegment,
}

impl RecoveryCase {
    /// Every case, in the order of the decision table.
    pub const ALL: [Self; 7] = [
        Self::Empty,
        Self::Clean,
        Self::TornTail,
        Self::InFlight,
        Self::DurableDamage,
        Self::DamagedSegment,
        Self::MissingSegment,
    ];
}

/// What recovery does with a [`RecoveryCase`]: a cell of the decision table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Action {
    /// Keep everything found (an empty log stays empty).
    Keep,
    /// Cut the tail that was in flight at the crash: never acknowledged,
    /// dropped without being reported as damage (invariant I3).
    CutTail,
    /// End the log just before the damage; everything after it is dropped,
    /// and the damage is reported.
    EndAtDamage,
    /// Skip the damaged records (or the missing segment) and keep every
    /// valid record after them; the damage is reported.
    Skip,
    /// Refuse to open: the damage is returned as an error.
    Refuse,
}

/// The decision table: what recovery in `mode` does with `case`.
///
/// ```
/// use nori_wal_core::ring::{Action, RecoveryCase, RecoveryMode, decide};
/// // A torn tail was never acknowledged: cut it, unless every damage is refused.
/// assert_eq!(decide(RecoveryCase::TornTail, RecoveryMode::TolerateTornTail), Action::CutTail);
/// assert_eq!(decide(RecoveryCase::TornTail, RecoveryMode::Strict), Action::Refuse);
/// // Damage to durable records is refused by default, reported otherwise.
/// assert_eq!(decide(RecoveryCase::DamagedSegment, RecoveryMode::TolerateTornTail), Action::Refuse);
/// assert_eq!(decide(RecoveryCase::DamagedSegment, RecoveryMode::PointInTime), Action::EndAtDamage);
/// assert_eq!(decide(RecoveryCase::DamagedSegment, RecoveryMode::SkipDamaged), Action::Skip);
/// ```
#[must_use]
pub const fn decide(case: RecoveryCase, mode: RecoveryMode) -> Action {
    match case {
        RecoveryCase::Empty | RecoveryCase::Clean => Action::Keep,
        RecoveryCase::TornTail | RecoveryCase::InFlight => match mode {
            RecoveryMode::Strict => Action::Refuse,
            _ => Action::CutTail,
        },
        RecoveryCase::DurableDamage | RecoveryCase::DamagedSegment | RecoveryCase::MissingSegment => {
            match mode {
                RecoveryMode::TolerateTornTail | RecoveryMode::Strict => Action::Refuse,
                RecoveryMode::PointInTime => Action::EndAtDamage,
                RecoveryMode::SkipDamaged => Action::Skip,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every mode, in the order of the decision table's columns.
    const MODES: [RecoveryMode; 4] = [
        RecoveryMode::TolerateTornTail,
        RecoveryMode::PointInTime,
        RecoveryMode::SkipDamaged,
        RecoveryMode::Strict,
    ];

    #[test]
    fn only_strict_refuses_a_tail_and_only_the_tolerant_modes_keep_durable_damage() {
        for case in RecoveryCase::ALL {
            for mode in MODES {
                let action = decide(case, mode);
                let in_flight = matches!(case, RecoveryCase::TornTail | RecoveryCase::InFlight);
                let durable = !in_flight && !matches!(case, RecoveryCase::Empty | RecoveryCase::Clean);
                assert_eq!(
                    action == Action::CutTail,
                    in_flight && mode != RecoveryMode::Strict,
                    "{case:?} {mode:?}"
                );
                assert_eq!(
                    action == Action::Refuse,
                    (in_flight && mode == RecoveryMode::Strict)
                        || (durable && matches!(mode, RecoveryMode::TolerateTornTail | RecoveryMode::Strict)),
                    "{case:?} {mode:?}"
                );
            }
        }
    }
}
