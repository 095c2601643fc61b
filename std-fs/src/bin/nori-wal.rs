//! `nori-wal`: inspect, verify, repair and follow nori-wal logs — a WAL
//! directory, a raw-partition image, or a flash dump — and run the headline
//! benchmark. `nori-wal --help` lists the commands.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use nori_wal::blocking::Wal;
use nori_wal::fs::{File, Fs, OpenMode, StdFs};
use nori_wal::ring::{RecoveryCase, RingConfig, RingLog};
use nori_wal::wal::{FollowConfig, Follower, Inspection};
use nori_wal::{Error, FsyncPolicy, Geometry, Lsn, RamDevice, Record, RecoveryMode, WalConfig};

/// Exit code of `verify` for a log whose tail is torn (nothing durable lost).
const EXIT_TORN: u8 = 2;
/// Exit code for a corrupt log (damage in the durable region).
const EXIT_CORRUPT: u8 = 3;

#[derive(Parser)]
#[command(name = "nori-wal", version, about = "Inspect, verify, repair and follow nori-wal logs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Segments, LSN range, sizes, format version and health of a log.
    Info(Target),
    /// Print records, as text or JSON lines.
    Dump {
        #[command(flatten)]
        target: Target,
        /// First LSN to print (default: the log's first).
        #[arg(long)]
        from: Option<Lsn>,
        /// Print at most this many records.
        #[arg(long)]
        limit: Option<u64>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Read every record; exit 0 when healthy, 2 for a torn tail, 3 when corrupt.
    Verify(Target),
    /// Cut a torn tail, or apply a recovery mode, to a WAL directory; exit 0
    /// when the log then opens in the default mode, 3 when it still holds
    /// damage that only the mode given reads past. A ring image or partition
    /// is not repaired: a ring cannot rewrite a slot in place without an
    /// erase, and its recovery writes nothing (a torn tail is left behind
    /// and the next segment starts elsewhere); `verify` reports its damage,
    /// and the log opens in the mode that reads past it.
    Repair {
        /// The WAL directory.
        path: PathBuf,
        /// What to do with damage.
        #[arg(long, value_enum, default_value = "tolerate-torn-tail")]
        mode: Mode,
        /// Really change the log (without it, say what would be done).
        #[arg(long)]
        yes: bool,
        /// Skip the backup copy of the directory made before repairing.
        #[arg(long, conflicts_with = "backup_dir")]
        no_backup: bool,
        /// Where to make the backup copy (default: beside the WAL directory).
        /// A WAL on a mount of its own may have no room beside it.
        #[arg(long, value_name = "DIR")]
        backup_dir: Option<PathBuf>,
    },
    /// Print the last records; with -f, follow new ones as they are appended.
    Tail {
        /// The WAL directory.
        path: PathBuf,
        /// Records to print first.
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: u64,
        /// Keep printing records as they are appended.
        #[arg(short, long)]
        follow: bool,
    },
    /// Run the headline benchmark in a temporary directory.
    Bench {
        /// Directory to run in (default: the system's temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// A raw partition (or an image file) for the shared ring's rows; it
        /// is overwritten, and refused when it holds a file system or is
        /// mounted. Without it, an image file in the directory stands in.
        #[arg(long, value_name = "DEVICE")]
        device: Option<PathBuf>,
    },
}

#[derive(Args)]
struct Target {
    /// A WAL directory, a raw-partition image or block device, or a flash dump.
    path: PathBuf,
    /// For an image or a flash dump: the segment size the log was written with.
    #[arg(long)]
    segment_size: Option<u64>,
    /// For an image: its sector size.
    #[arg(long, default_value_t = 512)]
    sector: u32,
    /// For a flash dump: the program unit (then it is read as NOR flash).
    #[arg(long)]
    program_unit: Option<u32>,
    /// For a flash dump: the erase unit.
    #[arg(long, default_value_t = 4096)]
    erase_unit: u32,
    /// For a flash dump: the erase value.
    #[arg(long, default_value = "0xff", value_parser = parse_byte)]
    erase_value: u8,
    /// Recovery mode to read the log with.
    #[arg(long, value_enum, default_value = "tolerate-torn-tail")]
    mode: Mode,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    TolerateTornTail,
    PointInTime,
    SkipDamaged,
    Strict,
}

impl From<Mode> for RecoveryMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::TolerateTornTail => Self::TolerateTornTail,
            Mode::PointInTime => Self::PointInTime,
            Mode::SkipDamaged => Self::SkipDamaged,
            Mode::Strict => Self::Strict,
        }
    }
}

fn parse_byte(s: &str) -> Result<u8, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|_| format!("`{s}` is not a byte (0 to 255, or 0x00 to 0xff)"))
}

/// A failure: one line for the user and an exit code.
struct Failure {
    message: String,
    code: u8,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        // A file that claims to be a segment and is not is damage to the log.
        let code = if matches!(e, Error::Corrupt(_) | Error::ForeignFile { .. }) { EXIT_CORRUPT } else { 1 };
        Self { message: e.to_string(), code }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self { message, code: 1 }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self { message: e.to_string(), code: 1 }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(target) => info(&target),
        Command::Dump { target, from, limit, json } => dump(&target, from, limit, json),
        Command::Verify(target) => verify(&target),
        Command::Repair { path, mode, yes, no_backup, backup_dir } => {
            let backup = if no_backup { Backup::None } else { Backup::In(backup_dir) };
            repair(&path, mode.into(), yes, &backup)
        }
        Command::Tail { path, lines, follow } => tail(&path, lines, follow),
        Command::Bench { dir, device } => bench(dir, device),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("nori-wal: error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// A record as text: printable bytes as a quoted string, others as hex.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') => format!("{s:?}"),
        _ => format!("0x{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()),
    }
}

/// A JSON string of bytes: the text when UTF-8, else `hex:` and the bytes.
fn json_string(bytes: &[u8]) -> String {
    let s = match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => format!("hex:{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()),
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn line(lsn: Lsn, record: &Record<'_>, json: bool) -> String {
    match (json, record.raw_payload(), record.key(), record.value()) {
        (false, Some(p), _, _) => format!("{lsn}\traw\t{}", text(p)),
        (false, None, Some(k), Some(v)) => format!("{lsn}\tput\t{}\t{}", text(k), text(v)),
        (false, None, Some(k), None) => format!("{lsn}\tdelete\t{}", text(k)),
        (true, Some(p), _, _) => format!("{{\"lsn\":{lsn},\"kind\":\"raw\",\"payload\":{}}}", json_string(p)),
        (true, None, Some(k), Some(v)) => {
            format!(
                "{{\"lsn\":{lsn},\"kind\":\"put\",\"key\":{},\"value\":{}}}",
                json_string(k),
                json_string(v)
            )
        }
        (true, None, Some(k), None) => {
            format!("{{\"lsn\":{lsn},\"kind\":\"delete\",\"key\":{}}}", json_string(k))
        }
        _ => format!("{lsn}\t?"),
    }
}

/// The medium a path holds.
enum Medium {
    Dir,
    Ring { image: Vec<u8>, geometry: Geometry, segment_size: u64 },
}

fn medium(target: &Target) -> Result<Medium, Failure> {
    let meta = std::fs::metadata(&target.path).map_err(|e| format!("{}: {e}", target.path.display()))?;
    if meta.is_dir() {
        return Ok(Medium::Dir);
    }
    let Some(segment_size) = target.segment_size else {
        return Err(format!(
            "{} is not a directory: for an image or a flash dump give --segment-size (and --program-unit for flash)",
            target.path.display()
        )
        .into());
    };
    let geometry = match target.program_unit {
        Some(pu) => Geometry::try_new(1, pu, target.erase_unit, Some(target.erase_value), false),
        None => Geometry::block(target.sector),
    }
    .map_err(|e| format!("geometry: {e}"))?;
    let image = std::fs::read(&target.path).map_err(|e| format!("{}: {e}", target.path.display()))?;
    Ok(Medium::Ring { image, geometry, segment_size })
}

/// The lines every medium's `info` shares.
fn summary(case: RecoveryCase, torn_tail: bool, records: u64, lsns: Option<(Lsn, Lsn)>) {
    println!("format versions: reads 1 and {}", nori_wal::format::NEWEST_VERSION);
    println!("health:          {case:?}{}", if torn_tail { " (torn tail)" } else { "" });
    println!("records:         {records}");
    match lsns {
        Some((a, b)) => println!("LSNs:            {a} to {b}"),
        None => println!("LSNs:            none"),
    }
}

/// Opens a ring medium over an in-memory copy (nothing is written back).
fn with_ring<T>(
    image: Vec<u8>,
    geometry: Geometry,
    segment_size: u64,
    mode: RecoveryMode,
    f: impl FnOnce(&mut RingLog<'_, RamDevice<Vec<u8>>>, nori_wal::ring::RecoveryInfo) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let len = image.len() - image.len() % geometry.io_unit() as usize;
    let mut image = image;
    image.truncate(len);
    let device = RamDevice::new(image, geometry).map_err(|e| format!("image: {e}"))?;
    let unit = geometry.io_unit() as usize;
    let mut buffer = vec![0u8; (64 << 10).max(2 * unit)];
    let (mut log, info) = RingLog::open(device, RingConfig::new(segment_size).recovery(mode), &mut buffer)
        .map_err(|e| Failure {
            code: if matches!(e, nori_wal::ring::Error::Corrupt(_)) { EXIT_CORRUPT } else { 1 },
            message: e.to_string(),
        })?;
    f(&mut log, info)
}

/// Checks a ring image that a process may be writing as it is read (a raw
/// partition or an image file has no lock to say so): when `check` finds
/// damage, the image is read again after a pause; the answer is final when
/// the image did not change, or when the changed image gives the same
/// damage again.
fn settle_ring<T>(
    path: &Path,
    mut image: Vec<u8>,
    check: impl Fn(Vec<u8>) -> T,
    damage: impl Fn(&T) -> Option<String>,
) -> Result<T, Failure> {
    let mut seen = None;
    for attempt in 1..=20u32 {
        let found = check(image.clone());
        let now = damage(&found);
        if now.is_none() || (seen.is_some() && seen == now) {
            return Ok(found);
        }
        std::thread::sleep((Duration::from_millis(50) * attempt).min(Duration::from_secs(1)));
        let again = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if again == image {
            return Ok(found);
        }
        if attempt == 1 {
            eprintln!("note: {} is being written; reading it again to settle what was found", path.display());
        }
        seen = now;
        image = again;
    }
    Err(format!("{} changed under every read while it was written: no damage was confirmed", path.display())
        .into())
}

fn info(target: &Target) -> Result<u8, Failure> {
    let mode = target.mode.into();
    match medium(target)? {
        Medium::Dir => {
            let look = Inspection::open_settled(&target.path, mode)?;
            let info = look.info();
            println!("medium:          WAL directory {}", target.path.display());
            if look.in_use() {
                println!("in use:          by a writer; these figures are a snapshot taken while it wrote");
            }
            summary(info.case, info.torn_tail, info.records, info.first_lsn.zip(info.last_lsn));
            if info.records == 0 {
                println!("next LSN:        {}", look.next_lsn());
            }
            let segments = look.segments();
            let bytes: u64 = segments.iter().map(|s| s.file_len).sum();
            println!("segments:        {} files, {bytes} bytes", segments.len());
            for s in &segments {
                println!(
                    "  {}  base LSN {:>12}  epoch {:>20}  size {:>10}  file {:>10}  format v{}",
                    s.path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
                    s.base_lsn,
                    s.epoch,
                    s.segment_size,
                    s.file_len,
                    s.version.number()
                );
            }
            if let Some(c) = &info.corruption {
                println!("damage:          {c}");
            }
            for loose in &info.loose_permissions {
                println!("permissions:     {loose}");
            }
            Ok(0)
        }
        Medium::Ring { image, geometry, segment_size } => {
            let bytes = image.len();
            with_ring(image, geometry, segment_size, mode, |log, info| {
                println!(
                    "medium:          ring log image ({bytes} bytes, {} segments of {segment_size})",
                    log.segments()
                );
                summary(info.case, info.torn_tail, info.records, info.first_lsn.zip(info.last_lsn));
                if let Some(c) = &info.corruption {
                    println!("damage:          {c}");
                }
                Ok(0)
            })
        }
    }
}

fn dump(target: &Target, from: Option<Lsn>, limit: Option<u64>, json: bool) -> Result<u8, Failure> {
    let limit = limit.unwrap_or(u64::MAX);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut printed = 0u64;
    match medium(target)? {
        Medium::Dir => {
            let look = Inspection::open_settled(&target.path, target.mode.into())?;
            if look.in_use() {
                eprintln!(
                    "note: the log is in use by a writer; this is a snapshot up to LSN {}",
                    look.next_lsn()
                );
            }
            let mut iter = look.iter_from(from.unwrap_or(look.first_lsn()))?;
            while printed < limit
                && let Some(entry) = iter.try_next()?
            {
                writeln!(out, "{}", line(entry.lsn, &entry.record, json))?;
                printed += 1;
            }
        }
        Medium::Ring { image, geometry, segment_size } => {
            with_ring(image, geometry, segment_size, target.mode.into(), |log, _| {
                let mut read = vec![0u8; 1 << 20];
                let first = from.unwrap_or(log.first_lsn());
                let mut iter = log.iter_from(first, &mut read).map_err(|e| e.to_string())?;
                while printed < limit
                    && let Some(entry) = iter.try_next().map_err(|e| e.to_string())?
                {
                    writeln!(out, "{}", line(entry.lsn, &entry.record, json))?;
                    printed += 1;
                }
                Ok(())
            })?;
        }
    }
    out.flush()?;
    Ok(0)
}

fn verify(target: &Target) -> Result<u8, Failure> {
    let started = Instant::now();
    let progress = |done: u64, total: u64| {
        if started.elapsed() > Duration::from_secs(1) && total > 0 {
            eprint!("\rverifying: {:>3}% ({done} of {total} records)", done * 100 / total);
        }
    };
    let (info_torn, records, corruption) = match medium(target)? {
        Medium::Dir => {
            let found = nori_wal::wal::verify(&target.path, target.mode.into(), progress)?;
            if found.in_use {
                println!(
                    "in use by a writer: checked a snapshot up to LSN {} (its newest frames were being written){}",
                    found.next_lsn,
                    if found.checks > 1 {
                        format!("; read {} times to settle", found.checks)
                    } else {
                        String::new()
                    }
                );
            }
            if let Some(c) = found.corruption {
                println!("corrupt: {c}");
                return Ok(EXIT_CORRUPT);
            }
            (found.torn_tail, found.records, found.read_past.map(|c| c.to_string()))
        }
        Medium::Ring { image, geometry, segment_size } => {
            let check = |image: Vec<u8>| {
                with_ring(image, geometry, segment_size, target.mode.into(), |log, info| {
                    let mut read = vec![0u8; 1 << 20];
                    let mut iter = log.iter_from(log.first_lsn(), &mut read).map_err(|e| e.to_string())?;
                    let mut n = 0;
                    while iter
                        .try_next()
                        .map_err(|e| Failure { message: e.to_string(), code: EXIT_CORRUPT })?
                        .is_some()
                    {
                        n += 1;
                    }
                    Ok((info.torn_tail, n, info.corruption.map(|c| c.to_string())))
                })
            };
            let opened = settle_ring(&target.path, image, check, |found| match found {
                Ok((torn, _, damage)) => damage.clone().or_else(|| torn.then(|| "torn tail".to_owned())),
                Err(f) if f.code == EXIT_CORRUPT => Some(f.message.clone()),
                Err(_) => None,
            })?;
            match opened {
                Ok(found) => found,
                Err(f) if f.code == EXIT_CORRUPT => {
                    println!("corrupt: {}", f.message);
                    return Ok(EXIT_CORRUPT);
                }
                Err(f) => return Err(f),
            }
        }
    };
    if started.elapsed() > Duration::from_secs(1) {
        eprintln!();
    }
    if let Some(c) = corruption {
        println!("damaged, read past as the mode allows: {c} ({records} records readable)");
        return Ok(EXIT_CORRUPT);
    }
    if info_torn {
        println!(
            "torn tail: the last write was cut by a crash; {records} records intact (`nori-wal repair --yes` cuts it)"
        );
        return Ok(EXIT_TORN);
    }
    println!("healthy: {records} records, every frame checked");
    Ok(0)
}

/// Copies the WAL directory `from` into the new directory `to`: created
/// here (never an existing directory or a link), with the modes of `from`;
/// each file with its own modes, read and written without following a link,
/// synced.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<Copied> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(to)?;
    if let Some(mode) = StdFs.mode(from)? {
        StdFs.set_mode(to, mode)?;
    }
    let mut copied = Copied::default();
    let mut buf = vec![0u8; 1 << 20];
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        // The log is in regular files; anything else in the directory
        // (`lost+found` on a WAL's own mount) is not the WAL's.
        if !entry.file_type()?.is_file() {
            copied.skipped.push(entry.file_name().to_string_lossy().into_owned());
            continue;
        }
        let source = StdFs.open(&entry.path(), OpenMode::Read)?;
        let copy = StdFs.open(&to.join(entry.file_name()), OpenMode::CreateNew)?;
        if let Some(mode) = source.mode()? {
            copy.set_mode(mode)?;
        }
        let mut at = 0;
        loop {
            let n = source.read_at(&mut buf, at)?;
            if n == 0 {
                break;
            }
            copy.write_all_at(&buf[..n], at)?;
            at += n as u64;
        }
        copy.sync_data()?;
        copied.files += 1;
        copied.bytes += at;
    }
    StdFs.sync_dir(to)?;
    if let Some(parent) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
        StdFs.sync_dir(parent)?;
    }
    Ok(copied)
}

/// What [`copy_dir`] copied, and the names it left out.
#[derive(Default)]
struct Copied {
    files: u64,
    bytes: u64,
    skipped: Vec<String>,
}

/// Where `repair` makes its backup.
enum Backup {
    None,
    /// In this directory, or beside the WAL directory.
    In(Option<PathBuf>),
}

fn repair(path: &Path, mode: RecoveryMode, yes: bool, backup: &Backup) -> Result<u8, Failure> {
    let look = Inspection::open(path, mode)?;
    if look.in_use() {
        return Err(format!("{} is in use by a writer: close it before repairing", path.display()).into());
    }
    let info = look.info();
    let work = info.torn_tail || info.corruption.is_some() || info.segments_removed > 0;
    if !work {
        println!("nothing to repair: {} records, {:?}", info.records, info.case);
        return Ok(0);
    }
    println!(
        "{:?}: keeps {} records; {} bytes cut, {} records dropped or skipped, {} files removed",
        info.case, info.records, info.bytes_discarded, info.records_lost, info.segments_removed
    );
    if !yes {
        println!("nothing changed: run again with --yes to repair");
        return Ok(1);
    }
    if let Backup::In(dir) = backup {
        // Named after the directory itself (`.` or `wal/` included).
        let path = &std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let stamp =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let name = format!(
            "{}.backup-{stamp}",
            path.file_name().map_or_else(|| "wal".into(), |n| n.to_string_lossy())
        );
        let to = match dir {
            Some(dir) => dir.join(name),
            None => path.with_file_name(name),
        };
        let copied =
            copy_dir(path, &to).map_err(|e| format!("backup to {}: {e}; nothing changed", to.display()))?;
        println!("backup: {} ({} files, {} bytes)", to.display(), copied.files, copied.bytes);
        if !copied.skipped.is_empty() {
            println!("not copied (not the WAL's files): {}", copied.skipped.join(", "));
        }
    }
    let (wal, info) = Wal::open(WalConfig::new(path).recovery(mode))?;
    // Skipped damage becomes holes (format v2), so that every mode opens
    // the log; what stays (version 1 segments have no holes) is said below.
    if mode == RecoveryMode::SkipDamaged {
        let declared = wal.declare_lost()?;
        if declared.segments_rewritten > 0 || declared.files_removed > 0 {
            println!(
                "declared lost: {} LSNs, as holes in {} rewritten segments; {} damaged files removed",
                declared.holes, declared.segments_rewritten, declared.files_removed
            );
        }
    }
    wal.close()?;
    // Damage that stays in the files: say so when the default mode would
    // still refuse the log.
    match Inspection::open(path, RecoveryMode::TolerateTornTail) {
        Err(Error::Corrupt(c)) => {
            println!("applied {mode:?}: {} records readable, {:?}", info.records, info.case);
            println!(
                "still damaged: the default recovery mode refuses this log ({c}); open it with \
                 RecoveryMode::{mode:?} (`WalConfig::recovery`), or read it with `--mode` as here"
            );
            Ok(EXIT_CORRUPT)
        }
        _ => {
            println!("repaired: {} records, {:?}", info.records, info.case);
            Ok(0)
        }
    }
}

fn tail(path: &Path, lines: u64, follow: bool) -> Result<u8, Failure> {
    // Where the last `lines` records start: a settled look at the log (it
    // may be being written).
    let look = Inspection::open_settled(path, RecoveryMode::TolerateTornTail)?;
    let start = look.next_lsn().saturating_sub(lines).max(look.first_lsn());
    drop(look);
    let mut follower = Follower::open(FollowConfig::new(path).from(start))?;
    let mut out = std::io::stdout().lock();
    let mut damaged = false;
    loop {
        match follower.wait_next(if follow { Duration::from_millis(500) } else { Duration::ZERO }) {
            Ok(Some(entry)) => writeln!(out, "{}", line(entry.lsn, &entry.record, false))?,
            Ok(None) if follow => out.flush()?,
            Ok(None) => break,
            // What the writer did behind the follower, or damage it is past:
            // said, and followed on.
            Err(e @ (Error::Reclaimed { .. } | Error::Cut { .. } | Error::Corrupt(_))) => {
                out.flush()?;
                eprintln!("nori-wal: {e}");
                damaged |= matches!(e, Error::Corrupt(_));
            }
            Err(e) => return Err(e.into()),
        }
    }
    out.flush()?;
    Ok(if damaged { EXIT_CORRUPT } else { 0 })
}

fn bench(dir: Option<PathBuf>, device: Option<PathBuf>) -> Result<u8, Failure> {
    // A device that will be refused is refused before anything runs.
    #[cfg(target_os = "linux")]
    if let Some(device) = &device {
        use nori_wal_backends::raw::{RawDevice, RawOptions};
        drop(RawDevice::open(device, RawOptions::default()).map_err(|e| e.to_string())?);
    }
    let root = dir.unwrap_or_else(std::env::temp_dir);
    let dir = root.join(format!("nori-wal-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let payload = [0x5Au8; 128];
    let mut rows = Vec::new();
    let run = |policy: FsyncPolicy, threads: usize, per_thread: usize| -> Result<f64, Failure> {
        let _ = std::fs::remove_dir_all(&dir);
        let (wal, _) = Wal::open(WalConfig::new(&dir).segment_size(64 << 20).fsync(policy))?;
        let started = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for _ in 0..per_thread {
                        let _ = wal.append(&Record::raw(&payload));
                    }
                });
            }
        });
        wal.sync()?;
        let secs = started.elapsed().as_secs_f64();
        Ok((threads * per_thread) as f64 / secs)
    };
    rows.push(("Always, 1 writer", run(FsyncPolicy::Always, 1, 2_000)?));
    rows.push(("Always, 16 writers", run(FsyncPolicy::Always, 16, 500)?));
    rows.push(("Batch(2 ms), 1 writer", run(FsyncPolicy::Batch(Duration::from_millis(2)), 1, 200_000)?));
    rows.push(("Os, 1 writer", run(FsyncPolicy::Os, 1, 500_000)?));
    let started = Instant::now();
    let (wal, info) = Wal::open(WalConfig::new(&dir).segment_size(64 << 20))?;
    let recover = started.elapsed().as_secs_f64();
    drop(wal);
    let _ = std::fs::remove_dir_all(&dir);
    println!("nori-wal bench: 128-byte records in {}", root.display());
    println!();
    println!("| workload | appends/s |");
    println!("|---|---:|");
    for (name, rate) in rows {
        println!("| {name} | {rate:>12.0} |");
    }
    println!();
    println!("| recovery | records | seconds | records/s |");
    println!("|---|---:|---:|---:|");
    println!(
        "| reopen + recover | {} | {recover:.3} | {:>12.0} |",
        info.records,
        info.records as f64 / recover
    );
    #[cfg(target_os = "linux")]
    raw_bench(&root, device)?;
    #[cfg(not(target_os = "linux"))]
    if device.is_some() {
        return Err("--device: raw partitions are supported on Linux only".to_string().into());
    }
    Ok(0)
}

/// The shared ring's rows of `bench`: on `device`, or on an image file in
/// `root` (removed after).
#[cfg(target_os = "linux")]
fn raw_bench(root: &Path, device: Option<PathBuf>) -> Result<(), Failure> {
    use nori_wal::shared::{SharedConfig, SharedRing};
    use nori_wal_backends::raw::{RawDevice, RawOptions};
    let image = root.join(format!("nori-wal-bench-{}.img", std::process::id()));
    let path = match &device {
        Some(path) => path.clone(),
        None => {
            std::fs::File::create(&image)
                .and_then(|f| f.set_len(256 << 20))
                .map_err(|e| format!("{}: {e}", image.display()))?;
            image.clone()
        }
    };
    let segment = 16 << 20;
    let run = |policy: FsyncPolicy, threads: usize, per_thread: usize, len: usize| -> Result<f64, Failure> {
        // Refused when it holds a file system or is mounted; an earlier
        // run's ring is started over.
        let raw = RawDevice::open(&path, RawOptions::default()).map_err(|e| e.to_string())?;
        let config = SharedConfig::new(segment).fsync(policy).ring(
            nori_wal::ring::RingConfig::new(segment).when_full(nori_wal::ring::FullPolicy::OverwriteOldest),
        );
        let (ring, _) = SharedRing::open(raw, config).map_err(|e| e.to_string())?;
        let payload = vec![0x5Au8; len];
        let started = Instant::now();
        // The first failed append of any writer ends the run with its error.
        let failed: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for _ in 0..per_thread {
                        if let Err(e) = ring.append(&Record::raw(&payload)) {
                            failed
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .get_or_insert(e.to_string());
                            return;
                        }
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
            return Err(format!("append to {}: {e}", path.display()).into());
        }
        ring.sync().map_err(|e| e.to_string())?;
        let rate = (threads * per_thread) as f64 / started.elapsed().as_secs_f64();
        ring.close().map_err(|e| e.to_string())?;
        Ok(rate)
    };
    let rows = [
        ("Os, 1 writer, 4 KiB records (MB/s)", run(FsyncPolicy::Os, 1, 16_384, 4096)? * 4096.0 / 1e6),
        ("Os, 1 writer, 128-byte records (appends/s)", run(FsyncPolicy::Os, 1, 500_000, 128)?),
        ("Always, 1 writer (appends/s)", run(FsyncPolicy::Always, 1, 2_000, 128)?),
        ("Always, 64 writers (appends/s)", run(FsyncPolicy::Always, 64, 100, 128)?),
    ];
    if device.is_none() {
        let _ = std::fs::remove_file(&image);
    }
    println!();
    println!("shared ring (nori_wal::shared) on {}, 16 MiB segments", path.display());
    println!();
    println!("| workload | rate |");
    println!("|---|---:|");
    for (name, rate) in rows {
        println!("| {name} | {rate:>12.0} |");
    }
    Ok(())
}
