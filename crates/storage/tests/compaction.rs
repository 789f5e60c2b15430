//! Compaction against a model: the latest value per key survives, offsets
//! and order are kept, old tombstones go, and an interrupted clean loses
//! nothing.

use std::collections::BTreeMap;

use gregor_storage::batch::builder::keyed_batch;
use gregor_storage::batch::validate_batches;
use gregor_storage::compaction::clean;
use gregor_storage::{Log, LogConfig};

fn cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        segment_index_bytes: 4096,
        ..LogConfig::default()
    }
}

fn no_codec(_: i16, _: &[u8]) -> Result<Vec<u8>, String> {
    Err("compressed batches are not used here".into())
}

/// (offset, key, value) of every record, decoding the uncompressed batches.
/// (offset, key, value) of one record.
type Entry = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

fn contents(log: &Log) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let data = log.read(offset, 1 << 20, true).expect("read");
        if data.is_empty() {
            break;
        }
        let mut pos = 0;
        for h in validate_batches(&data).expect("cleaned batches stay valid") {
            let section = &data[pos + 61..pos + h.size];
            let mut p = 0usize;
            let vi = |b: &[u8], p: &mut usize| -> i64 {
                let mut v = 0u64;
                let mut s = 0;
                loop {
                    let x = b[*p];
                    *p += 1;
                    v |= ((x & 0x7f) as u64) << s;
                    s += 7;
                    if x < 0x80 {
                        return ((v >> 1) as i64) ^ -((v & 1) as i64);
                    }
                }
            };
            for _ in 0..h.record_count {
                let _len = vi(section, &mut p);
                p += 1;
                let _ts = vi(section, &mut p);
                let od = vi(section, &mut p);
                let kl = vi(section, &mut p);
                let key = (kl >= 0).then(|| section[p..p + kl as usize].to_vec());
                p += kl.max(0) as usize;
                let vl = vi(section, &mut p);
                let value = (vl >= 0).then(|| section[p..p + vl as usize].to_vec());
                p += vl.max(0) as usize;
                let hc = vi(section, &mut p);
                assert_eq!(hc, 0);
                out.push((h.base_offset + od, key, value));
            }
            offset = h.last_offset() + 1;
            pos += h.size;
        }
    }
    out
}

#[test]
fn compaction_keeps_the_latest_value_per_key_and_shrinks_the_log() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = Log::open(dir.path(), cfg(), false, 0).expect("open");
    let mut model: BTreeMap<Vec<u8>, (i64, Option<Vec<u8>>)> = BTreeMap::new();
    let mut offset = 0i64;
    for round in 0..60u32 {
        let mut kv: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        for j in 0..4u32 {
            let key = format!("k{}", (round * 7 + j) % 10).into_bytes();
            let value = if (round + j) % 13 == 0 {
                None
            } else {
                Some(format!("v{round}-{j}-{}", "x".repeat(20)).into_bytes())
            };
            kv.push((key, value));
        }
        let refs: Vec<gregor_storage::batch::builder::KeyValue<'_>> = kv
            .iter()
            .map(|(k, v)| (Some(k.as_slice()), v.as_deref()))
            .collect();
        let mut b = keyed_batch(&refs, 1_000 + round as i64, None);
        log.append(&mut b, 0, false, 10_000).expect("append");
        for (k, v) in kv {
            model.insert(k, (offset, v));
            offset += 1;
        }
    }
    let before = log.size_bytes();
    assert!(log.segment_count() > 3);
    let plan = log.clean_plan();
    // Tombstones are young (now = 10 000, delete.retention.ms = 1 000 000): kept.
    let cleaned = clean(&plan, 10_000, 1_000_000, &no_codec).expect("clean");
    let removed = log.install_cleaned(cleaned, 10_000).expect("install");
    assert!(removed > 0);
    assert!(
        log.size_bytes() < before / 2,
        "{} -> {}",
        before,
        log.size_bytes()
    );
    assert_eq!(log.log_end_offset(), offset, "offsets unchanged");
    let got = contents(&log);
    // Offsets strictly increase: order kept.
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
    // Every key's latest record is there, with its original offset.
    for (k, (off, v)) in &model {
        assert!(
            got.contains(&(*off, Some(k.clone()), v.clone())),
            "latest record of {:?} missing",
            String::from_utf8_lossy(k)
        );
    }
    // Anything else left is in the active segment (never cleaned).
    let active_base = log.clean_plan().active.expect("active").base_offset;
    for (off, k, _) in &got {
        let latest = model[k.as_ref().expect("keyed")].0;
        assert!(
            *off == latest || *off >= active_base,
            "stale record at {off} survived in a closed segment"
        );
    }
    // Reopen (indexes rebuilt for the cleaned segments) and read the same.
    drop(log);
    let log = Log::open(dir.path(), cfg(), false, 0).expect("reopen");
    assert_eq!(contents(&log), got);
    // A second clean with old tombstones drops them from closed segments.
    let mut log = log;
    let plan = log.clean_plan();
    let cleaned = clean(&plan, 10_000_000, 1_000, &no_codec).expect("clean");
    log.install_cleaned(cleaned, 10_000_000).expect("install");
    let after = contents(&log);
    let active_base = log.clean_plan().active.expect("active").base_offset;
    assert!(
        after
            .iter()
            .all(|(off, _, v)| v.is_some() || *off >= active_base),
        "expired tombstones remain"
    );
}

#[test]
fn an_interrupted_clean_loses_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = Log::open(dir.path(), cfg(), false, 0).expect("open");
    for i in 0..40u32 {
        let k = format!("k{}", i % 3).into_bytes();
        let v = format!("value-{i}-{}", "y".repeat(40)).into_bytes();
        let mut b = keyed_batch(&[(Some(&k), Some(&v))], i as i64, None);
        log.append(&mut b, 0, false, 1).expect("append");
    }
    let expected = contents(&log);
    let plan = log.clean_plan();
    let cleaned = clean(&plan, 1, 1_000_000, &no_codec).expect("clean");
    assert!(!cleaned.is_empty());
    // Crash before install: cleaned files exist, nothing was swapped.
    drop(cleaned);
    drop(log);
    assert!(std::fs::read_dir(dir.path()).expect("ls").any(|e| e
        .expect("e")
        .file_name()
        .to_string_lossy()
        .ends_with(".cleaned")));
    let log = Log::open(dir.path(), cfg(), true, 0).expect("recover");
    assert_eq!(contents(&log), expected);
    assert!(!std::fs::read_dir(dir.path()).expect("ls").any(|e| e
        .expect("e")
        .file_name()
        .to_string_lossy()
        .ends_with(".cleaned")));
    // Crash after an index was deleted but before the rename: rebuilt from the old log.
    let seg = log.clean_plan().closed[0].path.clone();
    drop(log);
    std::fs::remove_file(seg.with_extension("index")).expect("rm index");
    let log = Log::open(dir.path(), cfg(), true, 0).expect("recover");
    assert_eq!(contents(&log), expected);
}

#[test]
fn check_keys_names_the_first_keyless_record() {
    use gregor_storage::compaction::{check_keys, KeyCheckError};
    let mut two = keyed_batch(&[(Some(b"a"), Some(b"1")), (Some(b"b"), None)], 1, None);
    assert_eq!(check_keys(&two, &no_codec), Ok(()), "tombstones have keys");
    two.extend(keyed_batch(
        &[(Some(b"c"), Some(b"2")), (None, Some(b"3"))],
        1,
        None,
    ));
    assert_eq!(
        check_keys(&two, &no_codec),
        Err(KeyCheckError::Keyless { record: 1 }),
        "the index is within the offending batch"
    );
    let mut compressed = keyed_batch(&[(Some(b"a"), Some(b"1"))], 1, None);
    compressed[22] |= 4; // attributes: zstd, which no_codec cannot read
    assert!(matches!(
        check_keys(&compressed, &no_codec),
        Err(KeyCheckError::Unreadable(_))
    ));
}

/// A keyed transactional batch of `pid`.
fn txn(kv: &[gregor_storage::batch::builder::KeyValue<'_>], pid: i64) -> Vec<u8> {
    let mut b = keyed_batch(kv, 1, Some((pid, 0, 0)));
    b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[test]
fn transactions_are_compacted_by_their_outcome() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = Log::open(dir.path(), cfg(), false, 0).expect("open");
    log.append(
        &mut keyed_batch(&[(Some(b"k1"), Some(b"v0"))], 1, None),
        0,
        false,
        0,
    )
    .expect("plain"); // 0
    log.append(&mut txn(&[(Some(b"k1"), Some(b"v1"))], 7), 0, false, 0)
        .expect("t7"); // 1
    log.append_marker(7, 0, true, 0, 0).expect("commit"); // 2
    log.append(&mut txn(&[(Some(b"k2"), Some(b"x"))], 8), 0, false, 0)
        .expect("t8"); // 3
    log.append_marker(8, 0, false, 0, 0).expect("abort"); // 4
    log.append(&mut txn(&[(Some(b"k1"), Some(b"v9"))], 9), 0, false, 0)
        .expect("t9 open"); // 5
    log.append(
        &mut keyed_batch(&[(Some(b"k3"), Some(b"z"))], 1, None),
        0,
        false,
        0,
    )
    .expect("plain"); // 6
    log.roll(0).expect("roll");
    let plan = log.clean_plan();
    assert_eq!(plan.stable_offset, 5);
    let cleaned = clean(&plan, 0, 86_400_000, &no_codec).expect("clean");
    log.install_cleaned(cleaned, 0).expect("install");
    let left: Vec<(i64, Option<Vec<u8>>)> =
        contents(&log).into_iter().map(|(o, _, v)| (o, v)).collect();
    let v = |s: &[u8]| Some(s.to_vec());
    assert_eq!(
        left,
        vec![
            (1, v(b"v1")),                     // committed: the newest decided k1
            (2, Some(vec![0, 0, 0, 0, 0, 0])), // commit marker (value: version, coordinator epoch)
            (4, Some(vec![0, 0, 0, 0, 0, 0])), // abort marker; the aborted k2 is gone
            (5, v(b"v9")),                     // open transaction: untouched
            (6, v(b"z")),
        ]
    );
    drop(log);
    let log = Log::open(dir.path(), cfg(), true, 0).expect("reopen");
    assert_eq!(
        log.last_stable_offset(),
        5,
        "the open transaction is still open"
    );
}
