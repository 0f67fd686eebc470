//! The front door against hostile clients: the binary (`demo`, which serves exactly what the
//! exporter serves) on loopback, attacked from this process as another process on the same
//! machine would: idle and silent sockets by the thousand under a 1,024 open-files limit,
//! dripped and oversized headers, plain HTTP and HTTP/2 prefaces where they do not belong,
//! cross-site and anonymous reloads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test
#![allow(clippy::unnecessary_cast)] // rlim_t is u64 here, not on every platform

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{temp_dir, write_server_cert};

const BIN: &str = env!("CARGO_BIN_EXE_opretail-exporter");

/// The binary, started with `args`, its JSON log read for its listening address.
struct Exporter {
    child: std::process::Child,
    addr: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Exporter {
    /// Starts the binary; with `files`, under that open-files limit (soft, hard).
    fn spawn(args: &[&str], files: Option<(u64, u64)>) -> Exporter {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .args(["--log.format", "json"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        if let Some((soft, hard)) = files {
            // SAFETY: setrlimit is async-signal-safe; it only lowers this child's own limit.
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: soft as libc::rlim_t,
                        rlim_max: hard as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command.spawn().expect("starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut addr = None;
        let mut line = String::new();
        while addr.is_none() {
            line.clear();
            let n = stderr.read_line(&mut line).expect("read log");
            assert!(n > 0, "the exporter ended before serving: {}", log.lock().unwrap());
            log.lock().unwrap().push_str(&line);
            // The first line with an address: where the exporter serves, or the simulator listens.
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                addr = v["fields"]["addr"].as_str().map(str::to_string);
            }
        }
        let sink = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            let mut line = String::new();
            while matches!(stderr.read_line(&mut line), Ok(1..)) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Exporter {
            child,
            addr: addr.expect("address"),
            log,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, and how long the process took to exit (at most 30 s).
    fn stop(mut self) -> (std::process::ExitStatus, Duration) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status, started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("the exporter did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Raises this process's own open-files limit (the attacks open thousands of sockets).
fn enough_files_for_the_attacker() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit only read and write the struct given.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        assert!(
            limit.rlim_max >= 4096,
            "the test needs a hard open-files limit of 4096 or more"
        );
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

/// One request over a fresh connection; the raw answer (status line first), or why not.
fn request(addr: &str, head: &str, timeout: Duration) -> std::io::Result<String> {
    let mut tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    tcp.write_all(head.as_bytes())?;
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

fn get(addr: &str, path: &str) -> std::io::Result<String> {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        Duration::from_secs(5),
    )
}

/// Polls until the demo's first poll has published.
fn wait_ready(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if get(addr, "/-/ready").is_ok_and(|a| a.starts_with("HTTP/1.1 200")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("not ready within 30 s");
}

/// Whether the server closes `tcp` within `within` (reads reach end of stream or a reset).
fn closed_within(tcp: &mut TcpStream, within: Duration) -> bool {
    tcp.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// A web config serving TLS with a fresh self-signed certificate; returns its path and the
/// certificate PEM.
fn tls_web_config(dir: &Path) -> (PathBuf, String) {
    let pem = write_server_cert(dir);
    let path = dir.join("web.yml");
    std::fs::write(
        &path,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    )
    .unwrap();
    (path, pem)
}

/// `demo` on a free loopback port with the web config at `web`.
fn demo_with_web_config(web: &Path) -> Exporter {
    Exporter::spawn(
        &[
            "demo",
            "--web.listen-address",
            "127.0.0.1:0",
            "--web.config.file",
            web.to_str().unwrap(),
        ],
        None,
    )
}

/// `GET path` over HTTPS trusting `cert_pem`: the status, or the error.
fn https_get(addr: &str, path: &str, cert_pem: &str, timeout: Duration) -> Result<u16, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
            .timeout(timeout)
            .build()
            .unwrap();
        let port = addr.rsplit(':').next().unwrap();
        client
            .get(format!("https://localhost:{port}{path}"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| format!("{e:#}"))
    })
}

/// 2,000 idle connections against an exporter whose open-files limit is 1,024 (soft and hard,
/// so raising it does not help): `/metrics` still answers within 1 s, because at the connection
/// cap the connection idle longest is closed to make room.
#[test]
fn two_thousand_idle_connections_do_not_lock_out_a_scrape() {
    enough_files_for_the_attacker();
    let exporter = Exporter::spawn(&["demo", "--web.listen-address", "127.0.0.1:0"], Some((1024, 1024)));
    wait_ready(&exporter.addr);
    let idle: Vec<TcpStream> = (0..2000)
        .filter_map(|_| TcpStream::connect(&exporter.addr).ok())
        .collect();
    assert!(idle.len() > 1500, "the attacker opened {} connections", idle.len());
    std::thread::sleep(Duration::from_millis(200)); // let the exporter accept them all
    for _ in 0..3 {
        let started = Instant::now();
        let answer = request(
            &exporter.addr,
            &format!(
                "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                exporter.addr
            ),
            Duration::from_secs(1),
        )
        .expect("a scrape under 2,000 idle connections");
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "{}",
            &answer[..answer.len().min(200)]
        );
        assert!(answer.contains("opretail_shop_walk_in{"));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "took {:?}",
            started.elapsed()
        );
    }
    drop(idle);
    let (status, took) = exporter.stop();
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(12), "shutdown took {took:?}");
}

/// The open-files soft limit is raised to the hard limit at start-up.
#[test]
fn the_open_files_limit_is_raised_to_the_hard_limit() {
    let exporter = Exporter::spawn(&["demo", "--web.listen-address", "127.0.0.1:0"], Some((1024, 4096)));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", exporter.child.id())).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let numbers: Vec<&str> = line.split_whitespace().filter(|w| w.parse::<u64>().is_ok()).collect();
    assert_eq!(numbers, ["4096", "4096"], "{line}");
    assert!(exporter.log().contains("open-files limit raised"), "{}", exporter.log());
}

/// With TLS, 400 sockets that never send a byte are all accepted, and do not keep real
/// clients from their handshakes (the listener this replaced took one of 256 handshake slots
/// before `accept()` and held it 10 s, so the 257th connection waited in the listen queue).
/// The attacker connects 25 at a time and lets the exporter accept each group, as a client
/// from elsewhere would: connections opened faster than the exporter accepts them overflow
/// the listen queue and never reach it.
#[test]
fn silent_sockets_do_not_block_tls_handshakes() {
    enough_files_for_the_attacker();
    let dir = temp_dir("silent");
    let (web, pem) = tls_web_config(&dir);
    let exporter = demo_with_web_config(&web);
    let pid = exporter.child.id();
    let mut silent: Vec<TcpStream> = Vec::with_capacity(400);
    let deadline = Instant::now() + Duration::from_secs(8);
    while silent.len() < 400 {
        silent.extend((0..25).map(|_| TcpStream::connect(&exporter.addr).unwrap()));
        while open_sockets(pid) < silent.len() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let accepted = open_sockets(pid);
    assert!(
        accepted >= 400,
        "the exporter holds {accepted} sockets: connections wait to be accepted"
    );
    for _ in 0..4 {
        let started = Instant::now();
        let status = https_get(&exporter.addr, "/-/healthy", &pem, Duration::from_secs(3));
        assert_eq!(status, Ok(200), "after {:?}", started.elapsed());
    }
    drop(silent);
}

/// How many sockets process `pid` has open.
fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.filter_map(Result::ok)
                .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:")))
                .count()
        })
        .unwrap_or(0)
}

/// Plain HTTP to the TLS port gets a readable `400`, not a raw TLS alert.
#[test]
fn plain_http_to_the_tls_port_gets_400() {
    let dir = temp_dir("plain-to-tls");
    let (web, _) = tls_web_config(&dir);
    let exporter = demo_with_web_config(&web);
    let answer = get(&exporter.addr, "/metrics").expect("an answer");
    assert!(answer.starts_with("HTTP/1.0 400 Bad Request"), "{answer:?}");
    assert!(answer.contains("HTTP request to an HTTPS server"), "{answer:?}");
}

/// Headers must arrive within `--web.read-header-timeout`, whether never started, dripped a
/// byte at a time, or after an answer on a kept-alive connection.
#[test]
fn slow_and_idle_connections_are_closed_at_the_header_deadline() {
    let exporter = Exporter::spawn(
        &[
            "demo",
            "--web.listen-address",
            "127.0.0.1:0",
            "--web.read-header-timeout",
            "1s",
        ],
        None,
    );
    wait_ready(&exporter.addr);
    // Silent.
    let mut silent = TcpStream::connect(&exporter.addr).unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut silent, Duration::from_secs(4)),
        "a silent connection stays open"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed too early: {:?}",
        started.elapsed()
    );
    // Dripping a header.
    let mut drip = TcpStream::connect(&exporter.addr).unwrap();
    let started = Instant::now();
    let mut closed = false;
    for byte in b"GET /metrics HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        .iter()
        .cycle()
        .take(400)
    {
        if drip.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        if started.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    assert!(
        closed || closed_within(&mut drip, Duration::from_secs(1)),
        "a dripping client kept its connection for {:?}",
        started.elapsed()
    );
    // Kept alive after an answer, then idle.
    let mut kept = TcpStream::connect(&exporter.addr).unwrap();
    kept.write_all(format!("GET /-/healthy HTTP/1.1\r\nHost: {}\r\n\r\n", exporter.addr).as_bytes())
        .unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 1024];
    let n = kept.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut kept, Duration::from_secs(4)),
        "an idle kept-alive connection stays open"
    );
}

/// A request head larger than the bound is refused (`431`), not buffered.
#[test]
fn oversized_headers_are_refused() {
    let exporter = Exporter::spawn(&["demo", "--web.listen-address", "127.0.0.1:0"], None);
    let big = "a".repeat(64 * 1024);
    let answer = request(
        &exporter.addr,
        &format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n"),
        Duration::from_secs(5),
    );
    match answer {
        Ok(a) => assert!(a.starts_with("HTTP/1.1 431"), "{}", &a[..a.len().min(200)]),
        // The server may close before reading everything; then the write or read fails.
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "{e}"
        ),
    }
}

/// The plain port speaks HTTP/1.1 only: an HTTP/2 (h2c) preface is not answered in HTTP/2.
#[test]
fn http2_is_not_served_on_the_plain_port() {
    let exporter = Exporter::spawn(&["demo", "--web.listen-address", "127.0.0.1:0"], None);
    let mut tcp = TcpStream::connect(&exporter.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    // An empty SETTINGS frame, as an HTTP/2 client sends next.
    tcp.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    // An HTTP/2 server would answer with its own SETTINGS frame (type 4 at byte 3).
    let h2_settings = answer.len() >= 9 && answer[3] == 4;
    assert!(!h2_settings, "answered in HTTP/2: {answer:?}");
    let text = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || text.starts_with("HTTP/1.1 4"), "{text:?}");
}

/// `POST /-/reload` is refused without `--web.enable-lifecycle` (SIGHUP still reloads).
#[test]
fn reload_needs_the_lifecycle_flag() {
    let exporter = Exporter::spawn(&["demo", "--web.listen-address", "127.0.0.1:0"], None);
    let answer = request(
        &exporter.addr,
        "POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("--web.enable-lifecycle"), "{answer}");
}

/// With the flag, a cross-site form POST is refused, and an anonymous caller is told that a
/// file was rejected but nothing of what it holds (paths, values); the log has the details.
#[test]
fn reload_refuses_cross_site_requests_and_tells_anonymous_callers_no_details() {
    let gateway = Exporter::spawn(&["simulate", "--listen", "127.0.0.1:0"], None);
    let dir = temp_dir("reload");
    let path = dir.join("config.yaml");
    let good = format!(
        "gateway:\n  url: http://{}/m.api\n  app_key: demo\n  app_secret: demo-secret\nshops:\n  - id: S_9601\n",
        gateway.addr
    );
    std::fs::write(&path, &good).unwrap();
    let exporter = Exporter::spawn(
        &[
            "--config",
            path.to_str().unwrap(),
            "--web.listen-address",
            "127.0.0.1:0",
            "--web.enable-lifecycle",
        ],
        None,
    );
    let post = |extra: &str| {
        request(
            &exporter.addr,
            &format!(
                "POST /-/reload HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n{extra}\r\n",
                exporter.addr
            ),
            Duration::from_secs(10),
        )
        .unwrap()
    };
    let cross = post("Origin: http://evil.example\r\nContent-Type: application/x-www-form-urlencoded\r\n");
    assert!(cross.starts_with("HTTP/1.1 403"), "{cross}");
    let fetch = post("Sec-Fetch-Site: cross-site\r\n");
    assert!(fetch.starts_with("HTTP/1.1 403"), "{fetch}");
    let same = post(&format!("Origin: http://{}\r\n", exporter.addr));
    assert!(same.starts_with("HTTP/1.1 200"), "{same}");
    let plain = post("");
    assert!(plain.starts_with("HTTP/1.1 200"), "{plain}");

    std::fs::write(
        &path,
        good.replace("shops:", "poll_interval: not-a-duration-xyzzy\nshops:"),
    )
    .unwrap();
    let rejected = post("");
    assert!(rejected.starts_with("HTTP/1.1 400"), "{rejected}");
    assert!(
        !rejected.contains("xyzzy"),
        "a value reached an anonymous caller: {rejected}"
    );
    assert!(
        !rejected.contains(path.to_str().unwrap()),
        "the path reached an anonymous caller: {rejected}"
    );
    assert!(
        !rejected.contains("poll_interval"),
        "a field reached an anonymous caller: {rejected}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !exporter.log().contains("poll_interval") {
        assert!(Instant::now() < deadline, "the log names the field: {}", exporter.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `healthcheck` (the container HEALTHCHECK and the Kubernetes probes) works with TLS and basic
/// auth on: alive on a 401, ready only with the credentials from the environment.
#[test]
fn the_healthcheck_works_with_tls_and_basic_auth_on() {
    let dir = temp_dir("healthcheck");
    let (web, pem) = tls_web_config(&dir);
    let hash = bcrypt::hash("probe-pass", 4).unwrap();
    let yaml = std::fs::read_to_string(&web).unwrap();
    std::fs::write(&web, format!("{yaml}basic_auth_users:\n  probe: {hash}\n")).unwrap();
    let exporter = demo_with_web_config(&web);
    assert_eq!(
        https_get(&exporter.addr, "/-/healthy", &pem, Duration::from_secs(5)),
        Ok(401)
    );
    let addr = exporter.addr.clone();
    let probe = |args: &[&str], credentials: bool| {
        let mut command = Command::new(BIN);
        command.args(["healthcheck", "--web.listen-address", &addr]).args(args);
        command
            .env_remove("OPRETAIL_HEALTHCHECK_USER")
            .env_remove("OPRETAIL_HEALTHCHECK_PASSWORD");
        if credentials {
            command
                .env("OPRETAIL_HEALTHCHECK_USER", "probe")
                .env("OPRETAIL_HEALTHCHECK_PASSWORD", "probe-pass");
        }
        let out = command.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = probe(&[], false);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("https") && out.contains("401"), "{out}");
    let (code, out) = probe(&["--ready"], false);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("OPRETAIL_HEALTHCHECK_USER"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, out) = probe(&["--ready"], true);
        if code == Some(0) {
            assert!(out.contains("200"), "{out}");
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(exporter);
    let (code, out) = probe(&[], false);
    assert_eq!(code, Some(1), "nothing listens any more: {out}");
}
