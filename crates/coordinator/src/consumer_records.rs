//! KIP-848 consumer-group records of `__consumer_offsets`, in Kafka's
//! schemas. Keys are non-flexible (`i16` key version, then `string`s); values
//! start with an `i16` value version (0) followed by a flexible body: compact
//! strings (`uvarint len+1`, 0 for null), compact arrays (`uvarint n+1`),
//! 16-byte UUIDs, and a trailing tagged-field section (written empty; read
//! and skipped).
//!
//! | key version | record | key fields | value fields |
//! |---|---|---|---|
//! | 3 | ConsumerGroupMetadata | group | epoch: i32 |
//! | 5 | ConsumerGroupMemberMetadata | group, member | instance_id?, rack_id?, client_id, client_host, subscribed_topic_names: [string], subscribed_topic_regex?, rebalance_timeout_ms: i32, server_assignor? |
//! | 6 | ConsumerGroupTargetAssignmentMember | group, member | topic_partitions: [{topic_id: uuid, partitions: [i32]}] |
//! | 7 | ConsumerGroupTargetAssignmentMetadata | group | assignment_epoch: i32 |
//! | 8 | ConsumerGroupCurrentMemberAssignment | group, member | member_epoch: i32, previous_member_epoch: i32, state: i8, assigned_partitions, partitions_pending_revocation (as above) |

use std::collections::{BTreeMap, BTreeSet};

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

use crate::records::RecordError;

/// Partitions per topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// A KIP-848 member's subscription and identity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadata {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
}

/// A KIP-848 member's current assignment and epochs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentAssignment {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: i8,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
}

/// A KIP-848 record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerRecord {
    GroupEpoch {
        group: String,
        epoch: Option<i32>,
    },
    Member {
        group: String,
        member: String,
        value: Option<MemberMetadata>,
    },
    Target {
        group: String,
        member: String,
        value: Option<Assignment>,
    },
    TargetEpoch {
        group: String,
        epoch: Option<i32>,
    },
    Current {
        group: String,
        member: String,
        value: Option<CurrentAssignment>,
    },
}

fn key(version: i16, group: &str, member: Option<&str>) -> Bytes {
    let mut k = BytesMut::new();
    k.put_i16(version);
    k.put_i16(group.len() as i16);
    k.put_slice(group.as_bytes());
    if let Some(m) = member {
        k.put_i16(m.len() as i16);
        k.put_slice(m.as_bytes());
    }
    k.freeze()
}

fn uvarint(b: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        b.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}

fn cstr(b: &mut BytesMut, s: Option<&str>) {
    match s {
        None => uvarint(b, 0),
        Some(s) => {
            uvarint(b, s.len() as u64 + 1);
            b.put_slice(s.as_bytes());
        }
    }
}

fn assignment(b: &mut BytesMut, a: &Assignment) {
    uvarint(b, a.len() as u64 + 1);
    for (topic, parts) in a {
        b.put_slice(topic.as_bytes());
        uvarint(b, parts.len() as u64 + 1);
        for p in parts {
            b.put_i32(*p);
        }
        uvarint(b, 0); // tagged fields
    }
}

impl ConsumerRecord {
    pub fn group(&self) -> &str {
        match self {
            ConsumerRecord::GroupEpoch { group, .. }
            | ConsumerRecord::Member { group, .. }
            | ConsumerRecord::Target { group, .. }
            | ConsumerRecord::TargetEpoch { group, .. }
            | ConsumerRecord::Current { group, .. } => group,
        }
    }

    pub fn encode(&self) -> (Bytes, Option<Bytes>) {
        let mut v = BytesMut::new();
        v.put_i16(0);
        let (k, has_value) = match self {
            ConsumerRecord::GroupEpoch { group, epoch } => {
                if let Some(e) = epoch {
                    v.put_i32(*e);
                }
                (key(3, group, None), epoch.is_some())
            }
            ConsumerRecord::Member {
                group,
                member,
                value,
            } => {
                if let Some(m) = value {
                    cstr(&mut v, m.instance_id.as_deref());
                    cstr(&mut v, m.rack_id.as_deref());
                    cstr(&mut v, Some(&m.client_id));
                    cstr(&mut v, Some(&m.client_host));
                    uvarint(&mut v, m.subscribed_topic_names.len() as u64 + 1);
                    for t in &m.subscribed_topic_names {
                        cstr(&mut v, Some(t));
                    }
                    cstr(&mut v, m.subscribed_topic_regex.as_deref());
                    v.put_i32(m.rebalance_timeout_ms);
                    cstr(&mut v, m.server_assignor.as_deref());
                }
                (key(5, group, Some(member)), value.is_some())
            }
            ConsumerRecord::Target {
                group,
                member,
                value,
            } => {
                if let Some(a) = value {
                    assignment(&mut v, a);
                }
                (key(6, group, Some(member)), value.is_some())
            }
            ConsumerRecord::TargetEpoch { group, epoch } => {
                if let Some(e) = epoch {
                    v.put_i32(*e);
                }
                (key(7, group, None), epoch.is_some())
            }
            ConsumerRecord::Current {
                group,
                member,
                value,
            } => {
                if let Some(c) = value {
                    v.put_i32(c.member_epoch);
                    v.put_i32(c.previous_member_epoch);
                    v.put_i8(c.state);
                    assignment(&mut v, &c.assigned);
                    assignment(&mut v, &c.pending_revocation);
                }
                (key(8, group, Some(member)), value.is_some())
            }
        };
        if !has_value {
            return (k, None);
        }
        uvarint(&mut v, 0); // tagged fields
        (k, Some(v.freeze()))
    }

    /// Decodes key versions 3, 5, 6, 7 and 8; others are not ours (`Ok(None)`).
    pub fn decode(k: &[u8], value: Option<&[u8]>) -> Result<Option<ConsumerRecord>, RecordError> {
        let mut kr = R(k);
        let version = kr.i16()?;
        if !matches!(version, 3 | 5..=8) {
            return Ok(None);
        }
        let group = kr.str16()?;
        let member = if matches!(version, 5 | 6 | 8) {
            Some(kr.str16()?)
        } else {
            None
        };
        let mut r = value.map(R);
        if let Some(r) = r.as_mut() {
            let _value_version = r.i16()?;
        }
        let m = || member.clone().unwrap_or_default();
        Ok(Some(match version {
            3 => ConsumerRecord::GroupEpoch {
                group,
                epoch: r.map(|mut r| r.i32()).transpose()?,
            },
            7 => ConsumerRecord::TargetEpoch {
                group,
                epoch: r.map(|mut r| r.i32()).transpose()?,
            },
            5 => {
                let value = match r {
                    None => None,
                    Some(mut r) => {
                        let instance_id = r.cstr()?;
                        let rack_id = r.cstr()?;
                        let client_id = r.cstr()?.unwrap_or_default();
                        let client_host = r.cstr()?.unwrap_or_default();
                        let n = r.len()?;
                        let mut names = Vec::with_capacity(n);
                        for _ in 0..n {
                            names.push(r.cstr()?.unwrap_or_default());
                        }
                        let subscribed_topic_regex = r.cstr()?;
                        let rebalance_timeout_ms = r.i32()?;
                        let server_assignor = r.cstr()?;
                        Some(MemberMetadata {
                            instance_id,
                            rack_id,
                            client_id,
                            client_host,
                            subscribed_topic_names: names,
                            subscribed_topic_regex,
                            rebalance_timeout_ms,
                            server_assignor,
                        })
                    }
                };
                ConsumerRecord::Member {
                    group,
                    member: m(),
                    value,
                }
            }
            6 => ConsumerRecord::Target {
                group,
                member: m(),
                value: r.map(|mut r| r.assignment()).transpose()?,
            },
            _ => {
                let value = match r {
                    None => None,
                    Some(mut r) => Some(CurrentAssignment {
                        member_epoch: r.i32()?,
                        previous_member_epoch: r.i32()?,
                        state: r.i8()?,
                        assigned: r.assignment()?,
                        pending_revocation: r.assignment()?,
                    }),
                };
                ConsumerRecord::Current {
                    group,
                    member: m(),
                    value,
                }
            }
        }))
    }
}

struct R<'a>(&'a [u8]);

impl R<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn i8(&mut self) -> Result<i8, RecordError> {
        Ok(self.take(1)?[0] as i8)
    }
    fn i16(&mut self) -> Result<i16, RecordError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, RecordError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn str16(&mut self) -> Result<String, RecordError> {
        let n = self.i16()?;
        if n < 0 {
            return Err(RecordError("null key string"));
        }
        String::from_utf8(self.take(n as usize)?.to_vec()).map_err(|_| RecordError("invalid utf-8"))
    }
    fn uvarint(&mut self) -> Result<u64, RecordError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(RecordError("varint too long"))
    }
    /// A compact array length (null treated as empty).
    fn len(&mut self) -> Result<usize, RecordError> {
        let n = self.uvarint()?.saturating_sub(1) as usize;
        if n > self.0.len() {
            return Err(RecordError("array longer than the record"));
        }
        Ok(n)
    }
    fn cstr(&mut self) -> Result<Option<String>, RecordError> {
        let n = self.uvarint()?;
        if n == 0 {
            return Ok(None);
        }
        let b = self.take(n as usize - 1)?;
        String::from_utf8(b.to_vec())
            .map(Some)
            .map_err(|_| RecordError("invalid utf-8"))
    }
    fn skip_tags(&mut self) -> Result<(), RecordError> {
        let n = self.uvarint()?;
        for _ in 0..n {
            let _tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }
    fn assignment(&mut self) -> Result<Assignment, RecordError> {
        let n = self.len()?;
        let mut a = Assignment::new();
        for _ in 0..n {
            let id = Uuid::from_slice(self.take(16)?).map_err(|_| RecordError("bad uuid"))?;
            let m = self.len()?;
            let mut parts = BTreeSet::new();
            for _ in 0..m {
                parts.insert(self.i32()?);
            }
            self.skip_tags()?;
            a.insert(id, parts);
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn asg(seed: u8, n: usize) -> Assignment {
        (0..n)
            .map(|i| {
                (
                    Uuid::from_bytes([seed.wrapping_add(i as u8); 16]),
                    (0..(i as i32 + 1)).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn every_record_kind_round_trips() {
        let recs = vec![
            ConsumerRecord::GroupEpoch {
                group: "g".into(),
                epoch: Some(7),
            },
            ConsumerRecord::TargetEpoch {
                group: "g".into(),
                epoch: Some(6),
            },
            ConsumerRecord::Member {
                group: "g".into(),
                member: "m".into(),
                value: Some(MemberMetadata {
                    instance_id: Some("i".into()),
                    rack_id: None,
                    client_id: "c".into(),
                    client_host: "/h".into(),
                    subscribed_topic_names: vec!["a".into(), "b".into()],
                    subscribed_topic_regex: Some("^x.*".into()),
                    rebalance_timeout_ms: 300_000,
                    server_assignor: Some("uniform".into()),
                }),
            },
            ConsumerRecord::Target {
                group: "g".into(),
                member: "m".into(),
                value: Some(asg(1, 3)),
            },
            ConsumerRecord::Current {
                group: "g".into(),
                member: "m".into(),
                value: Some(CurrentAssignment {
                    member_epoch: 5,
                    previous_member_epoch: 4,
                    state: 0,
                    assigned: asg(2, 2),
                    pending_revocation: asg(9, 1),
                }),
            },
            ConsumerRecord::Member {
                group: "g".into(),
                member: "m".into(),
                value: None,
            },
            ConsumerRecord::GroupEpoch {
                group: "g".into(),
                epoch: None,
            },
        ];
        for r in recs {
            let (k, v) = r.encode();
            assert_eq!(
                ConsumerRecord::decode(&k, v.as_deref()).expect("decode"),
                Some(r)
            );
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics(k in proptest::collection::vec(any::<u8>(), 0..40), v in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = ConsumerRecord::decode(&k, Some(&v));
        }
    }
}
