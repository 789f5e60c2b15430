//! DeleteRecords (key 21): advance a partition's log start offset (`-1`
//! means the high watermark) and drop the segments below it.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::{code, storage_code, Ctx, Outcome};

pub fn handle(ctx: &Ctx, req: DeleteRecordsRequest) -> Outcome<DeleteRecordsResponse> {
    let b = &ctx.broker;
    let now = b.clock.now_ms();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = b.topic(&t.name.0);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let r = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    let Some(part) = topic.as_ref().and_then(|t| t.partition(p.partition_index))
                    else {
                        return r.with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION);
                    };
                    let mut log = part.log.lock();
                    let target = if p.offset == -1 {
                        log.log_end_offset()
                    } else {
                        p.offset
                    };
                    let result = log.delete_records_before(target, now);
                    part.publish(&log, 0);
                    match result {
                        Ok(low) => r.with_low_watermark(low),
                        Err(e) => r.with_error_code(storage_code(&e)),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    Outcome::Now(DeleteRecordsResponse::default().with_topics(topics))
}
