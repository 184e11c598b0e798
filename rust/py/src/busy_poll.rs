//! Busy polling on the host's event loop: schedules the host's poll callback when a client was
//! served and polling had stopped. The window itself is `redisai_core::exec::poll`.
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;

use parking_lot::Mutex;
use pyo3::prelude::*;
use redisai_core::server::Server;

#[derive(Default)]
pub struct BusyPoll {
    /// The poll callback is scheduled.
    polling: AtomicBool,
    /// `(loop.call_soon, tick)`: schedules the host's poll callback (locked only when polling
    /// starts again).
    start: Mutex<Option<(Py<PyAny>, Py<PyAny>)>>,
}

impl BusyPoll {
    /// The host's scheduler and poll callback (set when the loop starts).
    pub fn set_scheduler(&self, call_soon: Py<PyAny>, tick: Py<PyAny>) {
        *self.start.lock() = Some((call_soon, tick));
    }

    /// Forgets the scheduler when the loop stops (it refers to the loop and the host, which the
    /// server must not keep alive).
    pub fn clear_scheduler(&self) -> Option<(Py<PyAny>, Py<PyAny>)> {
        self.start.lock().take()
    }

    /// The event loop served something: renew the window, and schedule polling if it stopped.
    pub fn note_activity(&self, py: Python<'_>, server: &Server) -> PyResult<()> {
        server.exec.poll.note_activity();
        if self.polling.load(Relaxed) || server.config.read().busy_poll_us() == 0 {
            return Ok(());
        }
        let scheduler = self.start.lock().as_ref().map(|(c, t)| (c.clone_ref(py), t.clone_ref(py)));
        if let Some((call_soon, tick)) = scheduler {
            self.polling.store(true, Relaxed);
            call_soon.call1(py, (tick,))?;
        }
        Ok(())
    }

    /// Called by the poll callback on every loop pass: whether to stay awake for another pass.
    pub fn keep_polling(&self, server: &Server) -> bool {
        let window_us = server.config.read().busy_poll_us();
        let waiting_for_store = server.store.get().is_some_and(|s| s.client.stats.in_flight.load(Relaxed) > 0);
        let others_busy = server.exec.workers_busy() || server.persist.background_running() || waiting_for_store;
        let go = server.exec.poll.keep_polling(window_us, others_busy);
        if !go {
            self.polling.store(false, Relaxed);
        }
        go
    }
}
