//! The watermark: the highest seqno S such that every seqno <= S is applied on this
//! member (DESIGN.md section 1). Sessions read at it, commits wait for it, consistency
//! levels wait for it.
//!
//! Reading it is one atomic load. Waiting for it is possible from a plain thread
//! ([`Watermark::wait_until`]) and from any async runtime ([`Watermark::reached`]):
//!
//! ```text
//!   advance_to(s): fetch_max(value, s) -> any waiter registered? -> lock waits:
//!                    notify every blocked thread, take and wake every waker <= s
//!   wait_until / poll: count as a waiter -> lock waits -> register -> check value
//! ```
//!
//! A waiter registers *before* it checks the value, and both the registration count and
//! the value use sequentially consistent operations, so an advance that happens between a
//! waiter's check and its sleep always sees the waiter and wakes it: no wake-up is lost.
//! Advances with no waiter take no lock.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tutti_storage::Seqno;

/// The highest seqno S such that every seqno <= S is applied. Share it as
/// `Arc<Watermark>`; it only moves forward.
#[derive(Debug)]
pub struct Watermark {
    /// The state futures keep alive on their own, so a [`WatermarkReached`] is `'static`
    /// and can be awaited by a task that outlives the borrow it was created from.
    shared: Arc<Shared>,
}

/// What the watermark and its futures share.
#[derive(Debug)]
struct Shared {
    /// The watermark's seqno.
    value: AtomicU64,
    /// Blocked threads plus registered wakers. An advance skips the lock when it is zero.
    waiters: AtomicUsize,
    /// Registered wakers, and the lock blocked threads sleep on.
    waits: Mutex<Waits>,
    /// Blocked threads sleep here; every advance with a waiter wakes them all.
    advanced: Condvar,
}

/// The wakers of pending futures, by the seqno they wait for.
#[derive(Debug, Default)]
struct Waits {
    /// Identifies a future among others waiting for the same seqno.
    next_id: u64,
    /// (awaited seqno, future id) -> the waker of its last poll. Ordered, so an advance
    /// takes the ready ones with one split.
    wakers: BTreeMap<(Seqno, u64), Waker>,
}

impl Watermark {
    /// A watermark at [`Seqno::ZERO`]: nothing applied.
    pub fn new() -> Watermark {
        Watermark::at(Seqno::ZERO)
    }

    /// A watermark at `seqno`: a member that recovered its store up to `seqno` starts there.
    pub fn at(seqno: Seqno) -> Watermark {
        Watermark {
            shared: Arc::new(Shared {
                value: AtomicU64::new(seqno.0),
                waiters: AtomicUsize::new(0),
                waits: Mutex::new(Waits::default()),
                advanced: Condvar::new(),
            }),
        }
    }

    /// The watermark now. Every write of every seqno at or below it is visible in the store.
    pub fn get(&self) -> Seqno {
        Seqno(self.shared.value.load(Ordering::Acquire))
    }

    /// Moves the watermark to `seqno` if that is higher (a lower value is ignored), and
    /// wakes every waiter for a seqno at or below it.
    pub fn advance_to(&self, seqno: Seqno) {
        let shared = &*self.shared;
        let previous = shared.value.fetch_max(seqno.0, Ordering::SeqCst);
        if seqno.0 <= previous || shared.waiters.load(Ordering::SeqCst) == 0 {
            return;
        }
        let ready = {
            let mut waits = shared.waits.lock();
            let ready = match seqno.0.checked_add(1) {
                Some(above) => {
                    let pending = waits.wakers.split_off(&(Seqno(above), 0));
                    std::mem::replace(&mut waits.wakers, pending)
                }
                None => std::mem::take(&mut waits.wakers),
            };
            shared.waiters.fetch_sub(ready.len(), Ordering::SeqCst);
            shared.advanced.notify_all();
            ready
        };
        // Wake outside the lock: a waker may run its task inline and poll again.
        for waker in ready.into_values() {
            waker.wake();
        }
    }

    /// Blocks the calling thread until the watermark reaches `seqno` (true) or `timeout`
    /// passes (false, unless it was reached at the last moment).
    pub fn wait_until(&self, seqno: Seqno, timeout: Duration) -> bool {
        if self.get() >= seqno {
            return true;
        }
        let shared = &*self.shared;
        let deadline = Instant::now().checked_add(timeout);
        shared.waiters.fetch_add(1, Ordering::SeqCst);
        let mut waits = shared.waits.lock();
        let reached = loop {
            if shared.value.load(Ordering::SeqCst) >= seqno.0 {
                break true;
            }
            match deadline {
                Some(deadline) => {
                    if shared.advanced.wait_until(&mut waits, deadline).timed_out() {
                        break shared.value.load(Ordering::SeqCst) >= seqno.0;
                    }
                }
                // A timeout too large for the clock is no timeout.
                None => shared.advanced.wait(&mut waits),
            }
        };
        drop(waits);
        shared.waiters.fetch_sub(1, Ordering::SeqCst);
        reached
    }

    /// A future that completes when the watermark reaches `seqno`. It works on any
    /// runtime and from any thread (it is woken by whichever thread advances the
    /// watermark). Dropping it before it completes unregisters it.
    pub fn reached(&self, seqno: Seqno) -> WatermarkReached {
        WatermarkReached {
            shared: Arc::clone(&self.shared),
            seqno,
            registered: None,
        }
    }

    /// Wakers registered by pending futures (tests check that dropped futures leave none).
    #[cfg(test)]
    pub(crate) fn registered_wakers(&self) -> usize {
        self.shared.waits.lock().wakers.len()
    }
}

impl Default for Watermark {
    fn default() -> Watermark {
        Watermark::new()
    }
}

/// The future of [`Watermark::reached`]: completes when the watermark is at or above its
/// seqno.
#[derive(Debug)]
#[must_use = "a future does nothing unless awaited"]
pub struct WatermarkReached {
    /// The watermark's state, kept alive by the future.
    shared: Arc<Shared>,
    /// The seqno awaited.
    seqno: Seqno,
    /// The key of this future's waker while one is registered.
    registered: Option<(Seqno, u64)>,
}

impl WatermarkReached {
    /// Takes this future's waker out of the registry, if an advance has not already.
    fn unregister(&mut self) {
        if let Some(key) = self.registered.take() {
            if self.shared.waits.lock().wakers.remove(&key).is_some() {
                self.shared.waiters.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

impl Future for WatermarkReached {
    type Output = ();

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let shared = Arc::clone(&this.shared);
        if shared.value.load(Ordering::Acquire) >= this.seqno.0 {
            this.unregister();
            return Poll::Ready(());
        }
        let mut waits = shared.waits.lock();
        let entry = match this.registered {
            // Still registered: refresh the waker, the task may have moved.
            Some(key) if waits.wakers.contains_key(&key) => waits.wakers.get_mut(&key),
            // Never registered, or taken by an advance that the check below will see.
            _ => None,
        };
        if let Some(waker) = entry {
            waker.clone_from(context.waker());
        } else {
            shared.waiters.fetch_add(1, Ordering::SeqCst);
            let key = (this.seqno, waits.next_id);
            waits.next_id += 1;
            waits.wakers.insert(key, context.waker().clone());
            this.registered = Some(key);
        }
        // Checked after registering: an advance from now on finds the waker.
        if shared.value.load(Ordering::SeqCst) >= this.seqno.0 {
            drop(waits);
            this.unregister();
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for WatermarkReached {
    fn drop(&mut self) {
        self.unregister();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;
    use std::thread;

    /// A waker that counts its wakes.
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll_once(future: &mut WatermarkReached, waker: &Waker) -> Poll<()> {
        Pin::new(future).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn advance_is_monotonic() {
        let watermark = Watermark::new();
        assert_eq!(watermark.get(), Seqno::ZERO);
        watermark.advance_to(Seqno(5));
        watermark.advance_to(Seqno(3));
        assert_eq!(watermark.get(), Seqno(5));
        watermark.advance_to(Seqno(6));
        assert_eq!(watermark.get(), Seqno(6));
    }

    #[test]
    fn wait_until_times_out_below_and_returns_when_passed() {
        let watermark = Arc::new(Watermark::new());
        assert!(!watermark.wait_until(Seqno(1), Duration::from_millis(20)));
        let advancer = {
            let watermark = Arc::clone(&watermark);
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(20));
                watermark.advance_to(Seqno(2));
                thread::sleep(Duration::from_millis(20));
                watermark.advance_to(Seqno(10));
            })
        };
        assert!(watermark.wait_until(Seqno(7), Duration::from_secs(10)));
        assert!(watermark.get() >= Seqno(7));
        advancer.join().expect("advancer");
        assert!(watermark.wait_until(Seqno(10), Duration::ZERO));
        assert!(!watermark.wait_until(Seqno(11), Duration::from_millis(5)));
    }

    #[test]
    fn wait_until_never_misses_an_advance() {
        // Many rounds of a waiter racing an advance to the exact seqno it waits for.
        let watermark = Arc::new(Watermark::new());
        for round in 1..=2000 {
            let target = Seqno(round);
            let advancer = {
                let watermark = Arc::clone(&watermark);
                thread::spawn(move || watermark.advance_to(target))
            };
            assert!(
                watermark.wait_until(target, Duration::from_secs(10)),
                "round {round}: the wake-up was lost"
            );
            advancer.join().expect("advancer");
        }
    }

    #[test]
    fn reached_wakes_only_when_passed() {
        let watermark = Watermark::new();
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&counter));
        let mut future = watermark.reached(Seqno(3));
        assert!(poll_once(&mut future, &waker).is_pending());
        assert_eq!(watermark.registered_wakers(), 1);
        watermark.advance_to(Seqno(2));
        assert_eq!(counter.0.load(Ordering::SeqCst), 0, "woken below its seqno");
        assert!(poll_once(&mut future, &waker).is_pending());
        assert_eq!(watermark.registered_wakers(), 1, "a re-poll registers once");
        watermark.advance_to(Seqno(3));
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(poll_once(&mut future, &waker).is_ready());
        assert_eq!(watermark.registered_wakers(), 0);
        // Already reached: ready at the first poll, nothing registered.
        let mut done = watermark.reached(Seqno(1));
        assert!(poll_once(&mut done, &waker).is_ready());
        assert_eq!(watermark.registered_wakers(), 0);
    }

    #[test]
    fn dropped_futures_leave_no_waker() {
        let watermark = Watermark::new();
        let waker = Waker::from(Arc::new(CountingWaker(AtomicUsize::new(0))));
        for seqno in 1..=1000 {
            let mut future = watermark.reached(Seqno(seqno));
            assert!(poll_once(&mut future, &waker).is_pending());
        }
        assert_eq!(watermark.registered_wakers(), 0);
        assert_eq!(watermark.shared.waiters.load(Ordering::SeqCst), 0);
        // With no waiter left, an advance takes the lock-free path.
        watermark.advance_to(Seqno(5));
        assert_eq!(watermark.get(), Seqno(5));
    }

    #[test]
    fn reached_completes_in_a_monoio_task_advanced_from_another_thread() {
        let watermark = Arc::new(Watermark::new());
        let advancer = {
            let watermark = Arc::clone(&watermark);
            thread::spawn(move || {
                for seqno in 1..=100 {
                    thread::sleep(Duration::from_micros(200));
                    watermark.advance_to(Seqno(seqno));
                }
            })
        };
        let mut runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .expect("monoio runtime");
        let reached = runtime.block_on({
            let watermark = Arc::clone(&watermark);
            async move {
                let task = monoio::spawn(watermark.reached(Seqno(100)));
                task.await;
                watermark.get()
            }
        });
        assert_eq!(reached, Seqno(100));
        advancer.join().expect("advancer");
        assert_eq!(watermark.registered_wakers(), 0);
    }
}
