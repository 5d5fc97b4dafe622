//! What a gRPC call needs under RBAC ([`needs`]), read from its one request message: `Search`
//! and `Aggregate` read data of their collection and tenant, `TenantsGet` reads tenants,
//! `BatchObjects` creates and updates data of each object's collection and tenant,
//! `BatchDelete` deletes, `BatchReferences` updates the sources and reads the targets (the
//! reference's gRPC row). A streamed or unknown method is for principals allowed everything.

use std::borrow::Cow;

use portcullis_auth::rbac::filter::upper_first;
use portcullis_auth::rbac::Action;
use prost::Message;

use super::need::Need;
use crate::grpc::methods::GrpcMethod;
use crate::grpc::pb;

/// Why a call's message could not be read: answered INVALID_ARGUMENT.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GrpcBodyError {
    /// Not one whole, uncompressed gRPC message.
    #[error("the request is not one uncompressed gRPC message; authorization cannot read it")]
    Frame,
    /// The message does not decode as the method's request.
    #[error("the request message does not decode")]
    Decode,
}

/// What a call needs: the needs, or none for a method only principals allowed everything may
/// call.
pub enum GrpcNeeds {
    /// Every one must be allowed.
    Check(Vec<Need<'static>>),
    /// A method no rule covers (streams, unknown paths).
    Unmapped,
}

/// The message of a unary call's body: one frame, flag 0 (uncompressed), length as declared.
pub fn message(body: &[u8]) -> Result<&[u8], GrpcBodyError> {
    let (header, rest) = body.split_at_checked(5).ok_or(GrpcBodyError::Frame)?;
    let [flag, a, b, c, d] = [header[0], header[1], header[2], header[3], header[4]];
    let length = u32::from_be_bytes([a, b, c, d]) as usize;
    if flag != 0 || rest.len() != length {
        return Err(GrpcBodyError::Frame);
    }
    Ok(rest)
}

fn class(name: &str) -> Cow<'static, str> {
    Cow::Owned(if name.is_empty() {
        "*".to_owned()
    } else {
        upper_first(name)
    })
}

fn name(value: &str) -> Cow<'static, str> {
    Cow::Owned(if value.is_empty() { "*" } else { value }.to_owned())
}

const ALL: Cow<'static, str> = Cow::Borrowed("*");

/// The needs of `method` called with `message` (the protobuf bytes).
pub fn needs(method: GrpcMethod, message: &[u8]) -> Result<GrpcNeeds, GrpcBodyError> {
    let decode_err = |_| GrpcBodyError::Decode;
    let mut out: Vec<Need<'static>> = Vec::new();
    let mut push = |need: Need<'static>| {
        if !out.contains(&need) {
            out.push(need);
        }
    };
    match method {
        GrpcMethod::Search => {
            let req = pb::SearchRequest::decode(message).map_err(decode_err)?;
            push(Need::data(
                Action::ReadData,
                class(&req.collection),
                name(&req.tenant),
                ALL,
            ));
        }
        GrpcMethod::Aggregate => {
            let req = pb::AggregateRequest::decode(message).map_err(decode_err)?;
            push(Need::data(
                Action::ReadData,
                class(&req.collection),
                name(&req.tenant),
                ALL,
            ));
        }
        GrpcMethod::TenantsGet => {
            let req = pb::TenantsGetRequest::decode(message).map_err(decode_err)?;
            let names: Vec<String> = match req.params {
                Some(pb::tenants_get_request::Params::Names(names)) if !names.values.is_empty() => {
                    names.values
                }
                _ => vec!["*".to_owned()],
            };
            for tenant in names {
                push(Need::tenant(
                    Action::ReadTenants,
                    class(&req.collection),
                    name(&tenant),
                ));
            }
        }
        GrpcMethod::BatchObjects => {
            let req = pb::BatchObjectsRequest::decode(message).map_err(decode_err)?;
            for object in &req.objects {
                for action in [Action::CreateData, Action::UpdateData] {
                    push(Need::data(
                        action,
                        class(&object.collection),
                        name(&object.tenant),
                        ALL,
                    ));
                }
            }
        }
        GrpcMethod::BatchDelete => {
            let req = pb::BatchDeleteRequest::decode(message).map_err(decode_err)?;
            let tenant = req.tenant.as_deref().unwrap_or("");
            push(Need::data(
                Action::DeleteData,
                class(&req.collection),
                name(tenant),
                ALL,
            ));
        }
        GrpcMethod::BatchReferences => {
            let req = pb::BatchReferencesRequest::decode(message).map_err(decode_err)?;
            for reference in &req.references {
                push(Need::data(
                    Action::UpdateData,
                    class(&reference.from_collection),
                    name(&reference.tenant),
                    ALL,
                ));
                let target = reference.to_collection.as_deref().unwrap_or("");
                push(Need::data(
                    Action::ReadData,
                    class(target),
                    name(&reference.tenant),
                    ALL,
                ));
            }
        }
        GrpcMethod::BatchStream
        | GrpcMethod::HealthCheck
        | GrpcMethod::HealthWatch
        | GrpcMethod::Other => return Ok(GrpcNeeds::Unmapped),
    }
    Ok(GrpcNeeds::Check(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(message: &impl Message) -> Vec<u8> {
        let bytes = message.encode_to_vec();
        let mut out = vec![0];
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(&bytes);
        out
    }

    fn shown(needs: GrpcNeeds) -> Vec<String> {
        match needs {
            GrpcNeeds::Check(needs) => needs
                .iter()
                .map(|n| format!("{} {}", n.action.name(), n.request().values.join(",")))
                .collect(),
            GrpcNeeds::Unmapped => vec!["unmapped".into()],
        }
    }

    #[test]
    fn search_reads_its_collection_and_tenant() {
        let req = pb::SearchRequest {
            collection: "movie".into(),
            tenant: "t1".into(),
            ..Default::default()
        };
        let body = framed(&req);
        let search = needs(GrpcMethod::Search, message(&body).unwrap()).unwrap();
        assert_eq!(shown(search), ["read_data Movie,t1,*"]);
        let req = pb::AggregateRequest {
            collection: "Book".into(),
            ..Default::default()
        };
        let aggregate = needs(GrpcMethod::Aggregate, &req.encode_to_vec()).unwrap();
        assert_eq!(shown(aggregate), ["read_data Book,*,*"]);
    }

    #[test]
    fn batches_need_every_class_and_tenant() {
        let object = |collection: &str, tenant: &str| pb::BatchObject {
            collection: collection.into(),
            tenant: tenant.into(),
            ..Default::default()
        };
        let req = pb::BatchObjectsRequest {
            objects: vec![
                object("Movie", ""),
                object("Book", "t"),
                object("Movie", ""),
            ],
            ..Default::default()
        };
        assert_eq!(
            shown(needs(GrpcMethod::BatchObjects, &req.encode_to_vec()).unwrap()),
            [
                "create_data Movie,*,*",
                "update_data Movie,*,*",
                "create_data Book,t,*",
                "update_data Book,t,*",
            ]
        );
        let req = pb::BatchDeleteRequest {
            collection: "Movie".into(),
            tenant: Some("t".into()),
            ..Default::default()
        };
        assert_eq!(
            shown(needs(GrpcMethod::BatchDelete, &req.encode_to_vec()).unwrap()),
            ["delete_data Movie,t,*"]
        );
        let req = pb::TenantsGetRequest {
            collection: "Movie".into(),
            params: None,
        };
        assert_eq!(
            shown(needs(GrpcMethod::TenantsGet, &req.encode_to_vec()).unwrap()),
            ["read_tenants Movie,*,"]
        );
        assert_eq!(
            shown(needs(GrpcMethod::BatchStream, b"").unwrap()),
            ["unmapped"]
        );
    }

    #[test]
    fn frames_that_cannot_be_read_are_refused() {
        assert_eq!(message(b"\x00\x00\x00"), Err(GrpcBodyError::Frame));
        assert_eq!(message(b"\x01\x00\x00\x00\x00"), Err(GrpcBodyError::Frame));
        assert_eq!(message(b"\x00\x00\x00\x00\x02a"), Err(GrpcBodyError::Frame));
        assert_eq!(message(b"\x00\x00\x00\x00\x01a"), Ok(&b"a"[..]));
        assert!(matches!(
            needs(GrpcMethod::Search, b"\xff\xff\xff"),
            Err(GrpcBodyError::Decode)
        ));
    }
}
