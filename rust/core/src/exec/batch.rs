//! Run requests (a model run or a script call), and batches of them: concatenating compatible
//! model inputs along dimension 0, running once, and splitting the outputs back to each request
//! (with AI.INFO accounting).
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use super::CancelFlag;
use crate::ai::{Model, RunStats, Script};
use crate::tensor::buffer::AlignedBuf;
use crate::tensor::{DType, Tensor};

/// How a request ended.
pub enum RunOutcome {
    Ok(Vec<Tensor>),
    Err(String),
    TimedOut,
    /// The client went away before the request ran.
    Cancelled,
}

/// A call of one function of a stored script.
pub struct ScriptCall {
    pub script: Arc<Script>,
    pub function: String,
    pub keys: Vec<String>,
    pub args: Vec<String>,
    /// OUTPUTS given: the function must return exactly this many tensors (0: not checked).
    pub n_outputs: usize,
    /// The client whose permissions the script's `redis.execute` calls have (None: unrestricted).
    pub caller: Option<crate::acl::ScriptCaller>,
}

/// What a request runs.
pub enum Work {
    Model(Arc<Model>),
    Script(ScriptCall),
}

impl Work {
    pub fn stats(&self) -> &RunStats {
        match self {
            Work::Model(m) => &m.stats,
            Work::Script(c) => &c.script.stats,
        }
    }

    /// (BATCHSIZE, MINBATCHSIZE, MINBATCHTIMEOUT); scripts never batch.
    pub fn batching(&self) -> (u64, u64, u64) {
        match self {
            Work::Model(m) => (m.spec.batchsize, m.spec.minbatchsize, m.spec.minbatchtimeout),
            Work::Script(_) => (0, 0, 0),
        }
    }
}

/// One request waiting in a run queue.
pub struct RunRequest {
    pub work: Work,
    pub inputs: Vec<Tensor>,
    pub enqueued: Instant,
    pub deadline: Option<Instant>,
    pub cancel: Option<CancelFlag>,
    pub done: Box<dyn FnOnce(RunOutcome) + Send>,
}

impl RunRequest {
    /// Dimension 0 of the first input (the request's batch rows).
    pub fn rows(&self) -> usize {
        self.inputs.first().and_then(|t| t.shape().first()).map_or(1, |&d| d as usize)
    }

    /// Whether recent runs of this request's model or script were fast (`RunStats::fast`).
    pub fn is_fast(&self, max_us: u64) -> bool {
        self.work.stats().fast(max_us)
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.load(Relaxed))
    }

    /// Whether `other` can share a batch with this request: same model, same input dtypes and
    /// shapes except dimension 0, no STRING inputs.
    pub fn batches_with(&self, other: &RunRequest) -> bool {
        let (Work::Model(a), Work::Model(b)) = (&self.work, &other.work) else { return false };
        Arc::ptr_eq(a, b)
            && self.inputs.len() == other.inputs.len()
            && self.inputs.iter().zip(&other.inputs).all(|(a, b)| {
                a.dtype() == b.dtype()
                    && a.dtype() != DType::String
                    && a.shape().len() == b.shape().len()
                    && !a.shape().is_empty()
                    && a.shape()[1..] == b.shape()[1..]
            })
    }
}

/// Counts a queue's batches in flight; decrements when the batch is finished (or dropped).
pub struct ActiveGuard(pub Arc<AtomicUsize>);

impl ActiveGuard {
    pub fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Relaxed);
        ActiveGuard(counter.clone())
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Requests taken from a queue to run together (several only for a batching model).
pub struct Batch {
    pub requests: Vec<RunRequest>,
    pub started: Instant,
    pub _active: ActiveGuard,
}

impl Batch {
    /// What the batch runs (all its requests run the same thing).
    pub fn work(&self) -> &Work {
        &self.requests[0].work
    }

    /// The inputs to give the framework: the request's own tensors, or the concatenation.
    pub fn inputs(&self) -> Result<Vec<Tensor>, String> {
        if self.requests.len() == 1 {
            return Ok(self.requests[0].inputs.clone());
        }
        let n = self.requests[0].inputs.len();
        (0..n).map(|i| concat_rows(self.requests.iter().map(|r| &r.inputs[i]))).collect()
    }

    /// Hands each request its rows of `outputs` (and counts the run in AI.INFO).
    pub fn complete(mut self, outputs: Vec<Tensor>) {
        let micros = self.started.elapsed().as_micros() as u64;
        let stats = self.work().stats();
        self.observe(micros);
        stats.runs.fetch_add(1, Relaxed);
        stats.record_run_time(micros, self.requests.len());
        let rows: u64 = self.requests.iter().map(|r| r.rows() as u64).sum();
        stats.expected_rows.store(rows + stats.queued_rows.load(Relaxed), Relaxed);
        if let Work::Model(m) = self.work() {
            if m.noutputs().is_some_and(|n| outputs.len() != n) {
                return self.fail("ERR Model did not generate the expected number of outputs".into());
            }
        }
        if self.requests.len() == 1 {
            let Some(r) = self.requests.pop() else { return };
            let stats = r.work.stats();
            if matches!(r.work, Work::Model(_)) {
                let samples = outputs.first().and_then(|t| t.shape().first()).map_or(0, |&d| d as u64);
                stats.samples.fetch_add(samples, Relaxed);
            }
            stats.calls.fetch_add(1, Relaxed);
            stats.metrics.requests.fetch_add(1, Relaxed);
            stats.duration_us.fetch_add(micros, Relaxed);
            (r.done)(RunOutcome::Ok(outputs));
            return;
        }
        let total: usize = self.requests.iter().map(|r| r.rows()).sum();
        if outputs.iter().any(|t| t.shape().first().map(|&d| d as usize) != Some(total)) {
            return self.fail("ERR Model did not generate the expected batch size".into());
        }
        let mut row = 0;
        for r in self.requests {
            let rows = r.rows();
            let mine: Result<Vec<Tensor>, String> = outputs.iter().map(|t| t.slice_rows(row, rows)).collect();
            row += rows;
            let stats = r.work.stats();
            stats.calls.fetch_add(1, Relaxed);
            stats.metrics.requests.fetch_add(1, Relaxed);
            match mine {
                Ok(v) => {
                    stats.samples.fetch_add(rows as u64, Relaxed);
                    stats.duration_us.fetch_add(micros, Relaxed);
                    (r.done)(RunOutcome::Ok(v));
                }
                Err(e) => {
                    stats.errors.fetch_add(1, Relaxed);
                    stats.metrics.errors.fetch_add(1, Relaxed);
                    (r.done)(RunOutcome::Err(e));
                }
            }
        }
    }

    /// The metrics of one framework call that took `micros`: batch size, run time, queue waits.
    fn observe(&self, micros: u64) {
        let m = &self.work().stats().metrics;
        m.batch_size.observe(self.requests.len() as u64);
        m.run_us.observe(micros);
        for r in &self.requests {
            m.queue_wait_us.observe(self.started.saturating_duration_since(r.enqueued).as_micros() as u64);
        }
    }

    /// Every request of the batch gets `msg` (and counts as an error in AI.INFO).
    pub fn fail(self, msg: String) {
        for r in self.requests {
            let stats = r.work.stats();
            stats.calls.fetch_add(1, Relaxed);
            stats.errors.fetch_add(1, Relaxed);
            stats.metrics.requests.fetch_add(1, Relaxed);
            stats.metrics.errors.fetch_add(1, Relaxed);
            (r.done)(RunOutcome::Err(msg.clone()));
        }
    }
}

/// Concatenates tensors along dimension 0 (dtypes and other dimensions already checked equal).
pub fn concat_rows<'a>(parts: impl Iterator<Item = &'a Tensor>) -> Result<Tensor, String> {
    let parts: Vec<&Tensor> = parts.collect();
    let first = parts.first().ok_or("nothing to concatenate")?;
    let total_rows: i64 = parts.iter().map(|t| t.shape()[0]).sum();
    let bytes: usize = parts.iter().map(|t| t.byte_len()).sum();
    let mut buf = AlignedBuf::zeroed(bytes).map_err(|e| format!("ERR {e}"))?;
    let mut off = 0;
    for t in &parts {
        buf.as_mut_slice()[off..off + t.byte_len()].copy_from_slice(t.bytes());
        off += t.byte_len();
    }
    let mut shape = first.shape().to_vec();
    shape[0] = total_rows;
    Tensor::from_shared(first.dtype(), shape, buf.into()).map_err(|e| e.0)
}
