//! The classic group coordinator: a state machine over all groups and their
//! committed offsets.
//!
//! Every operation takes the current time and returns [`Effects`]: records to
//! append to `__consumer_offsets` (through the caller's writer; the
//! coordinator does no I/O) and replies to requests that were waiting. The
//! caller must append the records before sending the replies of the same
//! call. [`Coordinator::replay`] rebuilds the state from those records.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use crate::consumer::{
    self, ConsumerGroup, ConsumerGroupConfig, HeartbeatRequest, HeartbeatResponse, TopicsView,
};
use crate::group::{Group, GroupState, Member};
use crate::records::{CoordinatorRecord, GroupValue, OffsetValue};
use crate::types::*;

/// What an operation asks the caller to do.
#[derive(Debug, Default)]
pub struct Effects {
    /// Records to append to `__consumer_offsets`, in order.
    pub records: Vec<CoordinatorRecord>,
    /// Replies for waiting requests.
    pub replies: Vec<(Token, Reply)>,
}

impl Effects {
    fn reply(&mut self, token: Token, r: Reply) {
        self.replies.push((token, r));
    }

    /// Answers a member's waiting JoinGroup and SyncGroup with `error`
    /// (it was fenced or removed).
    fn fail_waiting(&mut self, m: &mut Member, error: i16) {
        if let Some(t) = m.awaiting_join.take() {
            self.reply(t, Reply::Join(JoinResponse::error(error, &m.id)));
        }
        if let Some(t) = m.awaiting_sync.take() {
            self.reply(t, Reply::Sync(SyncResponse::error(error)));
        }
    }
}

/// All groups and committed offsets of this broker.
#[derive(Debug)]
pub struct Coordinator {
    config: GroupConfig,
    groups: HashMap<String, Group>,
    /// group → (topic, partition) → offset.
    offsets: HashMap<String, BTreeMap<(String, i32), OffsetValue>>,
    /// KIP-848 groups.
    consumer_groups: HashMap<String, ConsumerGroup>,
    consumer_config: ConsumerGroupConfig,
}

impl Coordinator {
    pub fn new(config: GroupConfig) -> Self {
        Coordinator {
            config,
            groups: HashMap::new(),
            offsets: HashMap::new(),
            consumer_groups: HashMap::new(),
            consumer_config: ConsumerGroupConfig::default(),
        }
    }

    /// Sets the KIP-848 group settings.
    pub fn with_consumer_config(mut self, c: ConsumerGroupConfig) -> Self {
        self.consumer_config = c;
        self
    }

    /// ConsumerGroupHeartbeat. `topics` is the broker's current topic view.
    pub fn consumer_heartbeat(
        &mut self,
        now: i64,
        req: HeartbeatRequest,
        topics: &TopicsView,
    ) -> (Effects, HeartbeatResponse) {
        let mut fx = Effects::default();
        let refuse = |error: i16, msg: String, member_id: String| HeartbeatResponse {
            error,
            error_message: Some(msg),
            member_id,
            member_epoch: -1,
            heartbeat_interval_ms: 0,
            assignment: None,
        };
        if req.group_id.is_empty() {
            return (
                fx,
                refuse(
                    code::INVALID_GROUP_ID,
                    "empty group id".into(),
                    req.member_id,
                ),
            );
        }
        if self
            .groups
            .get(&req.group_id)
            .is_some_and(|g| !g.members.is_empty())
        {
            let msg = format!(
                "group {} is a classic group with active members",
                req.group_id
            );
            return (fx, refuse(code::GROUP_ID_NOT_FOUND, msg, req.member_id));
        }
        let cfg = self.consumer_config;
        let group = self
            .consumer_groups
            .entry(req.group_id.clone())
            .or_insert_with(|| ConsumerGroup::new(&req.group_id));
        let mut out = Vec::new();
        let resp = group.heartbeat(now, req, topics, &cfg, &mut out);
        fx.records
            .extend(out.into_iter().map(CoordinatorRecord::Consumer));
        (fx, resp)
    }

    /// A KIP-848 group, for ConsumerGroupDescribe.
    pub fn consumer_group(&self, id: &str) -> Option<&ConsumerGroup> {
        self.consumer_groups.get(id)
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    fn new_member_id(&mut self, client_id: &str) -> String {
        let prefix = if client_id.is_empty() {
            "member"
        } else {
            client_id
        };
        format!("{prefix}-{}", uuid::Uuid::new_v4())
    }

    // ----- JoinGroup -------------------------------------------------------

    /// Handles JoinGroup. The reply to `token` comes in these or later effects.
    pub fn join(&mut self, now: i64, token: Token, req: JoinRequest) -> Effects {
        let mut fx = Effects::default();
        let fail = |fx: &mut Effects, e: i16| {
            fx.reply(token, Reply::Join(JoinResponse::error(e, &req.member_id)))
        };
        if req.group_id.is_empty() {
            fail(&mut fx, code::INVALID_GROUP_ID);
            return fx;
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            fail(&mut fx, code::INVALID_SESSION_TIMEOUT);
            return fx;
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            fail(&mut fx, code::INCONSISTENT_GROUP_PROTOCOL);
            return fx;
        }
        if !req.member_id.is_empty() && !self.groups.contains_key(&req.group_id) {
            fail(&mut fx, code::UNKNOWN_MEMBER_ID);
            return fx;
        }
        let new_id = if req.member_id.is_empty() {
            Some(self.new_member_id(&req.client_id))
        } else {
            None
        };
        let max_size = self.config.max_size;
        let initial_delay = self.config.initial_rebalance_delay_ms as i64;
        let group = self
            .groups
            .entry(req.group_id.clone())
            .or_insert_with(|| Group::new(&req.group_id, now));
        if group.state == GroupState::Dead {
            fail(&mut fx, code::COORDINATOR_NOT_AVAILABLE);
            return fx;
        }
        let is_existing_member = group.members.contains_key(&req.member_id);
        let has_members = !group.members.is_empty();
        if has_members && !(is_existing_member && group.members.len() == 1) {
            let type_ok = group.protocol_type.as_deref() == Some(req.protocol_type.as_str());
            if !type_ok || group.common_protocols(Some(&req.protocols)).is_empty() {
                fail(&mut fx, code::INCONSISTENT_GROUP_PROTOCOL);
                return fx;
            }
        }
        match new_id {
            Some(member_id) => {
                // Static member coming back (KIP-345): take over its old identity.
                if let Some(instance) = &req.group_instance_id {
                    if let Some(old_id) = group.static_members.get(instance).cloned() {
                        let Some(mut old) = group.members.remove(&old_id) else {
                            group.static_members.remove(instance);
                            return self.add_and_rebalance(now, token, req, member_id, fx);
                        };
                        fx.fail_waiting(&mut old, code::FENCED_INSTANCE_ID);
                        // As in Kafka: a returning static member triggers no rebalance as long
                        // as the group's selected protocol stays available to it.
                        let unchanged = group
                            .protocol
                            .as_ref()
                            .is_some_and(|p| req.protocols.iter().any(|x| &x.name == p));
                        let was_leader = group.leader.as_deref() == Some(old_id.as_str());
                        // Kafka answers with the previous leader id, so a returning
                        // static leader does not reassign a stable group.
                        let previous_leader = group.leader.clone().unwrap_or_default();
                        old.id = member_id.clone();
                        old.client_id = req.client_id.clone();
                        old.client_host = req.client_host.clone();
                        old.session_timeout_ms = req.session_timeout_ms;
                        old.rebalance_timeout_ms = req.rebalance_timeout_ms;
                        old.heartbeat_deadline = now + req.session_timeout_ms as i64;
                        old.protocols = req.protocols.clone();
                        group
                            .static_members
                            .insert(instance.clone(), member_id.clone());
                        if was_leader {
                            group.leader = Some(member_id.clone());
                        }
                        if group.state == GroupState::Stable && unchanged {
                            // Same identity, same subscription: no rebalance.
                            old.synced = true;
                            group.members.insert(member_id.clone(), old);
                            let resp = JoinResponse {
                                error: code::NONE,
                                generation_id: group.generation,
                                protocol_type: group.protocol_type.clone(),
                                protocol_name: group.protocol.clone(),
                                leader: previous_leader,
                                skip_assignment: false,
                                member_id,
                                members: Vec::new(),
                            };
                            fx.records.push(CoordinatorRecord::Group {
                                group: group.id.clone(),
                                value: Some(group.to_value(now)),
                            });
                            fx.reply(token, Reply::Join(resp));
                            return fx;
                        }
                        old.awaiting_join = Some(token);
                        group.members.insert(member_id, old);
                        self.prepare_rebalance(&req.group_id, now, &mut fx);
                        self.maybe_complete_join(&req.group_id, now, &mut fx);
                        return fx;
                    }
                } else if req.require_known_member_id {
                    group
                        .pending_members
                        .insert(member_id.clone(), now + req.session_timeout_ms as i64);
                    fx.reply(
                        token,
                        Reply::Join(JoinResponse::error(code::MEMBER_ID_REQUIRED, &member_id)),
                    );
                    return fx;
                }
                if group.members.len() >= max_size {
                    fail(&mut fx, code::INCONSISTENT_GROUP_PROTOCOL);
                    return fx;
                }
                self.add_and_rebalance(now, token, req, member_id, fx)
            }
            None => {
                let member_id = req.member_id.clone();
                if group.pending_members.remove(&member_id).is_some() {
                    return self.add_and_rebalance(now, token, req, member_id, fx);
                }
                let Some(member) = group.members.get_mut(&member_id) else {
                    fail(&mut fx, code::UNKNOWN_MEMBER_ID);
                    return fx;
                };
                if member.instance_id.is_some() && member.instance_id != req.group_instance_id {
                    fail(&mut fx, code::FENCED_INSTANCE_ID);
                    return fx;
                }
                member.heartbeat_deadline = now + req.session_timeout_ms as i64;
                member.session_timeout_ms = req.session_timeout_ms;
                member.rebalance_timeout_ms = req.rebalance_timeout_ms;
                let unchanged = member.same_protocols(&req.protocols);
                member.protocols = req.protocols.clone();
                let is_leader = group.leader.as_deref() == Some(member_id.as_str());
                match group.state {
                    GroupState::PreparingRebalance => {
                        if let Some(old) = member.awaiting_join.replace(token) {
                            fx.reply(
                                old,
                                Reply::Join(JoinResponse::error(
                                    code::REBALANCE_IN_PROGRESS,
                                    &member_id,
                                )),
                            );
                        }
                        if let Some(until) = group.initial_delay_until {
                            group.initial_delay_until = Some(
                                (now + initial_delay)
                                    .max(until)
                                    .min(group.rebalance_deadline),
                            );
                        }
                        self.maybe_complete_join(&req.group_id, now, &mut fx);
                    }
                    GroupState::CompletingRebalance | GroupState::Stable
                        if unchanged && !(is_leader && group.state == GroupState::Stable) =>
                    {
                        // A rejoin with the same metadata (e.g. after a lost
                        // response): hand back the current generation.
                        let resp = join_response(group, &member_id);
                        fx.reply(token, Reply::Join(resp));
                    }
                    _ => {
                        member.awaiting_join = Some(token);
                        self.prepare_rebalance(&req.group_id, now, &mut fx);
                        self.maybe_complete_join(&req.group_id, now, &mut fx);
                    }
                }
                fx
            }
        }
    }

    fn add_and_rebalance(
        &mut self,
        now: i64,
        token: Token,
        req: JoinRequest,
        member_id: String,
        mut fx: Effects,
    ) -> Effects {
        let group = self.groups.get_mut(&req.group_id).expect("group exists");
        group.join_seq += 1;
        let was_empty = group.members.is_empty();
        if group.protocol_type.is_none() || was_empty {
            group.protocol_type = Some(req.protocol_type.clone());
        }
        if let Some(instance) = &req.group_instance_id {
            group
                .static_members
                .insert(instance.clone(), member_id.clone());
        }
        group.members.insert(
            member_id.clone(),
            Member {
                id: member_id,
                instance_id: req.group_instance_id.clone(),
                client_id: req.client_id.clone(),
                client_host: req.client_host.clone(),
                session_timeout_ms: req.session_timeout_ms,
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                protocols: req.protocols.clone(),
                assignment: Bytes::new(),
                awaiting_join: Some(token),
                awaiting_sync: None,
                synced: false,
                heartbeat_deadline: now + req.session_timeout_ms as i64,
                joined_seq: group.join_seq,
            },
        );
        let initial_delay = self.config.initial_rebalance_delay_ms as i64;
        let group = self.groups.get_mut(&req.group_id).expect("group exists");
        if group.state == GroupState::PreparingRebalance {
            if let Some(until) = group.initial_delay_until {
                group.initial_delay_until = Some(
                    (now + initial_delay)
                        .max(until)
                        .min(group.rebalance_deadline),
                );
            }
        } else {
            let from_empty = group.state == GroupState::Empty;
            self.prepare_rebalance(&req.group_id, now, &mut fx);
            if from_empty && initial_delay > 0 {
                let group = self.groups.get_mut(&req.group_id).expect("group exists");
                group.initial_delay_until =
                    Some((now + initial_delay).min(group.rebalance_deadline));
            }
        }
        self.maybe_complete_join(&req.group_id, now, &mut fx);
        fx
    }

    /// Moves a group to PreparingRebalance (answering waiting syncs with
    /// REBALANCE_IN_PROGRESS).
    fn prepare_rebalance(&mut self, group_id: &str, now: i64, fx: &mut Effects) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        if group.state == GroupState::PreparingRebalance {
            return;
        }
        for m in group.members.values_mut() {
            if let Some(t) = m.awaiting_sync.take() {
                fx.reply(
                    t,
                    Reply::Sync(SyncResponse::error(code::REBALANCE_IN_PROGRESS)),
                );
            }
        }
        group.rebalance_deadline = now + group.max_rebalance_timeout_ms();
        group.initial_delay_until = None;
        group.transition(GroupState::PreparingRebalance, now);
    }

    /// Completes the join phase once every member has rejoined (and a new
    /// group's initial delay is over).
    fn maybe_complete_join(&mut self, group_id: &str, now: i64, fx: &mut Effects) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        let delay_over = group.initial_delay_until.is_none_or(|t| now >= t);
        if (group.all_joined() && delay_over) || now >= group.rebalance_deadline {
            self.complete_join(group_id, now, fx);
        }
    }

    fn complete_join(&mut self, group_id: &str, now: i64, fx: &mut Effects) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let gone: Vec<String> = group
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            remove_member(group, &id);
        }
        group.generation += 1;
        group.initial_delay_until = None;
        if group.members.is_empty() {
            group.protocol = None;
            group.leader = None;
            group.transition(GroupState::Empty, now);
            fx.records.push(CoordinatorRecord::Group {
                group: group.id.clone(),
                value: Some(group.to_value(now)),
            });
            return;
        }
        group.protocol = group.select_protocol();
        if group
            .leader
            .as_ref()
            .is_none_or(|l| !group.members.contains_key(l))
        {
            group.leader = group
                .members
                .values()
                .min_by_key(|m| m.joined_seq)
                .map(|m| m.id.clone());
        }
        group.transition(GroupState::CompletingRebalance, now);
        group.sync_deadline = now + group.max_rebalance_timeout_ms();
        let ids: Vec<String> = group.members.keys().cloned().collect();
        for id in ids {
            let resp = join_response(group, &id);
            let m = group.members.get_mut(&id).expect("member");
            m.synced = false;
            m.assignment = Bytes::new();
            m.heartbeat_deadline = now + m.session_timeout_ms as i64;
            if let Some(t) = m.awaiting_join.take() {
                fx.reply(t, Reply::Join(resp));
            }
        }
    }

    // ----- SyncGroup -------------------------------------------------------

    pub fn sync(&mut self, now: i64, token: Token, req: SyncRequest) -> Effects {
        let mut fx = Effects::default();
        let fail = |fx: &mut Effects, e: i16| fx.reply(token, Reply::Sync(SyncResponse::error(e)));
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            fail(&mut fx, code::UNKNOWN_MEMBER_ID);
            return fx;
        };
        let Some(member) = group.members.get_mut(&req.member_id) else {
            fail(&mut fx, code::UNKNOWN_MEMBER_ID);
            return fx;
        };
        if member.instance_id.is_some() && member.instance_id != req.group_instance_id {
            fail(&mut fx, code::FENCED_INSTANCE_ID);
            return fx;
        }
        if req.generation_id != group.generation {
            fail(&mut fx, code::ILLEGAL_GENERATION);
            return fx;
        }
        if req
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != group.protocol_type.as_ref())
            || req
                .protocol_name
                .as_ref()
                .is_some_and(|p| Some(p) != group.protocol.as_ref())
        {
            fail(&mut fx, code::INCONSISTENT_GROUP_PROTOCOL);
            return fx;
        }
        member.heartbeat_deadline = now + member.session_timeout_ms as i64;
        match group.state {
            GroupState::PreparingRebalance => fail(&mut fx, code::REBALANCE_IN_PROGRESS),
            GroupState::Stable => {
                member.synced = true;
                let r = SyncResponse::assigned(
                    &group.protocol_type,
                    &group.protocol,
                    member.assignment.clone(),
                );
                fx.reply(token, Reply::Sync(r));
            }
            GroupState::CompletingRebalance => {
                member.synced = true;
                if let Some(old) = member.awaiting_sync.replace(token) {
                    fx.reply(
                        old,
                        Reply::Sync(SyncResponse::error(code::REBALANCE_IN_PROGRESS)),
                    );
                }
                if group.leader.as_deref() == Some(req.member_id.as_str()) {
                    let assigned: HashMap<String, Bytes> = req.assignments.into_iter().collect();
                    for m in group.members.values_mut() {
                        m.assignment = assigned.get(&m.id).cloned().unwrap_or_default();
                    }
                    group.transition(GroupState::Stable, now);
                    fx.records.push(CoordinatorRecord::Group {
                        group: group.id.clone(),
                        value: Some(group.to_value(now)),
                    });
                    for m in group.members.values_mut() {
                        if let Some(t) = m.awaiting_sync.take() {
                            let r = SyncResponse::assigned(
                                &group.protocol_type,
                                &group.protocol,
                                m.assignment.clone(),
                            );
                            fx.reply(t, Reply::Sync(r));
                        }
                    }
                }
            }
            GroupState::Empty | GroupState::Dead => fail(&mut fx, code::UNKNOWN_MEMBER_ID),
        }
        fx
    }

    // ----- Heartbeat and LeaveGroup ---------------------------------------

    pub fn heartbeat(
        &mut self,
        now: i64,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> i16 {
        let Some(group) = self.groups.get_mut(group_id) else {
            return code::UNKNOWN_MEMBER_ID;
        };
        let state = group.state;
        let current = group.generation;
        let Some(member) = group.members.get_mut(member_id) else {
            return code::UNKNOWN_MEMBER_ID;
        };
        if member.instance_id.is_some() && member.instance_id.as_deref() != instance_id {
            return code::FENCED_INSTANCE_ID;
        }
        member.heartbeat_deadline = now + member.session_timeout_ms as i64;
        match state {
            GroupState::PreparingRebalance => code::REBALANCE_IN_PROGRESS,
            _ if generation != current => code::ILLEGAL_GENERATION,
            GroupState::Empty | GroupState::Dead => code::UNKNOWN_MEMBER_ID,
            _ => code::NONE,
        }
    }

    /// Removes members (by member id, or by instance id for static members).
    /// Returns the effects and one error code per requested member.
    pub fn leave(
        &mut self,
        now: i64,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> (Effects, Vec<i16>) {
        let mut fx = Effects::default();
        let Some(group) = self.groups.get_mut(group_id) else {
            return (fx, vec![code::UNKNOWN_MEMBER_ID; members.len()]);
        };
        let mut errors = Vec::with_capacity(members.len());
        let mut removed = false;
        for (member_id, instance) in members {
            let id = match instance {
                Some(inst) => match group.static_members.get(inst) {
                    Some(id) if member_id.is_empty() || id == member_id => id.clone(),
                    Some(_) => {
                        errors.push(code::FENCED_INSTANCE_ID);
                        continue;
                    }
                    None => {
                        errors.push(code::UNKNOWN_MEMBER_ID);
                        continue;
                    }
                },
                None => member_id.clone(),
            };
            match remove_member(group, &id) {
                Some(mut m) => {
                    fx.fail_waiting(&mut m, code::UNKNOWN_MEMBER_ID);
                    removed = true;
                    errors.push(code::NONE);
                }
                None => errors.push(code::UNKNOWN_MEMBER_ID),
            }
        }
        if removed {
            self.after_removal(group_id, now, &mut fx);
        }
        (fx, errors)
    }

    fn after_removal(&mut self, group_id: &str, now: i64, fx: &mut Effects) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                if group.members.is_empty() {
                    let group = self.groups.get_mut(group_id).expect("group");
                    group.generation += 1;
                    group.protocol = None;
                    group.leader = None;
                    group.transition(GroupState::Empty, now);
                    fx.records.push(CoordinatorRecord::Group {
                        group: group.id.clone(),
                        value: Some(group.to_value(now)),
                    });
                } else {
                    self.prepare_rebalance(group_id, now, fx);
                    self.maybe_complete_join(group_id, now, fx);
                }
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(group_id, now, fx),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    // ----- Time ------------------------------------------------------------

    /// Expires sessions, ends join and sync phases that ran out of time, and
    /// expires offsets of empty groups. Call at least every few hundred ms.
    pub fn tick(&mut self, now: i64) -> Effects {
        let mut fx = Effects::default();
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for id in ids {
            let Some(group) = self.groups.get_mut(&id) else {
                continue;
            };
            group.pending_members.retain(|_, deadline| *deadline > now);
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|m| {
                    m.heartbeat_deadline <= now
                        && !(group.state == GroupState::PreparingRebalance
                            && m.awaiting_join.is_some())
                })
                .map(|m| m.id.clone())
                .collect();
            let sync_timed_out =
                group.state == GroupState::CompletingRebalance && group.sync_deadline <= now;
            let unsynced: Vec<String> = if sync_timed_out {
                group
                    .members
                    .values()
                    .filter(|m| !m.synced)
                    .map(|m| m.id.clone())
                    .collect()
            } else {
                Vec::new()
            };
            let mut removed = false;
            for m in expired.iter().chain(unsynced.iter()) {
                if let Some(mut m) = remove_member(group, m) {
                    fx.fail_waiting(&mut m, code::UNKNOWN_MEMBER_ID);
                    removed = true;
                }
            }
            if removed {
                self.after_removal(&id, now, &mut fx);
            }
            self.maybe_complete_join(&id, now, &mut fx);
        }
        for g in self.consumer_groups.values_mut() {
            let mut out = Vec::new();
            g.tick(now, &mut out);
            fx.records
                .extend(out.into_iter().map(CoordinatorRecord::Consumer));
        }
        self.expire_offsets(now, &mut fx);
        fx
    }

    fn expire_offsets(&mut self, now: i64, fx: &mut Effects) {
        let retention = self.config.offsets_retention_ms;
        let mut drop_groups = Vec::new();
        for (gid, offs) in self.offsets.iter_mut() {
            let empty_since = match self.groups.get(gid) {
                Some(g) if g.state == GroupState::Empty => g.state_timestamp,
                Some(_) => continue,
                None => i64::MIN,
            };
            let expired: Vec<(String, i32)> = offs
                .iter()
                .filter(|(_, v)| v.commit_timestamp.max(empty_since) + retention <= now)
                .map(|(k, _)| k.clone())
                .collect();
            for (topic, partition) in expired {
                offs.remove(&(topic.clone(), partition));
                fx.records.push(CoordinatorRecord::Offset {
                    group: gid.clone(),
                    topic,
                    partition,
                    value: None,
                });
            }
            if offs.is_empty() {
                drop_groups.push(gid.clone());
            }
        }
        for gid in drop_groups {
            self.offsets.remove(&gid);
            if self
                .groups
                .get(&gid)
                .is_some_and(|g| g.state == GroupState::Empty && g.members.is_empty())
            {
                self.groups.remove(&gid);
                fx.records.push(CoordinatorRecord::Group {
                    group: gid,
                    value: None,
                });
            }
        }
    }

    /// The earliest time at which [`Coordinator::tick`] has work to do.
    pub fn next_deadline(&self) -> Option<i64> {
        self.groups
            .values()
            .flat_map(|g| {
                let mut d: Vec<i64> = g.members.values().map(|m| m.heartbeat_deadline).collect();
                match g.state {
                    GroupState::PreparingRebalance => {
                        d.push(g.rebalance_deadline);
                        d.extend(g.initial_delay_until);
                    }
                    GroupState::CompletingRebalance => d.push(g.sync_deadline),
                    _ => {}
                }
                d.extend(g.pending_members.values().copied());
                d
            })
            .chain(
                self.consumer_groups
                    .values()
                    .filter_map(|c| c.next_deadline()),
            )
            .min()
    }

    // ----- Offsets ---------------------------------------------------------

    /// OffsetCommit. Returns effects (the offset records) and an error code
    /// per offset, in request order.
    pub fn commit(&mut self, now: i64, req: CommitRequest) -> (Effects, Vec<i16>) {
        let mut fx = Effects::default();
        let group_error = self.validate_commit(&req);
        let mut errors = Vec::with_capacity(req.offsets.len());
        if group_error != code::NONE {
            return (fx, vec![group_error; req.offsets.len()]);
        }
        if !self.groups.contains_key(&req.group_id) {
            self.groups
                .insert(req.group_id.clone(), Group::new(&req.group_id, now));
        }
        for o in req.offsets {
            let metadata = o.metadata.unwrap_or_default();
            if metadata.len() > self.config.offset_metadata_max_bytes {
                errors.push(code::OFFSET_METADATA_TOO_LARGE);
                continue;
            }
            let value = OffsetValue {
                offset: o.offset,
                leader_epoch: o.leader_epoch,
                metadata,
                commit_timestamp: now,
            };
            self.offsets
                .entry(req.group_id.clone())
                .or_default()
                .insert((o.topic.clone(), o.partition), value.clone());
            fx.records.push(CoordinatorRecord::Offset {
                group: req.group_id.clone(),
                topic: o.topic,
                partition: o.partition,
                value: Some(value),
            });
            errors.push(code::NONE);
        }
        (fx, errors)
    }

    /// TxnOffsetCommit: validates like OffsetCommit and returns the offset
    /// records (and an error per offset) without applying them; they take
    /// effect through [`Coordinator::replay`] when the transaction commits.
    pub fn transactional_commit(
        &self,
        now: i64,
        req: CommitRequest,
    ) -> (Vec<CoordinatorRecord>, Vec<i16>) {
        let group_error = self.validate_commit(&req);
        if group_error != code::NONE {
            return (Vec::new(), vec![group_error; req.offsets.len()]);
        }
        let mut records = Vec::new();
        let mut errors = Vec::with_capacity(req.offsets.len());
        for o in req.offsets {
            let metadata = o.metadata.unwrap_or_default();
            if metadata.len() > self.config.offset_metadata_max_bytes {
                errors.push(code::OFFSET_METADATA_TOO_LARGE);
                continue;
            }
            records.push(CoordinatorRecord::Offset {
                group: req.group_id.clone(),
                topic: o.topic,
                partition: o.partition,
                value: Some(OffsetValue {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata,
                    commit_timestamp: now,
                }),
            });
            errors.push(code::NONE);
        }
        (records, errors)
    }

    fn validate_commit(&self, req: &CommitRequest) -> i16 {
        if req.group_id.is_empty() {
            return code::INVALID_GROUP_ID;
        }
        if let Some(cg) = self
            .consumer_groups
            .get(&req.group_id)
            .filter(|c| !c.members.is_empty())
        {
            if req.generation_id < 0 && req.member_id.is_empty() {
                return code::UNKNOWN_MEMBER_ID;
            }
            let Some(m) = cg.members.get(&req.member_id) else {
                return code::UNKNOWN_MEMBER_ID;
            };
            if req.generation_id != m.current.member_epoch {
                return consumer::code::STALE_MEMBER_EPOCH;
            }
            return code::NONE;
        }
        let Some(group) = self.groups.get(&req.group_id) else {
            // A standalone consumer (generation -1) may commit to a new group.
            return if req.generation_id < 0 {
                code::NONE
            } else {
                code::ILLEGAL_GENERATION
            };
        };
        if req.generation_id < 0 && req.member_id.is_empty() && req.group_instance_id.is_none() {
            return if group.members.is_empty() {
                code::NONE
            } else {
                code::UNKNOWN_MEMBER_ID
            };
        }
        let id = match &req.group_instance_id {
            Some(inst) => match group.static_members.get(inst) {
                Some(id) if id == &req.member_id => id,
                Some(_) => return code::FENCED_INSTANCE_ID,
                None => return code::UNKNOWN_MEMBER_ID,
            },
            None => &req.member_id,
        };
        if !group.members.contains_key(id) {
            return code::UNKNOWN_MEMBER_ID;
        }
        if req.generation_id != group.generation {
            return code::ILLEGAL_GENERATION;
        }
        if group.state == GroupState::CompletingRebalance {
            return code::REBALANCE_IN_PROGRESS;
        }
        code::NONE
    }

    /// OffsetFetch: the committed offsets of `topics` (or all, when `None`).
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Vec<FetchedOffset> {
        let offs = self.offsets.get(group_id);
        let found = |t: &str, p: i32| offs.and_then(|o| o.get(&(t.to_string(), p)));
        match topics {
            Some(ts) => ts
                .iter()
                .flat_map(|(t, ps)| {
                    ps.iter().map(move |p| match found(t, *p) {
                        Some(v) => FetchedOffset {
                            topic: t.clone(),
                            partition: *p,
                            offset: v.offset,
                            leader_epoch: v.leader_epoch,
                            metadata: v.metadata.clone(),
                        },
                        None => FetchedOffset {
                            topic: t.clone(),
                            partition: *p,
                            offset: -1,
                            leader_epoch: -1,
                            metadata: String::new(),
                        },
                    })
                })
                .collect(),
            None => offs
                .map(|o| {
                    o.iter()
                        .map(|((t, p), v)| FetchedOffset {
                            topic: t.clone(),
                            partition: *p,
                            offset: v.offset,
                            leader_epoch: v.leader_epoch,
                            metadata: v.metadata.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// OffsetDelete: the group must be empty or not subscribed to the topic.
    /// Returns (group error, per-partition errors).
    pub fn delete_offsets(
        &mut self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> (Effects, i16, Vec<i16>) {
        let mut fx = Effects::default();
        let subscribed = if let Some(cg) = self
            .consumer_groups
            .get(group_id)
            .filter(|c| !c.members.is_empty())
        {
            Some(
                cg.members
                    .values()
                    .flat_map(|m| m.meta.subscribed_topic_names.iter().cloned())
                    .collect(),
            )
        } else {
            let Some(group) = self.groups.get(group_id) else {
                return (fx, code::GROUP_ID_NOT_FOUND, Vec::new());
            };
            if group.members.is_empty() {
                Some(Default::default())
            } else {
                group.subscribed_topics()
            }
        };
        let mut errors = Vec::with_capacity(partitions.len());
        for (topic, partition) in partitions {
            let blocked = match &subscribed {
                Some(s) => s.contains(topic),
                None => true,
            };
            if blocked {
                errors.push(code::GROUP_SUBSCRIBED_TO_TOPIC);
                continue;
            }
            if let Some(o) = self.offsets.get_mut(group_id) {
                if o.remove(&(topic.clone(), *partition)).is_some() {
                    fx.records.push(CoordinatorRecord::Offset {
                        group: group_id.to_string(),
                        topic: topic.clone(),
                        partition: *partition,
                        value: None,
                    });
                }
            }
            errors.push(code::NONE);
        }
        (fx, code::NONE, errors)
    }

    // ----- Admin -----------------------------------------------------------

    /// DeleteGroups for one group.
    pub fn delete_group(&mut self, group_id: &str) -> (Effects, i16) {
        let mut fx = Effects::default();
        if let Some(cg) = self.consumer_groups.get(group_id) {
            if !cg.members.is_empty() {
                return (fx, code::NON_EMPTY_GROUP);
            }
            self.consumer_groups.remove(group_id);
            fx.records.push(CoordinatorRecord::Consumer(
                crate::consumer_records::ConsumerRecord::TargetEpoch {
                    group: group_id.into(),
                    epoch: None,
                },
            ));
            fx.records.push(CoordinatorRecord::Consumer(
                crate::consumer_records::ConsumerRecord::GroupEpoch {
                    group: group_id.into(),
                    epoch: None,
                },
            ));
            if !self.groups.contains_key(group_id) {
                if let Some(offs) = self.offsets.remove(group_id) {
                    for (topic, partition) in offs.into_keys() {
                        fx.records.push(CoordinatorRecord::Offset {
                            group: group_id.to_string(),
                            topic,
                            partition,
                            value: None,
                        });
                    }
                }
                return (fx, code::NONE);
            }
        }
        let Some(group) = self.groups.get(group_id) else {
            return (fx, code::GROUP_ID_NOT_FOUND);
        };
        if !group.members.is_empty() || !matches!(group.state, GroupState::Empty | GroupState::Dead)
        {
            return (fx, code::NON_EMPTY_GROUP);
        }
        if let Some(offs) = self.offsets.remove(group_id) {
            for (topic, partition) in offs.into_keys() {
                fx.records.push(CoordinatorRecord::Offset {
                    group: group_id.to_string(),
                    topic,
                    partition,
                    value: None,
                });
            }
        }
        self.groups.remove(group_id);
        fx.records.push(CoordinatorRecord::Group {
            group: group_id.to_string(),
            value: None,
        });
        (fx, code::NONE)
    }

    /// ListGroups with optional state and type filters (empty = all).
    pub fn list_groups(&self, states: &[String], types: &[String]) -> Vec<GroupListing> {
        let mut out: Vec<GroupListing> = self
            .groups
            .values()
            .filter(|g| {
                states.is_empty()
                    || states
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(g.state.name()))
            })
            .filter(|_| types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case("classic")))
            .filter(|g| !self.consumer_groups.contains_key(&g.id))
            .map(|g| GroupListing {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state.name(),
                group_type: "classic",
            })
            .chain(
                self.consumer_groups
                    .values()
                    .filter(|g| {
                        states.is_empty()
                            || states.iter().any(|s| s.eq_ignore_ascii_case(g.state()))
                    })
                    .filter(|_| {
                        types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case("consumer"))
                    })
                    .map(|g| GroupListing {
                        group_id: g.id.clone(),
                        protocol_type: "consumer".into(),
                        state: g.state(),
                        group_type: "consumer",
                    }),
            )
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// DescribeGroups for one group (an unknown group is reported Dead).
    pub fn describe_group(&self, group_id: &str) -> GroupDescription {
        if let Some(cg) = self.consumer_groups.get(group_id) {
            return GroupDescription {
                error: code::NONE,
                group_id: group_id.to_string(),
                state: cg.state(),
                protocol_type: "consumer".into(),
                protocol: String::new(),
                members: cg
                    .members
                    .values()
                    .map(|m| DescribedMember {
                        member_id: m.id.clone(),
                        group_instance_id: m.meta.instance_id.clone(),
                        client_id: m.meta.client_id.clone(),
                        client_host: m.meta.client_host.clone(),
                        metadata: Bytes::new(),
                        assignment: Bytes::new(),
                    })
                    .collect(),
            };
        }
        let Some(g) = self.groups.get(group_id) else {
            return GroupDescription {
                error: code::GROUP_ID_NOT_FOUND,
                group_id: group_id.to_string(),
                state: GroupState::Dead.name(),
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            };
        };
        let protocol = g.protocol.clone().unwrap_or_default();
        let show_assignment = g.state == GroupState::Stable;
        GroupDescription {
            error: code::NONE,
            group_id: g.id.clone(),
            state: g.state.name(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: g
                .members
                .values()
                .map(|m| DescribedMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata_for(&protocol),
                    assignment: if show_assignment {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }
    }

    /// Names of all known groups.
    pub fn group_ids(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }

    // ----- Loading ---------------------------------------------------------

    /// Applies one record read back from `__consumer_offsets` (in log order).
    /// Restored groups with members come back Stable with fresh session
    /// deadlines, so consumers that keep heartbeating keep their assignment.
    pub fn replay(&mut self, now: i64, record: CoordinatorRecord) {
        match record {
            CoordinatorRecord::Offset {
                group,
                topic,
                partition,
                value,
            } => match value {
                Some(v) => {
                    self.offsets
                        .entry(group.clone())
                        .or_default()
                        .insert((topic, partition), v);
                    self.groups
                        .entry(group.clone())
                        .or_insert_with(|| Group::new(&group, now));
                }
                None => {
                    if let Some(o) = self.offsets.get_mut(&group) {
                        o.remove(&(topic, partition));
                    }
                }
            },
            CoordinatorRecord::Consumer(c) => {
                let cfg = self.consumer_config;
                let id = c.group().to_string();
                let g = self
                    .consumer_groups
                    .entry(id.clone())
                    .or_insert_with(|| ConsumerGroup::new(&id));
                g.topics_signature = None;
                g.replay(now, c, &cfg);
                if g.epoch == 0 && g.members.is_empty() {
                    self.consumer_groups.remove(&id);
                }
            }
            CoordinatorRecord::Group { group, value } => match value {
                Some(v) => {
                    let g = group_from_value(&group, v, now);
                    self.groups.insert(group, g);
                }
                None => {
                    self.groups.remove(&group);
                }
            },
        }
    }
}

fn group_from_value(id: &str, v: GroupValue, now: i64) -> Group {
    let mut g = Group::new(id, now);
    g.generation = v.generation;
    g.protocol_type = if v.protocol_type.is_empty() {
        None
    } else {
        Some(v.protocol_type)
    };
    g.protocol = v.protocol.clone();
    g.leader = v.leader;
    for (i, m) in v.members.into_iter().enumerate() {
        if let Some(inst) = &m.group_instance_id {
            g.static_members.insert(inst.clone(), m.member_id.clone());
        }
        let protocols = match &v.protocol {
            Some(p) => vec![Protocol {
                name: p.clone(),
                metadata: m.subscription,
            }],
            None => Vec::new(),
        };
        g.members.insert(
            m.member_id.clone(),
            Member {
                id: m.member_id,
                instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: m.session_timeout,
                rebalance_timeout_ms: m.rebalance_timeout,
                protocols,
                assignment: m.assignment,
                awaiting_join: None,
                awaiting_sync: None,
                synced: true,
                heartbeat_deadline: now + m.session_timeout as i64,
                joined_seq: i as u64,
            },
        );
    }
    g.join_seq = g.members.len() as u64;
    g.state = if g.members.is_empty() {
        GroupState::Empty
    } else {
        GroupState::Stable
    };
    g
}

fn remove_member(group: &mut Group, id: &str) -> Option<Member> {
    let m = group.members.remove(id)?;
    if let Some(inst) = &m.instance_id {
        if group.static_members.get(inst).map(String::as_str) == Some(id) {
            group.static_members.remove(inst);
        }
    }
    Some(m)
}

fn join_response(group: &Group, member_id: &str) -> JoinResponse {
    let protocol = group.protocol.clone().unwrap_or_default();
    let leader = group.leader.clone().unwrap_or_default();
    let members = if leader == member_id {
        let mut ms: Vec<&Member> = group.members.values().collect();
        ms.sort_by_key(|m| m.joined_seq);
        ms.into_iter()
            .map(|m| JoinMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata_for(&protocol),
            })
            .collect()
    } else {
        Vec::new()
    };
    JoinResponse {
        error: code::NONE,
        generation_id: group.generation,
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol.clone(),
        leader,
        skip_assignment: false,
        member_id: member_id.to_string(),
        members,
    }
}

/// The `__consumer_offsets` partition of a group: Kafka's
/// `abs(groupId.hashCode) % partitions` with Java's `String.hashCode`.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group_id.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(unit as i32);
    }
    (h & 0x7fff_ffff) % partitions.max(1)
}
