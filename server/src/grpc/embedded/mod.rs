//! The embedded store's answers to Weaviate's gRPC calls: the `weaviate.v1.Weaviate` service
//! over the same [`Store`] the REST routes use, so REST and gRPC see the same data.

use std::pin::Pin;

use futures_util::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::grpc::pb;
use crate::store::Store;

/// The `weaviate.v1.Weaviate` service of the embedded store.
#[derive(Clone, Debug)]
pub struct WeaviateService {
    // Read by the methods as they are filled in; kept from the start so the constructor (which
    // start-up calls) does not change under them.
    #[allow(dead_code)]
    store: Store,
    #[allow(dead_code)]
    max_batch_objects: usize,
}

impl WeaviateService {
    /// The service over `store` (the handle the REST routes use), refusing batches of more
    /// than `max_batch_objects` objects as REST does.
    pub fn new(store: Store, max_batch_objects: usize) -> Self {
        WeaviateService {
            store,
            max_batch_objects,
        }
    }
}

/// The answer for a method the embedded store does not serve: UNIMPLEMENTED, naming it.
fn not_served(method: &str) -> Status {
    Status::unimplemented(format!("{method} is not served by the embedded store yet"))
}

/// The reply stream of `BatchStream`.
pub type BatchStreamReplies =
    Pin<Box<dyn Stream<Item = Result<pb::BatchStreamReply, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl pb::weaviate_server::Weaviate for WeaviateService {
    async fn search(
        &self,
        _request: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchReply>, Status> {
        Err(not_served("Search"))
    }

    async fn batch_objects(
        &self,
        _request: Request<pb::BatchObjectsRequest>,
    ) -> Result<Response<pb::BatchObjectsReply>, Status> {
        Err(not_served("BatchObjects"))
    }

    async fn batch_references(
        &self,
        _request: Request<pb::BatchReferencesRequest>,
    ) -> Result<Response<pb::BatchReferencesReply>, Status> {
        Err(not_served("BatchReferences"))
    }

    async fn batch_delete(
        &self,
        _request: Request<pb::BatchDeleteRequest>,
    ) -> Result<Response<pb::BatchDeleteReply>, Status> {
        Err(not_served("BatchDelete"))
    }

    async fn tenants_get(
        &self,
        _request: Request<pb::TenantsGetRequest>,
    ) -> Result<Response<pb::TenantsGetReply>, Status> {
        Err(not_served("TenantsGet"))
    }

    async fn aggregate(
        &self,
        _request: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::AggregateReply>, Status> {
        Err(not_served("Aggregate"))
    }

    type BatchStreamStream = BatchStreamReplies;

    async fn batch_stream(
        &self,
        _request: Request<Streaming<pb::BatchStreamRequest>>,
    ) -> Result<Response<Self::BatchStreamStream>, Status> {
        Err(not_served("BatchStream"))
    }
}
