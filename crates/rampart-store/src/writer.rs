//! [`Writer`]: the bounded batch writer between the request path and the store.
//!
//! The request path calls [`Writer::try_send`], which never blocks and never allocates beyond the
//! record: when the queue is full the record is handed back as [`TrySendError::Full`] and the
//! caller counts the drop. One named thread (`rampart-store-writer`) owns the receiving end and
//! writes records in batches (up to `batch_size`, or whatever arrived within `flush_interval` of
//! the batch's first record), one [`Store::write_batch`] call (one SQLite transaction) per batch.
//!
//! The thread is not woken per record. It wakes for the first record of a batch, then sleeps
//! until the batch's deadline; a producer wakes it early only once a full batch is queued (and
//! a control call always does). Under load that is one wake per batch instead of one futex wake
//! and context switch per request, which on a gateway pinned to one core was several percent
//! of its CPU.
//!
//! Invariants:
//! - Memory is bounded: at most `capacity` queued records plus one batch in the writer.
//! - Nothing is lost silently. A batch that fails with a transient error (disk full, I/O error,
//!   database locked) is kept and retried with backoff (50 ms doubling to 5 s) for as long as the
//!   writer runs; meanwhile the queue fills and the request path counts drops. A batch SQLite
//!   rejects for good (constraint, oversized value) is retried record by record so only the bad
//!   records are lost, each logged and counted in [`WriterStats::lost`]. On `close()`, a failing
//!   store gets a few more attempts, then the writer gives up and `close()` returns
//!   [`StoreError::Lost`] with the number of records lost (also logged).
//! - Order: `feedback()`, `flush()` and `close()` take effect after every record whose `try_send`
//!   returned before the call. They travel on a separate unbounded control channel (there is at
//!   most one message per waiting caller); when the writer sees one, it first drains the record
//!   queue (at most `capacity` messages, which covers everything queued before the control
//!   message) and writes it.
//! - A panicking store is caught (`catch_unwind`) and treated as a transient failure; the thread
//!   keeps going.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rampart_core::config::StoreConfig;
use rampart_core::record::{Feedback, Pair, RequestEvent};
use tokio::sync::oneshot;

use crate::Store;
use crate::error::{Result, StoreError};

/// First wait after a failed batch; doubles up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// After this many consecutive failures of one batch, waiting `flush()`/`feedback()` callers get
/// [`StoreError::Unavailable`] instead of waiting for the store to come back.
const FAIL_FAST_AFTER: u32 = 3;
/// Attempts per batch once `close()` was called (backoff restarts at [`INITIAL_BACKOFF`]).
const CLOSE_ATTEMPTS: u32 = 5;

/// What the request path hands to the writer.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "moved once into a boxed queue slot; boxing here would cost callers an API wart"
)]
pub enum Record {
    Event(RequestEvent),
    Pair(Pair),
}

/// Sizing of the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterConfig {
    /// Records the queue holds before `try_send` says [`TrySendError::Full`] (at least 1).
    pub capacity: usize,
    /// Records per transaction, at most (at least 1).
    pub batch_size: usize,
    /// How long a partial batch waits for more records before it is written.
    pub flush_interval: Duration,
}

/// The config's defaults (`store.queue_capacity`, `store.batch_size`, `store.flush_interval`).
impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            capacity: StoreConfig::DEFAULT_QUEUE_CAPACITY,
            batch_size: StoreConfig::DEFAULT_BATCH_SIZE,
            flush_interval: StoreConfig::DEFAULT_FLUSH_INTERVAL,
        }
    }
}

impl From<RequestEvent> for Record {
    fn from(e: RequestEvent) -> Self {
        Record::Event(e)
    }
}

impl From<Pair> for Record {
    fn from(p: Pair) -> Self {
        Record::Pair(p)
    }
}

impl From<&StoreConfig> for WriterConfig {
    fn from(c: &StoreConfig) -> Self {
        WriterConfig {
            capacity: c.queue_capacity,
            batch_size: c.batch_size,
            flush_interval: c.flush_interval,
        }
    }
}

/// Why `try_send` refused a record; the caller counts drops per reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TrySendError {
    /// The queue is full (the store is slow or failing).
    #[error("store queue full")]
    Full,
    /// The writer was closed or its thread is gone.
    #[error("store writer closed")]
    Closed,
}

impl TrySendError {
    /// A label for a `reason` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            TrySendError::Full => "queue_full",
            TrySendError::Closed => "writer_closed",
        }
    }
}

/// Counters of a writer since it was spawned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub written_events: u64,
    pub written_pairs: u64,
    /// Failed write attempts (each retry of a failing batch counts).
    pub write_errors: u64,
    /// Successful batch writes.
    pub batches: u64,
    /// Records accepted by `try_send` but never written (rejected by the store for good, or given
    /// up on at close).
    pub lost: u64,
    /// Records accepted and not yet written or lost (approximate).
    pub queued: u64,
}

enum Msg {
    /// Boxed so each of the `capacity` queue slots is a pointer, not a ~700-byte record.
    Record(Box<Record>),
    /// Sent by control callers so a writer blocked on the record queue looks at the control queue.
    Wake,
}

enum Control {
    /// A full batch is queued: write it now rather than at the batch's deadline.
    Nudge,
    Feedback(Feedback, oneshot::Sender<Result<bool>>),
    Flush(oneshot::Sender<Result<()>>),
    Close(oneshot::Sender<Result<()>>),
}

#[derive(Default)]
struct Shared {
    closed: AtomicBool,
    /// `try_send` calls between their `closed` check and their send; `close` waits for zero so no
    /// record slips into the queue after the final drain.
    inflight: AtomicUsize,
    /// A `Msg::Wake` is queued and the writer has not looked at the control queue since.
    wake_pending: AtomicBool,
    /// A [`Control::Nudge`] is queued and the writer has not drained since.
    nudge_pending: AtomicBool,
    accepted: AtomicU64,
    /// Records the writer has taken off the queue.
    taken: AtomicU64,
    written_events: AtomicU64,
    written_pairs: AtomicU64,
    write_errors: AtomicU64,
    batches: AtomicU64,
    lost: AtomicU64,
}

struct Inner {
    tx: SyncSender<Msg>,
    batch_size: u64,
    ctrl: mpsc::Sender<Control>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Handle to the batch writer; clones share the same queue and thread.
#[derive(Clone)]
pub struct Writer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Writer {
    /// Start the writer thread. If the OS refuses a thread, the error is logged and the returned
    /// writer is closed (every `try_send` says [`TrySendError::Closed`]); use [`Writer::try_spawn`]
    /// to handle that yourself.
    pub fn spawn(store: Arc<dyn Store>, cfg: WriterConfig) -> Writer {
        match Self::try_spawn(store, cfg) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "could not start the store writer thread; records will be dropped");
                let (tx, _) = mpsc::sync_channel(1);
                let (ctrl, _) = mpsc::channel();
                let shared = Arc::new(Shared::default());
                shared.closed.store(true, SeqCst);
                Writer {
                    inner: Arc::new(Inner {
                        tx,
                        batch_size: 1,
                        ctrl,
                        shared,
                        thread: Mutex::new(None),
                    }),
                }
            }
        }
    }

    /// Start the writer thread, or say why not.
    pub fn try_spawn(store: Arc<dyn Store>, cfg: WriterConfig) -> Result<Writer> {
        let capacity = cfg.capacity.max(1);
        let batch_size = cfg.batch_size.max(1);
        let (tx, rx) = mpsc::sync_channel(capacity);
        let (ctrl_tx, ctrl_rx) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let worker = Worker {
            store,
            rx,
            ctrl: ctrl_rx,
            shared: shared.clone(),
            capacity,
            batch_size,
            flush_interval: cfg.flush_interval,
            batch: Vec::new(),
            pending: VecDeque::new(),
            serving: VecDeque::new(),
            closing: false,
            gave_up: None,
            close_lost: 0,
        };
        let handle = std::thread::Builder::new()
            .name("rampart-store-writer".into())
            .spawn(move || worker.run())?;
        Ok(Writer {
            inner: Arc::new(Inner {
                tx,
                batch_size: batch_size as u64,
                ctrl: ctrl_tx,
                shared,
                thread: Mutex::new(Some(handle)),
            }),
        })
    }

    /// Queue a record for writing. Never blocks.
    pub fn try_send(&self, r: Record) -> std::result::Result<(), TrySendError> {
        let s = &self.inner.shared;
        s.inflight.fetch_add(1, SeqCst);
        let out = if s.closed.load(SeqCst) {
            Err(TrySendError::Closed)
        } else {
            match self.inner.tx.try_send(Msg::Record(Box::new(r))) {
                Ok(()) => {
                    let accepted = s.accepted.fetch_add(1, SeqCst) + 1;
                    let queued = accepted.saturating_sub(s.taken.load(SeqCst));
                    if queued >= self.inner.batch_size && !s.nudge_pending.swap(true, SeqCst) {
                        let _ = self.inner.ctrl.send(Control::Nudge);
                    }
                    Ok(())
                }
                Err(mpsc::TrySendError::Full(_)) => Err(TrySendError::Full),
                Err(mpsc::TrySendError::Disconnected(_)) => Err(TrySendError::Closed),
            }
        };
        s.inflight.fetch_sub(1, SeqCst);
        out
    }

    /// Store feedback after everything enqueued before it is written (so feedback for a
    /// just-served request finds it). Goes through the writer thread, in order; `Ok(false)` when
    /// the request id is unknown.
    ///
    /// While the store is failing this waits for a few retries, then returns
    /// [`StoreError::Unavailable`]; callers on a request path should still bound it with a timeout.
    pub async fn feedback(&self, fb: Feedback) -> Result<bool> {
        let (tx, rx) = oneshot::channel();
        self.control(Control::Feedback(fb, tx))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Wait until everything enqueued before this call is written (or, for records the store
    /// rejects for good, given up on and counted in [`WriterStats::lost`]). Same waiting rule as
    /// [`Writer::feedback`] while the store is failing.
    pub async fn flush(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.control(Control::Flush(tx))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Stop accepting, write everything queued, join the thread. Idempotent: later (or concurrent)
    /// calls return `Ok(())` once the thread is gone; the first call reports any loss.
    pub async fn close(&self) -> Result<()> {
        let inner = &self.inner;
        inner.shared.closed.store(true, SeqCst);
        let (tx, rx) = oneshot::channel();
        let result = if inner.ctrl.send(Control::Close(tx)).is_ok() {
            self.wake();
            // A dropped reply means the thread finished on someone else's close.
            rx.await.unwrap_or(Ok(()))
        } else {
            Ok(())
        };
        let handle = inner
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // The thread has replied (or is gone), so this join returns at once.
        if let Some(h) = handle
            && h.join().is_err()
        {
            return Err(StoreError::Panicked(
                "the store writer thread panicked".into(),
            ));
        }
        result
    }

    /// Whether the writer refuses work: `close()` was called, or its thread has stopped. For
    /// `/readyz`.
    pub fn is_closed(&self) -> bool {
        if self.inner.shared.closed.load(SeqCst) {
            return true;
        }
        match &*self
            .inner
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some(h) => h.is_finished(),
            None => true,
        }
    }

    pub fn stats(&self) -> WriterStats {
        let s = &self.inner.shared;
        let written_events = s.written_events.load(SeqCst);
        let written_pairs = s.written_pairs.load(SeqCst);
        let lost = s.lost.load(SeqCst);
        WriterStats {
            written_events,
            written_pairs,
            write_errors: s.write_errors.load(SeqCst),
            batches: s.batches.load(SeqCst),
            lost,
            queued: s
                .accepted
                .load(SeqCst)
                .saturating_sub(written_events + written_pairs + lost),
        }
    }

    fn control(&self, c: Control) -> Result<()> {
        if self.inner.shared.closed.load(SeqCst) {
            return Err(StoreError::Closed);
        }
        self.inner.ctrl.send(c).map_err(|_| StoreError::Closed)?;
        self.wake();
        Ok(())
    }

    fn wake(&self) {
        if !self.inner.shared.wake_pending.swap(true, SeqCst) {
            // When the queue is full the writer is not waiting on it, so a lost wake is harmless.
            let _ = self.inner.tx.try_send(Msg::Wake);
        }
    }
}

/// The writer thread's state.
struct Worker {
    store: Arc<dyn Store>,
    rx: Receiver<Msg>,
    ctrl: Receiver<Control>,
    shared: Arc<Shared>,
    capacity: usize,
    batch_size: usize,
    flush_interval: Duration,
    /// Records received and not yet written.
    batch: Vec<Record>,
    /// Control messages received, not yet served.
    pending: VecDeque<Control>,
    /// Control messages being served: the record queue is drained before they are answered.
    serving: VecDeque<Control>,
    /// `close()` was called, or every handle is gone: bounded retries from now on.
    closing: bool,
    /// Set once a write was given up on during close; later writes are not attempted.
    gave_up: Option<StoreError>,
    close_lost: u64,
}

enum Flow {
    Continue,
    Stop,
}

impl Worker {
    fn run(mut self) {
        tracing::debug!("store writer started");
        let mut deadline: Option<Instant> = None;
        loop {
            self.pull_control();
            if !self.pending.is_empty() {
                deadline = None;
                match self.serve_pending() {
                    Flow::Continue => continue,
                    Flow::Stop => break,
                }
            }
            let Some(d) = deadline else {
                // Idle: the first record opens a batch.
                match self.rx.recv() {
                    Ok(Msg::Record(r)) => {
                        self.take(*r);
                        deadline = Some(Instant::now() + self.flush_interval);
                    }
                    Ok(Msg::Wake) => {}
                    Err(_) => {
                        // Every handle was dropped without close(): write what is left and stop.
                        let _ = self.shutdown();
                        break;
                    }
                }
                continue;
            };
            // A batch is open: sleep until its deadline, woken early by a control call or by a
            // producer once a full batch is queued, then write everything queued.
            // A nudge already consumed (by `pull_control`) shows as the backlog.
            let s = &self.shared;
            let backlog = s.accepted.load(SeqCst).saturating_sub(s.taken.load(SeqCst));
            if backlog < self.batch_size as u64 {
                let left = d.saturating_duration_since(Instant::now());
                if let Ok(c) = self.ctrl.recv_timeout(left) {
                    self.defer(c);
                }
            }
            self.drain(Some(self.capacity));
            deadline = None;
        }
        tracing::debug!("store writer stopped");
    }

    /// Add a record to the batch; write the batch once it is full.
    fn take(&mut self, r: Record) {
        self.shared.taken.fetch_add(1, SeqCst);
        self.batch.push(r);
        if self.batch.len() >= self.batch_size {
            self.write_current();
        }
    }

    /// Keep a control message for [`Worker::serve_pending`]; a nudge needs no answer, and once
    /// it is consumed producers may send the next one.
    fn defer(&mut self, c: Control) {
        match c {
            Control::Nudge => self.shared.nudge_pending.store(false, SeqCst),
            c => self.pending.push_back(c),
        }
    }

    fn pull_control(&mut self) {
        self.shared.wake_pending.store(false, SeqCst);
        while let Ok(c) = self.ctrl.try_recv() {
            self.defer(c);
        }
    }

    /// Write what was queued before the pending control messages, then answer them in order.
    fn serve_pending(&mut self) -> Flow {
        self.serving.append(&mut self.pending);
        // Everything queued before these messages is in the record queue now; the queue holds at
        // most `capacity` messages, so that many receives reach past all of it.
        self.drain(Some(self.capacity));
        while let Some(c) = self.serving.pop_front() {
            match c {
                Control::Flush(reply) => {
                    let _ = reply.send(Ok(()));
                }
                Control::Feedback(fb, reply) => {
                    let r = self.insert_feedback(&fb);
                    let _ = reply.send(r);
                }
                Control::Close(reply) => {
                    let r = self.shutdown();
                    let _ = reply.send(r);
                    return Flow::Stop;
                }
                Control::Nudge => {}
            }
        }
        Flow::Continue
    }

    /// Receive up to `max` messages (all, when `None`) without waiting, writing full batches as
    /// they form and the remainder at the end.
    fn drain(&mut self, max: Option<usize>) {
        self.shared.nudge_pending.store(false, SeqCst);
        let mut n = 0usize;
        while max.is_none_or(|m| n < m) {
            match self.rx.try_recv() {
                Ok(Msg::Record(r)) => self.take(*r),
                Ok(Msg::Wake) => {}
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
            n += 1;
        }
        self.write_current();
    }

    /// Stop: wait out racing `try_send`s, write everything, answer whoever is still waiting.
    fn shutdown(&mut self) -> Result<()> {
        self.closing = true;
        while self.shared.inflight.load(SeqCst) > 0 {
            std::thread::yield_now();
        }
        self.drain(None);
        // Whoever is still waiting asked after close(): the writer is closed for them.
        self.pull_control();
        for c in self.serving.drain(..).chain(self.pending.drain(..)) {
            match c {
                Control::Feedback(_, reply) => {
                    let _ = reply.send(Err(StoreError::Closed));
                }
                Control::Flush(reply) => {
                    let _ = reply.send(Err(StoreError::Closed));
                }
                // A concurrent close(): the first one reports any loss.
                Control::Close(reply) => {
                    let _ = reply.send(Ok(()));
                }
                Control::Nudge => {}
            }
        }
        match self.gave_up.take() {
            Some(source) => {
                tracing::error!(lost = self.close_lost, error = %source, "store writer closed with records lost");
                Err(StoreError::Lost {
                    lost: self.close_lost,
                    source: Box::new(source),
                })
            }
            None => Ok(()),
        }
    }

    fn insert_feedback(&self, fb: &Feedback) -> Result<bool> {
        match catch_unwind(AssertUnwindSafe(|| self.store.insert_feedback(fb))) {
            Ok(r) => r,
            Err(p) => Err(StoreError::Panicked(panic_message(p.as_ref()))),
        }
    }

    /// Write the current batch (however small) with retries; on return the batch is empty.
    fn write_current(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut events = Vec::new();
        let mut pairs = Vec::new();
        for r in self.batch.drain(..) {
            match r {
                Record::Event(e) => events.push(e),
                Record::Pair(p) => pairs.push(p),
            }
        }
        self.write_with_retry(&events, &pairs, true);
    }

    /// One attempt; a panic in the store becomes an error.
    fn attempt(&self, events: &[RequestEvent], pairs: &[Pair]) -> Result<()> {
        match catch_unwind(AssertUnwindSafe(|| self.store.write_batch(events, pairs))) {
            Ok(r) => r,
            Err(p) => Err(StoreError::Panicked(panic_message(p.as_ref()))),
        }
    }

    fn write_with_retry(&mut self, events: &[RequestEvent], pairs: &[Pair], isolate: bool) {
        let n = (events.len() + pairs.len()) as u64;
        if let Some(e) = &self.gave_up {
            tracing::error!(records = n, error = %e, "store writer gave up during close; records lost");
            self.lose(n);
            return;
        }
        let mut backoff = INITIAL_BACKOFF;
        let mut failures = 0u32;
        let mut closing_attempts = 0u32;
        loop {
            let err = match self.attempt(events, pairs) {
                Ok(()) => {
                    let s = &self.shared;
                    s.written_events.fetch_add(events.len() as u64, SeqCst);
                    s.written_pairs.fetch_add(pairs.len() as u64, SeqCst);
                    s.batches.fetch_add(1, SeqCst);
                    if failures > 0 {
                        tracing::info!(records = n, failures, "store batch written after retries");
                    }
                    return;
                }
                Err(e) => e,
            };
            self.shared.write_errors.fetch_add(1, SeqCst);
            failures += 1;
            if !err.is_transient() {
                if isolate && n > 1 {
                    tracing::error!(records = n, error = %err, "store rejected a batch; writing its records one by one");
                    for e in events {
                        self.write_with_retry(std::slice::from_ref(e), &[], false);
                    }
                    for p in pairs {
                        self.write_with_retry(&[], std::slice::from_ref(p), false);
                    }
                } else {
                    let ids: Vec<&str> = events
                        .iter()
                        .map(|e| e.request_id.as_str())
                        .chain(pairs.iter().map(|p| p.request_id.as_str()))
                        .collect();
                    tracing::error!(records = n, request_ids = ?ids, error = %err, "store rejected records; they are lost");
                    self.lose(n);
                }
                return;
            }
            if self.closing {
                if closing_attempts == 0 {
                    backoff = INITIAL_BACKOFF;
                }
                closing_attempts += 1;
                if closing_attempts >= CLOSE_ATTEMPTS {
                    tracing::error!(records = n, attempts = failures, error = %err, "store writer closing; giving up on a batch");
                    self.lose(n);
                    self.gave_up = Some(err);
                    return;
                }
            }
            tracing::error!(records = n, attempt = failures, retry_in = ?backoff, error = %err, "store batch write failed; will retry");
            if failures >= FAIL_FAST_AFTER {
                self.fail_waiting(&err);
            }
            self.sleep_collecting_control(backoff, failures >= FAIL_FAST_AFTER, &err);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn lose(&mut self, n: u64) {
        self.shared.lost.fetch_add(n, SeqCst);
        if self.closing {
            self.close_lost += n;
        }
    }

    /// Answer waiting flush/feedback callers with an error instead of making them wait out an
    /// outage. Close requests keep waiting: they are served when this batch is done.
    fn fail_waiting(&mut self, err: &StoreError) {
        let msg = err.to_string();
        let mut keep = VecDeque::new();
        for c in self.serving.drain(..).chain(self.pending.drain(..)) {
            match c {
                Control::Feedback(_, reply) => {
                    let _ = reply.send(Err(StoreError::Unavailable(msg.clone())));
                }
                Control::Flush(reply) => {
                    let _ = reply.send(Err(StoreError::Unavailable(msg.clone())));
                }
                close @ Control::Close(_) => keep.push_back(close),
                Control::Nudge => {}
            }
        }
        // Close requests go to `pending`: they will drain whatever is queued after this batch.
        self.pending = keep;
    }

    /// Wait `dur` before the next attempt, still taking control messages (a close shortens the
    /// wait so shutdown is not held up by a long backoff).
    fn sleep_collecting_control(&mut self, dur: Duration, fail_fast: bool, err: &StoreError) {
        let until = Instant::now() + dur;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self.ctrl.recv_timeout(left) {
                Ok(c) => {
                    let is_close = matches!(c, Control::Close(_));
                    self.defer(c);
                    if fail_fast {
                        self.fail_waiting(err);
                    }
                    if is_close && !self.closing {
                        self.closing = true;
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => {
                    // Every handle is gone: finish up with bounded retries.
                    if !self.closing {
                        self.closing = true;
                        return;
                    }
                    std::thread::sleep(left);
                    return;
                }
            }
        }
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
