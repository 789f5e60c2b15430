//! One classic consumer group: members, generation, state.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;

use crate::records::{GroupValue, MemberValue};
use crate::types::{Protocol, Token};

/// The classic group states (Kafka's `GroupState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka uses in ListGroups and DescribeGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocols: Vec<Protocol>,
    pub assignment: Bytes,
    /// A JoinGroup waiting for the rebalance to complete.
    pub awaiting_join: Option<Token>,
    /// A SyncGroup waiting for the leader's assignment.
    pub awaiting_sync: Option<Token>,
    /// Whether this member has sent SyncGroup in the current generation.
    pub synced: bool,
    pub heartbeat_deadline: i64,
    /// Join order, for picking a leader deterministically.
    pub joined_seq: u64,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }
    pub fn same_protocols(&self, other: &[Protocol]) -> bool {
        self.protocols == other
    }
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// group.instance.id → member id.
    pub static_members: HashMap<String, String>,
    /// KIP-394: ids handed out with MEMBER_ID_REQUIRED, with their expiry.
    pub pending_members: HashMap<String, i64>,
    /// PreparingRebalance: when the join phase ends regardless.
    pub rebalance_deadline: i64,
    /// PreparingRebalance of a new group: the initial delay may still extend.
    pub initial_delay_until: Option<i64>,
    /// CompletingRebalance: when members that did not sync are removed.
    pub sync_deadline: i64,
    /// When the group entered its current state.
    pub state_timestamp: i64,
    pub join_seq: u64,
}

impl Group {
    pub fn new(id: &str, now: i64) -> Self {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            rebalance_deadline: 0,
            initial_delay_until: None,
            sync_deadline: 0,
            state_timestamp: now,
            join_seq: 0,
        }
    }

    pub fn transition(&mut self, state: GroupState, now: i64) {
        self.state = state;
        self.state_timestamp = now;
    }

    /// Protocols every member (and the candidate, if given) supports, in the
    /// candidate's (or first member's) order of preference.
    pub fn common_protocols(&self, candidate: Option<&[Protocol]>) -> Vec<String> {
        let mut lists: Vec<Vec<String>> = self
            .members
            .values()
            .map(|m| m.protocols.iter().map(|p| p.name.clone()).collect())
            .collect();
        if let Some(c) = candidate {
            lists.push(c.iter().map(|p| p.name.clone()).collect());
        }
        let Some(first) = lists.first() else {
            return Vec::new();
        };
        first
            .iter()
            .filter(|name| lists.iter().all(|l| l.contains(name)))
            .cloned()
            .collect()
    }

    /// Kafka's protocol choice: each member votes for its most preferred
    /// common protocol; the one with most votes wins (ties: first candidate).
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.common_protocols(None);
        let set: HashSet<&String> = candidates.iter().collect();
        let mut votes: HashMap<&String, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some(p) = m
                .protocols
                .iter()
                .map(|p| &p.name)
                .find(|n| set.contains(n))
            {
                *votes.entry(p).or_default() += 1;
            }
        }
        candidates
            .iter()
            .max_by_key(|c| {
                (
                    votes.get(c).copied().unwrap_or(0),
                    std::cmp::Reverse(candidates.iter().position(|x| x == *c)),
                )
            })
            .cloned()
    }

    /// The longest rebalance timeout among the members: how long a join or
    /// sync phase may last.
    pub fn max_rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms as i64)
            .max()
            .unwrap_or(0)
    }

    pub fn all_joined(&self) -> bool {
        self.members.values().all(|m| m.awaiting_join.is_some())
    }

    /// Topics the members subscribe to, when the group uses the consumer
    /// protocol and every subscription parses; `None` otherwise.
    pub fn subscribed_topics(&self) -> Option<HashSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol.as_ref()?;
        let mut out = HashSet::new();
        for m in self.members.values() {
            out.extend(parse_subscription_topics(&m.metadata_for(protocol))?);
        }
        Some(out)
    }

    /// The persisted form of this group.
    pub fn to_value(&self, now: i64) -> GroupValue {
        let protocol = self.protocol.clone();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: now,
            members: self
                .members
                .values()
                .map(|m| MemberValue {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: m.rebalance_timeout_ms,
                    session_timeout: m.session_timeout_ms,
                    subscription: protocol
                        .as_deref()
                        .map(|p| m.metadata_for(p))
                        .unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }
}

/// Topics of a ConsumerProtocolSubscription: `version: i16, topics: [string]`, …
pub fn parse_subscription_topics(b: &[u8]) -> Option<Vec<String>> {
    let rd16 = |at: usize| b.get(at..at + 2).map(|x| i16::from_be_bytes([x[0], x[1]]));
    let _version = rd16(0)?;
    let n = i32::from_be_bytes(b.get(2..6)?.try_into().ok()?);
    if n < 0 || n as usize > b.len() {
        return None;
    }
    let mut at = 6;
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let len = rd16(at)?;
        if len < 0 {
            return None;
        }
        let s = b.get(at + 2..at + 2 + len as usize)?;
        out.push(String::from_utf8(s.to_vec()).ok()?);
        at += 2 + len as usize;
    }
    Some(out)
}
