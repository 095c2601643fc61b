use nori_wal::{Wal, WalConfig, Record};
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (wal, recovery_info) = Wal::open(WalConfig::default()).await?;
    let record = Record::put(b"user:42", b"alice@example.com");
    let lsn = wal.append(&record).await?;
    let mut iter = wal.iter();
    while let Some(entry) = iter.try_next().await? {
        println!("LSN {}: {:?}", entry.lsn, entry.record);
    }
    Ok(())
}
