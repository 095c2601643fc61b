//! Every checked-in fuzz corpus input and every regression found by the
//! fuzzers (`fuzz/`), replayed through the fuzz target bodies on stable.
//!
//! `cargo test -p nori-wal-tests --test format -- fuzz_corpora:: --ignored` writes the
//! seed corpora again (valid frames, device images, operation scripts and
//! directories, from which the fuzzers mutate).

use std::path::{Path, PathBuf};

use nori_wal_tests::fuzzing;

/// A fuzz target body.
type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 4] = [
    ("frame_decoder", fuzzing::frame_decoder),
    ("ring_image", fuzzing::ring_image),
    ("ring_ops", fuzzing::ring_ops),
    ("wal_dir", fuzzing::wal_dir),
];

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn every_corpus_input_and_regression_passes() {
    let mut total = 0;
    for (target, run) in TARGETS {
        let mut n = 0;
        for sub in ["corpus", "regressions"] {
            for path in inputs(&fuzz_dir().join(sub).join(target)) {
                let data = std::fs::read(&path).unwrap();
                run(&data);
                n += 1;
            }
        }
        assert!(n > 0, "no corpus for {target}");
        println!("{target}: {n} inputs replayed");
        total += n;
    }
    println!("fuzz corpora: {total} inputs replayed");
}

#[test]
#[ignore = "writes the seed corpora into fuzz/corpus"]
fn write_seed_corpora() {
    use nori_wal::blocking::Wal;
    use nori_wal::fs::{File, Fs, OpenMode};
    use nori_wal::{FsyncPolicy, Record, WalConfig};
    use nori_wal_core::format::Version;
    use nori_wal_core::ring::{RingConfig, RingLog};
    use nori_wal_core::{Geometry, RamDevice};
    use nori_wal_tests::simfs::{FsFaults, SimFs};

    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
    };
    // Frames and segment headers: the golden vectors of both versions.
    for (version, prefix) in [("format-v1", ""), ("format-v2", "v2-")] {
        for path in inputs(&nori_wal_tests::fixtures_dir().join(version)) {
            let text = std::fs::read_to_string(&path).unwrap();
            let Ok(bytes) = nori_wal_tests::from_hex(&text) else { continue };
            write(
                "frame_decoder",
                &format!("{prefix}{}", path.file_stem().unwrap().to_str().unwrap()),
                &bytes,
            );
        }
    }
    // Device images written by the ring log: geometry 0 (bytes) and 3 (NOR),
    // in both format versions.
    for (geometry_index, geometry, version, suffix) in [
        (0u8, Geometry::block(1).unwrap(), Version::V1, ""),
        (3, Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap(), Version::V1, ""),
        (0u8, Geometry::block(1).unwrap(), Version::V2, "-v2"),
        (3, Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap(), Version::V2, "-v2"),
    ] {
        let fill = geometry.erase_value().unwrap_or(0);
        let mut device = RamDevice::new(vec![fill; 4 * 4096], geometry).unwrap();
        let mut buffer = vec![0u8; 4096];
        {
            let config = RingConfig::new(4096).format(version);
            let (mut log, _) = RingLog::open(&mut device, config, &mut buffer).unwrap();
            for i in 0..40u32 {
                log.append(&Record::raw(format!("record {i}").as_bytes())).unwrap();
                if i % 7 == 0 {
                    log.sync().unwrap();
                }
            }
            log.sync().unwrap();
        }
        let mut input = vec![geometry_index, 0];
        input.extend_from_slice(device.bytes());
        write("ring_image", &format!("geometry-{geometry_index}{suffix}"), &input);
    }
    // Operation scripts.
    for (name, script) in [
        ("appends-syncs-crash", vec![0u8, 0, 20, 1, 0, 30, 2, 4, 3, 2, 7, 0, 5, 1, 6, 1, 0, 9, 9, 4, 6, 0]),
        ("nor-batches-reclaim", vec![3u8, 3, 3, 1, 2, 3, 4, 0, 40, 7, 4, 5, 2, 4, 6, 1, 0, 8, 8, 7]),
        ("sector-reopen", vec![1u8, 0, 200, 5, 4, 7, 0, 100, 6, 4, 0, 250, 1, 4, 6, 0]),
    ] {
        write("ring_ops", name, &script);
    }
    // Directories written by the file WAL.
    let fs = SimFs::new(FsFaults::default());
    {
        let config = WalConfig::new("/wal").segment_size(16 << 10).fsync(FsyncPolicy::Always);
        let (wal, _) = Wal::open_in(fs.clone(), config).unwrap();
        for i in 0..300u32 {
            wal.append(&Record::put(format!("k{i}").as_bytes(), &[i as u8; 20])).unwrap();
        }
        wal.truncate_before(150).unwrap();
    }
    let mut input = Vec::new();
    let names = fs.list(Path::new("/wal")).unwrap();
    let mut files = Vec::new();
    for name in names {
        let name = name.to_str().unwrap().to_string();
        let file = fs.open(&Path::new("/wal").join(&name), OpenMode::Read).unwrap();
        let mut bytes = vec![0u8; File::size(&file).unwrap() as usize];
        nori_wal::fs::read_exact_at(&file, &mut bytes, 0).unwrap();
        files.push((name, bytes));
    }
    input.push(files.len() as u8);
    for (name, bytes) in &files {
        let (kind, base) = match name.strip_suffix(".wal") {
            Some(digits) => (0u8, digits.parse::<u64>().unwrap()),
            None => (5, 0),
        };
        input.push(kind);
        input.extend_from_slice(&base.to_le_bytes());
        let len = bytes.len().min(u16::MAX as usize);
        input.extend_from_slice(&(len as u16).to_le_bytes());
        input.extend_from_slice(&bytes[..len]);
    }
    write("wal_dir", "reclaimed-log", &input);
}
