//! A minimal axum server answering `GET /` with a short body: the baseline Cuttle's API
//! throughput is compared with. Usage: `hello-axum 127.0.0.1:8060`.

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8060".to_owned());
    let router = Router::new().route("/", get(|| async { "Hello, World!" }));
    let listener = tokio::net::TcpListener::bind(&address).await?;
    axum::serve(listener, router).await
}
