//! The benchmark's baselines: the same `/v1/meta` handler as the server, on actix-web with one
//! worker and no middleware at all. `bench/run.sh` compares the gate against it.
//!
//! Usage: `bare <ip:port> [<jwks-file>]`; prints `http listening on <addr>` once bound. With a
//! JWKS file, `/v1/meta/rs256` also answers: the same handler after checking the bearer token's
//! RS256 signature with the file's first RSA key, parsed once at start (no claims, no cache,
//! no middleware). That row is the ceiling of a new token per request on this machine: the
//! HTTP work and one signature check, nothing else.

use std::sync::Arc;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use aws_lc_rs::signature::{ParsedPublicKey, RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use portcullis_server::api::meta::{meta, MetaInfo};

/// The first RSA key of a JWKS document, parsed for RS256.
fn first_rsa_key(path: &str) -> ParsedPublicKey {
    let text = std::fs::read_to_string(path).expect("read the JWKS file");
    let jwks: serde_json::Value = serde_json::from_str(&text).expect("a JSON JWKS");
    let key = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kty"] == "RSA"))
        .expect("an RSA key in the JWKS");
    let field = |name: &str| {
        URL_SAFE_NO_PAD
            .decode(key[name].as_str().expect("JWK member"))
            .expect("base64url JWK member")
    };
    let (n, e) = (field("n"), field("e"));
    RsaPublicKeyComponents { n: &n, e: &e }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .expect("a usable RSA key")
}

/// `meta`, after the bearer token's signature checks out.
async fn meta_rs256(
    req: HttpRequest,
    key: web::Data<Arc<ParsedPublicKey>>,
    info: web::Data<MetaInfo>,
) -> HttpResponse {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let verified = token
        .and_then(|t| t.rsplit_once('.'))
        .and_then(|(input, sig)| Some((input, URL_SAFE_NO_PAD.decode(sig).ok()?)))
        .is_some_and(|(input, sig)| key.verify_sig(input.as_bytes(), &sig).is_ok());
    if verified {
        meta(info).await
    } else {
        HttpResponse::Unauthorized().finish()
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let key = args.next().map(|path| Arc::new(first_rsa_key(&path)));
    actix_web::rt::System::new().block_on(async move {
        let listener = std::net::TcpListener::bind(&addr)?;
        let bound = listener.local_addr()?;
        let info = web::Data::new(MetaInfo {
            hostname: format!("http://{bound}"),
        });
        let server = HttpServer::new(move || {
            let app = App::new()
                .app_data(info.clone())
                .route("/v1/meta", web::get().to(meta));
            match &key {
                Some(key) => app
                    .app_data(web::Data::new(key.clone()))
                    .route("/v1/meta/rs256", web::get().to(meta_rs256)),
                None => app,
            }
        })
        .workers(1)
        .listen(listener)?
        .run();
        println!("http listening on {bound}");
        server.await
    })
}
