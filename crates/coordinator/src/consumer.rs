//! KIP-848 consumer groups: server-side assignment and incremental
//! reconciliation, driven by ConsumerGroupHeartbeat.
//!
//! A group has an epoch that grows whenever membership, subscriptions or the
//! subscribed topics' partitions change. The assignor then computes a target
//! assignment at that epoch. Each member converges to its target in steps: it
//! first revokes the partitions it must give up (keeping its epoch), then
//! moves to the target epoch and receives its new partitions as soon as no
//! other member still holds them. Every change is written as Kafka's KIP-848
//! records (see `consumer_records`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use uuid::Uuid;

use crate::consumer_records::{Assignment, ConsumerRecord, CurrentAssignment, MemberMetadata};

/// Error codes specific to KIP-848.
pub mod code {
    pub const INVALID_REQUEST: i16 = 42;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const FENCED_MEMBER_EPOCH: i16 = 110;
    pub const UNSUPPORTED_ASSIGNOR: i16 = 112;
    pub const UNRELEASED_INSTANCE_ID: i16 = 111;
    pub const STALE_MEMBER_EPOCH: i16 = 113;
    pub const INVALID_REGULAR_EXPRESSION: i16 = 130;
}

/// The assignors offered to `group.remote.assignor`.
pub const ASSIGNORS: &[&str] = &["uniform", "range"];

/// A topic as the assignor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
}

/// The broker's topics at the time of a heartbeat.
pub type TopicsView = BTreeMap<String, TopicMeta>;

#[derive(Debug, Clone)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// Partitions the member owns now (`None`: unchanged since last time).
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatResponse {
    pub error: i16,
    pub error_message: Option<String>,
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's full assignment, when it changed.
    pub assignment: Option<Assignment>,
}

impl HeartbeatResponse {
    fn error(error: i16, msg: &str, member_id: &str) -> Self {
        HeartbeatResponse {
            error,
            error_message: Some(msg.into()),
            member_id: member_id.into(),
            member_epoch: -1,
            heartbeat_interval_ms: 0,
            assignment: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub meta: MemberMetadata,
    pub current: CurrentAssignment,
    pub session_deadline: i64,
    pub revoke_deadline: Option<i64>,
    /// The assignment last sent to the member.
    pub last_sent: Option<Assignment>,
}

#[derive(Debug, Clone, Default)]
pub struct ConsumerGroup {
    pub id: String,
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, Member>,
    pub target: BTreeMap<String, Assignment>,
    /// (topic id, partitions) of every subscribed topic at the last epoch
    /// bump; `None` after a reload, when it is taken as it is found (the
    /// signature is not persisted).
    pub topics_signature: Option<Vec<(Uuid, i32)>>,
}

/// Settings of KIP-848 groups.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i32,
}

impl Default for ConsumerGroupConfig {
    fn default() -> Self {
        ConsumerGroupConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
        }
    }
}

fn union(a: &mut Assignment, b: &Assignment) {
    for (t, ps) in b {
        a.entry(*t).or_default().extend(ps.iter().copied());
    }
}

fn minus(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        let rest: BTreeSet<i32> = match b.get(t) {
            Some(bs) => ps.difference(bs).copied().collect(),
            None => ps.clone(),
        };
        if !rest.is_empty() {
            out.insert(*t, rest);
        }
    }
    out
}

fn intersect(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        if let Some(bs) = b.get(t) {
            let both: BTreeSet<i32> = ps.intersection(bs).copied().collect();
            if !both.is_empty() {
                out.insert(*t, both);
            }
        }
    }
    out
}

fn is_empty(a: &Assignment) -> bool {
    a.values().all(|p| p.is_empty())
}

impl ConsumerGroup {
    pub fn new(id: &str) -> Self {
        ConsumerGroup {
            id: id.into(),
            topics_signature: Some(Vec::new()),
            ..Default::default()
        }
    }

    /// Kafka's state names for ListGroups/ConsumerGroupDescribe.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.epoch != self.assignment_epoch {
            "Assigning"
        } else if self.members.values().any(|m| {
            m.current.member_epoch != self.assignment_epoch
                || !is_empty(&m.current.pending_revocation)
        }) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Topics a member subscribes to, resolved against the broker's topics.
    fn member_topics<'a>(meta: &MemberMetadata, topics: &'a TopicsView) -> Vec<&'a TopicMeta> {
        let re = meta
            .subscribed_topic_regex
            .as_deref()
            .and_then(|r| regex::Regex::new(&format!("^(?:{r})$")).ok());
        topics
            .values()
            .filter(|t| {
                meta.subscribed_topic_names.contains(&t.name)
                    || re
                        .as_ref()
                        .is_some_and(|re| re.is_match(&t.name) && !t.name.starts_with("__"))
            })
            .collect()
    }

    fn signature(&self, topics: &TopicsView) -> Vec<(Uuid, i32)> {
        let mut set: BTreeSet<(Uuid, i32)> = BTreeSet::new();
        for m in self.members.values() {
            for t in Self::member_topics(&m.meta, topics) {
                set.insert((t.id, t.partitions));
            }
        }
        set.into_iter().collect()
    }

    fn bump(&mut self, out: &mut Vec<ConsumerRecord>) {
        self.epoch += 1;
        out.push(ConsumerRecord::GroupEpoch {
            group: self.id.clone(),
            epoch: Some(self.epoch),
        });
    }

    /// Recomputes the target assignment with the members' assignor.
    fn assign(&mut self, topics: &TopicsView, out: &mut Vec<ConsumerRecord>) {
        let assignor = self
            .members
            .values()
            .find_map(|m| m.meta.server_assignor.clone())
            .unwrap_or_else(|| "uniform".into());
        let subs: BTreeMap<String, Vec<&TopicMeta>> = self
            .members
            .iter()
            .map(|(id, m)| (id.clone(), Self::member_topics(&m.meta, topics)))
            .collect();
        let target = if assignor == "range" {
            range_assign(&subs)
        } else {
            uniform_assign(&subs, &self.target)
        };
        for id in self.members.keys() {
            let a = target.get(id).cloned().unwrap_or_default();
            if self.target.get(id) != Some(&a) {
                out.push(ConsumerRecord::Target {
                    group: self.id.clone(),
                    member: id.clone(),
                    value: Some(a),
                });
            }
        }
        self.target = target;
        self.assignment_epoch = self.epoch;
        out.push(ConsumerRecord::TargetEpoch {
            group: self.id.clone(),
            epoch: Some(self.epoch),
        });
    }

    /// Partitions held (assigned or being revoked) by members other than `id`.
    fn held_by_others(&self, id: &str) -> Assignment {
        let mut held = Assignment::new();
        for (mid, m) in &self.members {
            if mid != id {
                union(&mut held, &m.current.assigned);
                union(&mut held, &m.current.pending_revocation);
            }
        }
        held
    }

    /// Moves one member toward its target. Returns whether its state changed.
    fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now: i64) -> bool {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let held = self.held_by_others(id);
        let epoch = self.assignment_epoch;
        let Some(m) = self.members.get_mut(id) else {
            return false;
        };
        let before = m.current.clone();
        if !is_empty(&m.current.pending_revocation) {
            // Revocation completes when the member reports it no longer owns them.
            match owned {
                Some(o) if is_empty(&intersect(o, &m.current.pending_revocation)) => {
                    m.current.pending_revocation.clear();
                    m.revoke_deadline = None;
                }
                _ => return false,
            }
        }
        if m.current.member_epoch != epoch {
            let to_revoke = minus(&m.current.assigned, &target);
            if !is_empty(&to_revoke) {
                m.current.assigned = intersect(&m.current.assigned, &target);
                m.current.pending_revocation = to_revoke;
                m.current.state = 2; // UNREVOKED_PARTITIONS
                m.revoke_deadline = Some(now + m.meta.rebalance_timeout_ms.max(0) as i64);
                return true;
            }
            m.current.previous_member_epoch = m.current.member_epoch;
            m.current.member_epoch = epoch;
        }
        let mut next = intersect(&m.current.assigned, &target);
        union(&mut next, &minus(&target, &held));
        m.current.assigned = next;
        m.current.state = if m.current.assigned == target { 0 } else { 3 }; // STABLE / UNRELEASED_PARTITIONS
        m.current != before
    }

    fn current_record(&self, id: &str) -> Option<ConsumerRecord> {
        self.members.get(id).map(|m| ConsumerRecord::Current {
            group: self.id.clone(),
            member: id.into(),
            value: Some(m.current.clone()),
        })
    }

    fn remove(&mut self, id: &str, out: &mut Vec<ConsumerRecord>) -> bool {
        if self.members.remove(id).is_none() {
            return false;
        }
        self.target.remove(id);
        for r in [
            ConsumerRecord::Current {
                group: self.id.clone(),
                member: id.into(),
                value: None,
            },
            ConsumerRecord::Target {
                group: self.id.clone(),
                member: id.into(),
                value: None,
            },
            ConsumerRecord::Member {
                group: self.id.clone(),
                member: id.into(),
                value: None,
            },
        ] {
            out.push(r);
        }
        self.bump(out);
        true
    }

    /// Handles one ConsumerGroupHeartbeat.
    pub fn heartbeat(
        &mut self,
        now: i64,
        req: HeartbeatRequest,
        topics: &TopicsView,
        cfg: &ConsumerGroupConfig,
        out: &mut Vec<ConsumerRecord>,
    ) -> HeartbeatResponse {
        if let Some(a) = &req.server_assignor {
            if !ASSIGNORS.contains(&a.as_str()) {
                return HeartbeatResponse::error(
                    code::UNSUPPORTED_ASSIGNOR,
                    &format!("assignor {a} is not supported; use uniform or range"),
                    &req.member_id,
                );
            }
        }
        if let Some(r) = &req.subscribed_topic_regex {
            if regex::Regex::new(r).is_err() {
                return HeartbeatResponse::error(
                    code::INVALID_REGULAR_EXPRESSION,
                    &format!("invalid regular expression {r}"),
                    &req.member_id,
                );
            }
        }
        let member_id = if req.member_id.is_empty() {
            Uuid::new_v4().simple().to_string()
        } else {
            req.member_id.clone()
        };
        match req.member_epoch {
            -1 | -2 => {
                self.remove(&member_id, out);
                return HeartbeatResponse {
                    error: 0,
                    error_message: None,
                    member_id,
                    member_epoch: req.member_epoch,
                    heartbeat_interval_ms: 0,
                    assignment: None,
                };
            }
            0 => {
                if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
                    return HeartbeatResponse::error(
                        code::INVALID_REQUEST,
                        "a joining member must send its subscription",
                        &member_id,
                    );
                }
                // A static member replaces the previous holder of its instance id.
                if let Some(inst) = &req.instance_id {
                    let old: Vec<String> = self
                        .members
                        .values()
                        .filter(|m| m.meta.instance_id.as_ref() == Some(inst) && m.id != member_id)
                        .map(|m| m.id.clone())
                        .collect();
                    for o in old {
                        self.remove(&o, out);
                    }
                }
                if self.members.contains_key(&member_id) {
                    self.remove(&member_id, out);
                }
                self.members.insert(
                    member_id.clone(),
                    Member {
                        id: member_id.clone(),
                        meta: MemberMetadata::default(),
                        current: CurrentAssignment::default(),
                        session_deadline: 0,
                        revoke_deadline: None,
                        last_sent: None,
                    },
                );
                self.bump(out);
            }
            e => {
                let Some(m) = self.members.get(&member_id) else {
                    return HeartbeatResponse::error(
                        code::UNKNOWN_MEMBER_ID,
                        "unknown member",
                        &member_id,
                    );
                };
                let lost_response = e == m.current.previous_member_epoch
                    && req
                        .owned
                        .as_ref()
                        .is_some_and(|o| is_empty(&minus(o, &m.current.assigned)));
                if e != m.current.member_epoch && !lost_response {
                    return HeartbeatResponse::error(
                        code::FENCED_MEMBER_EPOCH,
                        "the member epoch is fenced",
                        &member_id,
                    );
                }
            }
        }
        // Update the member's metadata.
        let m = self.members.get_mut(&member_id).expect("member present");
        let mut meta = m.meta.clone();
        meta.client_id = req.client_id.clone();
        meta.client_host = req.client_host.clone();
        meta.instance_id = req.instance_id.clone().or(meta.instance_id);
        meta.rack_id = req.rack_id.clone().or(meta.rack_id);
        if req.rebalance_timeout_ms >= 0 {
            meta.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        if let Some(names) = &req.subscribed_topic_names {
            meta.subscribed_topic_names = names.clone();
        }
        if req.subscribed_topic_regex.is_some() {
            meta.subscribed_topic_regex =
                req.subscribed_topic_regex.clone().filter(|r| !r.is_empty());
        }
        if req.server_assignor.is_some() {
            meta.server_assignor = req.server_assignor.clone();
        }
        m.session_deadline = now + cfg.session_timeout_ms as i64;
        let subscription_changed = m.meta.subscribed_topic_names != meta.subscribed_topic_names
            || m.meta.subscribed_topic_regex != meta.subscribed_topic_regex
            || m.meta.server_assignor != meta.server_assignor;
        if m.meta != meta {
            m.meta = meta.clone();
            out.push(ConsumerRecord::Member {
                group: self.id.clone(),
                member: member_id.clone(),
                value: Some(meta),
            });
        }
        let sig = self.signature(topics);
        if self.topics_signature.as_ref() != Some(&sig) {
            let known = self.topics_signature.is_some();
            self.topics_signature = Some(sig);
            if known && !subscription_changed && req.member_epoch != 0 {
                self.bump(out);
            }
        }
        if subscription_changed && req.member_epoch != 0 {
            self.bump(out);
        }
        if self.epoch != self.assignment_epoch {
            self.assign(topics, out);
        }
        if self.reconcile(&member_id, req.owned.as_ref(), now) {
            out.extend(self.current_record(&member_id));
        }
        let m = self.members.get_mut(&member_id).expect("member present");
        let assignment =
            if m.last_sent.as_ref() != Some(&m.current.assigned) || req.member_epoch == 0 {
                m.last_sent = Some(m.current.assigned.clone());
                Some(m.current.assigned.clone())
            } else {
                None
            };
        HeartbeatResponse {
            error: 0,
            error_message: None,
            member_id,
            member_epoch: m.current.member_epoch,
            heartbeat_interval_ms: cfg.heartbeat_interval_ms,
            assignment,
        }
    }

    /// Removes members whose session expired or who did not revoke in time.
    pub fn tick(&mut self, now: i64, out: &mut Vec<ConsumerRecord>) {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.session_deadline <= now || m.revoke_deadline.is_some_and(|d| d <= now))
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove(&id, out);
        }
    }

    pub fn next_deadline(&self) -> Option<i64> {
        self.members
            .values()
            .flat_map(|m| [Some(m.session_deadline), m.revoke_deadline])
            .flatten()
            .min()
    }

    /// Applies a replayed record.
    pub fn replay(&mut self, now: i64, rec: ConsumerRecord, cfg: &ConsumerGroupConfig) {
        let fresh = |id: &str| Member {
            id: id.into(),
            meta: MemberMetadata::default(),
            current: CurrentAssignment::default(),
            session_deadline: now + cfg.session_timeout_ms as i64,
            revoke_deadline: None,
            last_sent: None,
        };
        match rec {
            ConsumerRecord::GroupEpoch { epoch, .. } => self.epoch = epoch.unwrap_or(0),
            ConsumerRecord::TargetEpoch { epoch, .. } => self.assignment_epoch = epoch.unwrap_or(0),
            ConsumerRecord::Member { member, value, .. } => match value {
                Some(v) => {
                    self.members
                        .entry(member.clone())
                        .or_insert_with(|| fresh(&member))
                        .meta = v
                }
                None => {
                    self.members.remove(&member);
                }
            },
            ConsumerRecord::Target { member, value, .. } => match value {
                Some(v) => {
                    self.target.insert(member, v);
                }
                None => {
                    self.target.remove(&member);
                }
            },
            ConsumerRecord::Current { member, value, .. } => {
                if let Some(v) = value {
                    let m = self
                        .members
                        .entry(member.clone())
                        .or_insert_with(|| fresh(&member));
                    m.last_sent = Some(v.assigned.clone());
                    m.current = v;
                }
            }
        }
    }
}

/// Balanced and sticky: members keep what they had while under their quota;
/// the rest goes to the eligible member with the fewest partitions.
pub fn uniform_assign(
    subs: &BTreeMap<String, Vec<&TopicMeta>>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let mut partitions: Vec<(Uuid, i32)> = Vec::new();
    let mut eligible: HashMap<Uuid, Vec<String>> = HashMap::new();
    for (m, ts) in subs {
        for t in ts {
            let e = eligible.entry(t.id).or_default();
            if e.is_empty() {
                partitions.extend((0..t.partitions).map(|p| (t.id, p)));
            }
            e.push(m.clone());
        }
    }
    partitions.sort();
    let members = subs.len().max(1);
    let quota = partitions.len().div_ceil(members);
    let mut counts: BTreeMap<String, usize> = subs.keys().map(|m| (m.clone(), 0)).collect();
    let mut out: BTreeMap<String, Assignment> = subs
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    let mut owner_of: HashMap<(Uuid, i32), String> = HashMap::new();
    for (m, a) in previous {
        for (t, ps) in a {
            for p in ps {
                owner_of.insert((*t, *p), m.clone());
            }
        }
    }
    let mut rest = Vec::new();
    for tp in &partitions {
        match owner_of.get(tp) {
            Some(o) if eligible[&tp.0].contains(o) && counts.get(o).is_some_and(|c| *c < quota) => {
                *counts.get_mut(o).expect("member") += 1;
                out.get_mut(o)
                    .expect("member")
                    .entry(tp.0)
                    .or_default()
                    .insert(tp.1);
            }
            _ => rest.push(*tp),
        }
    }
    for tp in rest {
        if let Some(m) = eligible[&tp.0]
            .iter()
            .min_by_key(|m| (counts[*m], (*m).clone()))
        {
            *counts.get_mut(m).expect("member") += 1;
            out.get_mut(m)
                .expect("member")
                .entry(tp.0)
                .or_default()
                .insert(tp.1);
        }
    }
    out
}

/// Kafka's range assignor, per topic: contiguous ranges by member id.
pub fn range_assign(subs: &BTreeMap<String, Vec<&TopicMeta>>) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = subs
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    let mut by_topic: BTreeMap<Uuid, (i32, Vec<String>)> = BTreeMap::new();
    for (m, ts) in subs {
        for t in ts {
            by_topic
                .entry(t.id)
                .or_insert((t.partitions, Vec::new()))
                .1
                .push(m.clone());
        }
    }
    for (topic, (n, members)) in by_topic {
        let k = members.len() as i32;
        let (base, extra) = (n / k, n % k);
        let mut start = 0;
        for (i, m) in members.iter().enumerate() {
            let len = base + if (i as i32) < extra { 1 } else { 0 };
            if len > 0 {
                out.get_mut(m)
                    .expect("member")
                    .entry(topic)
                    .or_default()
                    .extend(start..start + len);
            }
            start += len;
        }
    }
    out
}
