//! Records of the `__consumer_offsets` topic, in Kafka's key/value schemas so
//! that the topic's contents mean the same thing as in Apache Kafka.
//!
//! All integers big-endian; `string` is an `i16` length then UTF-8, `-1`
//! length for null; `bytes` is an `i32` length then the bytes.
//!
//! Keys (the first `i16` is the key version):
//! * v1 `OffsetCommitKey`: `group: string, topic: string, partition: i32`
//! * v2 `GroupMetadataKey`: `group: string`
//!
//! Values (first `i16` is the value version; a null value is a tombstone):
//! * `OffsetCommitValue` v3: `offset: i64, leader_epoch: i32,
//!   metadata: string, commit_timestamp: i64`
//! * `GroupMetadataValue` v3: `protocol_type: string, generation: i32,
//!   protocol: nullable string, leader: nullable string,
//!   current_state_timestamp: i64, members: [member]` where a member is
//!   `member_id: string, group_instance_id: nullable string, client_id:
//!   string, client_host: string, rebalance_timeout: i32, session_timeout:
//!   i32, subscription: bytes, assignment: bytes`.

use bytes::{BufMut, Bytes, BytesMut};

/// A record key or value that could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed __consumer_offsets record: {0}")]
pub struct RecordError(pub &'static str);

type Result<T> = std::result::Result<T, RecordError>;

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

/// One member as persisted in group metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: i32,
    pub session_timeout: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group's persisted metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp: i64,
    pub members: Vec<MemberValue>,
}

/// A decoded `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorRecord {
    Offset {
        group: String,
        topic: String,
        partition: i32,
        value: Option<OffsetValue>,
    },
    Group {
        group: String,
        value: Option<GroupValue>,
    },
    /// A KIP-848 consumer-group record.
    Consumer(crate::consumer_records::ConsumerRecord),
}

impl CoordinatorRecord {
    /// The group this record belongs to.
    pub fn group(&self) -> &str {
        match self {
            CoordinatorRecord::Offset { group, .. } | CoordinatorRecord::Group { group, .. } => {
                group
            }
            CoordinatorRecord::Consumer(c) => c.group(),
        }
    }

    /// Encodes to (key, value); `None` value is a tombstone.
    pub fn encode(&self) -> (Bytes, Option<Bytes>) {
        let mut k = BytesMut::new();
        match self {
            CoordinatorRecord::Consumer(c) => c.encode(),
            CoordinatorRecord::Offset {
                group,
                topic,
                partition,
                value,
            } => {
                k.put_i16(1);
                put_str(&mut k, group);
                put_str(&mut k, topic);
                k.put_i32(*partition);
                let v = value.as_ref().map(|v| {
                    let mut b = BytesMut::new();
                    b.put_i16(3);
                    b.put_i64(v.offset);
                    b.put_i32(v.leader_epoch);
                    put_str(&mut b, &v.metadata);
                    b.put_i64(v.commit_timestamp);
                    b.freeze()
                });
                (k.freeze(), v)
            }
            CoordinatorRecord::Group { group, value } => {
                k.put_i16(2);
                put_str(&mut k, group);
                let v = value.as_ref().map(|g| {
                    let mut b = BytesMut::new();
                    b.put_i16(3);
                    put_str(&mut b, &g.protocol_type);
                    b.put_i32(g.generation);
                    put_opt_str(&mut b, g.protocol.as_deref());
                    put_opt_str(&mut b, g.leader.as_deref());
                    b.put_i64(g.current_state_timestamp);
                    b.put_i32(g.members.len() as i32);
                    for m in &g.members {
                        put_str(&mut b, &m.member_id);
                        put_opt_str(&mut b, m.group_instance_id.as_deref());
                        put_str(&mut b, &m.client_id);
                        put_str(&mut b, &m.client_host);
                        b.put_i32(m.rebalance_timeout);
                        b.put_i32(m.session_timeout);
                        b.put_i32(m.subscription.len() as i32);
                        b.put_slice(&m.subscription);
                        b.put_i32(m.assignment.len() as i32);
                        b.put_slice(&m.assignment);
                    }
                    b.freeze()
                });
                (k.freeze(), v)
            }
        }
    }

    /// Decodes a key and value. Unknown key versions (records this broker
    /// does not use, such as Kafka's KIP-848 records) yield `Ok(None)`.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<CoordinatorRecord>> {
        let mut k = Reader(key);
        match k.i16()? {
            0 | 1 => {
                let group = k.string()?;
                let topic = k.string()?;
                let partition = k.i32()?;
                let value = match value {
                    None => None,
                    Some(v) => {
                        let mut r = Reader(v);
                        let version = r.i16()?;
                        let offset = r.i64()?;
                        let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
                        let metadata = r.string()?;
                        let commit_timestamp = r.i64()?;
                        Some(OffsetValue {
                            offset,
                            leader_epoch,
                            metadata,
                            commit_timestamp,
                        })
                    }
                };
                Ok(Some(CoordinatorRecord::Offset {
                    group,
                    topic,
                    partition,
                    value,
                }))
            }
            2 => {
                let group = k.string()?;
                let value = match value {
                    None => None,
                    Some(v) => Some(decode_group(v)?),
                };
                Ok(Some(CoordinatorRecord::Group { group, value }))
            }
            _ => Ok(crate::consumer_records::ConsumerRecord::decode(key, value)?
                .map(CoordinatorRecord::Consumer)),
        }
    }
}

fn decode_group(v: &[u8]) -> Result<GroupValue> {
    let mut r = Reader(v);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(RecordError("unsupported group metadata version"));
    }
    let protocol_type = r.string()?;
    let generation = r.i32()?;
    let protocol = r.opt_string()?;
    let leader = r.opt_string()?;
    let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
    let n = r.i32()?;
    if n < 0 || n as usize > r.0.len() {
        return Err(RecordError("bad member count"));
    }
    let mut members = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let member_id = r.string()?;
        let group_instance_id = if version >= 3 { r.opt_string()? } else { None };
        let client_id = r.string()?;
        let client_host = r.string()?;
        let rebalance_timeout = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout = r.i32()?;
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        members.push(MemberValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout,
            session_timeout,
            subscription,
            assignment,
        });
    }
    Ok(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp,
        members,
    })
}

fn put_str(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}

fn put_opt_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(b, s),
        None => b.put_i16(-1),
    }
}

/// A cursor over a record key or value; every read checks the bytes left.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.0.len() < n {
            return Err(RecordError("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    pub(crate) fn i8(&mut self) -> Result<i8> {
        Ok(self.take(1)?[0] as i8)
    }
    pub(crate) fn i16(&mut self) -> Result<i16> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn i32(&mut self) -> Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn i64(&mut self) -> Result<i64> {
        let b = self.take(8)?;
        let mut x = [0u8; 8];
        x.copy_from_slice(b);
        Ok(i64::from_be_bytes(x))
    }
    fn opt_string(&mut self) -> Result<Option<String>> {
        let n = self.i16()?;
        if n < 0 {
            return Ok(None);
        }
        let b = self.take(n as usize)?;
        String::from_utf8(b.to_vec())
            .map(Some)
            .map_err(|_| RecordError("invalid utf-8"))
    }
    pub(crate) fn string(&mut self) -> Result<String> {
        self.opt_string()?.ok_or(RecordError("null string"))
    }
    /// An `i32` array count (-1, null, reads as 0), refused when even
    /// `min`-byte elements could not fit in the bytes left.
    pub(crate) fn count(&mut self, min: usize) -> Result<usize> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(0);
        }
        let n = n as usize;
        if n.saturating_mul(min) > self.0.len() {
            return Err(RecordError("array longer than the record"));
        }
        Ok(n)
    }
    fn bytes(&mut self) -> Result<Bytes> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(Bytes::new());
        }
        Ok(Bytes::copy_from_slice(self.take(n as usize)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn offset_records_round_trip(group in ".{0,20}", topic in "[a-z]{1,10}", partition in 0i32..100, offset in any::<i64>(), meta in ".{0,30}") {
            let r = CoordinatorRecord::Offset { group: group.clone(), topic, partition, value: Some(OffsetValue { offset, leader_epoch: 3, metadata: meta, commit_timestamp: 99 }) };
            let (k, v) = r.encode();
            prop_assert_eq!(CoordinatorRecord::decode(&k, v.as_deref()).expect("decode"), Some(r));
        }

        #[test]
        fn group_records_round_trip(n in 0usize..4, sub in proptest::collection::vec(any::<u8>(), 0..20)) {
            let members = (0..n).map(|i| MemberValue {
                member_id: format!("m{i}"), group_instance_id: if i % 2 == 0 { Some(format!("i{i}")) } else { None },
                client_id: "c".into(), client_host: "/127.0.0.1".into(), rebalance_timeout: 1000, session_timeout: 45000,
                subscription: Bytes::from(sub.clone()), assignment: Bytes::from(vec![1, 2, 3]),
            }).collect();
            let r = CoordinatorRecord::Group { group: "g".into(), value: Some(GroupValue {
                protocol_type: "consumer".into(), generation: 7, protocol: Some("range".into()), leader: Some("m0".into()),
                current_state_timestamp: 5, members }) };
            let (k, v) = r.encode();
            prop_assert_eq!(CoordinatorRecord::decode(&k, v.as_deref()).expect("decode"), Some(r));
        }

        #[test]
        fn garbage_never_panics(k in proptest::collection::vec(any::<u8>(), 0..40), v in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = CoordinatorRecord::decode(&k, Some(&v));
        }
    }

    #[test]
    fn tombstones_decode_to_none_values() {
        let r = CoordinatorRecord::Group {
            group: "g".into(),
            value: None,
        };
        let (k, v) = r.encode();
        assert!(v.is_none());
        assert_eq!(
            CoordinatorRecord::decode(&k, None).expect("decode"),
            Some(r)
        );
    }
}
