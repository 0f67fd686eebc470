//! The HTTP face of the exporter: `/metrics`, a landing page, and the health and readiness
//! endpoints, served by axum with graceful shutdown. Handlers only read the metrics store;
//! none of them waits on a poll.

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::metrics::MetricsStore;

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Arc<MetricsStore>,
}

/// The exporter's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(landing))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` completes, then finishes the
/// requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// `Content-Type` of the Prometheus text exposition format.
pub const EXPOSITION_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, EXPOSITION_CONTENT_TYPE)], state.store.render()).into_response()
}

async fn healthy() -> &'static str {
    "OK\n"
}

async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.store.is_ready() {
        (StatusCode::OK, "Ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: no poll has completed yet\n",
        )
    }
}

async fn landing() -> Html<&'static str> {
    Html(concat!(
        "<!DOCTYPE html>\n<html><head><title>Opretail Exporter</title></head><body>\n",
        "<h1>Opretail Exporter</h1>\n",
        "<p>Hourly people-counting data of the Opretail (Ovopark) open platform, for Prometheus.</p>\n",
        "<ul><li><a href=\"/metrics\">Metrics</a></li>",
        "<li><a href=\"/-/healthy\">Health</a></li><li><a href=\"/-/ready\">Readiness</a></li></ul>\n",
        "<p>Version ",
        env!("CARGO_PKG_VERSION"),
        "</p>\n</body></html>\n"
    ))
}
