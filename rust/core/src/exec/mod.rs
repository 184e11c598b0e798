//! Execution off the event loop: run queues per device (with batching), the host-job queue
//! (work only the host can do, such as loading a model into a framework), and the completion
//! channel that hands finished work back to the event loop. Nothing here touches sockets.
pub mod batch;
pub mod dag;
pub mod poll;
pub mod queue;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

pub use batch::{Batch, RunOutcome, RunRequest, ScriptCall, Work};
pub use queue::RunQueue;

/// A compiled script's framework object, as the host's loader made it.
pub type ScriptHandle = Arc<dyn std::any::Any + Send + Sync>;

/// Marks a client gone: queued work for it is dropped instead of run.
pub type CancelFlag = Arc<AtomicBool>;

/// A reply for a blocked client, produced off the loop.
pub struct Completion {
    pub client: u64,
    pub reply: Vec<u8>,
}

/// The reply of a blocked command, awaited by the thread that sent it (an in-process client,
/// see `crate::local`) instead of the event loop.
#[derive(Default)]
pub struct ReplySlot {
    state: Mutex<(Option<Vec<u8>>, bool)>,
    cv: Condvar,
}

impl ReplySlot {
    fn put(&self, reply: Vec<u8>) {
        self.state.lock().0 = Some(reply);
        self.cv.notify_all();
    }

    /// Blocks until the reply arrives; once the slot is closed (shutdown), answers that instead.
    pub fn wait(&self) -> Vec<u8> {
        let mut g = self.state.lock();
        loop {
            if let Some(r) = g.0.take() {
                return r;
            }
            if g.1 {
                return b"-ERR the server is shutting down\r\n".to_vec();
            }
            self.cv.wait(&mut g);
        }
    }

    fn close(&self) {
        self.state.lock().1 = true;
        self.cv.notify_all();
    }
}

/// Finished work waiting for the event loop. `wake` is called when the first item arrives after
/// a drain (the host points it at an eventfd its loop watches), so the loop never polls.
/// Replies for clients with a `ReplySlot` go to that slot instead.
pub struct Completions {
    items: Mutex<Vec<Completion>>,
    wake_pending: AtomicBool,
    /// Batches wait for the event loop (see `want_loop_pass`).
    loop_work: AtomicBool,
    wake: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
    /// Clients that wait on their own thread, by client id (`has_direct`: the map was ever used).
    direct: Mutex<HashMap<u64, Arc<ReplySlot>>>,
    has_direct: AtomicBool,
}

impl Completions {
    fn new() -> Self {
        Completions {
            items: Mutex::new(Vec::new()),
            wake_pending: AtomicBool::new(false),
            loop_work: AtomicBool::new(false),
            wake: Mutex::new(None),
            direct: Mutex::new(HashMap::new()),
            has_direct: AtomicBool::new(false),
        }
    }

    /// Sends the replies of `client` to a slot its own thread waits on, instead of the loop.
    pub fn register_direct(&self, client: u64) -> Arc<ReplySlot> {
        let slot = Arc::new(ReplySlot::default());
        self.direct.lock().insert(client, slot.clone());
        self.has_direct.store(true, Ordering::Release);
        slot
    }

    pub fn unregister_direct(&self, client: u64) {
        if let Some(slot) = self.direct.lock().remove(&client) {
            slot.close();
        }
    }

    /// Shutdown: every thread waiting in a slot gets `ERR the server is shutting down`.
    pub fn close_direct(&self) {
        for slot in self.direct.lock().values() {
            slot.close();
        }
    }

    pub fn set_waker(&self, f: Box<dyn Fn() + Send + Sync>) {
        *self.wake.lock() = Some(f);
    }

    pub fn push(&self, client: u64, reply: Vec<u8>) {
        if self.has_direct.load(Ordering::Acquire) {
            if let Some(slot) = self.direct.lock().get(&client) {
                slot.put(reply);
                return;
            }
        }
        self.items.lock().push(Completion { client, reply });
        self.wake_unless_pending();
    }

    /// Wakes the loop unless a wake is already pending (or held by `hold_wake`).
    fn wake_unless_pending(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            if let Some(w) = self.wake.lock().as_ref() {
                w();
            }
        }
    }

    /// The loop is about to drain by itself (it just ran work inline): pushes need not wake it.
    pub fn hold_wake(&self) {
        self.wake_pending.store(true, Ordering::Release);
    }

    /// Asks the event loop for a pass of its completion handler (which runs the batches queued
    /// with `RunQueue::push_for_loop`), waking it unless a wake is already pending or held.
    pub fn want_loop_pass(&self) {
        self.loop_work.store(true, Ordering::Release);
        self.wake_unless_pending();
    }

    /// Takes the request `want_loop_pass` made.
    pub fn take_loop_pass(&self) -> bool {
        self.loop_work.swap(false, Ordering::AcqRel)
    }

    /// Ends `hold_wake`; wakes the loop if something arrived that the last drain missed.
    pub fn release_wake(&self) {
        self.wake_pending.store(false, Ordering::Release);
        if !self.items.lock().is_empty() || self.loop_work.load(Ordering::Acquire) {
            self.wake_unless_pending();
        }
    }

    /// Takes everything finished so far. Callers bracket their draining with `hold_wake` /
    /// `release_wake` so pushes during it do not wake the loop again.
    pub fn drain(&self) -> Vec<Completion> {
        std::mem::take(&mut *self.items.lock())
    }
}

/// Work the host (Python) must do: given to its loader threads by `HostQueue::next`.
pub enum HostJob {
    /// Load a model blob into its framework.
    LoadModel {
        spec: crate::ai::ModelSpec,
        /// Gets the spec back with the result, to build the stored model.
        done: Box<dyn FnOnce(crate::ai::ModelSpec, Result<LoadedModel, String>) + Send>,
    },
    /// Compile a TorchScript script (checking its entry points).
    CompileScript {
        spec: crate::ai::ScriptSpec,
        done: Box<dyn FnOnce(crate::ai::ScriptSpec, Result<ScriptHandle, String>) + Send>,
    },
    /// Load a backend adapter (AI.CONFIG LOADBACKEND).
    LoadBackend { backend: String, path: String, done: Box<dyn FnOnce(Result<(), String>) + Send> },
}

/// What the host returns for a loaded model.
pub struct LoadedModel {
    pub handle: Arc<dyn std::any::Any + Send + Sync>,
    pub input_names: Vec<String>,
    pub output_names: Vec<String>,
}

/// A FIFO of host jobs with blocking take.
pub struct HostQueue {
    jobs: Mutex<(std::collections::VecDeque<HostJob>, bool)>,
    cv: Condvar,
}

impl HostQueue {
    fn new() -> Self {
        HostQueue { jobs: Mutex::new((Default::default(), false)), cv: Condvar::new() }
    }

    pub fn push(&self, job: HostJob) {
        self.jobs.lock().0.push_back(job);
        self.cv.notify_one();
    }

    /// Blocks until a job is available; None once closed.
    pub fn next(&self) -> Option<HostJob> {
        let mut g = self.jobs.lock();
        loop {
            if let Some(j) = g.0.pop_front() {
                return Some(j);
            }
            if g.1 {
                return None;
            }
            self.cv.wait(&mut g);
        }
    }

    pub fn close(&self) {
        self.jobs.lock().1 = true;
        self.cv.notify_all();
    }
}

/// All execution state of a server.
pub struct Exec {
    queues: Mutex<HashMap<String, Arc<RunQueue>>>,
    pub host: HostQueue,
    pub completions: Completions,
    pub poll: poll::PollWindow,
}

impl Default for Exec {
    fn default() -> Self {
        Exec { queues: Mutex::new(HashMap::new()), host: HostQueue::new(), completions: Completions::new(), poll: Default::default() }
    }
}

impl Exec {
    /// The run queue of a device, created on first use. The bool says whether it is new (the
    /// host then starts its workers).
    pub fn queue(&self, device: &str) -> (Arc<RunQueue>, bool) {
        let mut q = self.queues.lock();
        if let Some(existing) = q.get(device) {
            return (existing.clone(), false);
        }
        let created = Arc::new(RunQueue::new(device));
        q.insert(device.to_string(), created.clone());
        (created, true)
    }

    /// The queue of a device if it exists.
    pub fn existing_queue(&self, device: &str) -> Option<Arc<RunQueue>> {
        self.queues.lock().get(device).cloned()
    }

    pub fn queues(&self) -> Vec<Arc<RunQueue>> {
        let mut v: Vec<_> = self.queues.lock().values().cloned().collect();
        v.sort_by(|a, b| a.device.cmp(&b.device));
        v
    }

    /// Whether any device has a request queued or a batch running on its workers.
    pub fn workers_busy(&self) -> bool {
        self.queues.lock().values().any(|q| q.busy())
    }

    /// Stops every queue and the host queue (shutdown): waiting workers return.
    pub fn close(&self) {
        for q in self.queues.lock().values() {
            q.close();
        }
        self.host.close();
    }

    /// Completes queued requests whose TIMEOUT passed or whose client left (periodic sweep).
    pub fn sweep(&self, now: Instant) {
        for q in self.queues() {
            q.sweep(now);
        }
    }
}
