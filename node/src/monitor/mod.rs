//! The monitoring listener (`--metrics-listen`): plain HTTP for monitors and people, with
//! no client certificates. `/metrics` (Prometheus), `/livez` (the process answers),
//! `/readyz` (200 or 503 by the same rule as `grpc.health.v1`), `/health` (that report
//! as JSON) and `/`, a status page. It serves no stored data and changes nothing: only
//! GET and HEAD are routed, any other method is answered 405.

mod page;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::node::Node;

/// What the handlers read.
#[derive(Clone)]
struct Monitor {
    node: Arc<Node>,
}

/// The routes, over this node's state.
fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/health", get(health))
        .route("/", get(status_page))
        .with_state(Monitor { node })
}

/// Binds `addr` (a failure is the caller's startup error) and serves until `stop`.
pub async fn serve(
    addr: SocketAddr,
    node: Arc<Node>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<JoinHandle<std::io::Result<()>>> {
    let listener = TcpListener::bind(addr).await?;
    let app = router(node);
    Ok(tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
    }))
}

/// OpenMetrics when the scraper asks for it (Prometheus does), else the classic text
/// format.
async fn metrics(State(m): State<Monitor>, headers: HeaderMap) -> Response {
    let text = crate::metrics::render(&m.node);
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            crate::metrics::to_classic_text(&text),
        )
            .into_response()
    }
}

async fn livez() -> &'static str {
    "ok\n"
}

async fn readyz(State(m): State<Monitor>) -> Response {
    let r = crate::health::report(&m.node);
    if r.healthy {
        (StatusCode::OK, "ok\n".to_string()).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", r.reason)).into_response()
    }
}

async fn health(State(m): State<Monitor>) -> Response {
    let r = crate::health::report(&m.node);
    let body = serde_json::json!({
        "healthy": r.healthy,
        "status": r.status,
        "reason": r.reason,
        "node_id": r.node_id,
        "role": r.role,
        "leader_id": r.leader_id,
        "term": r.term,
        "applied_index": r.applied_index,
        "commit_index": r.commit_index,
        "lag_entries": r.lag_entries,
        "alarms": r.alarms,
        "data_bytes": r.data_bytes,
        "quota_bytes": r.quota_bytes,
        "version": crate::build_info::VERSION,
        "commit": crate::build_info::COMMIT,
    });
    let code = if r.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn status_page(State(m): State<Monitor>) -> Html<String> {
    Html(page::render(&m.node))
}
