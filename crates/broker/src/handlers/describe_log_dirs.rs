//! DescribeLogDirs (key 35): the one data directory, its partitions' sizes,
//! and (v4) the volume's total and usable bytes.

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::{s, Ctx, Outcome};

pub fn handle(ctx: &Ctx, req: DescribeLogDirsRequest) -> Outcome<DescribeLogDirsResponse> {
    let b = &ctx.broker;
    let wanted: Option<Vec<(String, Vec<i32>)>> = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect()
    });
    let topics = b
        .topics()
        .into_iter()
        .filter_map(|t| {
            let parts: Vec<i32> = match &wanted {
                None => (0..t.partition_count()).collect(),
                Some(w) => w.iter().find(|(n, _)| *n == t.name)?.1.clone(),
            };
            let partitions = parts
                .into_iter()
                .filter_map(|p| {
                    let part = t.partition(p)?;
                    let size = part.log.lock().size_bytes() as i64;
                    Some(
                        DescribeLogDirsPartition::default()
                            .with_partition_index(p)
                            .with_partition_size(size)
                            .with_offset_lag(0),
                    )
                })
                .collect();
            Some(
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(s(t.name.clone())))
                    .with_partitions(partitions),
            )
        })
        .collect();
    let data_dir = b.config().data_dir.clone();
    let dir = data_dir.canonicalize().unwrap_or(data_dir);
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(s(dir.display().to_string()))
        .with_topics(topics);
    if ctx.version >= 4 {
        let total = fs4::total_space(&dir).map(|x| x as i64).unwrap_or(-1);
        let usable = fs4::available_space(&dir).map(|x| x as i64).unwrap_or(-1);
        result = result.with_total_bytes(total).with_usable_bytes(usable);
    }
    Outcome::Now(DescribeLogDirsResponse::default().with_results(vec![result]))
}
