//! `Aggregate` over the embedded store: the object count (`aggregate.over_all(total_count=True)`),
//! with or without an equality filter. Property metrics, grouping and searches are
//! UNIMPLEMENTED by name.

use std::time::Instant;

use tonic::Status;

use super::filter;
use super::pb;
use super::status::{from_query, unsupported};
use crate::store::schema::class_name;
use crate::store::Store;

use pb::aggregate_reply::{Aggregations, Result as ReplyResult, Single};

/// Answers an `AggregateRequest`.
pub(crate) async fn aggregate(
    store: &Store,
    request: pb::AggregateRequest,
) -> Result<pb::AggregateReply, Status> {
    let started = Instant::now();
    refuse_unsupported(&request)?;
    if request.collection.is_empty() {
        return Err(Status::invalid_argument(
            "an aggregation needs a collection name",
        ));
    }
    let filter = request
        .filters
        .as_ref()
        .map(filter::from_proto)
        .transpose()?;
    let class = class_name(&request.collection);
    // The count is taken even when not asked for, so an unknown class or a bad filter fails
    // the same way either way.
    let count = store
        .count(&class, filter.as_ref())
        .await
        .map_err(from_query)?;
    let objects_count = request
        .objects_count
        .then(|| i64::try_from(count).unwrap_or(i64::MAX));
    Ok(pb::AggregateReply {
        took: started.elapsed().as_secs_f32(),
        result: Some(ReplyResult::SingleResult(Single {
            objects_count,
            aggregations: Some(Aggregations::default()),
        })),
    })
}

fn refuse_unsupported(request: &pb::AggregateRequest) -> Result<(), Status> {
    let features = [
        (
            !request.aggregations.is_empty(),
            "aggregating property metrics",
        ),
        (request.group_by.is_some(), "group_by"),
        (request.search.is_some(), "aggregating over a search"),
        (request.object_limit.is_some(), "object_limit"),
        (request.limit.is_some(), "limit"),
        (!request.tenant.is_empty(), "multi-tenancy"),
    ];
    match features.iter().find(|(asked, _)| *asked) {
        Some((_, feature)) => Err(unsupported(feature)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_metrics_grouping_and_searches_by_name() {
        let base = pb::AggregateRequest {
            collection: "A".into(),
            objects_count: true,
            ..Default::default()
        };
        assert!(refuse_unsupported(&base).is_ok());
        let cases = [
            (
                pb::AggregateRequest {
                    aggregations: vec![Default::default()],
                    ..base.clone()
                },
                "aggregating property metrics",
            ),
            (
                pb::AggregateRequest {
                    group_by: Some(Default::default()),
                    ..base.clone()
                },
                "group_by",
            ),
            (
                pb::AggregateRequest {
                    tenant: "t".into(),
                    ..base.clone()
                },
                "multi-tenancy",
            ),
        ];
        for (request, feature) in cases {
            let status = refuse_unsupported(&request).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unimplemented);
            assert_eq!(
                status.message(),
                format!("{feature} is not supported by the embedded store")
            );
        }
    }
}
