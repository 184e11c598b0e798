//! redisai_fast._core: the thin PyO3 surface over redisai_core. The server object the Python
//! host creates, the per-connection protocol, and zero-copy views of stored bytes.
mod alloc;
mod busy_poll;
mod connection;
mod deferred;
mod exec;
mod local;
mod ort;
mod shared_view;
mod store_loop;
mod tensor_view;
mod tls;

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use redisai_core::config::{Config, ConfigError};
use redisai_core::server::{now_ms, Server};

use connection::{Connection, Hooks};
use exec::{PyBatch, PyHostJob, RunQueueHandle};
use shared_view::SharedView;
use tensor_view::TensorView;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// The server's shared state. The Python host creates one and uses `new_connection` as the
/// protocol factory of its listening socket.
#[pyclass(frozen, name = "Server", module = "redisai_fast._core")]
struct PyServer {
    inner: Arc<Server>,
    hooks: Arc<Hooks>,
    /// eventfd the event loop watches; written when finished work is waiting.
    wake_fd: i32,
    /// The TLS configuration of `tls-port` (set by `enable_tls`).
    tls: std::sync::OnceLock<Arc<rustls::ServerConfig>>,
}

impl Drop for PyServer {
    fn drop(&mut self) {
        // SAFETY: wake_fd is our eventfd.
        unsafe { libc::close(self.wake_fd) };
    }
}

#[pymethods]
impl PyServer {
    /// `options`: (name, value) pairs from the command line and config file, applied in order; a
    /// value is one string, or the list of a directive's arguments (`bind`, `save` take several).
    /// A bad one raises ValueError(message, index of the option). `user` lines define ACL users,
    /// as in redis.conf.
    #[new]
    fn new(options: Vec<(String, Bound<'_, PyAny>)>, on_shutdown: Py<PyAny>) -> PyResult<Self> {
        let mut cfg = Config::default();
        let mut users = Vec::new();
        for (index, (name, value)) in options.iter().enumerate() {
            let words: Option<Vec<String>> = value.extract::<Vec<String>>().ok();
            if name.eq_ignore_ascii_case("user") {
                users.push(match &words {
                    Some(w) => w.join(" "),
                    None => value.extract::<String>()?,
                });
                continue;
            }
            let applied = match value.extract::<String>() {
                Ok(one) => cfg.set(name, &one, true),
                Err(_) => {
                    let args: Vec<String> = value.extract()?;
                    cfg.apply(name, &args.iter().map(String::as_str).collect::<Vec<_>>(), true)
                }
            };
            applied.map_err(|e| {
                let why = match e {
                    ConfigError::Unknown | ConfigError::Arity => "Bad directive or wrong number of arguments".to_string(),
                    ConfigError::Immutable => format!("option '{name}' cannot be set"),
                    ConfigError::Invalid(why) => why,
                };
                PyValueError::new_err((format!("'{name}': {why}"), index))
            })?;
        }
        if cfg.get("disable-thp") == Some("yes") {
            // SAFETY: plain syscall on this process; on failure (old kernels) THP simply stays on.
            unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        }
        let inner = Server::new(cfg, alloc::allocated);
        redisai_core::commands::acl::startup(&inner, &users).map_err(PyValueError::new_err)?;
        // SAFETY: plain syscall; the fd is closed in Drop.
        let wake_fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if wake_fd < 0 {
            return Err(PyValueError::new_err("cannot create the completion eventfd"));
        }
        let hooks = Arc::new(Hooks {
            on_shutdown,
            registry: Default::default(),
            fsync_waiters: Default::default(),
            wake_fd,
            poll: Default::default(),
            store_loop: Default::default(),
            last_run: Default::default(),
        });
        let waker = hooks.clone();
        inner.exec.completions.set_waker(Box::new(move || waker.wake()));
        Ok(PyServer { inner, hooks, wake_fd, tls: Default::default() })
    }

    /// The fd to watch (add_reader): readable when blocked clients have replies waiting.
    fn completion_fd(&self) -> i32 {
        self.wake_fd
    }

    /// Sends every finished reply to its client and runs the commands that waited behind it.
    fn drain_completions(&self, py: Python<'_>) -> PyResult<usize> {
        let mut counter: u64 = 0;
        // SAFETY: reading 8 bytes from our non-blocking eventfd resets it.
        unsafe { libc::read(self.wake_fd, &mut counter as *mut u64 as *mut libc::c_void, 8) };
        if let Some(sl) = self.hooks.store_loop.get() {
            sl.register(py)?;
        }
        serve_completions(py, &self.inner, &self.hooks)
    }

    /// Store mode, once the loop runs: the store's sockets are read by the loop from now on
    /// (`loop.add_reader`/`remove_reader`; `on_readable` is this server's `store_readable`).
    fn set_store_loop(&self, add_reader: Py<PyAny>, remove_reader: Py<PyAny>, on_readable: Py<PyAny>) {
        let Some(store) = self.inner.store.get() else { return };
        let waker = self.hooks.clone();
        let sl = Arc::new(store_loop::StoreLoop::new(Box::new(move || waker.wake()), add_reader, remove_reader, on_readable));
        if self.hooks.store_loop.set(sl.clone()).is_ok() {
            store.client.set_loop_host(sl);
        }
    }

    /// A store socket is readable: its replies go out, and what their clients sent next runs.
    fn store_readable(&self, py: Python<'_>, fd: i32) -> PyResult<usize> {
        let Some(sl) = self.hooks.store_loop.get() else { return Ok(0) };
        let completions = &self.inner.exec.completions;
        completions.hold_wake();
        let r = sl.readable(py, fd);
        completions.release_wake();
        r?;
        serve_completions(py, &self.inner, &self.hooks)
    }

    /// Busy polling (`busy-poll-us`): `call_soon(tick)` schedules the host's poll callback, which
    /// calls `keep_polling` on each loop pass and schedules itself again while that is true.
    fn set_busy_poller(&self, call_soon: Py<PyAny>, tick: Py<PyAny>) {
        self.hooks.poll.set_scheduler(call_soon, tick);
    }

    /// The event loop stops: forget the poll callback (`set_busy_poller`) and the store loop's.
    fn clear_busy_poller(&self) {
        drop(self.hooks.poll.clear_scheduler());
        if let Some(sl) = self.hooks.store_loop.get() {
            sl.clear();
        }
    }

    /// Whether the event loop should poll once more instead of sleeping (see `busy_poll`).
    fn keep_polling(&self) -> bool {
        self.hooks.poll.keep_polling(&self.inner)
    }

    /// The run queue of a device and whether it was just created (then start its workers).
    fn queue(&self, device: &str) -> (RunQueueHandle, bool) {
        let (queue, created) = self.inner.exec.queue(&device.to_ascii_uppercase());
        (RunQueueHandle { queue }, created)
    }

    /// Blocks (without the GIL) for the next model/backend load; None at shutdown.
    fn next_host_job(&self, py: Python<'_>) -> Option<PyHostJob> {
        let inner = self.inner.clone();
        py.detach(move || inner.exec.host.next()).map(PyHostJob::new)
    }

    /// Times out queued requests past their TIMEOUT and drops those of departed clients.
    fn sweep(&self, py: Python<'_>) {
        let inner = self.inner.clone();
        py.detach(move || inner.exec.sweep(std::time::Instant::now()));
    }

    /// Stops the run queues and the loader queue: their threads return.
    fn close_exec(&self) {
        self.inner.exec.close();
    }

    /// Records a loaded backend's framework version (INFO ai).
    fn set_backend_version(&self, backend: &str, version: &str) {
        self.inner.backend_versions.write().insert(backend.to_string(), version.to_string());
    }

    /// Runs a command for server-side code (`redis.execute` in scripts) and returns its reply as
    /// Python values: str for status and bulk replies, int, None, lists. Errors raise RuntimeError.
    fn execute<'py>(&self, py: Python<'py>, argv: Vec<Vec<u8>>) -> PyResult<Bound<'py, PyAny>> {
        match redisai_core::session::execute_internal(&self.inner, argv) {
            Ok(v) => resp_to_py(py, v),
            Err(e) => Err(pyo3::exceptions::PyRuntimeError::new_err(e)),
        }
    }

    /// Runs a stored model on the calling thread for a script (`redisAI.model_execute`): same
    /// lookup, checks, adapter and AI.INFO accounting as AI.MODELEXECUTE.
    fn model_execute(&self, py: Python<'_>, key: Vec<u8>, inputs: Vec<Bound<'_, PyAny>>, n_outputs: usize) -> PyResult<Vec<TensorView>> {
        exec::model_execute_now(py, &self.inner, &key, inputs, n_outputs)
    }

    /// Loads the AOF (appendonly yes) or the snapshot at start-up. Models and scripts go to
    /// `loader(job)`, which must load them before returning. Returns a one-line summary.
    fn load_data(&self, py: Python<'_>, loader: Bound<'_, PyAny>) -> PyResult<String> {
        let mut failure: Option<PyErr> = None;
        let result = redisai_core::persist::load(&self.inner, &mut |job| {
            if failure.is_none() {
                if let Err(e) = loader.call1((PyHostJob::new(job),)) {
                    failure = Some(e);
                }
            }
        });
        deferred::release_pending(py);
        if let Some(e) = failure {
            return Err(e);
        }
        let s = result.map_err(PyValueError::new_err)?;
        Ok(match s.truncated_at {
            Some(off) => format!("loaded {} keys from {} ({} commands; torn tail cut at offset {off})", s.keys, s.source, s.commands),
            None if s.source == "none" => "no snapshot or AOF to load".to_string(),
            None => format!("loaded {} keys from {}", s.keys, s.source),
        })
    }

    /// Store mode (`store URL`): connects to the store and reads its topology; from then on the
    /// keys live there. Returns a line for the log, or None without a store.
    fn connect_store(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let (url, wait, timeout, front) = {
            let c = self.inner.config.read();
            let num = |n: &str| c.get(n).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let front = (c.get("cluster-enabled") == Some("yes"))
                .then(|| redisai_core::store::front::Front { offset: num("cluster-store-port-offset") as u16 });
            (c.get("store").unwrap_or("").to_string(), num("store-wait-replicas"), num("store-wait-timeout"), front)
        };
        if url.is_empty() {
            return Ok(None);
        }
        let name = format!("redisai-fast-{}", &self.inner.run_id[..8]);
        let seed = u64::from_str_radix(&self.inner.run_id[..16], 16).unwrap_or(0);
        let store = py.detach(|| redisai_core::store::Store::connect(&url, &name, seed, front)).map_err(PyValueError::new_err)?;
        store.wait_replicas.store(wait, std::sync::atomic::Ordering::Relaxed);
        store.wait_timeout_ms.store(timeout.max(1), std::sync::atomic::Ordering::Relaxed);
        let topo = store.client.topology();
        let line = match front {
            Some(f) => format!("cluster-enabled: the store node is {url} (its port: this node's + {})", f.offset),
            None => format!("store {url}: {} with {} shard(s)", if topo.cluster { "cluster" } else { "standalone" }, topo.shards.len()),
        };
        let _ = self.inner.store.set(store);
        Ok(Some(line))
    }

    /// Store mode, once listening: names this node's store connections (its address for the
    /// cluster map that other nodes read).
    fn store_announce(&self) {
        if let Some(store) = self.inner.store.get() {
            redisai_core::store::node::announce(&self.inner, store);
        }
    }

    /// Opens the AOF if `appendonly yes` (after loading).
    fn start_persistence(&self) -> PyResult<()> {
        let on = self.inner.config.read().get("appendonly") == Some("yes");
        redisai_core::persist::set_aof(&self.inner, on).map_err(PyValueError::new_err)
    }

    /// Periodic persistence work (save rules); call about once a second.
    fn cron(&self, py: Python<'_>) {
        let inner = self.inner.clone();
        py.detach(move || redisai_core::persist::cron(&inner));
    }

    /// Final save / AOF sync at shutdown ("default", "save" or "nosave").
    fn shutdown_persistence(&self, py: Python<'_>, mode: &str) -> PyResult<()> {
        use redisai_core::server::ShutdownMode;
        let m = match mode {
            "save" => ShutdownMode::Save,
            "nosave" => ShutdownMode::NoSave,
            _ => ShutdownMode::Default,
        };
        let inner = self.inner.clone();
        py.detach(move || redisai_core::persist::on_shutdown(&inner, m)).map_err(PyValueError::new_err)
    }

    /// Sets an option as at start-up (the host fills defaults it computes, e.g. BACKENDSPATH).
    fn set_option(&self, name: &str, value: &str) -> PyResult<()> {
        self.inner.config.write().set(name, value, true).map_err(|_| PyValueError::new_err(format!("bad option {name}")))
    }

    /// An in-process client of this server (the Python `Database`): `make_error(line)` builds
    /// the exception for an error reply, `closed_error(message)` the one raised after `close()`.
    fn local_client(&self, make_error: Py<PyAny>, closed_error: Py<PyAny>) -> local::LocalClient {
        local::LocalClient::new(self.inner.clone(), make_error, closed_error)
    }

    /// Protocol factory: one `Connection` per accepted socket.
    fn new_connection(&self) -> Connection {
        Connection::new(self.inner.clone(), self.hooks.clone())
    }

    /// Loads the `tls-*` options (certificate, key, CAs, client authentication, protocols,
    /// suites); a ValueError says what is wrong. Call before `new_tls_connection`.
    fn enable_tls(&self) -> PyResult<()> {
        let config = tls::server_config(&self.inner.config.read()).map_err(PyValueError::new_err)?;
        let _ = self.tls.set(config);
        Ok(())
    }

    /// Protocol factory of the TLS listener: the connection decrypts and encrypts in Rust.
    fn new_tls_connection(&self) -> PyResult<Connection> {
        let config = self.tls.get().ok_or_else(|| PyValueError::new_err("enable_tls was not called"))?;
        let conn = tls::TlsConn::new(config).map_err(PyValueError::new_err)?;
        Ok(Connection::new_tls(self.inner.clone(), self.hooks.clone(), conn))
    }

    /// Records the port actually bound (for `--port 0`), so INFO and CONFIG GET show it.
    fn set_bound_port(&self, port: u16) -> PyResult<()> {
        self.inner.config.write().set("port", &port.to_string(), true).map_err(|_| PyValueError::new_err("bad port"))
    }

    /// The redis.conf directives given at start-up that this server accepts without acting on.
    fn ignored_directives(&self) -> Vec<String> {
        self.inner.config.read().ignored_given().iter().map(|s| s.to_string()).collect()
    }

    /// Current value of an option, as CONFIG GET shows it.
    fn config_get(&self, name: &str) -> Option<String> {
        self.inner.config.read().get(name).map(str::to_string)
    }

    /// Deletes keys whose TTL has passed (called periodically by the host); returns how many.
    fn expire_cycle(&self, py: Python<'_>) -> usize {
        deferred::release_pending(py);
        self.inner.used_memory(); // samples the peak for INFO's used_memory_peak
        py.detach(|| self.inner.ks.lock().expire_cycle(now_ms(), 1000))
    }

    /// Sets the text of an extra INFO section (e.g. "ai").
    fn set_info_section(&self, name: &str, text: &str) {
        self.inner.extra_info.write().insert(name.to_lowercase(), text.to_string());
    }

    /// The `/metrics` text (OpenMetrics).
    fn metrics_text(&self, py: Python<'_>) -> String {
        let inner = self.inner.clone();
        py.detach(move || redisai_core::metrics::render(&inner))
    }

    /// Periodic connection work: closes killed clients, writes MONITOR feeds, and runs the
    /// commands a CLIENT PAUSE held back once it is over (the host calls it every few ms).
    fn service(&self, py: Python<'_>) -> PyResult<()> {
        connection::service(py, &self.inner, &self.hooks)
    }

    /// Number of keys (for logs and tests).
    fn dbsize(&self) -> usize {
        self.inner.ks.lock().len()
    }

    fn client_count(&self) -> usize {
        self.inner.client_count()
    }
}

/// The group commit, inline-run batches, and every finished reply sent to its client.
fn serve_completions(py: Python<'_>, inner: &Arc<Server>, hooks: &Arc<Hooks>) -> PyResult<usize> {
    connection::group_commit(py, inner, hooks)?;
    let completions = &inner.exec.completions;
    completions.hold_wake();
    if completions.take_loop_pass() {
        connection::run_loop_batches(py, inner);
    }
    let n = connection::pump(py, inner, hooks);
    completions.release_wake();
    deferred::release_pending(py);
    connection::service(py, inner, hooks)?;
    hooks.poll.note_activity(py, inner)?;
    n
}

fn resp_to_py(py: Python<'_>, v: redisai_core::resp::decode::RespValue) -> PyResult<Bound<'_, PyAny>> {
    use pyo3::IntoPyObjectExt;
    use redisai_core::resp::decode::RespValue;
    Ok(match v {
        RespValue::Simple(s) => s.into_bound_py_any(py)?,
        RespValue::Bulk(b) => String::from_utf8_lossy(&b).into_owned().into_bound_py_any(py)?,
        RespValue::Int(i) => i.into_bound_py_any(py)?,
        RespValue::Null => py.None().into_bound(py),
        RespValue::Error(e) => return Err(pyo3::exceptions::PyRuntimeError::new_err(e)),
        RespValue::Array(items) => {
            let list = pyo3::types::PyList::empty(py);
            for it in items {
                list.append(resp_to_py(py, it)?)?;
            }
            list.into_any()
        }
    })
}

/// `redisai-fast check-aof`: a verdict line; raises ValueError when the log is damaged.
#[pyfunction]
#[pyo3(signature = (path, fix = false))]
fn check_aof(path: &str, fix: bool) -> PyResult<String> {
    redisai_core::persist::aof::check(std::path::Path::new(path), fix).map_err(PyValueError::new_err)
}

/// `redisai-fast check-snapshot`: a verdict line; raises ValueError when the file is damaged.
#[pyfunction]
fn check_snapshot(path: &str) -> PyResult<String> {
    match redisai_core::persist::snapshot::read(std::path::Path::new(path)) {
        Ok(entries) => Ok(format!("snapshot {path} is valid: {} keys", entries.len())),
        Err(e) => Err(PyValueError::new_err(format!("snapshot {path}: {e}"))),
    }
}

/// Bytes currently allocated by the Rust core.
#[pyfunction]
fn allocated_bytes() -> usize {
    alloc::allocated()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyServer>()?;
    m.add_class::<Connection>()?;
    m.add_class::<local::LocalClient>()?;
    m.add_class::<SharedView>()?;
    m.add_class::<TensorView>()?;
    m.add_class::<RunQueueHandle>()?;
    m.add_class::<PyBatch>()?;
    m.add_class::<PyHostJob>()?;
    m.add_class::<ort::PyOrtSession>()?;
    m.add_function(wrap_pyfunction!(exec::string_tensor, m)?)?;
    m.add_function(wrap_pyfunction!(exec::tensor_view, m)?)?;
    m.add_function(wrap_pyfunction!(allocated_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(check_aof, m)?)?;
    m.add_function(wrap_pyfunction!(check_snapshot, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
