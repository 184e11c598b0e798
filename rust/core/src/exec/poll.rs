//! The busy-poll window: whether the event loop should poll its sockets once more instead of
//! sleeping (`busy-poll-us`). The host keeps a callback scheduled while this says yes.
//!
//! Why: on a virtual machine a thread that sleeps lets its vCPU halt, and waking it for the next
//! packet costs an interrupt through the hypervisor and cold caches: on the 2-vCPU machines we
//! measure on, 20-25 µs of every 1-client PING and more of a model run (benches/results). Polling
//! stops when the window passes without activity (an idle server sleeps as before) and whenever
//! other threads need the cores: runs queued or running on worker threads (they need the GIL
//! too), a snapshot or log rewrite being written.
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

pub struct PollWindow {
    /// Read events and completions the loop served (only ever compared, never reset).
    activity: AtomicU64,
    /// `activity` when the window was last renewed.
    seen: AtomicU64,
    /// End of the current window, in ns since `epoch`.
    deadline_ns: AtomicU64,
    /// Loop passes spent polling (INFO stats `busy_poll_passes`).
    pub passes: AtomicU64,
    epoch: Instant,
}

impl Default for PollWindow {
    fn default() -> Self {
        PollWindow { activity: AtomicU64::new(0), seen: AtomicU64::new(0), deadline_ns: AtomicU64::new(0), passes: AtomicU64::new(0), epoch: Instant::now() }
    }
}

impl PollWindow {
    /// The loop served a client: the window starts again from the next check.
    pub fn note_activity(&self) {
        self.activity.fetch_add(1, Relaxed);
    }

    /// Whether to poll once more: activity within the last `window_us` and no other thread of
    /// ours busy (`others_busy`: workers, a background save).
    pub fn keep_polling(&self, window_us: u64, others_busy: bool) -> bool {
        let go = self.keep_polling_at(self.epoch.elapsed().as_nanos() as u64, window_us, others_busy);
        if go {
            self.passes.fetch_add(1, Relaxed);
        }
        go
    }

    fn keep_polling_at(&self, now_ns: u64, window_us: u64, others_busy: bool) -> bool {
        if window_us == 0 || others_busy {
            return false;
        }
        let a = self.activity.load(Relaxed);
        if a != self.seen.load(Relaxed) {
            self.seen.store(a, Relaxed);
            self.deadline_ns.store(now_ns + window_us * 1000, Relaxed);
            return true;
        }
        now_ns < self.deadline_ns.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_for_the_window_after_activity_then_stops() {
        let w = PollWindow::default();
        assert!(!w.keep_polling_at(0, 100, false), "no activity yet");
        w.note_activity();
        assert!(w.keep_polling_at(1_000, 100, false));
        assert!(w.keep_polling_at(100_999, 100, false));
        assert!(!w.keep_polling_at(101_000, 100, false), "window passed");
        w.note_activity();
        assert!(w.keep_polling_at(500_000, 100, false), "activity renews it");
        assert!(w.keep_polling_at(599_000, 100, false));
        assert!(!w.keep_polling_at(601_000, 100, false));
    }

    #[test]
    fn never_polls_when_disabled_or_others_busy() {
        let w = PollWindow::default();
        w.note_activity();
        assert!(!w.keep_polling_at(0, 0, false), "busy-poll-us 0");
        assert!(!w.keep_polling_at(0, 100, true), "a worker or a background save is running");
        assert!(w.keep_polling_at(0, 100, false), "activity is not lost while it could not poll");
    }
}
