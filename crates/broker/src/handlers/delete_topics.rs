//! DeleteTopics (key 20): by name (all versions) or topic id (v6+).

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use uuid::Uuid;

use super::{code, s, topic_error, Ctx, Outcome};

pub fn handle(ctx: &Ctx, req: DeleteTopicsRequest) -> Outcome<DeleteTopicsResponse> {
    let b = &ctx.broker;
    let wanted: Vec<(Option<String>, Uuid)> = if ctx.version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let responses = wanted
        .into_iter()
        .map(|(name, id)| {
            let name = match name {
                Some(n) => Some(n),
                None => b.topic_by_id(&id).map(|t| t.name.clone()),
            };
            let mut r = DeletableTopicResult::default()
                .with_name(name.clone().map(|n| TopicName(s(n))))
                .with_topic_id(id);
            let Some(name) = name else {
                return r
                    .with_error_code(code::UNKNOWN_TOPIC_ID)
                    .with_error_message(Some(s(format!("Topic id {id} not found"))));
            };
            match b.delete_topic(&name) {
                Ok(deleted) => {
                    if ctx.version >= 6 {
                        r = r.with_topic_id(deleted);
                    }
                    r
                }
                Err(e) => {
                    let (c, m) = topic_error(&e);
                    r = r.with_error_code(c);
                    if ctx.version >= 5 {
                        r = r.with_error_message(Some(s(m)));
                    }
                    r
                }
            }
        })
        .collect();
    Outcome::Now(DeleteTopicsResponse::default().with_responses(responses))
}
