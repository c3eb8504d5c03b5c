//! The few wake-up primitives the transport's tasks wait on.
//!
//! All but [`CrossThreadWakeup`] live on the transport's own runtime thread: they use
//! `Cell`/`RefCell`, never atomics or locks, because nothing else touches them. They never
//! block a thread; they only park a task until another task on the same thread (or, for
//! [`CrossThreadWakeup`], another thread) says so.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

/// Registers `cx`'s waker in `wakers` unless the same task is already there, so a task
/// that waits on the same wake-up many times keeps one entry, not one per poll.
fn register(wakers: &RefCell<Vec<Waker>>, cx: &Context<'_>) {
    let mut wakers = wakers.borrow_mut();
    if !wakers.iter().any(|waker| waker.will_wake(cx.waker())) {
        wakers.push(cx.waker().clone());
    }
}

/// A flag that is set once and wakes every task waiting for it: "this connection is
/// closed", "the transport is stopping", "this peer was removed".
///
/// Each wait registers under its own key and removes itself when it ends, so a latch
/// that lives as long as the transport (`stopping`, watched by every handshake) holds
/// only the waits in progress, not one waker per connection ever accepted.
#[derive(Default)]
pub(crate) struct Latch {
    set: Cell<bool>,
    next_key: Cell<u64>,
    waiters: RefCell<Vec<(u64, Waker)>>,
}

impl Latch {
    /// Sets the flag and wakes every waiter. Setting it again does nothing.
    pub(crate) fn set(&self) {
        if self.set.replace(true) {
            return;
        }
        for (_, waker) in self.waiters.take() {
            waker.wake();
        }
    }

    /// Whether the flag is set.
    pub(crate) fn is_set(&self) -> bool {
        self.set.get()
    }

    fn register(&self, key: u64, cx: &Context<'_>) {
        let mut waiters = self.waiters.borrow_mut();
        match waiters.iter_mut().find(|(existing, _)| *existing == key) {
            Some((_, waker)) => waker.clone_from(cx.waker()),
            None => waiters.push((key, cx.waker().clone())),
        }
    }
}

/// One wait on a [`Latch`]; dropping it removes its waker.
struct LatchWait<'a> {
    latch: &'a Latch,
    key: u64,
}

impl<'a> LatchWait<'a> {
    fn new(latch: &'a Latch) -> Self {
        let key = latch.next_key.get();
        latch.next_key.set(key + 1);
        Self { latch, key }
    }

    fn poll_set(&self, cx: &Context<'_>) -> Poll<()> {
        if self.latch.is_set() {
            return Poll::Ready(());
        }
        self.latch.register(self.key, cx);
        Poll::Pending
    }
}

impl Drop for LatchWait<'_> {
    fn drop(&mut self) {
        self.latch
            .waiters
            .borrow_mut()
            .retain(|(key, _)| *key != self.key);
    }
}

/// Runs `future` until it completes or `latch` is set, whichever comes first; `None`
/// means the latch won and `future` was dropped (an in-flight io_uring operation is then
/// cancelled by monoio).
pub(crate) async fn unless_set<F: Future>(latch: &Latch, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let wait = LatchWait::new(latch);
    std::future::poll_fn(|cx| {
        if latch.is_set() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        wait.poll_set(cx).map(|()| None)
    })
    .await
}

/// A re-armable wake-up for one waiting task: "there are frames to write", "a peer's
/// connection went down". A notification that arrives while nobody waits is remembered,
/// so it is never lost between a check and the wait that follows it.
#[derive(Default)]
pub(crate) struct Wakeup {
    pending: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl Wakeup {
    /// Wakes the waiting task, or the next one to wait.
    pub(crate) fn notify(&self) {
        self.pending.set(true);
        for waker in self.waiters.take() {
            waker.wake();
        }
    }

    /// Waits for the next notification and consumes it.
    pub(crate) async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if self.pending.replace(false) {
                return Poll::Ready(());
            }
            register(&self.waiters, cx);
            Poll::Pending
        })
        .await;
    }
}

/// [`Wakeup`] for a notifier on another thread: other cores hand frames to the transport
/// thread through a lock-free queue and then call [`notify`](Self::notify). The waker is
/// monoio's, which (with its `sync` feature) routes a wake from a foreign thread to the
/// owning runtime and unparks it.
#[derive(Default)]
pub(crate) struct CrossThreadWakeup {
    pending: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl CrossThreadWakeup {
    /// Wakes the waiting task; callable from any thread.
    pub(crate) fn notify(&self) {
        // Release pairs with the Acquire swap in `wait`: the waiter sees every queue push
        // made before this store.
        self.pending.store(true, Ordering::Release);
        if let Some(waker) = self.waker.lock().take() {
            waker.wake();
        }
    }

    /// Waits for the next notification and consumes it; called from the owning thread.
    pub(crate) async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if self.pending.swap(false, Ordering::Acquire) {
                return Poll::Ready(());
            }
            *self.waker.lock() = Some(cx.waker().clone());
            // A notify between the swap above and storing the waker found no waker to
            // wake; checking again after storing it closes that window.
            if self.pending.swap(false, Ordering::Acquire) {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await;
    }
}
