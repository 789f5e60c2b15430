//! Log behaviour against an in-memory model, recovery and retention.

use std::fs::{self, OpenOptions};
use std::io::Write;

use gregor_storage::batch::{builder::batch, validate_batches};
use gregor_storage::{Log, LogConfig, StorageError};
use proptest::prelude::*;

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 100,
        segment_index_bytes: 4096,
        ..LogConfig::default()
    }
}

/// Every record value in the log, read batch by batch from `from`.
fn read_all(log: &Log, from: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset() {
        let data = log.read(offset, 4096, true).expect("read");
        assert!(!data.is_empty(), "no progress at {offset}");
        for h in validate_batches(&data).expect("served batches are valid") {
            out.push((h.base_offset, h.record_count as i64));
            offset = h.last_offset() + 1;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// Appends of random batch sizes match a model of (base offset, count),
    /// across segment rolls and a clean reopen.
    #[test]
    fn appends_match_model(sizes in proptest::collection::vec((1usize..6, 1usize..200), 1..60)) {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = Log::open(dir.path(), small_config(), false, 0).expect("open");
        let mut model = Vec::new();
        let mut next = 0i64;
        for (i, (n, len)) in sizes.iter().enumerate() {
            let vals: Vec<Vec<u8>> = (0..*n).map(|j| vec![(i + j) as u8; *len]).collect();
            let refs: Vec<&[u8]> = vals.iter().map(|v| v.as_slice()).collect();
            let mut b = batch(&refs, 1000 + i as i64, None);
            let r = log.append(&mut b, 0, false, 5000).expect("append");
            prop_assert_eq!(r.base_offset, next);
            model.push((next, *n as i64));
            next += *n as i64;
        }
        prop_assert_eq!(log.log_end_offset(), next);
        prop_assert_eq!(read_all(&log, 0), model.clone());
        // Reading from the middle of a batch returns that whole batch.
        if let Some(&(base, n)) = model.iter().find(|(_, n)| *n > 1) {
            let data = log.read(base + n - 1, 1, true).expect("read");
            prop_assert_eq!(validate_batches(&data).expect("valid")[0].base_offset, base);
        }
        log.close().expect("close");
        let log = Log::open(dir.path(), small_config(), false, 0).expect("reopen");
        prop_assert_eq!(read_all(&log, 0), model);
    }
}

#[test]
fn out_of_range_reads_fail_and_end_is_empty() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = Log::open(dir.path(), LogConfig::default(), false, 0).expect("open");
    let mut b = batch(&[b"a"], 1, None);
    log.append(&mut b, 0, false, 1).expect("append");
    assert!(log.read(1, 100, true).expect("end").is_empty());
    assert!(matches!(
        log.read(2, 100, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // Without the KIP-74 rule, a batch larger than the limit is not returned.
    assert!(log.read(0, 10, false).expect("small").is_empty());
    assert!(!log.read(0, 10, true).expect("min one").is_empty());
}

#[test]
fn torn_tail_is_truncated_on_recovery() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = Log::open(dir.path(), LogConfig::default(), false, 0).expect("open");
    for i in 0..10u8 {
        let mut b = batch(&[&[i; 50]], i as i64, None);
        log.append(&mut b, 0, false, 1).expect("append");
    }
    drop(log); // no clean close: like kill -9
    let seg = dir.path().join("00000000000000000000.log");
    let len = fs::metadata(&seg).expect("meta").len();
    // A torn write: half of a new batch at the end.
    let extra = batch(&[&[99; 50]], 100, None);
    OpenOptions::new()
        .append(true)
        .open(&seg)
        .expect("open")
        .write_all(&extra[..extra.len() / 2])
        .expect("w");
    let log = Log::open(dir.path(), LogConfig::default(), true, 0).expect("recover");
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(fs::metadata(&seg).expect("meta").len(), len);
    assert_eq!(read_all(&log, 0).len(), 10);
}

#[test]
fn corrupt_batch_in_tail_is_cut_with_everything_after_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = Log::open(dir.path(), LogConfig::default(), false, 0).expect("open");
    let mut sizes = Vec::new();
    for i in 0..6u8 {
        let mut b = batch(&[&[i; 40]], i as i64, None);
        sizes.push(b.len());
        log.append(&mut b, 0, false, 1).expect("append");
    }
    drop(log);
    let seg = dir.path().join("00000000000000000000.log");
    let mut bytes = fs::read(&seg).expect("read");
    let at: usize = sizes[..3].iter().sum::<usize>() + 70; // inside batch 3's records
    bytes[at] ^= 0xff;
    fs::write(&seg, &bytes).expect("write");
    let log = Log::open(dir.path(), LogConfig::default(), true, 0).expect("recover");
    assert_eq!(
        log.log_end_offset(),
        3,
        "batches from the corrupt one on are dropped"
    );
    assert_eq!(read_all(&log, 0).len(), 3);
}

#[test]
fn damaged_and_missing_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = small_config();
    let mut log = Log::open(dir.path(), cfg, false, 0).expect("open");
    for i in 0..40u8 {
        let mut b = batch(&[&[i; 100]], i as i64, None);
        log.append(&mut b, 0, false, 1).expect("append");
    }
    let expected = read_all(&log, 0);
    assert!(log.segment_count() > 3);
    log.close().expect("close");
    // Garble one sealed index and delete another.
    let mut idx: Vec<_> = fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "index"))
        .collect();
    idx.sort();
    fs::write(&idx[0], [0xffu8; 24]).expect("garble");
    fs::remove_file(&idx[1]).expect("rm");
    let log = Log::open(dir.path(), cfg, false, 0).expect("reopen");
    assert_eq!(read_all(&log, 0), expected);
    for (base, _) in &expected {
        let data = log.read(*base, 1, true).expect("read");
        assert_eq!(
            validate_batches(&data).expect("valid")[0].base_offset,
            *base
        );
    }
}

#[test]
fn retention_by_size_and_time_and_delete_records() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cfg = small_config();
    cfg.retention_bytes = 2048;
    let mut log = Log::open(dir.path(), cfg, false, 0).expect("open");
    for i in 0..40u8 {
        let mut b = batch(&[&[i; 100]], 1_000 + i as i64, None);
        log.append(&mut b, 0, false, 2_000).expect("append");
    }
    let before = log.size_bytes();
    assert!(log.enforce_retention(2_000).expect("retention") > 0);
    assert!(log.size_bytes() < before && log.size_bytes() <= 2048 + 1024);
    let start = log.log_start_offset();
    assert!(start > 0);
    assert!(matches!(
        log.read(start - 1, 100, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        validate_batches(&log.read(start, 100, true).expect("r")).expect("v")[0].base_offset,
        start
    );

    // DeleteRecords advances the start and survives a restart.
    let new_start = log.delete_records_before(35, 2_000).expect("delete");
    assert_eq!(new_start, 35);
    log.close().expect("close");
    let mut cfg_time = cfg;
    cfg_time.retention_bytes = -1;
    cfg_time.retention_ms = 500;
    let mut log = Log::open(dir.path(), cfg_time, false, 0).expect("reopen");
    assert_eq!(log.log_start_offset(), 35);
    // Everything is older than retention.ms: all data goes, offsets continue.
    log.enforce_retention(10_000).expect("time retention");
    assert_eq!(log.log_start_offset(), 40);
    assert_eq!(log.log_end_offset(), 40);
    let mut b = batch(&[b"new"], 10_000, None);
    assert_eq!(
        log.append(&mut b, 0, false, 10_000)
            .expect("append")
            .base_offset,
        40
    );
}

#[test]
fn idempotent_state_survives_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = Log::open(dir.path(), LogConfig::default(), false, 0).expect("open");
    let mut b0 = batch(&[b"a", b"b"], 1, Some((5, 0, 0)));
    let retry = b0.clone();
    log.append(&mut b0, 0, false, 1).expect("append");
    drop(log);
    let mut log = Log::open(dir.path(), LogConfig::default(), true, 0).expect("recover");
    let mut r = retry;
    let res = log.append(&mut r, 0, false, 1).expect("dup");
    assert!(res.duplicate);
    assert_eq!((res.base_offset, res.last_offset), (0, 1));
    assert_eq!(log.log_end_offset(), 2);
    let mut gap = batch(&[b"c"], 1, Some((5, 0, 5)));
    assert!(matches!(
        log.append(&mut gap, 0, false, 1),
        Err(StorageError::OutOfOrderSequence { .. })
    ));
}

#[test]
fn timestamps_are_found_through_the_time_index() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = Log::open(dir.path(), small_config(), false, 0).expect("open");
    for i in 0..50i64 {
        let mut b = batch(&[&[1; 80]], 1_000 + i * 10, None);
        log.append(&mut b, 0, false, 1).expect("append");
    }
    let b = log
        .batch_for_timestamp(1_205)
        .expect("lookup")
        .expect("found");
    assert_eq!(validate_batches(&b).expect("v")[0].base_offset, 21);
    assert!(log.batch_for_timestamp(5_000).expect("lookup").is_none());
    let b = log.batch_with_max_timestamp().expect("max").expect("found");
    assert_eq!(validate_batches(&b).expect("v")[0].base_offset, 49);
}

fn txn_batch(pid: i64, seq: i32, value: &[u8]) -> Vec<u8> {
    let mut b = batch(&[value], 1000, Some((pid, 0, seq)));
    b[21..23].copy_from_slice(&0x10i16.to_be_bytes()); // transactional
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[test]
fn transactions_bound_the_stable_offset_and_survive_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = Log::open(dir.path(), small_config(), false, 0).expect("open");
    log.append(&mut batch(&[b"plain"], 1000, None), 0, false, 0)
        .expect("plain");
    log.append(&mut txn_batch(7, 0, b"kept"), 0, false, 0)
        .expect("t7"); // offset 1
    log.append(&mut txn_batch(8, 0, b"dropped"), 0, false, 0)
        .expect("t8"); // offset 2
    assert_eq!(
        log.last_stable_offset(),
        1,
        "open transactions hold the LSO"
    );
    assert_eq!(log.read_below(0, 1 << 20, true, 1).expect("read").len(), {
        let one = log.read(0, 1 << 20, true).expect("all");
        validate_batches(&one).expect("batches")[0].size
    });
    assert_eq!(log.append_marker(7, 0, true, 0, 0).expect("commit"), 3);
    assert_eq!(log.last_stable_offset(), 2);
    assert_eq!(log.append_marker(8, 0, false, 0, 0).expect("abort"), 4);
    assert_eq!(log.last_stable_offset(), 5);
    let aborted = log.aborted_transactions(0, 5);
    assert_eq!(
        aborted
            .iter()
            .map(|a| (a.producer_id, a.first_offset, a.last_offset))
            .collect::<Vec<_>>(),
        vec![(8, 2, 4)]
    );
    let mut forged = batch(&[b"x"], 0, None);
    forged[21..23].copy_from_slice(&0x20i16.to_be_bytes());
    let crc = crc32c::crc32c(&forged[21..]);
    forged[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        log.append(&mut forged, 0, false, 0),
        Err(StorageError::InvalidRecord(_))
    ));
    log.append(&mut txn_batch(9, 0, b"open"), 0, false, 0)
        .expect("t9");
    drop(log);
    let mut log = Log::open(dir.path(), small_config(), true, 0).expect("reopen");
    assert_eq!(
        log.last_stable_offset(),
        5,
        "the open transaction is rebuilt"
    );
    assert_eq!(log.aborted_transactions(0, 6).len(), 1, "and the abort");
    log.append(&mut batch(&[b"later"], 1000, None), 0, false, 0)
        .expect("plain");
    log.delete_records_before(6, 0).expect("delete records");
    assert_eq!(
        log.last_stable_offset(),
        6,
        "a deleted transaction start does not hold readers below the log start"
    );
}
