//! The thin HTTP layer around the request core: the axum router (`/m.api` for the gateway,
//! `/-/fault`, `/-/requests` and `/-/healthy` for control), turning a request into parameters
//! (query string, then form body, both decoded with `form_urlencoded`) and a user token (the
//! `authenticator` or `Ovo-Authorization` header), holding hanging requests until they are
//! released, and serving in the foreground ([`Simulator::serve`]) or in a background task
//! ([`Simulator::spawn`], [`RunningSimulator`]). Everything the gateway decides happens in
//! [`Simulator::handle_with_token`], which needs no socket.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;

use super::reply::{Outcome, SimReply, TEXT_CONTENT_TYPE};
use super::{param, Fault, Simulator};

/// Largest request body accepted.
pub(crate) const MAX_BODY_BYTES: usize = 1 << 20;
/// The headers a user token may come in: the official SDK's and the vendor debugger's.
const TOKEN_HEADERS: [&str; 2] = ["authenticator", "Ovo-Authorization"];
/// How long a [`Fault::Hang`] request hangs at most (unless released earlier).
const HANG_FOR: Duration = Duration::from_secs(3600);

impl IntoResponse for SimReply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, [(header::CONTENT_TYPE, self.content_type)], self.body).into_response()
    }
}

impl Simulator {
    /// The axum router: `POST`/`GET /m.api` (the gateway) and the admin routes
    /// `POST /-/fault`, `GET /-/fault`, `GET /-/requests`, `GET /-/healthy`.
    pub(crate) fn router(&self) -> Router {
        Router::new()
            .route("/m.api", post(gateway_route).get(gateway_route))
            .route("/-/fault", post(set_fault_route).get(get_fault_route))
            .route("/-/requests", get(requests_route))
            .route("/-/healthy", get(healthy_route))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self.clone())
    }

    /// Serves the router on `listener` until `shutdown` completes, then shuts down gracefully
    /// (requests hanging under [`Fault::Hang`] are released first).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let sim = self.clone();
        let signal = async move {
            shutdown.await;
            sim.release_hangs();
        };
        axum::serve(listener, self.router())
            .with_graceful_shutdown(signal)
            .await
    }

    /// Binds `addr` (port 0 picks a free one) and serves in a background task.
    pub async fn spawn(self, addr: SocketAddr) -> std::io::Result<RunningSimulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let signal = stop.clone();
        let task = tokio::spawn(self.clone().serve(listener, async move { signal.cancelled().await }));
        Ok(RunningSimulator {
            addr,
            sim: self,
            stop,
            task,
        })
    }
}

/// A simulator serving in a background task.
pub struct RunningSimulator {
    pub addr: SocketAddr,
    pub sim: Simulator,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for RunningSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSimulator")
            .field("addr", &self.addr)
            .field("sim", &self.sim)
            .finish()
    }
}

impl RunningSimulator {
    /// The gateway URL, `http://{addr}/m.api`.
    pub fn url(&self) -> String {
        format!("http://{}/m.api", self.addr)
    }

    /// Stops serving: graceful shutdown, given up (task aborted) after 5 seconds.
    pub async fn shutdown(mut self) {
        self.stop_listening().await;
    }

    /// Stops serving and closes the port (connections to it are refused) but keeps the
    /// address, so that [`RunningSimulator::listen_again`] can reopen it.
    pub async fn stop_listening(&mut self) {
        self.stop.cancel();
        if tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }

    /// Serves again on the same address after [`RunningSimulator::stop_listening`].
    pub async fn listen_again(&mut self) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        self.stop = CancellationToken::new();
        let signal = self.stop.clone();
        self.task = tokio::spawn(
            self.sim
                .clone()
                .serve(listener, async move { signal.cancelled().await }),
        );
        Ok(())
    }
}

/// Decodes `application/x-www-form-urlencoded` (also a query string): `+` is a space, `%XX` a
/// byte; malformed escapes are kept literally; invalid UTF-8 is replaced.
fn parse_form(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw).into_owned().collect()
}

/// Query-string parameters followed by body parameters.
fn request_params(uri: &Uri, body: &[u8]) -> Vec<(String, String)> {
    let mut params = uri.query().map(|q| parse_form(q.as_bytes())).unwrap_or_default();
    params.extend(parse_form(body));
    params
}

async fn gateway_route(State(sim): State<Simulator>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let params = request_params(&uri, &body);
    let token = TOKEN_HEADERS
        .iter()
        .find_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
        .filter(|t| !t.is_empty());
    match sim.handle_with_token(&params, token) {
        Outcome::Reply(reply) => reply.into_response(),
        Outcome::Hang => {
            let release = sim.release_token();
            tokio::select! {
                _ = tokio::time::sleep(HANG_FOR) => {}
                _ = release.cancelled() => {}
            }
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)],
                "hang released\n",
            )
                .into_response()
        }
    }
}

async fn set_fault_route(State(sim): State<Simulator>, uri: Uri, body: Bytes) -> Response {
    let params = request_params(&uri, &body);
    let Some(value) = param(&params, "fault") else {
        return (StatusCode::BAD_REQUEST, "missing form field `fault`\n").into_response();
    };
    match Fault::parse(value) {
        Ok(fault) => {
            sim.set_fault(fault);
            let text = fault.map_or_else(|| "none".to_owned(), |f| f.to_string());
            (StatusCode::OK, format!("fault: {text}\n")).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

async fn get_fault_route(State(sim): State<Simulator>) -> String {
    sim.fault().map_or_else(|| "none".to_owned(), |f| f.to_string())
}

async fn requests_route(State(sim): State<Simulator>) -> String {
    sim.requests().to_string()
}

async fn healthy_route() -> &'static str {
    "ok\n"
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::super::testkit::{code_of, device_request, shops_request, sim};
    use super::*;

    #[test]
    fn form_decoding() {
        let p = parse_form(b"a=1&b=x+y%20z&&c=&d&e=%E4%B8%AD&f=100%&g=%zz");
        let expected = [
            ("a", "1"),
            ("b", "x y z"),
            ("c", ""),
            ("d", ""),
            ("e", "中"),
            ("f", "100%"),
            ("g", "%zz"),
        ];
        let expected: Vec<(String, String)> = expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(p, expected);
    }

    fn encode(params: &[(String, String)]) -> String {
        fn enc(s: &str) -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => (b as char).to_string(),
                    b' ' => "+".to_string(),
                    b => format!("%{b:02X}"),
                })
                .collect()
        }
        params
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// A minimal HTTP/1.1 exchange; returns (status, headers, body).
    async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded; charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_ascii_lowercase(), body.to_string())
    }

    #[tokio::test]
    async fn over_http() {
        let running = sim().spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = running.addr;
        assert_eq!(running.url(), format!("http://{addr}/m.api"));
        let sim = running.sim.clone();

        let (status, head, body) = http(addr, "POST", "/m.api", &encode(&shops_request(&sim, "O_1001"))).await;
        assert_eq!(status, 200);
        assert!(head.contains("content-type: application/json;charset=utf-8"), "{head}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(code_of(&v), 0);
        assert_eq!(v["data"].as_array().unwrap().len(), 12);

        // GET with a query string.
        let path = format!("/m.api?{}", encode(&device_request(&sim, "d47c44906f01")));
        let (status, _, body) = http(addr, "GET", &path, "").await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(code_of(&v), 0);
        assert_eq!(v["data"]["dataList"].as_array().unwrap().len(), 24);

        // A gateway error is still HTTP 200.
        let (status, _, body) = http(addr, "POST", "/m.api", "_akey=").await;
        assert_eq!(status, 200);
        assert_eq!(code_of(&serde_json::from_str(&body).unwrap()), 1);

        // Admin routes.
        assert_eq!(http(addr, "GET", "/-/healthy", "").await.0, 200);
        let (status, _, body) = http(addr, "GET", "/-/requests", "").await;
        assert_eq!((status, body.trim()), (200, "3"));
        assert_eq!(http(addr, "POST", "/-/fault", "fault=bogus").await.0, 400);
        assert_eq!(http(addr, "POST", "/-/fault", "").await.0, 400);
        assert_eq!(http(addr, "POST", "/-/fault", "fault=http%3A502").await.0, 200);
        assert_eq!(sim.fault(), Some(Fault::Http(502)));
        let (status, _, body) = http(addr, "POST", "/m.api", "").await;
        assert_eq!(status, 502);
        assert!(!body.is_empty());
        assert_eq!(http(addr, "POST", "/-/fault", "fault=wrong_content_type").await.0, 200);
        let (status, head, _) = http(addr, "POST", "/m.api", "").await;
        assert_eq!(status, 200);
        assert!(head.contains("content-type: text/html"));

        // A hanging request does not block others, and shutdown releases it.
        assert_eq!(http(addr, "POST", "/-/fault", "fault=hang").await.0, 200);
        let hung = tokio::spawn(async move { http(addr, "POST", "/m.api", "").await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!hung.is_finished());
        assert_eq!(http(addr, "GET", "/-/healthy", "").await.0, 200);
        assert_eq!(http(addr, "GET", "/-/fault", "").await.2, "hang");

        tokio::time::timeout(Duration::from_secs(10), running.shutdown())
            .await
            .unwrap();
        let (status, _, _) = tokio::time::timeout(Duration::from_secs(5), hung)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status, 503);
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
