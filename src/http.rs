//! The HTTP face of the exporter: `/metrics`, a landing page, and the health and readiness
//! endpoints, served by axum with graceful shutdown. Handlers only read the metrics store;
//! none of them waits on a poll.

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::future::BoxFuture;

use crate::metrics::MetricsStore;

/// Applies the configuration file again (`POST /-/reload`).
pub trait Reload: Send + Sync {
    /// `Err` carries every problem of a rejected file, for the HTTP answer.
    fn reload(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<MetricsStore>,
    /// `None` when the exporter was not started from a configuration file.
    pub reload: Option<Arc<dyn Reload>>,
}

impl AppState {
    /// State without reload support.
    pub fn new(store: Arc<MetricsStore>) -> Self {
        Self { store, reload: None }
    }
}

/// The exporter's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(landing))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload))
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

async fn reload(State(state): State<AppState>) -> (StatusCode, String) {
    match &state.reload {
        None => (
            StatusCode::BAD_REQUEST,
            "Not reloadable: the exporter was not started from a configuration file\n".to_string(),
        ),
        Some(r) => match r.reload().await {
            Ok(()) => (StatusCode::OK, "Reloaded\n".to_string()),
            Err(e) => (
                StatusCode::BAD_REQUEST,
                format!("Configuration rejected; the previous one stays in force:\n{e}\n"),
            ),
        },
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
