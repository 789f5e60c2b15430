//! The cluster-default BROKER resource (empty name), which kafka-configs.sh
//! addresses with `--entity-default` but no client installable here can
//! name: changed through raw IncrementalAlterConfigs, listed by DescribeConfigs,
//! seen by librdkafka as DYNAMIC_DEFAULT_BROKER_CONFIG, and in effect for an
//! existing topic's retention.

use std::time::Duration;

use gregor_blackbox::raw::{call, closed_by_broker, connect};
use gregor_blackbox::{wait_for, Gregor};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, ConfigSource, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

const T: Duration = Duration::from_secs(30);
const BROKER: i8 = 4;
const INVALID_REQUEST: i16 = 42;

fn alter(g: &Gregor, name: &str, sets: &[(&str, &str)]) -> (i16, Option<String>) {
    let configs = sets
        .iter()
        .map(|(k, v)| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k.to_string()))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_string(v.to_string())))
        })
        .collect();
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(BROKER)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(configs),
    ]);
    let resp: IncrementalAlterConfigsResponse =
        call(&mut connect(g), ApiKey::IncrementalAlterConfigs, 1, &req);
    let r = &resp.responses[0];
    (
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
    )
}

fn describe(g: &Gregor, name: &str) -> DescribeConfigsResponse {
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(BROKER)
            .with_resource_name(StrBytes::from_string(name.to_string()))]);
    call(&mut connect(g), ApiKey::DescribeConfigs, 4, &req)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_default_broker_configs_apply_to_existing_topics() {
    let g = Gregor::start_with(&[("GREGOR_LOG_RETENTION_CHECK_INTERVAL_MS", "200")]);
    let p: FutureProducer = g.client_config().create().expect("producer");
    let send = |i: usize| {
        let payload = format!("{i:0>200}");
        let p = p.clone();
        async move {
            p.send(FutureRecord::<(), _>::to("shrinks").payload(&payload), T)
                .await
                .expect("send");
        }
    };
    send(0).await;

    assert_eq!(
        alter(
            &g,
            "",
            &[
                ("log.segment.bytes", "4096"),
                ("log.retention.bytes", "8192")
            ]
        ),
        (0, None)
    );
    let d = describe(&g, "");
    let listed: Vec<_> = d.results[0]
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()),
                c.config_source,
                c.read_only,
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("log.retention.bytes".into(), Some("8192".into()), 3, false),
            ("log.segment.bytes".into(), Some("4096".into()), 3, false),
        ],
        "the default resource lists exactly the dynamic defaults"
    );

    let a: AdminClient<DefaultClientContext> = g.client_config().create().expect("admin");
    let r = a
        .describe_configs(&[ResourceSpecifier::Broker(0)], &AdminOptions::new())
        .await
        .expect("describe");
    let broker = r[0].as_ref().expect("broker resource");
    let e = broker.get("log.retention.bytes").expect("listed");
    assert_eq!(e.value.as_deref(), Some("8192"));
    assert!(matches!(e.source, ConfigSource::DynamicDefaultBroker));
    assert!(!e.is_read_only);

    for i in 1..200 {
        send(i).await;
    }
    let c: BaseConsumer = g.client_config().create().expect("consumer");
    let trimmed = wait_for(Duration::from_secs(20), || {
        c.fetch_watermarks("shrinks", 0, T)
            .map(|(lo, _)| lo > 0)
            .unwrap_or(false)
    });
    assert!(
        trimmed,
        "the topic created before the change never followed the new retention"
    );

    let (code, msg) = alter(&g, "", &[("log.dirs", "/elsewhere")]);
    assert_eq!(code, INVALID_REQUEST);
    assert!(
        msg.as_deref()
            .is_some_and(|m| m.contains("Cannot update these configs dynamically: log.dirs")),
        "{msg:?}"
    );
    let (code, msg) = alter(&g, "", &[("log.cleaner.min.cleanable.ratio", "2")]);
    assert_eq!(code, INVALID_REQUEST, "{msg:?}");
    let (code, msg) = alter(
        &g,
        "",
        &[("log.retention.ms", "1000"), ("log.retention.ms", "2000")],
    );
    assert_eq!(code, INVALID_REQUEST);
    assert_eq!(msg.as_deref(), Some("Error due to duplicate config keys"));
    assert_eq!(
        alter(&g, "7", &[("log.retention.ms", "1")]).0,
        INVALID_REQUEST
    );
    assert_eq!(describe(&g, "7").results[0].error_code, INVALID_REQUEST);
}

#[test]
fn max_connections_changes_at_runtime() {
    let g = Gregor::start();
    assert_eq!(alter(&g, "0", &[("max.connections", "3")]), (0, None));
    // Earlier connections are closed; give the broker a moment to count them out.
    std::thread::sleep(Duration::from_millis(300));
    let held: Vec<_> = (0..3).map(|_| connect(&g)).collect();
    let mut fourth = connect(&g);
    assert!(
        closed_by_broker(&mut fourth),
        "a fourth connection was accepted with max.connections=3"
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        describe(&g, "0").results[0].error_code,
        0,
        "served again once below the limit"
    );
}
