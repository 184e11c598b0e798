//! A device's run queue: requests wait here for a worker. `next_batch` picks the oldest request
//! that is ready and gathers compatible requests of the same model up to BATCHSIZE; with
//! MINBATCHSIZE it waits for enough rows (or MINBATCHTIMEOUT); TIMEOUT drops requests still queued.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::{AcqRel, Relaxed}};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::batch::{ActiveGuard, Batch, RunOutcome, RunRequest};

struct State {
    requests: VecDeque<RunRequest>,
    closed: bool,
}

pub struct RunQueue {
    pub device: String,
    state: Mutex<State>,
    cv: Condvar,
    /// Requests ever queued / batches handed to workers (INFO ai).
    pub queued_total: AtomicU64,
    pub batches_total: AtomicU64,
    /// Batches taken and not finished yet.
    active: Arc<AtomicUsize>,
    /// Requests of a fast batching model wait for the event loop to run them as one batch at the
    /// end of its current pass (set from the first such request until the loop drains them).
    inline_pending: AtomicBool,
}

/// What a scan of the queue decided.
enum Pick {
    Run(Vec<usize>),
    /// Nothing ready; wake at this instant at the latest (MINBATCHTIMEOUT or TIMEOUT).
    Wait(Option<Instant>),
}

impl RunQueue {
    pub fn new(device: &str) -> Self {
        RunQueue {
            device: device.to_string(),
            state: Mutex::new(State { requests: VecDeque::new(), closed: false }),
            cv: Condvar::new(),
            queued_total: AtomicU64::new(0),
            batches_total: AtomicU64::new(0),
            active: Arc::new(AtomicUsize::new(0)),
            inline_pending: AtomicBool::new(false),
        }
    }

    /// Whether `r` may run right now on the calling thread instead of waiting for a worker: the
    /// model is fast (recent runs under `max_us`), does not batch, and nothing else is queued or
    /// running on this device (so running it now reorders nothing).
    pub fn can_run_inline(&self, r: &RunRequest, max_us: u64) -> bool {
        r.is_fast(max_us)
            && r.work.batching().0 == 0
            && self.active.load(Relaxed) == 0
            && self.state.lock().requests.is_empty()
    }

    /// Whether `r`, for a batching model, should be batched by the event loop instead of a worker:
    /// the model is fast (recent batches under `max_us`), does not wait for MINBATCHSIZE, and no
    /// worker is running a batch on this device. The loop gathers what arrived during one pass
    /// over its ready sockets and runs it as one batch: no thread hand-off, no GIL contention.
    pub fn can_batch_inline(&self, r: &RunRequest, max_us: u64) -> bool {
        let (batchsize, minbatchsize, _) = r.work.batching();
        r.is_fast(max_us) && batchsize > 0 && minbatchsize == 0 && self.active.load(Relaxed) == 0
    }

    /// Queues `r` for the event loop's batch, without waking a worker. True for the first such
    /// request since the last drain: the caller must then make sure the loop drains this queue.
    pub fn push_for_loop(&self, r: RunRequest) -> bool {
        let mut st = self.state.lock();
        if st.closed {
            drop(st);
            (r.done)(RunOutcome::Err("ERR the server is shutting down".into()));
            return false;
        }
        st.requests.push_back(r);
        self.queued_total.fetch_add(1, Relaxed);
        drop(st);
        !self.inline_pending.swap(true, AcqRel)
    }

    /// Takes the mark `push_for_loop` set: true if the loop has requests to batch here.
    pub fn take_loop_pending(&self) -> bool {
        self.inline_pending.swap(false, AcqRel)
    }

    /// The next batch that is ready now, if its model passes `fast` (the event loop runs it);
    /// never waits. Anything left (a slow model, a batch waiting for MINBATCHSIZE) is handed to
    /// the workers.
    pub fn try_loop_batch(&self, fast: impl Fn(&RunRequest) -> bool) -> Option<Batch> {
        let mut st = self.state.lock();
        let dead = take_dead(&mut st.requests, Instant::now());
        if !dead.is_empty() {
            drop(st);
            finish_dead(dead);
            st = self.state.lock();
        }
        let taken = match pick(&st.requests, Instant::now()) {
            Pick::Run(idx) if fast(&st.requests[idx[0]]) => take_group(&mut st.requests, idx),
            _ => {
                let left = !st.requests.is_empty();
                drop(st);
                if left {
                    self.cv.notify_all();
                }
                return None;
            }
        };
        drop(st);
        self.batches_total.fetch_add(1, Relaxed);
        Some(Batch { requests: taken, started: Instant::now(), _active: ActiveGuard::new(&self.active) })
    }

    /// A one-request batch for running inline (counted as active like any other).
    pub fn inline_batch(&self, r: RunRequest) -> Batch {
        self.queued_total.fetch_add(1, Relaxed);
        self.batches_total.fetch_add(1, Relaxed);
        Batch { requests: vec![r], started: Instant::now(), _active: ActiveGuard::new(&self.active) }
    }

    pub fn push(&self, r: RunRequest) {
        let mut st = self.state.lock();
        if st.closed {
            drop(st);
            (r.done)(RunOutcome::Err("ERR the server is shutting down".into()));
            return;
        }
        st.requests.push_back(r);
        self.queued_total.fetch_add(1, Relaxed);
        drop(st);
        // every waiting worker re-evaluates: a new request may complete someone's MINBATCHSIZE
        self.cv.notify_all();
    }

    pub fn len(&self) -> usize {
        self.state.lock().requests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A request waits or a batch runs on this device's workers.
    pub fn busy(&self) -> bool {
        self.active.load(Relaxed) > 0 || !self.is_empty()
    }

    pub fn close(&self) {
        self.state.lock().closed = true;
        self.cv.notify_all();
    }

    /// Removes requests that timed out or whose client left, and completes them.
    pub fn sweep(&self, now: Instant) {
        let dead = {
            let mut st = self.state.lock();
            take_dead(&mut st.requests, now)
        };
        finish_dead(dead);
    }

    /// Blocks until a batch is ready; None once the queue is closed.
    pub fn next_batch(&self) -> Option<Batch> {
        let mut st = self.state.lock();
        loop {
            if st.closed {
                let dead: Vec<_> = st.requests.drain(..).collect();
                drop(st);
                for r in dead {
                    (r.done)(RunOutcome::Err("ERR the server is shutting down".into()));
                }
                return None;
            }
            let now = Instant::now();
            let dead = take_dead(&mut st.requests, now);
            if !dead.is_empty() {
                drop(st);
                finish_dead(dead);
                st = self.state.lock();
                continue;
            }
            match pick(&st.requests, now) {
                Pick::Run(idx) => {
                    let taken = take_group(&mut st.requests, idx);
                    drop(st);
                    self.batches_total.fetch_add(1, Relaxed);
                    let guard = ActiveGuard::new(&self.active);
                    return Some(Batch { requests: taken, started: Instant::now(), _active: guard });
                }
                Pick::Wait(Some(t)) => {
                    let _ = self.cv.wait_until(&mut st, t.max(now + Duration::from_micros(100)));
                }
                Pick::Wait(None) => self.cv.wait(&mut st),
            }
        }
    }
}

/// Removes the requests at `idx` from the queue, in queue order.
fn take_group(q: &mut VecDeque<RunRequest>, mut idx: Vec<usize>) -> Vec<RunRequest> {
    idx.sort_unstable();
    let mut taken: Vec<RunRequest> = Vec::with_capacity(idx.len());
    for i in idx.into_iter().rev() {
        if let Some(r) = q.remove(i) {
            taken.push(r);
        }
    }
    taken.reverse();
    taken
}

fn take_dead(q: &mut VecDeque<RunRequest>, now: Instant) -> Vec<(RunRequest, bool)> {
    if !q.iter().any(|r| r.cancelled() || r.deadline.is_some_and(|d| d <= now)) {
        return Vec::new();
    }
    let mut dead = Vec::new();
    let mut keep = VecDeque::with_capacity(q.len());
    for r in q.drain(..) {
        if r.cancelled() {
            dead.push((r, false));
        } else if r.deadline.is_some_and(|d| d <= now) {
            dead.push((r, true));
        } else {
            keep.push_back(r);
        }
    }
    *q = keep;
    dead
}

fn finish_dead(dead: Vec<(RunRequest, bool)>) {
    for (r, timed_out) in dead {
        (r.done)(if timed_out { RunOutcome::TimedOut } else { RunOutcome::Cancelled });
    }
}

/// The oldest ready request and its batch companions, or when to look again.
fn pick(q: &VecDeque<RunRequest>, now: Instant) -> Pick {
    let mut wake: Option<Instant> = q.iter().filter_map(|r| r.deadline).min();
    for (i, r) in q.iter().enumerate() {
        let (batchsize, minbatchsize, minbatchtimeout) = r.work.batching();
        if batchsize == 0 {
            return Pick::Run(vec![i]);
        }
        let limit = batchsize as usize;
        let mut rows = r.rows();
        let mut group = vec![i];
        if rows < limit {
            for (j, other) in q.iter().enumerate().skip(i + 1) {
                if r.batches_with(other) && rows + other.rows() <= limit {
                    rows += other.rows();
                    group.push(j);
                    if rows == limit {
                        break;
                    }
                }
            }
        }
        let min = minbatchsize as usize;
        let timed = minbatchtimeout > 0 && now >= r.enqueued + Duration::from_millis(minbatchtimeout);
        if min == 0 || rows >= min || rows >= limit || timed {
            return Pick::Run(group);
        }
        if minbatchtimeout > 0 {
            let t = r.enqueued + Duration::from_millis(minbatchtimeout);
            wake = Some(wake.map_or(t, |w| w.min(t)));
        }
    }
    Pick::Wait(wake)
}
