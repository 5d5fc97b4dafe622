//! The embedded store's answers to Weaviate's gRPC calls: the `weaviate.v1.Weaviate` service
//! over the same [`Store`] the REST routes use, so REST and gRPC see the same data.
//!
//! Layout: [`search`] answers `Search`, [`batch`] `BatchObjects`, [`aggregate`] `Aggregate`,
//! [`filter`] translates filters for both, [`status`] maps the store's errors. What the store
//! cannot do is UNIMPLEMENTED naming it (docs/grpc-store.md).

mod aggregate;
mod batch;
mod filter;
mod search;
mod status;

use std::pin::Pin;

use futures_util::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::grpc::pb;
use crate::store::Store;

/// The `weaviate.v1.Weaviate` service of the embedded store.
#[derive(Clone, Debug)]
pub struct WeaviateService {
    store: Store,
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
    status::unsupported(method)
}

/// The reply stream of `BatchStream`.
pub type BatchStreamReplies =
    Pin<Box<dyn Stream<Item = Result<pb::BatchStreamReply, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl pb::weaviate_server::Weaviate for WeaviateService {
    async fn search(
        &self,
        request: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchReply>, Status> {
        search::search(&self.store, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn batch_objects(
        &self,
        request: Request<pb::BatchObjectsRequest>,
    ) -> Result<Response<pb::BatchObjectsReply>, Status> {
        batch::batch_objects(&self.store, self.max_batch_objects, request.into_inner())
            .await
            .map(Response::new)
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
        request: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::AggregateReply>, Status> {
        aggregate::aggregate(&self.store, request.into_inner())
            .await
            .map(Response::new)
    }

    type BatchStreamStream = BatchStreamReplies;

    async fn batch_stream(
        &self,
        _request: Request<Streaming<pb::BatchStreamRequest>>,
    ) -> Result<Response<Self::BatchStreamStream>, Status> {
        Err(not_served("BatchStream"))
    }
}
