//! The listening side of the HTTP server: accepting connections and serving each one, within
//! bounds a hostile client cannot push. `accept()` always comes first; then, per connection:
//! with TLS, a wait for the client's first byte (a silent socket holds nothing else), the
//! answer `400` when that byte starts plain HTTP, and the handshake under its own cap and
//! deadline; then HTTP/1.1 only (hyper's HTTP/1 server, whatever ALPN or a preface asks), with
//! a deadline on each request's headers that also ends an idle kept-alive connection, and a
//! bound on their size. Connections are capped: at the cap, a connection is closed to make
//! room, first one that never had a successful answer (idle, then busy: a client waiting for a
//! refused password, a handshake or its own slow head), then the proven one idle longest, never
//! a proven one answering a request (so neither idle sockets nor a flood of bad passwords lock
//! out a scrape), and accept errors (such as running out of file descriptors) are logged at
//! most every few seconds. Graceful shutdown stops accepting, lets requests in flight finish
//! and closes the rest after a grace period.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

/// The bounds of the HTTP server (`--web.max-connections`, `--web.read-header-timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once (further ones make room by closing the one idle longest).
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, from when the connection opens
    /// or the previous answer was sent: so also how long an idle kept-alive connection stays
    /// open, and how long a TLS client may take to complete its handshake.
    pub read_header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            read_header_timeout: Duration::from_secs(10),
        }
    }
}

/// The largest request head (request line and headers) read; a larger one is refused with
/// `431`. Scrapes send a few hundred bytes.
pub(crate) const MAX_HEADER_BYTES: usize = 16 * 1024;
/// TLS handshakes computed at once (a connection waits for one only once its client has sent
/// something; silent sockets hold none).
const MAX_TLS_HANDSHAKES: usize = 64;
/// How long requests in flight may take to finish after a shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often at most a kind of accept problem is logged.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// File descriptors kept for everything but the HTTP server's connections (gateway calls,
/// files, the runtime).
const RESERVED_FDS: u64 = 128;
/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// What a plain HTTP request to the TLS port is answered (as Go's servers do).
const PLAIN_HTTP_TO_TLS: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// Where each TLS handshake gets its server configuration (read per handshake, so that new
/// certificates apply to new connections).
pub(crate) type TlsSource = Arc<dyn Fn() -> Option<Arc<rustls::ServerConfig>> + Send + Sync>;

/// Serves `app` on `listener` within `limits` until `shutdown` completes; with `tls`, every
/// connection is TLS.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsSource>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let limit = connection_cap(limits.max_connections);
    let conns = Conns::default();
    let tracker = TaskTracker::new();
    let closing = CancellationToken::new();
    let handshakes = Arc::new(Semaphore::new(MAX_TLS_HANDSHAKES));
    let mut accept_errors = Throttle::default();
    let mut full = Throttle::default();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors (or memory): close the connection idle longest, so
                // that the next accept can succeed, and back off a little.
                let evicted = conns.evict_idlest();
                accept_errors.log(|more| {
                    tracing::warn!(error = %e, evicted, more, "accepting a connection failed");
                });
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(admitted) = conns.admit(limit) else {
            full.log(|more| {
                tracing::warn!(
                    limit,
                    more,
                    "connection limit reached with every connection busy; refusing new ones"
                );
            });
            continue;
        };
        let (app, tls, handshakes, closing) = (app.clone(), tls.clone(), Arc::clone(&handshakes), closing.clone());
        tracker.spawn(async move {
            let evicted = admitted.evict.clone();
            tokio::select! {
                () = connection(tcp, peer, app, tls, limits, &admitted, &handshakes, &closing) => {}
                () = evicted.cancelled() => tracing::debug!(%peer, "idle connection closed to make room"),
            }
        });
    }
    drop(listener);
    closing.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait()).await.is_err() {
        tracing::warn!(
            open = conns.len(),
            "connections still open {SHUTDOWN_GRACE:?} after shutdown began; closing them"
        );
        conns.evict_all();
        tracker.wait().await;
    }
    Ok(())
}

/// The connection cap in force: `wanted`, lowered (with a warning) to what the open-files
/// limit leaves after [`RESERVED_FDS`].
fn connection_cap(wanted: usize) -> usize {
    let Some(files) = open_files_limit() else {
        return wanted.max(1);
    };
    let room = usize::try_from(files.saturating_sub(RESERVED_FDS))
        .unwrap_or(usize::MAX)
        .max(1);
    if wanted > room {
        tracing::warn!(
            wanted,
            open_files_limit = files,
            using = room,
            "--web.max-connections is above what the open-files limit allows; raise the limit (ulimit -n, LimitNOFILE=) or lower the flag"
        );
        return room;
    }
    wanted.max(1)
}

/// The soft limit of open files, if known.
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 here, not on every platform
fn open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            return Some(limit.rlim_cur as u64);
        }
        None
    }
    #[cfg(not(unix))]
    None
}

/// Raises the soft limit of open files to the hard limit (at most the kernel's 1,048,576), as
/// Go programs do at start-up: the default soft limit (1,024 under systemd) is easily run out
/// of by connections. Returns the soft limit before and after.
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 here, not on every platform
pub fn raise_open_files_limit() -> std::io::Result<(u64, u64)> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let before = limit.rlim_cur as u64;
        let target = (limit.rlim_max as u64).min(1 << 20);
        if target <= before {
            return Ok((before, before));
        }
        limit.rlim_cur = target as libc::rlim_t;
        // SAFETY: setrlimit only reads the struct it is given; a soft limit up to the hard
        // limit is always allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((before, target))
    }
    #[cfg(not(unix))]
    Ok((0, 0))
}

/// Errors of one connection that went away before it was accepted: nothing to report.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset | Interrupted
    )
}

/// One connection, from accept to close.
#[allow(clippy::too_many_arguments)]
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    tls: Option<TlsSource>,
    limits: Limits,
    admitted: &Admitted,
    handshakes: &Semaphore,
    closing: &CancellationToken,
) {
    let _ = tcp.set_nodelay(true);
    match tls {
        None => http(tcp, peer, app, limits, admitted, closing).await,
        Some(tls) => {
            if let Some(stream) = handshake(tcp, peer, &tls, limits, handshakes).await {
                http(stream, peer, app, limits, admitted, closing).await;
            }
        }
    }
}

/// Waits (holding nothing but the socket) for the client's first byte, answers plain HTTP with
/// `400`, and completes the TLS handshake under the handshake cap, all within the header
/// deadline. `None`: the connection is done.
async fn handshake(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: &TlsSource,
    limits: Limits,
    handshakes: &Semaphore,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let deadline = tokio::time::Instant::now() + limits.read_header_timeout;
    let mut first = [0u8; 1];
    match tokio::time::timeout_at(deadline, tcp.peek(&mut first)).await {
        Ok(Ok(1..)) => {}
        Ok(_) => return None,
        Err(_) => {
            tracing::debug!(%peer, "no TLS handshake within the header timeout");
            return None;
        }
    }
    if first[0] != TLS_HANDSHAKE {
        if first[0].is_ascii_alphabetic() {
            refuse_plain_http(tcp).await;
        }
        return None;
    }
    let config = tls()?;
    let _slot = tokio::time::timeout_at(deadline, handshakes.acquire())
        .await
        .ok()?
        .ok()?;
    match tokio::time::timeout_at(deadline, tokio_rustls::TlsAcceptor::from(config).accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!(%peer, "TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// Answers a plain HTTP request on the TLS port with `400`: reads what has arrived (so that
/// closing does not reset the connection before the answer is read), writes the answer, and
/// closes.
async fn refuse_plain_http(mut tcp: TcpStream) {
    let mut sink = [0u8; 4096];
    let _ = tcp.try_read(&mut sink);
    let quick = Duration::from_secs(1);
    if tokio::time::timeout(quick, tcp.write_all(PLAIN_HTTP_TO_TLS))
        .await
        .is_err()
    {
        return;
    }
    let _ = tokio::time::timeout(quick, tcp.shutdown()).await;
    let _ = tokio::time::timeout(quick, async { while matches!(tcp.read(&mut sink).await, Ok(1..)) {} }).await;
}

/// Serves HTTP/1.1 on `io` until the client closes, a deadline passes, or shutdown (then the
/// request in flight finishes first).
async fn http<I>(io: I, peer: SocketAddr, app: Router, limits: Limits, admitted: &Admitted, closing: &CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = admitted.state();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let busy = state.busy();
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await;
            if response.as_ref().is_ok_and(|r| r.status().is_success()) {
                busy.0.conns.set_proven(busy.0.id);
            }
            response.map(|r| r.map(|body| Tracked { body, _busy: busy }))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.read_header_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = closing.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

/// An answer's body, marking its connection busy until it has been sent (or dropped).
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The open connections, each idle (waiting for a request, or for its TLS handshake) since
/// some instant or busy serving one.
#[derive(Clone, Default)]
struct Conns(Arc<Mutex<Table>>);

#[derive(Default)]
struct Table {
    next: u64,
    open: HashMap<u64, Slot>,
}

struct Slot {
    /// `None` while a request is being answered.
    idle_since: Option<Instant>,
    /// When it was accepted.
    opened: Instant,
    /// It has had a successful answer (a client that knows its way in, such as Prometheus).
    proven: bool,
    evict: CancellationToken,
}

impl Slot {
    /// Which connection makes room first (the least): idle ones that never had a successful
    /// answer, then busy ones that never had (waiting for a refusal, a handshake, a slow head),
    /// then idle proven ones, each the longest-waiting first; a proven connection answering a
    /// request never.
    fn eviction_rank(&self) -> Option<(u8, Instant)> {
        match (self.proven, self.idle_since) {
            (false, Some(since)) => Some((0, since)),
            (false, None) => Some((1, self.opened)),
            (true, Some(since)) => Some((2, since)),
            (true, None) => None,
        }
    }
}

impl Conns {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new connection; at `limit`, first closes the one idle longest. `None` when
    /// at the limit with every connection busy.
    fn admit(&self, limit: usize) -> Option<Admitted> {
        let mut table = self.table();
        if table.open.len() >= limit && !table.evict_idlest() {
            return None;
        }
        let id = table.next;
        table.next += 1;
        let evict = CancellationToken::new();
        let now = Instant::now();
        table.open.insert(
            id,
            Slot {
                idle_since: Some(now),
                opened: now,
                proven: false,
                evict: evict.clone(),
            },
        );
        Some(Admitted {
            conns: self.clone(),
            id,
            evict,
        })
    }

    /// Closes the connection idle longest; false if none is idle.
    fn evict_idlest(&self) -> bool {
        self.table().evict_idlest()
    }

    fn evict_all(&self) {
        for (_, slot) in self.table().open.drain() {
            slot.evict.cancel();
        }
    }

    fn len(&self) -> usize {
        self.table().open.len()
    }

    fn set_idle(&self, id: u64, idle: bool) {
        if let Some(slot) = self.table().open.get_mut(&id) {
            slot.idle_since = idle.then(Instant::now);
        }
    }

    fn set_proven(&self, id: u64) {
        if let Some(slot) = self.table().open.get_mut(&id) {
            slot.proven = true;
        }
    }
}

impl Table {
    /// Closes the connection first in line to make room (see [`Slot::eviction_rank`]); false
    /// if none may be closed.
    fn evict_idlest(&mut self) -> bool {
        let first = self
            .open
            .iter()
            .filter_map(|(id, slot)| slot.eviction_rank().map(|rank| (rank, *id)))
            .min();
        match first.and_then(|(_, id)| self.open.remove(&id)) {
            Some(slot) => {
                slot.evict.cancel();
                true
            }
            None => false,
        }
    }
}

/// A registered connection; dropping it unregisters it.
struct Admitted {
    conns: Conns,
    id: u64,
    evict: CancellationToken,
}

impl Admitted {
    fn state(&self) -> ConnState {
        ConnState {
            conns: self.conns.clone(),
            id: self.id,
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.conns.table().open.remove(&self.id);
    }
}

/// What a connection's requests use to mark it busy.
#[derive(Clone)]
struct ConnState {
    conns: Conns,
    id: u64,
}

impl ConnState {
    fn busy(&self) -> Busy {
        self.conns.set_idle(self.id, false);
        Busy(self.clone())
    }
}

/// The connection is busy while this lives.
struct Busy(ConnState);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.conns.set_idle(self.0.id, true);
    }
}

/// Logs a recurring problem at most every [`LOG_EVERY`], with how many were not logged.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
    skipped: u64,
}

impl Throttle {
    fn log(&mut self, log: impl FnOnce(u64)) {
        let now = Instant::now();
        if self.last.is_some_and(|last| now.duration_since(last) < LOG_EVERY) {
            self.skipped += 1;
            return;
        }
        log(self.skipped);
        self.skipped = 0;
        self.last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_unproven_connections_make_room_first() {
        let conns = Conns::default();
        let proven = conns.admit(3).expect("room");
        conns.set_proven(proven.id);
        std::thread::sleep(Duration::from_millis(2));
        let idle = conns.admit(3).expect("room");
        let waiting = conns.admit(3).expect("room");
        let waiting_busy = waiting.state().busy();
        let a = conns.admit(3).expect("an unproven idle one makes room");
        assert!(idle.evict.is_cancelled(), "the unproven idle one goes first");
        assert!(!proven.evict.is_cancelled(), "before the proven one, idle longer");
        let a_busy = a.state().busy();
        let b = conns.admit(3).expect("then an unproven busy one, the oldest");
        assert!(waiting.evict.is_cancelled());
        assert!(!a.evict.is_cancelled());
        let b_busy = b.state().busy();
        conns.set_proven(a.id);
        conns.set_proven(b.id);
        let c = conns.admit(3).expect("then the proven idle one");
        assert!(proven.evict.is_cancelled());
        let _c_busy = c.state().busy();
        conns.set_proven(c.id);
        assert!(conns.admit(3).is_none(), "every connection proven and busy: refused");
        assert_eq!(conns.len(), 3);
        drop((waiting_busy, a_busy, b_busy));
        drop((proven, idle, waiting, a, b, c));
        assert_eq!(conns.len(), 0, "dropped connections unregister");
    }

    #[test]
    fn a_throttle_logs_once_per_period_and_counts_the_rest() {
        let mut throttle = Throttle::default();
        let mut logged = Vec::new();
        for _ in 0..5 {
            throttle.log(|more| logged.push(more));
        }
        assert_eq!(logged, vec![0]);
        assert_eq!(throttle.skipped, 4);
    }
}
