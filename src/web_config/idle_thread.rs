//! The one thread that runs bcrypt: started on first use, at the lowest scheduling priority the
//! system gives an unprivileged thread (`SCHED_IDLE` on Linux, else nice 19 on other Unixes), so
//! that a verification uses the CPU only when the threads serving scrapes do not want it. A
//! flood of wrong passwords then costs the scrapes almost nothing: whenever a worker thread
//! wakes up, the scheduler takes the core from bcrypt at once. Jobs run one after another, in
//! the order sent; the caller waits asynchronously for the answer.

use std::sync::mpsc;
use std::sync::{Mutex, OnceLock, PoisonError};

type Job = Box<dyn FnOnce() + Send>;

/// Runs `job` on the idle-priority thread and returns its answer; `None` when the thread could
/// not be started or the job panicked.
pub(crate) async fn run<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(job());
    });
    let sender = sender()?;
    sender.lock().unwrap_or_else(PoisonError::into_inner).send(job).ok()?;
    rx.await.ok()
}

/// The queue of the thread, started on the first call; `None` if it could not be started.
fn sender() -> Option<&'static Mutex<mpsc::Sender<Job>>> {
    static SENDER: OnceLock<Option<Mutex<mpsc::Sender<Job>>>> = OnceLock::new();
    SENDER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("bcrypt".into())
                .spawn(move || {
                    lower_priority();
                    for job in rx {
                        // A panicking job drops its answer's sender; the thread goes on.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })
                .map_err(|e| tracing::error!(error = %e, "cannot start the bcrypt thread"))
                .ok()?;
            Some(Mutex::new(tx))
        })
        .as_ref()
}

/// Gives the calling thread the lowest priority it may take.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid, initialised struct.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0 {
            return;
        }
    }
    #[cfg(unix)]
    {
        // On Linux, `PRIO_PROCESS` with 0 is the calling thread. An error leaves the thread at
        // normal priority, which is still one thread.
        // SAFETY: plain system call on integer arguments.
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
    }
}

/// The scheduling policy of the calling thread (Linux), for tests.
#[cfg(all(test, target_os = "linux"))]
fn policy() -> i32 {
    // SAFETY: pid 0 is the calling thread.
    unsafe { libc::sched_getscheduler(0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_in_order_on_one_named_thread_and_survive_a_panic() {
        let first = run(|| std::thread::current().name().map(str::to_string)).await;
        assert_eq!(first.flatten().as_deref(), Some("bcrypt"));
        assert_eq!(run(|| -> u8 { panic!("job panicked") }).await, None);
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(run(|| std::thread::current().id()).await.expect("ran after the panic"));
        }
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "one thread: {ids:?}");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_thread_runs_at_idle_priority() {
        assert_ne!(policy(), libc::SCHED_IDLE, "the test's own thread is normal");
        assert_eq!(run(policy).await, Some(libc::SCHED_IDLE));
    }
}
