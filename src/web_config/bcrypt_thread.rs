//! The one thread that runs bcrypt: started on first use, at the lowest nice value (19, on
//! Unix), so that a verification gives way to the threads serving scrapes: a flood of wrong
//! passwords then costs the scrapes little, since a worker thread that wakes up takes the core
//! from bcrypt. Not `SCHED_IDLE`: on a machine kept busy by others, that would leave a right
//! password unchecked for as long as the machine stays busy; at nice 19 bcrypt still gets a
//! share. Jobs run one after another, in the order sent; the caller waits asynchronously for
//! the answer.

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

/// Gives the calling thread the lowest nice value. On Linux, `PRIO_PROCESS` with 0 is the
/// calling thread; an error leaves the thread at normal priority, which is still one thread.
fn lower_priority() {
    #[cfg(unix)]
    {
        // SAFETY: a plain system call on integer arguments.
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICE) };
    }
}

/// The nice value of the thread.
#[cfg(unix)]
const NICE: libc::c_int = 19;

/// The nice value of the calling thread, for tests.
#[cfg(all(test, unix))]
fn nice() -> libc::c_int {
    // SAFETY: a plain system call on integer arguments.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
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

    #[cfg(unix)]
    #[tokio::test]
    async fn the_thread_runs_at_the_lowest_nice_value() {
        assert_ne!(nice(), NICE, "the test's own thread is normal");
        assert_eq!(run(nice).await, Some(NICE));
    }
}
