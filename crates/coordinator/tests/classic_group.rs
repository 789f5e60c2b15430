//! The classic group protocol on a manual clock.

use bytes::Bytes;
use gregor_coordinator::*;

const SESSION: i32 = 10_000;
const REBALANCE: i32 = 30_000;

struct H {
    c: Coordinator,
    now: i64,
    token: Token,
    replies: Vec<(Token, Reply)>,
    records: Vec<CoordinatorRecord>,
}

impl H {
    fn new() -> H {
        H {
            c: Coordinator::new(GroupConfig::default()),
            now: 1_000_000,
            token: 0,
            replies: Vec::new(),
            records: Vec::new(),
        }
    }
    fn absorb(&mut self, fx: Effects) {
        self.records.extend(fx.records);
        self.replies.extend(fx.replies);
    }
    fn take_reply(&mut self, t: Token) -> Option<Reply> {
        let i = self.replies.iter().position(|(x, _)| *x == t)?;
        Some(self.replies.remove(i).1)
    }
    fn join_req(member: &str, instance: Option<&str>, proto: &str) -> JoinRequest {
        JoinRequest {
            group_id: "g".into(),
            session_timeout_ms: SESSION,
            rebalance_timeout_ms: REBALANCE,
            member_id: member.into(),
            group_instance_id: instance.map(String::from),
            protocol_type: "consumer".into(),
            protocols: vec![Protocol {
                name: proto.into(),
                metadata: Bytes::from(format!("sub-{proto}")),
            }],
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            require_known_member_id: true,
        }
    }
    /// Sends JoinGroup; returns its token.
    fn join(&mut self, req: JoinRequest) -> Token {
        self.token += 1;
        let t = self.token;
        let fx = self.c.join(self.now, t, req);
        self.absorb(fx);
        t
    }
    fn join_reply(&mut self, t: Token) -> Option<JoinResponse> {
        match self.take_reply(t)? {
            Reply::Join(j) => Some(j),
            other => panic!("expected a join reply, got {other:?}"),
        }
    }
    /// A dynamic member's full first join (KIP-394 round trip); returns the join token.
    fn new_member(&mut self, proto: &str) -> (String, Token) {
        let t = self.join(Self::join_req("", None, proto));
        let r = self.join_reply(t).expect("immediate MEMBER_ID_REQUIRED");
        assert_eq!(r.error, code::MEMBER_ID_REQUIRED);
        let id = r.member_id;
        let t = self.join(Self::join_req(&id, None, proto));
        (id, t)
    }
    fn sync(&mut self, member: &str, generation: i32, assignments: Vec<(String, Bytes)>) -> Token {
        self.sync_as(member, None, generation, assignments)
    }
    fn sync_as(
        &mut self,
        member: &str,
        instance: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> Token {
        self.token += 1;
        let t = self.token;
        let fx = self.c.sync(
            self.now,
            t,
            SyncRequest {
                group_id: "g".into(),
                generation_id: generation,
                member_id: member.into(),
                group_instance_id: instance.map(String::from),
                protocol_type: None,
                protocol_name: None,
                assignments,
            },
        );
        self.absorb(fx);
        t
    }
    fn sync_reply(&mut self, t: Token) -> Option<SyncResponse> {
        match self.take_reply(t)? {
            Reply::Sync(s) => Some(s),
            other => panic!("expected a sync reply, got {other:?}"),
        }
    }
    fn advance(&mut self, ms: i64) {
        self.now += ms;
        let fx = self.c.tick(self.now);
        self.absorb(fx);
    }
    fn state(&self) -> &'static str {
        self.c.describe_group("g").state
    }
}

#[test]
fn join_storm_elects_one_leader_and_syncs_everyone() {
    let mut h = H::new();
    let members: Vec<(String, Token)> = (0..5).map(|_| h.new_member("range")).collect();
    assert!(
        members
            .iter()
            .all(|(_, t)| h.replies.iter().all(|(x, _)| x != t)),
        "joins wait for the initial delay"
    );
    assert_eq!(h.state(), "PreparingRebalance");
    h.advance(3_000);
    let joins: Vec<JoinResponse> = members
        .iter()
        .map(|(_, t)| h.join_reply(*t).expect("join completes after the delay"))
        .collect();
    let leader = &joins[0].leader;
    assert!(joins
        .iter()
        .all(|j| j.error == 0 && j.generation_id == 1 && &j.leader == leader));
    assert_eq!(
        joins.iter().filter(|j| !j.members.is_empty()).count(),
        1,
        "only the leader gets the member list"
    );
    assert_eq!(
        joins
            .iter()
            .find(|j| &j.member_id == leader)
            .expect("leader")
            .members
            .len(),
        5
    );
    assert_eq!(h.state(), "CompletingRebalance");
    // Followers sync first and wait for the leader.
    let follower_syncs: Vec<(String, Token)> = members
        .iter()
        .filter(|(id, _)| id != leader)
        .map(|(id, _)| (id.clone(), h.sync(id, 1, vec![])))
        .collect();
    assert!(follower_syncs
        .iter()
        .all(|(_, t)| h.replies.iter().all(|(x, _)| x != t)));
    let assignments: Vec<(String, Bytes)> = members
        .iter()
        .map(|(id, _)| (id.clone(), Bytes::from(format!("a-{id}"))))
        .collect();
    let lt = h.sync(leader, 1, assignments);
    assert_eq!(
        h.sync_reply(lt).expect("leader").assignment,
        Bytes::from(format!("a-{leader}"))
    );
    for (id, t) in follower_syncs {
        assert_eq!(
            h.sync_reply(t).expect("follower").assignment,
            Bytes::from(format!("a-{id}"))
        );
    }
    assert_eq!(h.state(), "Stable");
    assert!(
        matches!(h.records.last(), Some(CoordinatorRecord::Group { value: Some(v), .. }) if v.members.len() == 5 && v.generation == 1)
    );
}

fn stable_group(h: &mut H, n: usize) -> Vec<String> {
    let members: Vec<(String, Token)> = (0..n).map(|_| h.new_member("range")).collect();
    h.advance(3_000);
    let joins: Vec<JoinResponse> = members
        .iter()
        .map(|(_, t)| h.join_reply(*t).expect("join"))
        .collect();
    let leader = joins[0].leader.clone();
    let gen = joins[0].generation_id;
    let ids: Vec<String> = members.into_iter().map(|(id, _)| id).collect();
    let t = h.sync(
        &leader,
        gen,
        ids.iter()
            .map(|id| (id.clone(), Bytes::from(id.clone())))
            .collect(),
    );
    h.sync_reply(t).expect("sync");
    for id in ids.iter().filter(|id| **id != leader) {
        let t = h.sync(id, gen, vec![]);
        h.sync_reply(t).expect("sync");
    }
    assert_eq!(h.state(), "Stable");
    ids
}

#[test]
fn a_member_that_stops_heartbeating_is_removed_and_the_rest_rebalance() {
    let mut h = H::new();
    let ids = stable_group(&mut h, 3);
    let (alive, dead) = (&ids[..2], &ids[2]);
    for _ in 0..2 {
        h.advance(4_000);
        for id in alive {
            assert_eq!(h.c.heartbeat(h.now, "g", 1, id, None), code::NONE);
        }
    }
    assert_eq!(h.state(), "Stable");
    h.advance(4_000);
    // 12 s passed: the silent member's 10 s session expired.
    assert_eq!(h.state(), "PreparingRebalance");
    assert_eq!(
        h.c.heartbeat(h.now, "g", 1, dead, None),
        code::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        h.c.heartbeat(h.now, "g", 1, &alive[0], None),
        code::REBALANCE_IN_PROGRESS
    );
    let t0 = h.join(H::join_req(&alive[0], None, "range"));
    assert!(h.join_reply(t0).is_none(), "waits for the other member");
    let t1 = h.join(H::join_req(&alive[1], None, "range"));
    let (j0, j1) = (
        h.join_reply(t0).expect("complete"),
        h.join_reply(t1).expect("complete"),
    );
    assert_eq!((j0.generation_id, j1.generation_id), (2, 2));
    assert_eq!(j0.members.len() + j1.members.len(), 2);
}

#[test]
fn a_member_crashing_mid_rebalance_does_not_block_the_group() {
    let mut h = H::new();
    let ids = stable_group(&mut h, 3);
    // A new member joins; the old ones must rejoin; one of them never does.
    let (newbie, tn) = h.new_member("range");
    assert_eq!(h.state(), "PreparingRebalance");
    let t0 = h.join(H::join_req(&ids[0], None, "range"));
    let t1 = h.join(H::join_req(&ids[1], None, "range"));
    for _ in 0..8 {
        h.advance(4_000);
    }
    // The rebalance timeout (30 s) ended the join phase without ids[2].
    let j = [
        h.join_reply(t0).expect("j0"),
        h.join_reply(t1).expect("j1"),
        h.join_reply(tn).expect("jn"),
    ];
    assert!(j.iter().all(|j| j.error == 0 && j.generation_id == 2));
    let leader = j.iter().find(|j| !j.members.is_empty()).expect("leader");
    let mut listed: Vec<_> = leader.members.iter().map(|m| m.member_id.clone()).collect();
    listed.sort();
    let mut want = vec![ids[0].clone(), ids[1].clone(), newbie];
    want.sort();
    assert_eq!(listed, want);
}

#[test]
fn a_leader_that_never_syncs_is_removed_after_the_rebalance_timeout() {
    let mut h = H::new();
    let (a, ta) = h.new_member("range");
    let (b, tb) = h.new_member("range");
    h.advance(3_000);
    let (ja, jb) = (h.join_reply(ta).expect("a"), h.join_reply(tb).expect("b"));
    let (leader, follower) = if ja.leader == a {
        (a, b)
    } else {
        (b.clone(), a)
    };
    let _ = jb;
    let tf = h.sync(&follower, 1, vec![]);
    for _ in 0..8 {
        h.advance(4_000);
        let _ = h.c.heartbeat(h.now, "g", 1, &follower, None);
    }
    assert_eq!(
        h.sync_reply(tf).expect("answered").error,
        code::REBALANCE_IN_PROGRESS
    );
    assert!(
        h.c.describe_group("g")
            .members
            .iter()
            .all(|m| m.member_id != leader),
        "the silent leader was removed"
    );
}

#[test]
fn static_member_restart_keeps_its_assignment_without_a_rebalance() {
    let mut h = H::new();
    let (other, to) = h.new_member("range");
    h.advance(3_000);
    assert_eq!(h.join_reply(to).expect("join").leader, other);
    let ts = h.sync(&other, 1, vec![(other.clone(), Bytes::from_static(b"all"))]);
    h.sync_reply(ts).expect("sync");
    // A static member joins the stable group: one rebalance.
    let ti = h.join(H::join_req("", Some("instance-1"), "range"));
    let to = h.join(H::join_req(&other, None, "range"));
    let (ji, jo) = (h.join_reply(ti).expect("ji"), h.join_reply(to).expect("jo"));
    assert_eq!((ji.generation_id, jo.leader.clone()), (2, other.clone()));
    let static_id = ji.member_id.clone();
    let asg = vec![
        (static_id.clone(), Bytes::from_static(b"p0,p1")),
        (other.clone(), Bytes::from_static(b"p2")),
    ];
    let ts = h.sync(&other, 2, asg);
    h.sync_reply(ts).expect("leader sync");
    let ts = h.sync_as(&static_id, Some("instance-1"), 2, vec![]);
    assert_eq!(
        h.sync_reply(ts).expect("sync").assignment,
        Bytes::from_static(b"p0,p1")
    );

    // The static member's process restarts: same instance id, no member id.
    let t = h.join(H::join_req("", Some("instance-1"), "range"));
    let j = h.join_reply(t).expect("answered at once");
    assert_eq!((j.error, j.generation_id), (0, 2), "no new generation");
    assert_ne!(j.member_id, static_id);
    assert_eq!(h.state(), "Stable");
    assert_eq!(
        h.c.heartbeat(h.now, "g", 2, &other, None),
        code::NONE,
        "the other member is not disturbed"
    );
    let ts = h.sync_as(&j.member_id, Some("instance-1"), 2, vec![]);
    assert_eq!(
        h.sync_reply(ts).expect("sync").assignment,
        Bytes::from_static(b"p0,p1"),
        "assignment handed back"
    );
    assert_eq!(
        h.c.heartbeat(h.now, "g", 2, &static_id, Some("instance-1")),
        code::UNKNOWN_MEMBER_ID,
        "old identity is gone"
    );

    // A duplicate process with the same instance id takes over; the previous one is fenced.
    let t = h.join(H::join_req("", Some("instance-1"), "range"));
    let j2 = h.join_reply(t).expect("takeover");
    assert_eq!(
        h.c.heartbeat(h.now, "g", 2, &j.member_id, Some("instance-1")),
        code::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        h.c.heartbeat(h.now, "g", 2, &j2.member_id, Some("instance-1")),
        code::NONE
    );
    let ts = h.sync_as(&j.member_id, Some("instance-1"), 2, vec![]);
    assert_eq!(
        h.sync_reply(ts).expect("fenced").error,
        code::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn cooperative_second_phase_rejoin_from_stable_triggers_a_new_generation() {
    let mut h = H::new();
    let ids = stable_group(&mut h, 2);
    // A member rejoins from Stable with new metadata (cooperative protocols
    // rejoin right after revoking partitions).
    let mut req = H::join_req(&ids[0], None, "range");
    req.protocols[0].metadata = Bytes::from_static(b"owned-less");
    let t0 = h.join(req);
    assert_eq!(h.state(), "PreparingRebalance");
    assert_eq!(
        h.c.heartbeat(h.now, "g", 1, &ids[1], None),
        code::REBALANCE_IN_PROGRESS
    );
    let t1 = h.join(H::join_req(&ids[1], None, "range"));
    assert_eq!(h.join_reply(t0).expect("j").generation_id, 2);
    assert_eq!(h.join_reply(t1).expect("j").generation_id, 2);
}

#[test]
fn leave_empties_the_group_and_errors_are_precise() {
    let mut h = H::new();
    let ids = stable_group(&mut h, 2);
    let (_, errs) = h.c.leave(
        h.now,
        "g",
        &[(ids[0].clone(), None), ("nobody".into(), None)],
    );
    assert_eq!(errs, vec![code::NONE, code::UNKNOWN_MEMBER_ID]);
    assert_eq!(h.state(), "PreparingRebalance");
    let (fx, errs) = h.c.leave(h.now, "g", &[(ids[1].clone(), None)]);
    h.absorb(fx);
    assert_eq!(errs, vec![code::NONE]);
    assert_eq!(h.state(), "Empty");
    assert_eq!(
        h.c.heartbeat(h.now, "g", 1, &ids[1], None),
        code::UNKNOWN_MEMBER_ID
    );
    let t = h.sync(&ids[1], 1, vec![]);
    assert_eq!(h.sync_reply(t).expect("s").error, code::UNKNOWN_MEMBER_ID);
    // Invalid session timeout and protocol mismatch.
    let mut bad = H::join_req("", None, "range");
    bad.session_timeout_ms = 100;
    let t = h.join(bad);
    assert_eq!(
        h.join_reply(t).expect("j").error,
        code::INVALID_SESSION_TIMEOUT
    );
    let _ = stable_group_again(&mut h);
    let mut other = H::join_req("", None, "roundrobin");
    other.require_known_member_id = false;
    let t = h.join(other);
    assert_eq!(
        h.join_reply(t).expect("j").error,
        code::INCONSISTENT_GROUP_PROTOCOL
    );
}

fn stable_group_again(h: &mut H) -> String {
    let (id, t) = h.new_member("range");
    h.advance(3_000);
    let j = h.join_reply(t).expect("join");
    let ts = h.sync(&id, j.generation_id, vec![(id.clone(), Bytes::new())]);
    h.sync_reply(ts).expect("sync");
    id
}

#[test]
fn offsets_commit_fetch_validate_and_replay() {
    let mut h = H::new();
    let commit = |gen: i32, member: &str, meta: &str| CommitRequest {
        group_id: "g".into(),
        generation_id: gen,
        member_id: member.into(),
        group_instance_id: None,
        offsets: vec![
            OffsetToCommit {
                topic: "t".into(),
                partition: 0,
                offset: 42,
                leader_epoch: 0,
                metadata: Some(meta.into()),
            },
            OffsetToCommit {
                topic: "t".into(),
                partition: 1,
                offset: 7,
                leader_epoch: -1,
                metadata: None,
            },
        ],
    };
    // Standalone consumer: generation -1, no member.
    let (fx, errs) = h.c.commit(h.now, commit(-1, "", "m"));
    assert_eq!(errs, vec![0, 0]);
    h.absorb(fx);
    let got = h.c.fetch_offsets("g", Some(&[("t".into(), vec![0, 1, 2])]));
    assert_eq!(
        got.iter().map(|o| o.offset).collect::<Vec<_>>(),
        vec![42, 7, -1]
    );
    assert_eq!(got[0].metadata, "m");
    let (_, errs) = h.c.commit(h.now, commit(-1, "", &"x".repeat(5000)));
    assert_eq!(errs, vec![code::OFFSET_METADATA_TOO_LARGE, 0]);

    let ids = stable_group(&mut h, 1);
    let (_, errs) = h.c.commit(h.now, commit(5, &ids[0], ""));
    assert_eq!(errs, vec![code::ILLEGAL_GENERATION; 2]);
    let (_, errs) = h.c.commit(h.now, commit(1, "stranger", ""));
    assert_eq!(errs, vec![code::UNKNOWN_MEMBER_ID; 2]);
    let (_, errs) = h.c.commit(h.now, commit(-1, "", ""));
    assert_eq!(
        errs,
        vec![code::UNKNOWN_MEMBER_ID; 2],
        "standalone commits to an active group are refused"
    );
    let (fx, errs) = h.c.commit(h.now, commit(1, &ids[0], "gen1"));
    assert_eq!(errs, vec![0, 0]);
    h.absorb(fx);
    assert_eq!(h.c.delete_group("g").1, code::NON_EMPTY_GROUP);

    // Replaying the records rebuilds offsets and the group.
    let mut fresh = Coordinator::new(GroupConfig::default());
    for r in h.records.clone() {
        let (k, v) = r.encode();
        fresh.replay(
            h.now,
            CoordinatorRecord::decode(&k, v.as_deref())
                .expect("decode")
                .expect("known"),
        );
    }
    assert_eq!(fresh.fetch_offsets("g", None), h.c.fetch_offsets("g", None));
    assert_eq!(fresh.describe_group("g").state, "Stable");
    assert_eq!(
        fresh.heartbeat(h.now, "g", 1, &ids[0], None),
        code::NONE,
        "members keep their generation across a reload"
    );
}

#[test]
fn empty_groups_are_deleted_and_their_offsets_expire() {
    let mut h = H::new();
    let ids = stable_group(&mut h, 1);
    let (fx, _) = h.c.commit(
        h.now,
        CommitRequest {
            group_id: "g".into(),
            generation_id: 1,
            member_id: ids[0].clone(),
            group_instance_id: None,
            offsets: vec![OffsetToCommit {
                topic: "t".into(),
                partition: 0,
                offset: 1,
                leader_epoch: -1,
                metadata: None,
            }],
        },
    );
    h.absorb(fx);
    h.advance(SESSION as i64 + 1);
    assert_eq!(h.state(), "Empty", "session expired");
    assert_eq!(h.c.list_groups(&["Empty".into()], &[]).len(), 1);
    assert!(h.c.list_groups(&["Stable".into()], &[]).is_empty());
    h.advance(GroupConfig::default().offsets_retention_ms);
    assert!(
        h.c.fetch_offsets("g", None).is_empty(),
        "offsets of the empty group expired"
    );
    assert_eq!(h.c.describe_group("g").error, code::GROUP_ID_NOT_FOUND);
    assert!(h
        .records
        .iter()
        .any(|r| matches!(r, CoordinatorRecord::Offset { value: None, .. })));
}

#[test]
fn group_partition_follows_java_string_hash() {
    assert_eq!(partition_for("a", 50), 97 % 50);
    // "test-group".hashCode() in Java is 1112003216 (precomputed).
    let mut h: i32 = 0;
    for c in "test-group".chars() {
        h = h.wrapping_mul(31).wrapping_add(c as i32);
    }
    assert_eq!(partition_for("test-group", 50), (h & 0x7fffffff) % 50);
    assert!((0..50).contains(&partition_for("ümlaut-gröup", 50)));
}

#[test]
fn a_returning_static_leader_gets_the_old_leader_id_and_no_rebalance() {
    let mut h = H::new();
    let t = h.join(H::join_req("", Some("boss"), "range"));
    h.advance(3_000);
    let j = h.join_reply(t).expect("join");
    assert_eq!(j.leader, j.member_id, "the only member leads");
    let ts = h.sync_as(
        &j.member_id,
        Some("boss"),
        1,
        vec![(j.member_id.clone(), Bytes::from_static(b"all"))],
    );
    h.sync_reply(ts).expect("sync");
    // Restart with different subscription bytes but the same protocol name.
    let mut again = H::join_req("", Some("boss"), "range");
    again.protocols[0].metadata = Bytes::from_static(b"other-bytes");
    let t = h.join(again);
    let j2 = h.join_reply(t).expect("answered at once");
    assert_eq!((j2.error, j2.generation_id), (0, 1));
    assert_eq!(
        j2.leader, j.member_id,
        "the previous leader id, so the new process does not reassign"
    );
    assert!(j2.members.is_empty());
    assert_eq!(h.state(), "Stable");
    let ts = h.sync_as(&j2.member_id, Some("boss"), 1, vec![]);
    assert_eq!(
        h.sync_reply(ts).expect("sync").assignment,
        Bytes::from_static(b"all")
    );
}
