//! A device's run queue: requests wait here for a worker. `next_batch` picks the oldest request
//! that is ready and gathers compatible requests of the same model up to BATCHSIZE; with
//! MINBATCHSIZE it waits for enough rows (or MINBATCHTIMEOUT); TIMEOUT drops requests still queued.
//! Without MINBATCHSIZE a worker's batch fills itself: while fewer rows wait than three quarters of
//! what the model's last batch had plus those that queued meanwhile (its clients are on their way
//! back; the last few are not waited for), it waits for them, at most half a batch's run time.
//! When every worker is busy, the event loop may take a ready batch too (`try_help`).
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

/// The longest a worker's batch waits to fill (see the module comment).
const FILL_WAIT_MAX: Duration = Duration::from_millis(5);

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
        r.work.batching().0 > 0 && self.can_gather_inline(r, max_us)
    }

    /// Whether `r` may wait for the end of the event loop's pass over its ready sockets and run
    /// there (with a batch when its model batches): it is fast, does not wait for MINBATCHSIZE,
    /// and no worker runs a batch on this device.
    pub fn can_gather_inline(&self, r: &RunRequest, max_us: u64) -> bool {
        r.is_fast(max_us) && r.work.batching().1 == 0 && self.active.load(Relaxed) == 0
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
        queued(&r, 1);
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
        let taken = match pick(&st.requests, Instant::now(), false) {
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

    /// For the event loop when every one of the device's `workers` is busy: the next batch a
    /// worker would take now (filled as for a worker), if `allowed` approves its model; never
    /// waits. The loop runs it between two passes over its sockets, so the device's queue drains
    /// on one more core while the workers compute. A batching model is helped only when a whole
    /// batch of its rows waits: short of that its worker's next batch takes them all, and splitting
    /// them runs two smaller batches side by side, each paying the per-run cost (a 4x1024 MLP with
    /// BATCHSIZE 32 at 32 clients: 0.83x RedisAI with such help, 1.02x without).
    pub fn try_help(&self, workers: usize, allowed: impl Fn(&RunRequest) -> bool) -> Option<Batch> {
        if self.active.load(Relaxed) < workers {
            return None;
        }
        let mut st = self.state.lock();
        let taken = match pick(&st.requests, Instant::now(), true) {
            Pick::Run(idx) if allowed(&st.requests[idx[0]]) && a_whole_batch_waits(&st.requests[idx[0]]) => {
                take_group(&mut st.requests, idx)
            }
            _ => return None,
        };
        drop(st);
        self.batches_total.fetch_add(1, Relaxed);
        Some(Batch { requests: taken, started: Instant::now(), _active: ActiveGuard::new(&self.active) })
    }

    /// Whether requests wait and every one of `workers` is busy (the loop may help, `try_help`).
    pub fn saturated(&self, workers: usize) -> bool {
        self.active.load(Relaxed) >= workers && !self.is_empty()
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
        queued(&r, 1);
        let wake = wakes_workers(&r);
        st.requests.push_back(r);
        self.queued_total.fetch_add(1, Relaxed);
        drop(st);
        // every waiting worker re-evaluates: a new request may complete someone's MINBATCHSIZE
        if wake {
            self.cv.notify_all();
        }
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
                    queued(&r, -1);
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
            match pick(&st.requests, now, true) {
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

/// Whether queueing `r` (already counted in its model's queued rows) must wake the workers: not
/// while a worker's batch fills (it is woken at its deadline), unless `r` is the first of its
/// model in the queue (a worker then learns the deadline) or fills the batch enough to run.
fn wakes_workers(r: &RunRequest) -> bool {
    let (batchsize, minbatchsize, _) = r.work.batching();
    if batchsize == 0 || minbatchsize > 0 {
        return true;
    }
    let stats = r.work.stats();
    let queued = stats.queued_rows.load(Relaxed);
    let target = stats.expected_rows.load(Relaxed).min(batchsize);
    queued <= r.rows() as u64 || filled_enough(queued, target)
}

/// Whether `r`'s model does not batch, or at least a whole batch of its rows is queued.
fn a_whole_batch_waits(r: &RunRequest) -> bool {
    let (batchsize, _, _) = r.work.batching();
    batchsize == 0 || r.work.stats().queued_rows.load(Relaxed) >= batchsize
}

/// Whether `rows` are enough for a filling batch that expects `expected`: three quarters of them
/// (the last clients' round trip costs more than their rows add).
fn filled_enough(rows: u64, expected: u64) -> bool {
    rows * 4 >= expected * 3
}

/// Counts `r`'s rows in (+1) or out of (-1) its model's queued rows.
fn queued(r: &RunRequest, sign: i64) {
    let q = &r.work.stats().queued_rows;
    if sign > 0 {
        q.fetch_add(r.rows() as u64, Relaxed);
    } else {
        let _ = q.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(r.rows() as u64)));
    }
}

/// Removes the requests at `idx` from the queue, in queue order.
fn take_group(q: &mut VecDeque<RunRequest>, mut idx: Vec<usize>) -> Vec<RunRequest> {
    idx.sort_unstable();
    let mut taken: Vec<RunRequest> = Vec::with_capacity(idx.len());
    for i in idx.into_iter().rev() {
        if let Some(r) = q.remove(i) {
            queued(&r, -1);
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
            queued(&r, -1);
            dead.push((r, false));
        } else if r.deadline.is_some_and(|d| d <= now) {
            queued(&r, -1);
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

/// The oldest ready request and its batch companions, or when to look again. `fill`: a batch of
/// a model without MINBATCHSIZE waits to fill (a worker's; the event loop's batches never wait).
fn pick(q: &VecDeque<RunRequest>, now: Instant, fill: bool) -> Pick {
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
        if min == 0 && fill && rows < limit {
            // the clients of the last batch are likely on their way back: wait for most of them a little
            let stats = r.work.stats();
            let expected = (stats.expected_rows.load(Relaxed) as usize).min(limit);
            let until = r.enqueued + Duration::from_micros(stats.recent_batch_us.load(Relaxed) / 2).min(FILL_WAIT_MAX);
            if !filled_enough(rows as u64, expected as u64) && now < until {
                wake = Some(wake.map_or(until, |w| w.min(until)));
                continue;
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai::{Backend, Model, ModelSpec};
    use crate::exec::Work;
    use crate::tensor::buffer::AlignedBuf;
    use crate::tensor::{DType, Tensor, TensorInit};

    fn model(batchsize: u64, minbatchsize: u64) -> Arc<Model> {
        let spec = ModelSpec {
            backend: Backend::Onnx,
            device: "CPU".into(),
            queue: "CPU".into(),
            tag: vec![],
            batchsize,
            minbatchsize,
            minbatchtimeout: 0,
            inputs: vec![],
            outputs: vec![],
            blob: AlignedBuf::zeroed(0).expect("empty").into(),
        };
        Arc::new(Model::new(spec, vec!["x".into()], vec!["y".into()], Arc::new(())))
    }

    fn request(m: &Arc<Model>) -> RunRequest {
        let x = Tensor::build(DType::Float, vec![1, 2], TensorInit::Zeros, usize::MAX).expect("a tensor");
        RunRequest { work: Work::Model(m.clone()), inputs: vec![x], enqueued: Instant::now(), deadline: None, cancel: None, done: Box::new(|_| {}) }
    }

    /// The model's last batch had `rows` rows (with nothing queued meanwhile) and took `us`.
    fn ran(m: &Arc<Model>, rows: u64, us: u64) {
        m.stats.expected_rows.store(rows, Relaxed);
        m.stats.recent_batch_us.store(us, Relaxed);
    }

    #[test]
    fn a_workers_batch_waits_for_the_clients_of_the_last_one() {
        let m = model(8, 0);
        ran(&m, 8, 1_000_000); // 8 clients; half a batch time is a long wait here
        let q = RunQueue::new("CPU");
        for _ in 0..5 {
            q.push(request(&m));
        }
        let st = q.state.lock();
        assert!(matches!(pick(&st.requests, Instant::now(), true), Pick::Wait(Some(_))), "5 of 8 rows: wait");
        assert!(matches!(pick(&st.requests, Instant::now(), false), Pick::Run(ref g) if g.len() == 5), "the loop never waits");
        drop(st);
        q.push(request(&m));
        let b = q.next_batch().expect("a batch");
        assert_eq!(b.requests.len(), 6, "three quarters of the expected rows run");
        assert_eq!(m.stats.queued_rows.load(Relaxed), 0);
    }

    #[test]
    fn a_filling_batch_runs_at_its_deadline_and_then_expects_fewer() {
        let m = model(8, 0);
        ran(&m, 4, 2_000); // waits at most 1 ms
        let q = RunQueue::new("CPU");
        q.push(request(&m));
        let t0 = Instant::now();
        let b = q.next_batch().expect("a batch");
        assert!(t0.elapsed() >= Duration::from_micros(900), "it waited for the others first");
        assert_eq!(b.requests.len(), 1);
        b.complete(vec![Tensor::build(DType::Float, vec![1, 2], TensorInit::Zeros, usize::MAX).expect("a tensor")]);
        assert_eq!(m.stats.expected_rows.load(Relaxed), 1, "one client came back: the next batch expects one");
    }

    #[test]
    fn no_fill_wait_without_history_or_with_minbatchsize_or_when_full() {
        let q = RunQueue::new("CPU");
        let fresh = model(8, 0);
        q.push(request(&fresh));
        assert!(matches!(pick(&q.state.lock().requests, Instant::now(), true), Pick::Run(_)), "no batch ran yet");
        let full = model(2, 0);
        ran(&full, 8, 1_000_000);
        let q = RunQueue::new("CPU");
        q.push(request(&full));
        q.push(request(&full));
        assert!(matches!(pick(&q.state.lock().requests, Instant::now(), true), Pick::Run(ref g) if g.len() == 2), "BATCHSIZE reached");
    }

    #[test]
    fn fast_runs_of_one_pass_gather_for_the_loop_while_no_worker_runs() {
        let m = model(0, 0);
        m.stats.recent_us.store(10, Relaxed);
        m.stats.recent_batch_us.store(10, Relaxed);
        let q = RunQueue::new("CPU");
        assert!(q.can_gather_inline(&request(&m), 100) && q.can_run_inline(&request(&m), 100));
        assert!(q.push_for_loop(request(&m)), "the first asks for a loop pass");
        assert!(!q.can_run_inline(&request(&m), 100), "one waits: running now would overtake it");
        assert!(q.can_gather_inline(&request(&m), 100), "but the next one of the pass joins it");
        assert!(!q.push_for_loop(request(&m)), "the pass is already asked for");
        assert!(!q.can_gather_inline(&request(&m), 5), "a model slower than run-inline-max-us goes to the workers");
        let waits = model(8, 4);
        waits.stats.recent_us.store(10, Relaxed);
        waits.stats.recent_batch_us.store(10, Relaxed);
        assert!(!q.can_gather_inline(&request(&waits), 100), "MINBATCHSIZE waits for a worker");
        assert!(q.take_loop_pending());
        let (a, b) = (q.try_loop_batch(|r| r.is_fast(100)).expect("one"), q.try_loop_batch(|r| r.is_fast(100)).expect("two"));
        assert_eq!((a.requests.len(), b.requests.len()), (1, 1), "unbatched: one run each");
        assert!(!q.can_gather_inline(&request(&m), 100), "a batch is running on this device");
        drop((a, b));
        assert!(q.try_loop_batch(|_| true).is_none());
    }

    #[test]
    fn the_loop_helps_only_when_every_worker_is_busy() {
        let m = model(0, 0);
        let q = RunQueue::new("CPU");
        q.push(request(&m));
        q.push(request(&m));
        assert!(!q.saturated(1) && q.try_help(1, |_| true).is_none(), "a worker is free");
        let running = q.next_batch().expect("the worker's batch");
        assert!(q.saturated(1));
        assert!(q.try_help(1, |_| false).is_none(), "not a model the loop may run");
        let helped = q.try_help(1, |_| true).expect("the loop's batch");
        assert_eq!(helped.requests.len(), 1);
        assert!(!q.saturated(1), "nothing left");
        drop((running, helped));
    }

    #[test]
    fn the_loop_helps_a_batching_model_only_when_a_whole_batch_waits() {
        let m = model(4, 0);
        let q = RunQueue::new("CPU");
        q.push(request(&m));
        let running = q.next_batch().expect("the worker's batch");
        for _ in 0..3 {
            q.push(request(&m));
        }
        assert!(q.saturated(1));
        assert!(q.try_help(1, |_| true).is_none(), "three rows: the worker's next batch takes them all");
        q.push(request(&m));
        let helped = q.try_help(1, |_| true).expect("a whole batch waits");
        assert_eq!(helped.requests.len(), 4);
        drop((running, helped));
    }
}
