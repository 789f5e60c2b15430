//! DescribeCluster (key 60): this broker as the whole cluster and its controller.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{s, Ctx, Outcome};

pub fn handle(ctx: &Ctx, req: DescribeClusterRequest) -> Outcome<DescribeClusterResponse> {
    let b = &ctx.broker;
    let adv = &b.config().advertised;
    let mut resp = DescribeClusterResponse::default()
        .with_cluster_id(s(b.cluster_id.clone()))
        .with_controller_id(BrokerId(b.config().node_id))
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(b.config().node_id))
            .with_host(s(adv.host.clone()))
            .with_port(adv.port as i32)]);
    if ctx.version >= 1 {
        resp = resp.with_endpoint_type(req.endpoint_type);
    }
    Outcome::Now(resp)
}
