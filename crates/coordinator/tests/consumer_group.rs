//! KIP-848 consumer groups: server-side assignment and incremental
//! reconciliation, on a manual clock.

use std::collections::BTreeSet;

use gregor_coordinator::consumer::{code as kcode, HeartbeatRequest, TopicMeta, TopicsView};
use gregor_coordinator::consumer_records::Assignment;
use gregor_coordinator::*;
use uuid::Uuid;

fn topics(n: i32) -> TopicsView {
    let id = Uuid::from_u128(7);
    TopicsView::from([(
        "t".to_string(),
        TopicMeta {
            name: "t".into(),
            id,
            partitions: n,
        },
    )])
}

fn hb(member: &str, epoch: i32, owned: Option<&Assignment>) -> HeartbeatRequest {
    HeartbeatRequest {
        group_id: "g".into(),
        member_id: member.into(),
        member_epoch: epoch,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: if epoch == 0 {
            Some(vec!["t".into()])
        } else {
            None
        },
        subscribed_topic_regex: None,
        server_assignor: None,
        owned: owned.cloned(),
        client_id: "c".into(),
        client_host: "/h".into(),
    }
}

fn parts(a: &Assignment) -> BTreeSet<i32> {
    a.values().flatten().copied().collect()
}

#[test]
fn second_member_joins_and_partitions_move_only_after_revocation() {
    let mut c = Coordinator::new(GroupConfig::default());
    let t = topics(6);
    let (_, r) = c.consumer_heartbeat(0, hb("a", 0, None), &t);
    assert_eq!((r.error, r.member_epoch), (0, 1));
    let a_owned = r.assignment.expect("assignment");
    assert_eq!(parts(&a_owned), (0..6).collect());

    // b joins: epoch 2; b gets nothing yet because a still holds everything.
    let (_, r) = c.consumer_heartbeat(10, hb("b", 0, None), &t);
    assert_eq!(r.member_epoch, 2);
    assert!(parts(&r.assignment.clone().expect("assignment")).is_empty());
    assert_eq!(c.consumer_group("g").expect("g").state(), "Reconciling");

    // a's next heartbeat asks it to keep only its target (revoke the rest), same epoch.
    let (_, r) = c.consumer_heartbeat(20, hb("a", 1, Some(&a_owned)), &t);
    assert_eq!(r.member_epoch, 1, "epoch held until revocation completes");
    let a_kept = r.assignment.expect("revocation");
    assert_eq!(parts(&a_kept).len(), 3);
    // a acknowledges by reporting only what it kept: moves to epoch 2.
    let (_, r) = c.consumer_heartbeat(30, hb("a", 1, Some(&a_kept)), &t);
    assert_eq!(r.member_epoch, 2);
    // b now receives the released partitions.
    let (_, r) = c.consumer_heartbeat(40, hb("b", 2, Some(&Assignment::new())), &t);
    let b_parts = parts(&r.assignment.expect("released partitions"));
    assert_eq!(b_parts.len(), 3);
    assert!(b_parts.is_disjoint(&parts(&a_kept)));
    assert_eq!(c.consumer_group("g").expect("g").state(), "Stable");
}

#[test]
fn stale_epochs_are_fenced_and_sessions_expire() {
    let mut c = Coordinator::new(GroupConfig::default());
    let t = topics(2);
    let (_, r) = c.consumer_heartbeat(0, hb("a", 0, None), &t);
    assert_eq!(r.member_epoch, 1);
    let (_, r) = c.consumer_heartbeat(1, hb("a", 7, None), &t);
    assert_eq!(r.error, kcode::FENCED_MEMBER_EPOCH);
    let (_, r) = c.consumer_heartbeat(1, hb("zz", 3, None), &t);
    assert_eq!(r.error, kcode::UNKNOWN_MEMBER_ID);
    // No heartbeat for the 45 s session: removed.
    let fx = c.tick(50_000);
    assert!(!fx.records.is_empty());
    assert_eq!(c.consumer_group("g").expect("g").state(), "Empty");
    // Leaving with epoch -1.
    let (_, r) = c.consumer_heartbeat(60_000, hb("b", 0, None), &t);
    let (_, r2) = c.consumer_heartbeat(60_001, hb(&r.member_id, -1, None), &t);
    assert_eq!(r2.member_epoch, -1);
}

#[test]
fn new_partitions_are_assigned_and_state_replays() {
    let mut c = Coordinator::new(GroupConfig::default());
    let mut records = Vec::new();
    let (fx, r) = c.consumer_heartbeat(0, hb("a", 0, None), &topics(2));
    records.extend(fx.records);
    let owned = r.assignment.expect("a");
    let (fx, r) = c.consumer_heartbeat(5, hb("a", 1, Some(&owned)), &topics(4));
    records.extend(fx.records);
    assert_eq!(r.member_epoch, 2, "partition count change bumps the epoch");
    assert_eq!(parts(&r.assignment.expect("grown")), (0..4).collect());

    let mut fresh = Coordinator::new(GroupConfig::default());
    for rec in records {
        let (k, v) = rec.encode();
        fresh.replay(
            10,
            CoordinatorRecord::decode(&k, v.as_deref())
                .expect("decode")
                .expect("ours"),
        );
    }
    let g = fresh.consumer_group("g").expect("replayed");
    assert_eq!((g.epoch, g.assignment_epoch), (2, 2));
    assert_eq!(parts(&g.members["a"].current.assigned), (0..4).collect());
    // The member continues with its epoch after the reload.
    let (_, r) = fresh.consumer_heartbeat(20, hb("a", 2, None), &topics(4));
    assert_eq!((r.error, r.member_epoch), (0, 2));
    assert_eq!(fresh.list_groups(&[], &["consumer".into()]).len(), 1);
}
