//! A stored model: what MODELSTORE was given (backend, device, tag, batching, node names, blob),
//! the framework's loaded model behind an opaque handle, and its AI.INFO statistics.
use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use super::Backend;
use crate::tensor::buffer::SharedBytes;

/// Everything AI.MODELSTORE / AI.MODELSET specify.
#[derive(Clone)]
pub struct ModelSpec {
    pub backend: Backend,
    /// As the client wrote it (MODELGET shows it back).
    pub device: String,
    /// Upper-case run-queue name.
    pub queue: String,
    pub tag: Vec<u8>,
    pub batchsize: u64,
    pub minbatchsize: u64,
    pub minbatchtimeout: u64,
    /// Node names given with INPUTS/OUTPUTS (TF only).
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// The serialized model, all chunks concatenated.
    pub blob: SharedBytes,
}

impl ModelSpec {
    /// Whether `other` asks for exactly this model: same backend, device, tag, batching, node
    /// names and blob bytes.
    pub fn same_as(&self, other: &ModelSpec) -> bool {
        self.backend == other.backend
            && self.device == other.device
            && self.queue == other.queue
            && self.tag == other.tag
            && (self.batchsize, self.minbatchsize, self.minbatchtimeout) == (other.batchsize, other.minbatchsize, other.minbatchtimeout)
            && self.inputs == other.inputs
            && self.outputs == other.outputs
            && self.blob.as_slice() == other.blob.as_slice()
    }
}

/// How much longer than `run-inline-max-us` a whole inline batch may hold the event loop.
pub const BATCH_INLINE_FACTOR: u64 = 10;

/// AI.INFO counters; `runs` counts framework invocations (a batch is one run). `recent_us` (moving
/// average of a run's time per request it served) and `recent_batch_us` (of a run's whole time)
/// decide whether a run may execute inline on the event loop (not reset by RESETSTAT).
#[derive(Default)]
pub struct RunStats {
    pub duration_us: AtomicU64,
    pub samples: AtomicU64,
    pub calls: AtomicU64,
    pub errors: AtomicU64,
    pub runs: AtomicU64,
    pub recent_us: AtomicU64,
    pub recent_batch_us: AtomicU64,
    /// The metrics endpoint's counters and histograms (never reset).
    pub metrics: RunMetrics,
    /// Rows of this model waiting in its run queue.
    pub queued_rows: AtomicU64,
    /// Rows the next batch can expect (a batch's rows plus those that queued while it ran: its
    /// clients come back, the others are there).
    pub expected_rows: AtomicU64,
}

/// Monotonic counters and histograms of a model's or script's runs (Prometheus metrics).
#[derive(Default)]
pub struct RunMetrics {
    /// Requests answered, and those answered with an error.
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    /// Requests per framework call.
    pub batch_size: crate::stats::Histogram,
    /// Microseconds a request waited in its queue before its run started.
    pub queue_wait_us: crate::stats::Histogram,
    /// Microseconds a framework call took.
    pub run_us: crate::stats::Histogram,
}

impl RunStats {
    /// Folds one run's duration, for `requests` requests, into the moving averages.
    pub fn record_run_time(&self, micros: u64, requests: usize) {
        fn fold(avg: &AtomicU64, sample: u64) {
            let old = avg.load(Relaxed);
            let new = if old == 0 { sample } else { (old * 7 + sample) / 8 };
            avg.store(new.max(1), Relaxed);
        }
        fold(&self.recent_us, micros / requests.max(1) as u64);
        fold(&self.recent_batch_us, micros);
    }

    /// Whether recent runs took at most `max_us` per request they served, and a whole run at most
    /// `BATCH_INLINE_FACTOR` times that (`max_us` 0: never; no runs yet: not known to be fast).
    /// Judged by its whole time, a batch of 32 one-row requests looked slow and went to a worker,
    /// where GIL hand-offs made it slower still (TorchScript MLP: 59,000 instead of 75,000 req/s).
    pub fn fast(&self, max_us: u64) -> bool {
        let (per_request, whole) = (self.recent_us.load(Relaxed), self.recent_batch_us.load(Relaxed));
        max_us > 0 && per_request > 0 && per_request <= max_us && whole <= max_us * BATCH_INLINE_FACTOR
    }

    pub fn reset(&self) {
        for c in [&self.duration_us, &self.samples, &self.calls, &self.errors, &self.runs] {
            c.store(0, Relaxed);
        }
    }
}

/// A loaded, runnable model. Immutable; replacing a key swaps the whole Arc.
pub struct Model {
    pub spec: ModelSpec,
    /// Input/output names as the framework reports them (TF: those given).
    pub input_names: Vec<String>,
    pub output_names: Vec<String>,
    /// The framework's model, owned by the host (a Python object in redisai-fast).
    pub handle: Arc<dyn Any + Send + Sync>,
    pub stats: RunStats,
}

impl Model {
    pub fn new(spec: ModelSpec, input_names: Vec<String>, output_names: Vec<String>, handle: Arc<dyn Any + Send + Sync>) -> Model {
        Model { spec, input_names, output_names, handle, stats: RunStats::default() }
    }

    pub fn ninputs(&self) -> usize {
        self.input_names.len()
    }

    /// None when the framework cannot tell before running (e.g. a TorchScript returning a list).
    pub fn noutputs(&self) -> Option<usize> {
        if self.output_names.is_empty() {
            None
        } else {
            Some(self.output_names.len())
        }
    }

    pub fn memory_usage(&self) -> usize {
        self.spec.blob.len() + 256
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_judged_by_its_time_per_request_within_a_cap() {
        let s = RunStats::default();
        assert!(!s.fast(100), "no runs yet");
        s.record_run_time(320, 32); // 10 µs per request
        assert!(s.fast(100));
        assert!(!s.fast(0), "0 turns inline runs off");
        let one = RunStats::default();
        one.record_run_time(320, 1);
        assert!(!one.fast(100), "one request taking 320 µs is slow");
        let huge = RunStats::default();
        huge.record_run_time(51_200, 1024); // 50 µs per request, but 51 ms on the loop
        assert!(!huge.fast(100));
    }

    #[test]
    fn the_averages_move_an_eighth_of_the_way() {
        let s = RunStats::default();
        s.record_run_time(80, 1);
        s.record_run_time(160, 1);
        assert_eq!(s.recent_us.load(Relaxed), 90);
        assert_eq!(s.recent_batch_us.load(Relaxed), 90);
    }
}
