//! `Connection`: the asyncio buffered protocol for one client, implemented in Rust. uvloop reads
//! straight into the session's input buffer (`get_buffer` returns this object, whose buffer is the
//! free space of that input), and `buffer_updated` runs every complete command in one call.
use std::io::Write;
use std::os::raw::c_int;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use redisai_core::resp::Segment;
use redisai_core::server::{Server, ShutdownMode};
use redisai_core::session::Session;

use crate::exec::run_batch;
use crate::shared_view::SharedView;

/// A model run a command prepared: its queue and the request.
pub type PendingRun = (Arc<redisai_core::exec::RunQueue>, redisai_core::exec::RunRequest);

/// Runs `run` now on this thread if its model is fast and its device idle, else queues it for the
/// device's workers. Returns true if it ran (its completion is then waiting to be pumped).
/// `gather`: other clients may send runs in this pass over the ready sockets; a fast run then
/// waits for the end of the pass with them, and their replies go out together (a client reading
/// many sockets is woken once for them, not once per reply between two runs).
pub fn dispatch_run(py: Python<'_>, server: &Server, (queue, request): PendingRun, gather: bool) -> bool {
    let (max, workers) = inline_limits(server);
    if !gather && queue.can_run_inline(&request, max) {
        run_batch(py, queue.inline_batch(request));
        return true;
    }
    let for_loop = if gather { queue.can_gather_inline(&request, max) } else { queue.can_batch_inline(&request, max) };
    if for_loop {
        // run (batched, if the model batches) with whatever else arrives in this pass over the ready sockets
        if queue.push_for_loop(request) {
            server.exec.completions.want_loop_pass();
        }
        false
    } else {
        queue.push(request);
        if queue.saturated(workers) {
            // every worker is busy: the loop may take a batch too at the end of this pass
            server.exec.completions.want_loop_pass();
        }
        false
    }
}

/// `run-inline-max-us` and the workers per device queue, read under one lock.
fn inline_limits(server: &Server) -> (u64, usize) {
    let c = server.config.read();
    (c.run_inline_max_us(), c.threads_per_queue())
}

/// How much longer than `run-inline-max-us` a batch the loop helps with may recently have taken.
const HELP_FACTOR: u64 = 30;

/// Runs the batches queued for the event loop (`dispatch_run`), on the loop's thread; then, for a
/// device whose workers are all busy while requests wait, one batch of a model the server runs
/// itself (a native session: no GIL needed, released meanwhile) whose recent batches took at most
/// `HELP_FACTOR` x `run-inline-max-us`. One per pass, so the loop serves its sockets in between.
pub fn run_loop_batches(py: Python<'_>, server: &Server) {
    let (max, workers) = inline_limits(server);
    for queue in server.exec.queues() {
        if queue.take_loop_pending() {
            while let Some(batch) = queue.try_loop_batch(|r| r.is_fast(max)) {
                run_batch(py, batch);
            }
        }
        let helpable = |r: &redisai_core::exec::RunRequest| {
            let recent = r.work.stats().recent_batch_us.load(Relaxed);
            max > 0 && recent > 0 && recent <= max * HELP_FACTOR && crate::exec::runs_native(r)
        };
        if let Some(batch) = queue.try_help(workers, helpable) {
            py.detach(|| crate::exec::run_native_batch(batch));
            if queue.saturated(workers) {
                server.exec.completions.want_loop_pass();
            }
        }
    }
}

/// Delivers every finished reply to its client, running what each unblocked client sent next
/// (loops instead of recursing, so a long pipeline of inline runs uses no stack).
pub fn pump(py: Python<'_>, server: &Server, hooks: &Hooks) -> PyResult<usize> {
    let mut n = 0;
    loop {
        let done = server.exec.completions.drain();
        if done.is_empty() {
            return Ok(n);
        }
        n += done.len();
        for c in done {
            let conn = hooks.registry.lock().get(&c.client).map(|p| p.clone_ref(py));
            if let Some(conn) = conn {
                if let Some(run) = conn.get().resume(py, &c.reply)? {
                    // ran inline: its completion comes round in the next drain, and the replies
                    // of a pipeline of inline runs go out in one write when it stops blocking
                    if !dispatch_run(py, server, run, false) {
                        conn.get().flush_session(py)?;
                    }
                }
            }
        }
    }
}

/// Connection work that waits for the host: closing the clients CLIENT KILL (or a deleted user)
/// named, writing MONITOR feeds, and running what CLIENT PAUSE held back once it is over.
/// One relaxed load when nothing waits.
pub fn service(py: Python<'_>, server: &Server, hooks: &Hooks) -> PyResult<()> {
    if !server.service_pending.load(Relaxed) {
        return Ok(());
    }
    server.service_pending.store(false, Relaxed);
    let conn = |id: u64| hooks.registry.lock().get(&id).map(|p| p.clone_ref(py));
    let kills = std::mem::take(&mut *server.kills.lock());
    for id in kills {
        if let Some(c) = conn(id) {
            c.get().close_now(py)?;
        }
    }
    if server.monitor_count.load(Relaxed) > 0 {
        let feeds: Vec<(u64, Vec<u8>)> =
            server.monitors.lock().iter_mut().filter(|(_, p)| !p.is_empty()).map(|(id, p)| (*id, std::mem::take(p))).collect();
        for (id, bytes) in feeds {
            if let Some(c) = conn(id) {
                c.get().write_raw(py, &bytes)?;
            }
        }
    }
    let waiting = !server.postponed_clients.lock().is_empty();
    if waiting {
        if server.pause_until_ms.load(Relaxed) != 0 && server.paused_for(true) {
            // still paused: look again on the next tick
            server.service_pending.store(true, Relaxed);
        } else {
            server.pause_until_ms.store(0, Relaxed);
            let ids = std::mem::take(&mut *server.postponed_clients.lock());
            for id in ids {
                if let Some(c) = conn(id) {
                    Connection::retry_postponed(c.bind(py))?;
                }
            }
        }
    }
    Ok(())
}

/// Replies up to this size are encrypted from one buffer (one TLS record); larger ones segment by
/// segment, from the stored tensors' own buffers.
const COALESCE_TLS: usize = 16 * 1024;

/// Transport methods, looked up once per connection.
struct Transport {
    write: Py<PyAny>,
    writelines: Py<PyAny>,
    close: Py<PyAny>,
    pause_reading: Py<PyAny>,
    resume_reading: Py<PyAny>,
    get_write_buffer_size: Py<PyAny>,
    /// The socket, for writing replies directly (-1: always go through the transport).
    fd: c_int,
}

/// Writes `bytes` to the non-blocking socket `fd` as far as it takes them now; returns the bytes
/// written (0 on any error: the transport then gets everything and handles the error).
fn write_now(fd: c_int, bytes: &[u8]) -> usize {
    // SAFETY: writing from a live slice to our socket.
    unsafe { libc::write(fd, bytes.as_ptr() as *const libc::c_void, bytes.len()) }.max(0) as usize
}

/// `write_now` for a reply made of segments (stored tensors are written from their buffers).
fn writev_now(fd: c_int, segs: &[Segment]) -> usize {
    const IOV_MAX: usize = 1024;
    let iov: Vec<libc::iovec> = segs
        .iter()
        .take(IOV_MAX)
        .map(|s| libc::iovec { iov_base: s.as_slice().as_ptr() as *mut libc::c_void, iov_len: s.as_slice().len() })
        .collect();
    // SAFETY: every iovec points into a segment that outlives the call.
    unsafe { libc::writev(fd, iov.as_ptr(), iov.len() as c_int) }.max(0) as usize
}

/// Shared by all connections of a server: the SHUTDOWN callback (called with "default",
/// "save" or "nosave"), the registry that finds a blocked client's connection, and the clients
/// whose replies wait for the next AOF group commit.
pub struct Hooks {
    pub on_shutdown: Py<PyAny>,
    pub registry: Mutex<HashMap<u64, Py<Connection>>>,
    pub fsync_waiters: Mutex<Vec<u64>>,
    /// The completion eventfd: written to run the group commit on the next loop pass.
    pub wake_fd: i32,
    pub poll: crate::busy_poll::BusyPoll,
    /// Store mode: the store's sockets read on the loop.
    pub store_loop: OnceLock<Arc<crate::store_loop::StoreLoop>>,
    /// The client that last sent a run, and when (see `gathers`).
    pub last_run: Mutex<Option<(u64, std::time::Instant)>>,
}

/// How recently another client must have sent a run for one to wait for the end of the loop's pass.
const GATHER_WINDOW: std::time::Duration = std::time::Duration::from_micros(200);

impl Hooks {
    /// Whether a run client `id` sent now waits for the end of this pass over the ready sockets with
    /// the others (`dispatch_run`'s `gather`): another client sent one within `GATHER_WINDOW`, so
    /// clients run concurrently and their replies can go out together. A lone client, or clients
    /// taking turns slowly, run at once.
    pub fn gathers(&self, id: u64) -> bool {
        let now = std::time::Instant::now();
        let mut last = self.last_run.lock();
        let others = last.is_some_and(|(c, t)| c != id && now.duration_since(t) <= GATHER_WINDOW);
        *last = Some((id, now));
        others
    }

    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes to our eventfd; a full counter only means a wake is pending.
        unsafe { libc::write(self.wake_fd, &one as *const u64 as *const libc::c_void, 8) };
    }
}

/// `appendfsync always`: one write + fsync of the log for every client whose replies waited
/// during the last event-loop pass, then those replies go out.
pub fn group_commit(py: Python<'_>, server: &Server, hooks: &Hooks) -> PyResult<()> {
    let ids = std::mem::take(&mut *hooks.fsync_waiters.lock());
    if ids.is_empty() {
        return Ok(());
    }
    server.persist.flush_for_reply();
    for id in ids {
        let conn = hooks.registry.lock().get(&id).map(|p| p.clone_ref(py));
        if let Some(conn) = conn {
            let me = conn.get();
            me.waiting_fsync.store(false, Relaxed);
            let mut guard = me.session.lock();
            if let Some(session) = guard.as_mut() {
                me.flush(py, session)?;
            }
        }
    }
    Ok(())
}

#[pyclass(frozen, module = "redisai_fast._core")]
pub struct Connection {
    server: Arc<Server>,
    hooks: Arc<Hooks>,
    session: Mutex<Option<Session>>,
    transport: OnceLock<Transport>,
    /// Used before the session exists (and after it is gone) so a read always has somewhere to land.
    closed: std::sync::atomic::AtomicBool,
    /// Queued in `Hooks::fsync_waiters`.
    waiting_fsync: std::sync::atomic::AtomicBool,
    /// Bytes were handed to the transport, which may still hold some: later replies go the same
    /// way until its buffer is empty (so replies stay in order).
    handed_over: std::sync::atomic::AtomicBool,
    /// A `tls-port` connection: uvloop reads ciphertext into its buffer, replies are encrypted.
    tls: Option<Mutex<crate::tls::TlsConn>>,
}

impl Connection {
    pub fn new(server: Arc<Server>, hooks: Arc<Hooks>) -> Self {
        Connection {
            server,
            hooks,
            session: Mutex::new(None),
            transport: OnceLock::new(),
            closed: Default::default(),
            waiting_fsync: Default::default(),
            handed_over: Default::default(),
            tls: None,
        }
    }

    /// A connection of the TLS listener.
    pub fn new_tls(server: Arc<Server>, hooks: Arc<Hooks>, tls: crate::tls::TlsConn) -> Self {
        Connection { tls: Some(Mutex::new(tls)), ..Connection::new(server, hooks) }
    }

    /// Sends the TLS records rustls has ready: to the socket while the transport holds nothing,
    /// the rest through the transport.
    fn send_tls(&self, py: Python<'_>, t: &Transport, tls: &mut crate::tls::TlsConn) -> PyResult<()> {
        if !tls.conn.wants_write() || self.closed.load(Relaxed) {
            return Ok(());
        }
        let direct = t.fd >= 0 && self.transport_drained(py, t)?;
        let rest = tls.drain(t.fd, direct);
        if !rest.is_empty() {
            self.handed_over.store(true, Relaxed);
            t.write.call1(py, (PyBytes::new(py, &rest),))?;
        }
        Ok(())
    }

    /// A blocking command of this client finished: add `reply` and run the commands that waited.
    /// Returns the run the next of those commands prepared, if one blocked again; the replies are
    /// then not written yet (`flush_session` once that run is queued). Otherwise they are written.
    pub fn resume(&self, py: Python<'_>, reply: &[u8]) -> PyResult<Option<PendingRun>> {
        let mut guard = self.session.lock();
        let Some(session) = guard.as_mut() else { return Ok(None) };
        session.resume(reply);
        let run = session.pending_run.take();
        if run.is_none() {
            self.flush(py, session)?;
        }
        Ok(run)
    }

    /// Closes the connection now (CLIENT KILL from another client).
    fn close_now(&self, py: Python<'_>) -> PyResult<()> {
        if let Some(t) = self.transport.get() {
            if !self.closed.swap(true, Relaxed) {
                t.close.call0(py)?;
            }
        }
        Ok(())
    }

    /// Sends bytes that are not a reply (the MONITOR feed) through the transport.
    fn write_raw(&self, py: Python<'_>, bytes: &[u8]) -> PyResult<()> {
        if let Some(t) = self.transport.get() {
            if let Some(tls) = &self.tls {
                let mut tls = tls.lock();
                let _ = tls.conn.writer().write_all(bytes);
                return self.send_tls(py, t, &mut tls);
            }
            if !self.closed.load(Relaxed) {
                self.handed_over.store(true, Relaxed);
                t.write.call1(py, (PyBytes::new(py, bytes),))?;
                self.server.stats.net_output_bytes.fetch_add(bytes.len() as u64, Relaxed);
            }
        }
        Ok(())
    }

    /// The pause that held this client's command is over: run it and what followed it.
    fn retry_postponed(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let me = slf.get();
        let run = {
            let mut guard = me.session.lock();
            let Some(session) = guard.as_mut() else { return Ok(()) };
            session.retry_postponed();
            me.flush(py, session)?;
            session.pending_run.take().map(|r| (r, session.client.info.id))
        };
        me.dispatch_pending(py, run)
    }

    /// Queues or runs inline the run the last command of client `id` prepared, then pumps what
    /// completed.
    fn dispatch_pending(&self, py: Python<'_>, run: Option<(PendingRun, u64)>) -> PyResult<()> {
        if let Some((run, id)) = run {
            let completions = &self.server.exec.completions;
            completions.hold_wake();
            let gather = self.hooks.gathers(id);
            let result = if dispatch_run(py, &self.server, run, gather) { pump(py, &self.server, &self.hooks).map(|_| ()) } else { Ok(()) };
            completions.release_wake();
            crate::deferred::release_pending(py);
            result?;
        }
        Ok(())
    }

    /// Writes what the session has produced so far.
    pub fn flush_session(&self, py: Python<'_>) -> PyResult<()> {
        let mut guard = self.session.lock();
        match guard.as_mut() {
            Some(session) => self.flush(py, session),
            None => Ok(()),
        }
    }

    /// Whether the transport has sent everything handed to it (so a direct write keeps the order).
    fn transport_drained(&self, py: Python<'_>, t: &Transport) -> PyResult<bool> {
        if !self.handed_over.load(Relaxed) {
            return Ok(true);
        }
        let pending: usize = t.get_write_buffer_size.call0(py)?.extract(py)?;
        if pending == 0 {
            self.handed_over.store(false, Relaxed);
        }
        Ok(pending == 0)
    }

    /// Writes everything the session produced; closes the transport if the session asked to.
    fn flush(&self, py: Python<'_>, session: &mut Session) -> PyResult<()> {
        let Some(t) = self.transport.get() else { return Ok(()) };
        // what these replies acknowledge is in the AOF first (and fsynced with appendfsync always,
        // by the group commit the next loop pass runs)
        if self.server.persist.reply_must_wait() {
            if !self.waiting_fsync.swap(true, Relaxed) {
                let mut w = self.hooks.fsync_waiters.lock();
                if w.is_empty() {
                    self.hooks.wake();
                }
                w.push(session.client.info.id);
            }
            return Ok(());
        }
        self.server.persist.flush_for_reply();
        if let Some(tls) = &self.tls {
            // encrypted from the output (stored tensors included) into rustls's records
            let mut tls = tls.lock();
            if !session.out.is_empty() && !self.closed.load(Relaxed) {
                let n = session.out.len();
                if let Some(b) = session.out.plain_bytes() {
                    let _ = tls.conn.writer().write_all(b);
                    session.out.clear();
                } else if n <= COALESCE_TLS {
                    // a small reply with a stored tensor in it: one TLS record, not one per segment
                    let mut one = Vec::with_capacity(n);
                    for s in session.out.take() {
                        one.extend_from_slice(s.as_slice());
                    }
                    let _ = tls.conn.writer().write_all(&one);
                } else {
                    for s in session.out.take() {
                        let _ = tls.conn.writer().write_all(s.as_slice());
                    }
                }
                self.server.stats.net_output_bytes.fetch_add(n as u64, Relaxed);
            } else {
                session.out.clear();
            }
            if session.client.close_after_reply || tls.finished {
                tls.conn.send_close_notify();
            }
            self.send_tls(py, t, &mut tls)?;
        } else if !session.out.is_empty() && !self.closed.load(Relaxed) {
            let n = session.out.len();
            // straight to the socket when the transport holds nothing: no Python object per reply
            let direct = t.fd >= 0 && self.transport_drained(py, t)?;
            if let Some(b) = session.out.plain_bytes() {
                let sent = if direct { write_now(t.fd, b) } else { 0 };
                if sent < b.len() {
                    self.handed_over.store(true, Relaxed);
                    t.write.call1(py, (PyBytes::new(py, &b[sent..]),))?;
                }
                session.out.clear();
            } else {
                let segs = session.out.take();
                let mut skip = if direct { writev_now(t.fd, &segs) } else { 0 };
                if skip < n {
                    // the rest, without copying stored tensors
                    self.handed_over.store(true, Relaxed);
                    let list = PyList::empty(py);
                    for s in segs {
                        let len = s.as_slice().len();
                        if skip >= len {
                            skip -= len;
                            continue;
                        }
                        match s {
                            Segment::Bytes(v) => list.append(PyBytes::new(py, &v[skip..]))?,
                            // (only in-process output has these; copied if one ever got here)
                            Segment::Tensor(tensor) => list.append(PyBytes::new(py, &tensor.bytes()[skip..]))?,
                            Segment::Shared { data, off, len } => {
                                list.append(Bound::new(py, SharedView::new(data, off + skip, len - skip))?)?
                            }
                        }
                        skip = 0;
                    }
                    t.writelines.call1(py, (list,))?;
                }
            }
            self.server.stats.net_output_bytes.fetch_add(n as u64, Relaxed);
        } else {
            session.out.clear();
        }
        let tls_finished = self.tls.as_ref().is_some_and(|t| t.lock().finished);
        if (session.client.close_after_reply || tls_finished) && !self.closed.swap(true, Relaxed) {
            t.close.call0(py)?;
        }
        let mode = self.server.shutdown.lock().take();
        if let Some(mode) = mode {
            let m = match mode {
                ShutdownMode::Default => "default",
                ShutdownMode::Save => "save",
                ShutdownMode::NoSave => "nosave",
            };
            self.hooks.on_shutdown.call1(py, (m,))?;
        }
        Ok(())
    }
}

#[pymethods]
impl Connection {
    fn connection_made(slf: Bound<'_, Self>, transport: Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let me = slf.get();
        let t = Transport {
            write: transport.getattr("write")?.unbind(),
            writelines: transport.getattr("writelines")?.unbind(),
            close: transport.getattr("close")?.unbind(),
            pause_reading: transport.getattr("pause_reading")?.unbind(),
            resume_reading: transport.getattr("resume_reading")?.unbind(),
            get_write_buffer_size: transport.getattr("get_write_buffer_size")?.unbind(),
            // a TLS transport encrypts what it is given: the raw socket must never be written to
            fd: if transport.call_method1("get_extra_info", ("ssl_object",)).is_ok_and(|o| !o.is_none()) {
                -1
            } else {
                transport
                    .call_method1("get_extra_info", ("socket",))
                    .and_then(|s| s.call_method0("fileno"))
                    .and_then(|f| f.extract::<c_int>())
                    .unwrap_or(-1)
            },
        };
        // TCP: (host, port[, flow, scope]); a Unix socket: its path for both ends ("path:0", as
        // Redis shows it), the peer being unnamed
        let info = |what: &str| transport.call_method1("get_extra_info", (what,)).ok();
        let addr = |v: Option<Bound<'_, PyAny>>| -> Option<String> {
            let v = v?;
            if let Ok(path) = v.extract::<String>() {
                return (!path.is_empty()).then(|| format!("{path}:0"));
            }
            let host: String = v.get_item(0).ok()?.extract().ok()?;
            let port: u16 = v.get_item(1).ok()?.extract().ok()?;
            Some(format!("{host}:{port}"))
        };
        let local = addr(info("sockname")).unwrap_or_else(|| "?:0".into());
        let peer = addr(info("peername")).unwrap_or_else(|| if local.starts_with('/') { local.clone() } else { "?:0".into() });
        let _ = me.transport.set(t);
        match me.server.register_client(peer, local) {
            Ok(info) => {
                me.hooks.registry.lock().insert(info.id, slf.clone().unbind());
                *me.session.lock() = Some(Session::new(me.server.clone(), info));
            }
            Err(refusal) => {
                let t = me.transport.get().ok_or_else(|| PyBufferError::new_err("no transport"))?;
                t.write.call1(py, (PyBytes::new(py, refusal.as_bytes()),))?;
                me.closed.store(true, Relaxed);
                t.close.call0(py)?;
            }
        }
        Ok(())
    }

    /// asyncio BufferedProtocol: the object whose buffer the next read fills (ourselves).
    fn get_buffer<'py>(slf: Bound<'py, Self>, _sizehint: isize) -> Bound<'py, Self> {
        slf
    }

    unsafe fn __getbuffer__(slf: Bound<'_, Self>, view: *mut ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        let me = slf.get();
        if let Some(tls) = &me.tls {
            // ciphertext lands in the TLS buffer (a Box that never moves)
            let mut tls = tls.lock();
            let (ptr, len) = (tls.cipher.as_mut_ptr(), tls.cipher.len());
            // SAFETY: the buffer lives as long as the connection and is only read in buffer_updated().
            let rc = unsafe { ffi::PyBuffer_FillInfo(view, slf.as_ptr(), ptr as *mut _, len as ffi::Py_ssize_t, 0, flags) };
            if rc != 0 {
                return Err(PyErr::fetch(slf.py()));
            }
            return Ok(());
        }
        let mut guard = me.session.lock();
        let Some(session) = guard.as_mut() else {
            return Err(PyBufferError::new_err("connection is closed"));
        };
        let (ptr, len) = session.input.read_window();
        // SAFETY: the window stays valid until buffer_updated(), the next call that may touch the
        // input (uvloop calls get_buffer, reads, then buffer_updated, with nothing in between).
        let rc = unsafe { ffi::PyBuffer_FillInfo(view, slf.as_ptr(), ptr as *mut _, len as ffi::Py_ssize_t, 0, flags) };
        if rc != 0 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}

    /// The size of the read window (uvloop's TLS transport asks before decrypting into it).
    fn __len__(&self) -> usize {
        if self.tls.is_some() {
            return crate::tls::CIPHER_BUF;
        }
        self.session.lock().as_mut().map_or(0, |s| s.input.read_window().1)
    }

    /// asyncio BufferedProtocol: `nbytes` landed in the buffer; run every complete command.
    fn buffer_updated(&self, py: Python<'_>, nbytes: usize) -> PyResult<()> {
        let run = {
            let mut guard = self.session.lock();
            let Some(session) = guard.as_mut() else { return Ok(()) };
            if let Some(tls) = &self.tls {
                let mut tls = tls.lock();
                if !tls.receive(nbytes, &mut session.input) {
                    // a broken stream (a plaintext client, a refused certificate): alert, then close
                    tls.finished = true;
                    if let Some(t) = self.transport.get() {
                        self.send_tls(py, t, &mut tls)?;
                        if !self.closed.swap(true, Relaxed) {
                            t.close.call0(py)?;
                        }
                    }
                    return Ok(());
                }
                if let Some(t) = self.transport.get() {
                    // handshake records
                    self.send_tls(py, t, &mut tls)?;
                }
            } else {
                session.input.commit(nbytes);
            }
            self.server.stats.net_input_bytes.fetch_add(nbytes as u64, Relaxed);
            session.client.info.last_ms.store(redisai_core::server::now_ms(), Relaxed);
            session.process();
            self.flush(py, session)?;
            session.pending_run.take().map(|r| (r, session.client.info.id))
        };
        self.dispatch_pending(py, run)?;
        service(py, &self.server, &self.hooks)?;
        self.hooks.poll.note_activity(py, &self.server)
    }

    fn eof_received(&self) -> bool {
        false
    }

    fn connection_lost(&self, _exc: Bound<'_, PyAny>) {
        self.closed.store(true, Relaxed);
        let session = self.session.lock().take();
        if let Some(mut s) = session {
            self.hooks.registry.lock().remove(&s.client.info.id);
            s.close();
        }
    }

    /// The peer is not reading: stop reading its commands until it catches up.
    fn pause_writing(&self, py: Python<'_>) -> PyResult<()> {
        if let Some(t) = self.transport.get() {
            t.pause_reading.call0(py)?;
        }
        Ok(())
    }

    fn resume_writing(&self, py: Python<'_>) -> PyResult<()> {
        if let Some(t) = self.transport.get() {
            if !self.closed.load(Relaxed) {
                t.resume_reading.call0(py)?;
            }
        }
        Ok(())
    }
}

