//! The store's HTTP handlers, in the shapes and status codes of Weaviate's REST API. Every
//! path here is also a row of the route table (`gate/route_table.rs`), which decides who may
//! call it; handlers only serve.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PayloadError, QueryPayloadError};
use actix_web::http::{header, Method};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::batch::{self, BatchRefusal};

use super::db::Store;
use super::objects::{canonical_id, object_not_found, ObjectInput, Page};
use super::schema::{class_name, class_not_found, ClassDef};
use crate::error::ApiError;

/// The limits of a batch, shared by the batch handler.
#[derive(Clone, Copy, Debug)]
struct BatchLimits {
    max_body: usize,
    max_objects: usize,
}

/// Registers the store's routes when the store is the backend (`store` is `None` with an
/// upstream). Request bodies larger than `max_body` bytes are refused with 413, batches of
/// more than `max_batch_objects` objects with 422.
pub fn configure(
    cfg: &mut web::ServiceConfig,
    store: Option<&web::Data<Store>>,
    max_body: usize,
    max_batch_objects: usize,
) {
    let Some(store) = store else {
        return;
    };
    let json = web::JsonConfig::default()
        .limit(max_body)
        .content_type_required(true)
        .error_handler(move |err, _req| json_error(err, max_body).into());
    let query = web::QueryConfig::default().error_handler(|err, _req| query_error(err).into());
    let limits = web::Data::new(BatchLimits {
        max_body,
        max_objects: max_batch_objects,
    });
    let resource = |path: &str| {
        web::resource(path)
            .app_data(json.clone())
            .app_data(query.clone())
            .app_data(limits.clone())
            .wrap(from_fn(require_json))
    };
    // A scope per prefix: a request to another route passes each with one prefix comparison
    // instead of a regex match per pattern with a parameter. Nothing else is registered
    // under these prefixes, so a path no route here answers is 404 as before.
    cfg.app_data(store.clone())
        .service(
            web::scope("/v1/schema")
                .service(
                    resource("")
                        .route(web::get().to(list_classes))
                        .route(web::post().to(create_class)),
                )
                .service(
                    resource("/{class}")
                        .route(web::get().to(get_class))
                        .route(web::put().to(update_class))
                        .route(web::delete().to(delete_class)),
                )
                .service(resource("/{class}/properties").route(web::post().to(add_property))),
        )
        .service(
            web::scope("/v1/objects")
                .service(
                    resource("")
                        .route(web::get().to(list_objects))
                        .route(web::post().to(create_object)),
                )
                .service(
                    resource("/{class}/{id}")
                        .route(web::get().to(get_object))
                        .route(web::head().to(head_object))
                        .route(web::put().to(replace_object))
                        .route(web::patch().to(merge_object))
                        .route(web::delete().to(delete_object)),
                ),
        )
        .service(resource("/v1/batch/objects").route(web::post().to(batch_objects)));
}

/// Writes must declare `Content-Type: application/json` (parameters such as `charset` allowed),
/// else 415: a web page can send a cross-site `text/plain` or form post without the browser
/// asking first, and a store that read any body as JSON would take it as a write.
async fn require_json(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let writes = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH);
    if writes && !is_json(req.headers().get(header::CONTENT_TYPE)) {
        let response = ApiError::UnsupportedMediaType.error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// `application/json`, in any case, optionally followed by `;` and parameters.
fn is_json(value: Option<&header::HeaderValue>) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

fn json_error(err: JsonPayloadError, limit: usize) -> ApiError {
    match err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::PayloadTooLarge { limit }
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Payload(ref err) if crate::deadline::is_deadline(err) => {
            ApiError::RequestTimeout
        }
        // The parser's message describes the client's input (line, column, expectation).
        JsonPayloadError::Deserialize(err) => {
            ApiError::BadRequest(format!("the request body is not valid JSON: {err}"))
        }
        other => {
            tracing::debug!(error = %other, "could not read a request body");
            ApiError::BadRequest("the request body could not be read".into())
        }
    }
}

fn query_error(err: QueryPayloadError) -> ApiError {
    // go-swagger, in front of Weaviate, answers malformed parameters with 422.
    ApiError::Unprocessable(format!("invalid query parameters: {err}"))
}

/// The canonical id from a path, or Weaviate's 422 for a malformed one.
fn path_id(raw: &str) -> Result<String, ApiError> {
    canonical_id(raw)
        .ok_or_else(|| ApiError::Unprocessable(format!("id in path must be of type uuid: {raw:?}")))
}

/// Whether `include` asks for the vector (`include=vector`, comma-separated).
fn wants_vector(include: Option<&str>) -> bool {
    include.is_some_and(|i| i.split(',').any(|part| part.trim() == "vector"))
}

async fn list_classes(
    store: web::Data<Store>,
    filter: Option<web::ReqData<crate::authz::ListFilter>>,
) -> Result<HttpResponse, ApiError> {
    let mut classes = store.list_classes().await?;
    // With RBAC on, only the collections the caller may read (Weaviate filters, never refuses).
    if let Some(filter) = filter {
        classes.retain(|class| {
            class
                .get("class")
                .and_then(Value::as_str)
                .is_some_and(|name| filter.allows(name))
        });
    }
    Ok(HttpResponse::Ok().json(json!({ "classes": classes })))
}

async fn create_class(
    store: web::Data<Store>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let class = ClassDef::from_request(body.into_inner())?;
    let class = store.create_class(class).await?;
    Ok(HttpResponse::Ok().json(class.to_json()))
}

async fn get_class(
    store: web::Data<Store>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = class_name(&path.into_inner());
    match store.get_class(&name).await? {
        Some(class) => Ok(HttpResponse::Ok().json(class.to_json())),
        None => Err(class_not_found(&name).into()),
    }
}

async fn update_class(
    store: web::Data<Store>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let name = class_name(&path.into_inner());
    let mut body = body.into_inner();
    // Weaviate takes the class from the path when the body leaves it out.
    if let Value::Object(map) = &mut body {
        map.entry("class")
            .or_insert_with(|| Value::String(name.clone()));
    }
    let class = ClassDef::from_request(body)?;
    let class = store.update_class(&name, class).await?;
    Ok(HttpResponse::Ok().json(class.to_json()))
}

async fn delete_class(
    store: web::Data<Store>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    store.delete_class(&class_name(&path.into_inner())).await?;
    Ok(HttpResponse::Ok().finish())
}

async fn add_property(
    store: web::Data<Store>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let name = class_name(&path.into_inner());
    let property = store.add_property(&name, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(property))
}

/// `GET /v1/objects` parameters; others Weaviate knows (`sort`, `order`, `tenant`) are
/// ignored.
#[derive(Debug, Deserialize)]
struct ListParams {
    class: Option<String>,
    after: Option<String>,
    offset: Option<i64>,
    limit: Option<i64>,
    include: Option<String>,
}

async fn list_objects(
    store: web::Data<Store>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let page = Page::new(
        params.class.as_deref(),
        params.after.as_deref(),
        params.offset,
        params.limit,
    )?;
    let with_vector = wants_vector(params.include.as_deref());
    let objects: Vec<Value> = store
        .list_objects(&page)
        .await?
        .iter()
        .map(|o| o.to_json(with_vector))
        .collect();
    // Weaviate's totalResults is the number of objects on this page.
    Ok(HttpResponse::Ok().json(json!({
        "objects": objects,
        "totalResults": objects.len(),
        "deprecations": null,
    })))
}

async fn create_object(
    store: web::Data<Store>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let input = ObjectInput::from_json(&body).map_err(ApiError::Unprocessable)?;
    let object = store.create_object(input).await?;
    Ok(HttpResponse::Ok().json(object.to_json(true)))
}

/// `GET /v1/objects/{class}/{id}` parameters.
#[derive(Debug, Deserialize)]
struct GetParams {
    include: Option<String>,
}

async fn get_object(
    store: web::Data<Store>,
    path: web::Path<(String, String)>,
    params: web::Query<GetParams>,
) -> Result<HttpResponse, ApiError> {
    let (class, raw_id) = path.into_inner();
    let class = class_name(&class);
    let id = path_id(&raw_id)?;
    match store.get_object(&class, &id).await? {
        Some(object) => {
            Ok(HttpResponse::Ok().json(object.to_json(wants_vector(params.include.as_deref()))))
        }
        None => Err(object_not_found(&class, &id).into()),
    }
}

async fn head_object(
    store: web::Data<Store>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (class, raw_id) = path.into_inner();
    let id = path_id(&raw_id)?;
    if store.object_exists(&class_name(&class), &id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Ok(HttpResponse::NotFound().finish())
    }
}

async fn replace_object(
    store: web::Data<Store>,
    path: web::Path<(String, String)>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (class, raw_id) = path.into_inner();
    let id = path_id(&raw_id)?;
    let input = ObjectInput::from_json(&body).map_err(ApiError::Unprocessable)?;
    let object = store
        .replace_object(&class_name(&class), &id, input)
        .await?;
    Ok(HttpResponse::Ok().json(object.to_json(true)))
}

async fn merge_object(
    store: web::Data<Store>,
    path: web::Path<(String, String)>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (class, raw_id) = path.into_inner();
    let id = path_id(&raw_id)?;
    let input = ObjectInput::from_json(&body).map_err(ApiError::Unprocessable)?;
    store.merge_object(&class_name(&class), &id, input).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn delete_object(
    store: web::Data<Store>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (class, raw_id) = path.into_inner();
    let class = class_name(&class);
    let id = path_id(&raw_id)?;
    if store.delete_object(&class, &id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(object_not_found(&class, &id).into())
    }
}

async fn batch_objects(
    store: web::Data<Store>,
    limits: web::Data<BatchLimits>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, limits.max_body).await?;
    let objects = batch::parse(&body, limits.max_objects).map_err(|refusal| match refusal {
        BatchRefusal::NotJson(message) => {
            ApiError::BadRequest(format!("the request body is not valid JSON: {message}"))
        }
        other => ApiError::Unprocessable(other.to_string()),
    })?;
    drop(body);
    let inputs = objects.iter().map(ObjectInput::from_json).collect();
    let outcomes = store.batch_objects(inputs).await?;
    let results: Vec<Value> = objects
        .into_iter()
        .zip(outcomes)
        .map(|(sent, outcome)| match outcome {
            Ok(object) => with_result(object.to_json(true), json!({})),
            // Echo what was sent, as Weaviate does, with the reason.
            Err(message) => with_result(
                sent,
                json!({ "errors": { "error": [{ "message": message }] } }),
            ),
        })
        .collect();
    Ok(HttpResponse::Ok().json(results))
}

/// Reads a whole body of at most `limit` bytes: 413 beyond (before reading when the length is
/// declared), 408 when the body deadline stops it.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(8192).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| payload_error(&err))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn payload_error(err: &PayloadError) -> ApiError {
    if crate::deadline::is_deadline(err) {
        return ApiError::RequestTimeout;
    }
    tracing::debug!(error = %err, "could not read a request body");
    ApiError::BadRequest("the request body could not be read".into())
}

fn with_result(mut object: Value, result: Value) -> Value {
    if let Value::Object(map) = &mut object {
        map.insert("result".into(), result);
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_vector_is_read_from_a_comma_list() {
        let cases = [
            (None, false),
            (Some(""), false),
            (Some("vector"), true),
            (Some("classification, vector"), true),
            (Some("vectors"), false),
        ];
        for (include, expected) in cases {
            assert_eq!(wants_vector(include), expected, "{include:?}");
        }
    }

    #[test]
    fn body_errors_map_to_api_errors() {
        assert!(matches!(
            json_error(JsonPayloadError::Overflow { limit: 10 }, 10),
            ApiError::PayloadTooLarge { limit: 10 }
        ));
        assert!(matches!(
            json_error(
                JsonPayloadError::OverflowKnownLength {
                    length: 20,
                    limit: 10
                },
                10
            ),
            ApiError::PayloadTooLarge { limit: 10 }
        ));
        // Issue 11: a body not declared JSON is 415 (it was 400), a stalled one 408.
        assert!(matches!(
            json_error(JsonPayloadError::ContentType, 10),
            ApiError::UnsupportedMediaType
        ));
        let stalled = PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "deadline",
        ));
        assert!(matches!(
            json_error(JsonPayloadError::Payload(stalled), 10),
            ApiError::RequestTimeout
        ));
    }

    #[test]
    fn only_application_json_with_optional_parameters_is_json() {
        let is = |v: &str| is_json(Some(&header::HeaderValue::from_str(v).unwrap()));
        for json in [
            "application/json",
            "APPLICATION/Json",
            "application/json; charset=utf-8",
            " application/json ;x=y",
        ] {
            assert!(is(json), "{json}");
        }
        for other in [
            "text/plain",
            "text/json",
            "application/ld+json",
            "application/jsonx",
            "multipart/form-data",
            "",
        ] {
            assert!(!is(other), "{other}");
        }
        assert!(!is_json(None));
    }

    #[test]
    fn malformed_path_ids_are_422() {
        assert!(matches!(path_id("nope"), Err(ApiError::Unprocessable(_))));
        assert_eq!(
            path_id("5F2B1C2E-8B7A-4C55-9A8F-3F9B2D1E0C4A").unwrap(),
            "5f2b1c2e-8b7a-4c55-9a8f-3f9b2d1e0c4a"
        );
    }
}
