//! Store mode on the event loop: the store's sockets are registered with the loop (add_reader)
//! like clients' sockets, and their replies are read on the loop thread when they arrive, so a
//! forwarded command costs no thread wake-up on either side of the store's round trip.
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;
use redisai_core::store::conn::{LoopHost, LoopReader};

pub struct StoreLoop {
    /// Readers waiting to be registered (a connection may open on any thread).
    pending: Mutex<Vec<Arc<LoopReader>>>,
    readers: Mutex<HashMap<i32, Arc<LoopReader>>>,
    /// Wakes the loop (the completion eventfd), which registers what is pending.
    wake: Box<dyn Fn() + Send + Sync>,
    /// `(loop.add_reader, loop.remove_reader, the server's store_readable)`; taken by `clear`
    /// when the loop stops (they refer to the server: kept, they would keep it alive).
    loop_fns: Mutex<Option<LoopFns>>,
}

/// `(loop.add_reader, loop.remove_reader, the server's store_readable)`.
type LoopFns = (Py<PyAny>, Py<PyAny>, Py<PyAny>);

impl LoopHost for StoreLoop {
    fn watch(&self, reader: Arc<LoopReader>) {
        self.pending.lock().push(reader);
        (self.wake)();
    }
}

impl StoreLoop {
    pub fn new(wake: Box<dyn Fn() + Send + Sync>, add_reader: Py<PyAny>, remove_reader: Py<PyAny>, on_readable: Py<PyAny>) -> StoreLoop {
        StoreLoop {
            pending: Mutex::new(Vec::new()),
            readers: Mutex::new(HashMap::new()),
            wake,
            loop_fns: Mutex::new(Some((add_reader, remove_reader, on_readable))),
        }
    }

    /// The loop stopped: lets go of its functions and of the readers it watched.
    pub fn clear(&self) {
        let fns = self.loop_fns.lock().take();
        self.readers.lock().clear();
        drop(fns);
    }

    /// On the loop thread: starts watching the sockets opened since the last pass.
    pub fn register(&self, py: Python<'_>) -> PyResult<()> {
        let pending = std::mem::take(&mut *self.pending.lock());
        for r in pending {
            let fd = r.fd();
            // a reply may already be waiting: read it now, then watch for more
            if !r.pump() {
                continue;
            }
            let fns = self.loop_fns.lock().as_ref().map(|(add, _, on)| (add.clone_ref(py), on.clone_ref(py)));
            let Some((add, on)) = fns else { return Ok(()) };
            self.readers.lock().insert(fd, r);
            add.call1(py, (fd, on, fd))?;
        }
        Ok(())
    }

    /// On the loop thread: `fd` is readable. A closed link stops being watched and is dropped.
    pub fn readable(&self, py: Python<'_>, fd: i32) -> PyResult<()> {
        let reader = self.readers.lock().get(&fd).cloned();
        let Some(r) = reader else { return Ok(()) };
        if !r.pump() {
            let remove = self.loop_fns.lock().as_ref().map(|(_, rm, _)| rm.clone_ref(py));
            if let Some(rm) = remove {
                rm.call1(py, (fd,))?;
            }
            self.readers.lock().remove(&fd);
        }
        Ok(())
    }
}
