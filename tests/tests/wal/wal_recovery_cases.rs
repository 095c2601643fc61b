// The cases of `wal_recovery.rs`, compiled once per format version (the
// including module defines `VERSION`).

const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateTornTail,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipDamaged,
    RecoveryMode::Strict,
];

/// Length of a segment file's header.
const HEADER: u64 = match VERSION {
    Version::V1 => 56,
    Version::V2 => 32,
};
/// A mark frame: written first in every segment, and before the first
/// frame after each sync.
const MARK: u64 = format::frame_len_of(VERSION, format::MARK_PAYLOAD_LEN as u64);
/// Offset of the first record frame in a segment file: after its header
/// and the mark every segment starts with.
const FRAMES: u64 = HEADER + MARK;
/// A byte in the payload of a segment's first record.
const IN_FIRST_RECORD: u64 = FRAMES + format::frame_len_of(VERSION, 0) + 2;

fn config(dir: &Path, policy: FsyncPolicy) -> WalConfig {
    WalConfig::new(dir).segment_size(4096).fsync(policy).format(VERSION)
}

/// The length of the frame of `record` alone.
fn record_frame_len(record: &Record<'_>) -> u64 {
    format::frame_len_of(VERSION, format::record_frame_len(record) - format::FRAME_HEADER_LEN as u64)
}

fn raw(i: usize) -> Vec<u8> {
    format!("record-{i:04}-{}", "x".repeat(i % 13)).into_bytes()
}

/// Writes `n` raw records under `policy`, then closes the WAL.
fn write(dir: &Path, n: usize, policy: FsyncPolicy) {
    let (wal, _) = Wal::open(config(dir, policy)).unwrap();
    for i in 0..n {
        wal.append(&Record::raw(&raw(i))).unwrap();
    }
    wal.close().unwrap();
}

/// Writes `n` raw records under `policy`, each written out at once, and
/// leaves the files as a process killed right after would (no sync or mark
/// at close): what the files held is put back after the WAL is dropped.
fn write_and_crash(dir: &Path, n: usize, policy: FsyncPolicy) {
    let (wal, _) = Wal::open(config(dir, policy).write_buffer(0)).unwrap();
    for i in 0..n {
        wal.append(&Record::raw(&raw(i))).unwrap();
    }
    // A reader sees every record: all of them are in the files (written
    // out, not synced).
    assert_eq!(read_all(&wal).len(), n);
    let files: Vec<_> = segment_files(dir).into_iter().map(|f| (std::fs::read(&f).unwrap(), f)).collect();
    drop(wal);
    for (bytes, f) in files {
        std::fs::write(f, bytes).unwrap();
    }
}

/// What a mode must do with a scenario: keep these LSNs, or refuse.
#[derive(Debug, Clone)]
enum Expect {
    Keep { lsns: Vec<u64>, case: RecoveryCase },
    Refuse,
}

fn keep(lsns: impl IntoIterator<Item = u64>, case: RecoveryCase) -> Expect {
    Expect::Keep { lsns: lsns.into_iter().collect(), case }
}

/// Opens a copy of the scenario in `dir` under every mode and checks each
/// against `expect` (one entry per mode of [`MODES`]), with the sealed
/// segments checked on the opening thread alone and on four threads: both
/// must decide the same.
fn check_modes(name: &str, build: impl Fn(&Path), expect: [Expect; 4]) {
    for threads in [1, 4] {
        check_modes_on(name, &build, expect.clone(), threads);
    }
}

fn check_modes_on(name: &str, build: &impl Fn(&Path), expect: [Expect; 4], threads: usize) {
    let config = |dir: &Path, policy| config(dir, policy).recovery_threads(threads);
    for (mode, expect) in MODES.into_iter().zip(expect) {
        let scratch = Scratch::new(name);
        let dir = scratch.wal();
        build(&dir);
        let opened = Wal::open(config(&dir, FsyncPolicy::Always).recovery(mode));
        match (opened, &expect) {
            (Ok((wal, info)), Expect::Keep { lsns, case }) => {
                let got: Vec<u64> = read_all(&wal).into_iter().map(|(lsn, _)| lsn).collect();
                assert_eq!(&got, lsns, "{name} under {mode:?}: {info:?}");
                assert_eq!(info.case, *case, "{name} under {mode:?}: {info:?}");
                assert_eq!(info.records, got.len() as u64, "{name} under {mode:?}");
                // Whatever was kept, the log goes on and a reopen agrees.
                let lsn = wal.append(&Record::raw(b"after")).unwrap();
                assert_eq!(lsn, got.last().map_or(wal.first_lsn(), |l| l + 1), "{name} under {mode:?}");
                drop(wal);
                let (wal, again) = Wal::open(config(&dir, FsyncPolicy::Always).recovery(mode)).unwrap();
                let mut expected = got.clone();
                expected.push(lsn);
                let reread: Vec<u64> = read_all(&wal).into_iter().map(|(lsn, _)| lsn).collect();
                assert_eq!(reread, expected, "{name} under {mode:?} after reopen: {again:?}");
                println!("{name:>22} {mode:?}: kept {} records, {:?}", got.len(), info.case);
            }
            (Err(Error::Corrupt(c)), Expect::Refuse) => {
                println!("{name:>22} {mode:?}: refused: {c}");
            }
            (Ok((_, info)), Expect::Refuse) => {
                panic!("{name} under {mode:?}: expected a refusal, got {info:?}")
            }
            (Err(e), _) => panic!("{name} under {mode:?}: unexpected error {e}"),
        }
    }
}

#[test]
fn empty_directory_opens_as_an_empty_log() {
    let expect = keep([], RecoveryCase::Empty);
    check_modes("empty", |_| {}, [expect.clone(), expect.clone(), expect.clone(), expect]);
}

#[test]
fn clean_log_is_kept_whole_and_appended_in_place() {
    let expect = keep(0..5, RecoveryCase::Clean);
    check_modes(
        "clean",
        |dir| write(dir, 5, FsyncPolicy::Always),
        [expect.clone(), expect.clone(), expect.clone(), expect],
    );
    // In place: no new segment file for the next append.
    let scratch = Scratch::new("clean-in-place");
    write(&scratch.wal(), 5, FsyncPolicy::Always);
    let (wal, _) = Wal::open(config(&scratch.wal(), FsyncPolicy::Always)).unwrap();
    wal.append(&Record::raw(b"more")).unwrap();
    assert_eq!(segment_files(&scratch.wal()).len(), 1);
}

#[test]
fn torn_tail_is_cut_except_under_strict() {
    // Three synced records, no clean close; the last frame's final byte is
    // torn.
    let build = |dir: &Path| {
        write_and_crash(dir, 3, FsyncPolicy::Always);
        let file = &segment_files(dir)[0];
        let end = FRAMES + (0..3).map(|i| record_frame_len(&Record::raw(&raw(i)))).sum::<u64>() + 2 * MARK;
        flip_bit(file, end - 1, 3);
    };
    let cut = keep(0..2, RecoveryCase::TornTail);
    check_modes("torn-tail", build, [cut.clone(), cut.clone(), cut, Expect::Refuse]);
}

#[test]
fn damage_followed_by_unsynced_frames_is_cut_as_in_flight() {
    // Os policy, never synced: no mark says anything was durable.
    let build = |dir: &Path| {
        write_and_crash(dir, 3, FsyncPolicy::Os);
        let file = &segment_files(dir)[0];
        let second = FRAMES + record_frame_len(&Record::raw(&raw(0)));
        flip_bit(file, second + 20, 0);
    };
    let cut = keep(0..1, RecoveryCase::InFlight);
    check_modes("in-flight", build, [cut.clone(), cut.clone(), cut, Expect::Refuse]);
}

#[test]
fn damage_below_a_later_mark_is_durable_damage() {
    // Every record synced: the marks before records 1 and 2 claim record 0
    // durable, so its damage is not a torn tail.
    let build = |dir: &Path| {
        write(dir, 3, FsyncPolicy::Always);
        flip_bit(&segment_files(dir)[0], IN_FIRST_RECORD, 5);
    };
    let pit = keep([], RecoveryCase::DurableDamage);
    let skip = keep(1..3, RecoveryCase::DurableDamage);
    check_modes("durable-damage", build, [Expect::Refuse, pit, skip, Expect::Refuse]);
}

/// Records 0..n over several 4 KiB segments.
fn multi_segment(dir: &Path, n: usize) {
    write(dir, n, FsyncPolicy::Os);
    assert!(segment_files(dir).len() >= 3, "the scenario needs three segments");
}

/// The base LSN of a segment file, from its name.
fn base(path: &Path) -> u64 {
    path.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

#[test]
fn damage_in_an_older_segment_is_a_damaged_segment() {
    let n = 400;
    let build = |dir: &Path| {
        multi_segment(dir, n);
        flip_bit(&segment_files(dir)[0], IN_FIRST_RECORD, 1);
    };
    let pit = keep([], RecoveryCase::DamagedSegment);
    let skip = keep(1..n as u64, RecoveryCase::DamagedSegment);
    check_modes("damaged-segment", build, [Expect::Refuse, pit, skip, Expect::Refuse]);
}

/// The file offset of the frame of record `i` in `file`, read from its
/// frames (the segment's first LSN is in its name).
fn frame_offset(file: &Path, lsn: u64) -> u64 {
    let bytes = std::fs::read(file).unwrap();
    let header = format::AnyHeader::decode(&bytes).unwrap();
    assert_eq!(header.version, VERSION);
    let key = format::EpochKey::new(header.epoch);
    let (mut at, mut next) = (header.frames_offset as usize, header.base_lsn);
    loop {
        let end = format::frame_len_of(VERSION, 0) as usize;
        let frame = format::decode_frame_in(VERSION, &bytes[at..bytes.len() - end], &key, header.base_lsn, next)
            .unwrap();
        let here = frame.first_lsn();
        if here == lsn && frame.kind() == format::FrameKind::Raw {
            return at as u64;
        }
        next = here + u64::from(frame.kind() == format::FrameKind::Raw);
        at += frame.len();
    }
}

#[test]
fn an_older_segments_unsynced_tail_is_in_flight() {
    // Os policy: segments are not synced when sealed. A crash lost the tail
    // of the first one (zeros from record 10 on) while later files kept
    // their bytes: every later mark says nothing was durable, so it is a
    // tail in flight, and the log ends there.
    let n = 400;
    let build = |dir: &Path| {
        write_and_crash(dir, n, FsyncPolicy::Os);
        let first = &segment_files(dir)[0];
        let at = frame_offset(first, 10);
        overwrite(first, at, &vec![0u8; (4096 - at) as usize]);
    };
    let cut = keep(0..10, RecoveryCase::InFlight);
    check_modes("unsynced-older-tail", build, [cut.clone(), cut.clone(), cut, Expect::Refuse]);
    // After a sync the same loss is damage: a later mark says the records
    // were durable.
    let build = |dir: &Path| {
        write(dir, n, FsyncPolicy::Os);
        let first = &segment_files(dir)[0];
        let at = frame_offset(first, 10);
        overwrite(first, at, &vec![0u8; (4096 - at) as usize]);
    };
    let files = {
        let scratch = Scratch::new("unsynced-probe");
        write(&scratch.wal(), n, FsyncPolicy::Os);
        segment_files(&scratch.wal())
    };
    let second = base(&files[1]);
    let pit = keep(0..10, RecoveryCase::MissingSegment);
    let skip = keep((0..10).chain(second..n as u64), RecoveryCase::MissingSegment);
    check_modes("synced-older-tail", build, [Expect::Refuse, pit, skip, Expect::Refuse]);
}

#[test]
fn a_reclaim_without_a_sync_never_brings_back_a_log_below_its_start() {
    // Os policy: `truncate_before` needs no sync when the newest segment
    // starts at or after the new start. A crash then loses every unsynced
    // byte of the segment holding the start: the log comes back empty at
    // its start, never below it.
    for mode in MODES {
        let scratch = Scratch::new("reclaim-unsynced");
        let dir = scratch.wal();
        let (wal, _) = Wal::open(config(&dir, FsyncPolicy::Os).write_buffer(0)).unwrap();
        for i in 0..400 {
            wal.append(&Record::raw(&raw(i))).unwrap();
        }
        let files = segment_files(&dir);
        let start = base(&files[1]);
        wal.truncate_before(start).unwrap();
        assert_eq!(wal.stats().syncs, 0, "the reclaim synced");
        assert_eq!(read_all(&wal).len() as u64, 400 - start);
        let kept: Vec<_> = segment_files(&dir).into_iter().map(|f| (std::fs::read(&f).unwrap(), f)).collect();
        drop(wal);
        for (mut bytes, f) in kept {
            // Every frame of every kept file lost (never synced).
            bytes[HEADER as usize..].fill(0);
            std::fs::write(f, bytes).unwrap();
        }
        let opened = Wal::open(config(&dir, FsyncPolicy::Os).recovery(mode));
        if mode == RecoveryMode::Strict {
            // Strict refuses every tail that was in flight.
            assert!(matches!(opened, Err(Error::Corrupt(_))), "{opened:?}");
            continue;
        }
        let (wal, info) = opened.unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert!(read_all(&wal).is_empty(), "{mode:?}: {info:?}");
        assert_eq!(info.case, RecoveryCase::InFlight, "{mode:?}");
        assert_eq!(wal.first_lsn(), start, "{mode:?}: {info:?}");
        assert_eq!(wal.append(&Record::raw(b"next")).unwrap(), start, "{mode:?}: {info:?}");
    }
}

#[test]
fn a_missing_middle_segment_is_reported_never_skipped_silently() {
    let n = 400;
    let scratch = Scratch::new("missing-probe");
    multi_segment(&scratch.wal(), n);
    let files = segment_files(&scratch.wal());
    let (second, third) = (base(&files[1]), base(&files[2]));
    let build = |dir: &Path| {
        multi_segment(dir, n);
        std::fs::remove_file(&segment_files(dir)[1]).unwrap();
    };
    let pit = keep(0..second, RecoveryCase::MissingSegment);
    let skip = keep((0..second).chain(third..n as u64), RecoveryCase::MissingSegment);
    check_modes("missing-segment", build, [Expect::Refuse, pit.clone(), skip.clone(), Expect::Refuse]);
    // A damaged header in the middle is the same case.
    let build = |dir: &Path| {
        multi_segment(dir, n);
        flip_bit(&segment_files(dir)[1], 20, 2);
    };
    check_modes("damaged-header", build, [Expect::Refuse, pit, skip, Expect::Refuse]);
}

#[test]
fn an_interrupted_rotation_leaves_a_file_recovery_removes() {
    for contents in [Vec::new(), vec![0u8; 4096], b"NORIWAL\0\x01\0torn".to_vec()] {
        let scratch = Scratch::new("rotation");
        let dir = scratch.wal();
        write(&dir, 5, FsyncPolicy::Always);
        std::fs::write(dir.join(format!("{:020}.wal", 5)), &contents).unwrap();
        for mode in MODES {
            let (wal, info): (_, RecoveryInfo) =
                Wal::open(config(&dir, FsyncPolicy::Always).recovery(mode)).unwrap();
            assert_eq!(read_all(&wal).len(), 5);
            assert_eq!(info.case, RecoveryCase::Clean);
            assert_eq!(info.segments_removed, 1, "{mode:?} {contents:?}");
            assert_eq!(segment_files(&dir).len(), 1);
            drop(wal);
            std::fs::write(dir.join(format!("{:020}.wal", 5)), &contents).unwrap();
        }
    }
}

#[test]
fn leftovers_of_an_interrupted_reclaim_are_removed() {
    let scratch = Scratch::new("reclaim-leftover");
    let dir = scratch.wal();
    multi_segment(&dir, 400);
    let first = segment_files(&dir)[0].clone();
    let saved = std::fs::read(&first).unwrap();
    let (wal, _) = Wal::open(config(&dir, FsyncPolicy::Always)).unwrap();
    let start = base(&segment_files(&dir)[2]) + 1;
    wal.truncate_before(start).unwrap();
    assert_eq!(wal.first_lsn(), start);
    drop(wal);
    assert!(!first.exists());
    // The crash came before the removal was durable: the file is back.
    std::fs::write(&first, saved).unwrap();
    for mode in MODES {
        let (wal, info) = Wal::open(config(&dir, FsyncPolicy::Always).recovery(mode)).unwrap();
        assert_eq!(wal.first_lsn(), start, "{mode:?}");
        assert_eq!(read_all(&wal).first().map(|r| r.0), Some(start));
        assert!(info.segments_removed <= 1 && info.case == RecoveryCase::Clean, "{info:?}");
        assert!(!first.exists());
    }
}

#[test]
fn a_newer_format_version_is_refused_in_every_mode() {
    for mode in MODES {
        let scratch = Scratch::new("version");
        let dir = scratch.wal();
        write(&dir, 3, FsyncPolicy::Always);
        let file = &segment_files(&dir)[0];
        let len = HEADER as usize;
        let mut header = std::fs::read(file).unwrap()[..len].to_vec();
        // The version field (v1: a u16 at 8; v2: a byte at 4), one past the
        // newest; the CRC (the last 4 bytes) made to match.
        let newer = format::NEWEST_VERSION + 1;
        match VERSION {
            Version::V1 => header[8..10].copy_from_slice(&newer.to_le_bytes()),
            Version::V2 => header[4] = newer as u8,
        }
        let crc = nori_wal::crc::crc32c(&header[..len - 4]);
        header[len - 4..].copy_from_slice(&crc.to_le_bytes());
        overwrite(file, 0, &header);
        let err = Wal::open(config(&dir, FsyncPolicy::Always).recovery(mode)).unwrap_err();
        assert!(matches!(err, Error::UnsupportedVersion { found, .. } if found == newer), "{err}");
        assert!(err.to_string().contains("upgrade"), "{err}");
        // Nothing was changed.
        assert_eq!(&std::fs::read(file).unwrap()[..len], &header[..]);
    }
}

#[test]
fn damage_among_reclaimed_records_is_no_loss() {
    // Found by the wal_dir fuzzer: a damaged frame below the log's start in
    // the oldest retained segment was reported as a loss (and refused).
    for mode in MODES {
        let scratch = Scratch::new("damage-below-start");
        let dir = scratch.wal();
        write(&dir, 5, FsyncPolicy::Always);
        {
            let (wal, _) = Wal::open(config(&dir, FsyncPolicy::Always)).unwrap();
            wal.truncate_before(3).unwrap();
        }
        // Record 1 (reclaimed) is damaged.
        let second = FRAMES + record_frame_len(&Record::raw(&raw(0))) + MARK;
        flip_bit(&segment_files(&dir)[0], second + 20, 4);
        let (wal, info) = Wal::open(config(&dir, FsyncPolicy::Always).recovery(mode))
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        let got: Vec<u64> = read_all(&wal).into_iter().map(|(lsn, _)| lsn).collect();
        assert_eq!(got, vec![3, 4], "{mode:?}: {info:?}");
        assert!(info.corruption.is_none() && info.records_lost == 0, "{mode:?}: {info:?}");
    }
}

/// The counts a point-in-time recovery reports add up to the log: the
/// records kept plus the records dropped are every record written, whether
/// the damage is a flipped frame in the second of several segments or a
/// damaged header of a middle segment (found before anything else).
#[test]
fn point_in_time_counts_every_record_it_drops() {
    let n = 700u64;
    type Damage = fn(&[std::path::PathBuf]);
    let damages: [(&str, Damage); 2] = [
        ("a frame of the second segment", |files| flip_bit(&files[1], IN_FIRST_RECORD, 1)),
        ("the header of the third segment", |files| flip_bit(&files[2], 10, 1)),
    ];
    for (what, damage) in damages {
        let scratch = Scratch::new("pit-counts");
        let dir = scratch.wal();
        multi_segment(&dir, n as usize);
        let files = segment_files(&dir);
        assert!(files.len() >= 5, "the scenario needs segments after the damage");
        damage(&files);
        let (wal, info) =
            Wal::open(config(&dir, FsyncPolicy::Always).recovery(RecoveryMode::PointInTime)).unwrap();
        assert!(info.corruption.is_some(), "{what}");
        assert_eq!(info.records, wal.next_lsn() - wal.first_lsn(), "{what}: records kept");
        assert_eq!(
            info.records + info.records_lost,
            n,
            "{what}: kept {} + dropped {}",
            info.records,
            info.records_lost
        );
    }
}

/// Cuts `file` to `len` bytes.
fn cut_file(file: &Path, len: u64) {
    std::fs::OpenOptions::new().write(true).open(file).unwrap().set_len(len).unwrap();
}

/// The newest segment file cut short with its header intact. Format
/// version 2 records in the header that a file was made at full size
/// before any frame went in, so no crash leaves one shorter: the records
/// past the cut were acknowledged, and their loss is durable damage.
/// Version 1 records nothing of the kind: the cut looks like a torn tail.
#[test]
fn a_newest_segment_cut_short_is_damage_where_its_header_says_it_was_made_whole() {
    let build = |dir: &Path| {
        write(dir, 40, FsyncPolicy::Always);
        let files = segment_files(dir);
        assert_eq!(files.len(), 1);
        cut_file(&files[0], frame_offset(&files[0], 30));
    };
    let expect = match VERSION {
        Version::V2 => {
            let cut = keep(0..30, RecoveryCase::DurableDamage);
            [Expect::Refuse, cut.clone(), cut, Expect::Refuse]
        }
        Version::V1 => {
            let cut = keep(0..30, RecoveryCase::Clean);
            [cut.clone(), cut.clone(), cut.clone(), cut]
        }
    };
    check_modes("cut-short-newest", build, expect);
    // Without preallocation the header says nothing: a short file is what
    // a crash leaves, and its end is where its frames end.
    let build = |dir: &Path| {
        let (wal, _) = Wal::open(config(dir, FsyncPolicy::Always).preallocate(false)).unwrap();
        for i in 0..40 {
            wal.append(&Record::raw(&raw(i))).unwrap();
        }
        wal.close().unwrap();
        let files = segment_files(dir);
        cut_file(&files[0], frame_offset(&files[0], 30));
    };
    let cut = keep(0..30, RecoveryCase::Clean);
    check_modes("cut-short-unallocated", build, [cut.clone(), cut.clone(), cut.clone(), cut]);
}

/// A segment before the newest cut short: in version 2 a damaged segment
/// (nothing but damage shortens a file made at full size), in version 1 a
/// segment whose records stop short of the next one's (a missing span).
#[test]
fn a_sealed_segment_cut_short_is_reported() {
    let n = 400;
    let files = {
        let scratch = Scratch::new("cut-short-probe");
        multi_segment(&scratch.wal(), n);
        segment_files(&scratch.wal())
    };
    let second = base(&files[1]);
    let build = |dir: &Path| {
        multi_segment(dir, n);
        let first = &segment_files(dir)[0];
        cut_file(first, frame_offset(first, 10));
    };
    let case = match VERSION {
        Version::V1 => RecoveryCase::MissingSegment,
        Version::V2 => RecoveryCase::DamagedSegment,
    };
    let pit = keep(0..10, case);
    let skip = keep((0..10).chain(second..n as u64), case);
    check_modes("cut-short-sealed", build, [Expect::Refuse, pit, skip, Expect::Refuse]);
}

/// The seal of the oldest segment (format version 2), with `edit` applied
/// to it, written back with a valid checksum.
fn reseal(file: &Path, edit: impl Fn(&mut format::Seal)) {
    let bytes = std::fs::read(file).unwrap();
    let header = format::AnyHeader::decode(&bytes).unwrap();
    let key = format::EpochKey::new(header.epoch);
    let at = bytes.len() - format::v2::SEAL_LEN;
    let frame = format::v2::decode_frame(&bytes[at..], &key, header.base_lsn).expect("a sealed segment");
    let format::Body::Seal(mut seal) = frame.body().unwrap() else { panic!("not a seal") };
    edit(&mut seal);
    let mut out = [0u8; format::v2::SEAL_LEN];
    format::v2::EncodedFrame::seal(seal).write_to(&mut out, &key, header.base_lsn).unwrap();
    overwrite(file, at as u64, &out);
}

/// Seals (format version 2): one that checks out but disagrees with its
/// segment's frames is damage in every mode; one that is torn is damage
/// only to `Strict` (a crash may tear it, and each frame is checked on its
/// own); one that was never written is a segment a crash left unsealed.
#[test]
fn a_seal_that_disagrees_with_its_frames_is_a_damaged_segment() {
    if VERSION != Version::V2 {
        return;
    }
    let n = 400;
    let files = {
        let scratch = Scratch::new("seal-probe");
        multi_segment(&scratch.wal(), n);
        segment_files(&scratch.wal())
    };
    let second = base(&files[1]);
    let wrong_count = |dir: &Path| {
        multi_segment(dir, n);
        reseal(&segment_files(dir)[0], |seal| seal.records += 1);
    };
    let pit = keep(0..second, RecoveryCase::DamagedSegment);
    let skip = keep(0..n as u64, RecoveryCase::DamagedSegment);
    check_modes("seal-count", wrong_count, [Expect::Refuse, pit.clone(), skip.clone(), Expect::Refuse]);
    let wrong_crc = |dir: &Path| {
        multi_segment(dir, n);
        reseal(&segment_files(dir)[0], |seal| seal.frames_crc ^= 1);
    };
    check_modes("seal-checksum", wrong_crc, [Expect::Refuse, pit, skip, Expect::Refuse]);
    let clean = keep(0..n as u64, RecoveryCase::Clean);
    let torn = |dir: &Path| {
        multi_segment(dir, n);
        flip_bit(&segment_files(dir)[0], 4096 - 3, 6);
    };
    check_modes("seal-torn", torn, [clean.clone(), clean.clone(), clean.clone(), Expect::Refuse]);
    let blank = |dir: &Path| {
        multi_segment(dir, n);
        overwrite(&segment_files(dir)[0], 4096 - format::v2::SEAL_LEN as u64, &[0; format::v2::SEAL_LEN]);
    };
    check_modes("seal-blank", blank, [clean.clone(), clean.clone(), clean.clone(), clean]);
}
