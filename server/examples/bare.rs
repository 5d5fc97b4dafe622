//! The benchmark's baseline: the same `/v1/meta` handler as the server, on actix-web with one
//! worker and no middleware at all. `bench/run.sh` compares the gate against it.
//!
//! Usage: `bare <ip:port>`; prints `http listening on <addr>` once bound.

use actix_web::{web, App, HttpServer};
use portcullis_server::routes::{meta, MetaInfo};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    actix_web::rt::System::new().block_on(async move {
        let listener = std::net::TcpListener::bind(&addr)?;
        let bound = listener.local_addr()?;
        let info = web::Data::new(MetaInfo {
            hostname: format!("http://{bound}"),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(info.clone())
                .route("/v1/meta", web::get().to(meta))
        })
        .workers(1)
        .listen(listener)?
        .run();
        println!("http listening on {bound}");
        server.await
    })
}
