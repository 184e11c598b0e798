//! redisai_fast._core: the thin PyO3 surface over redisai_core. The server object the Python
//! host creates, the per-connection protocol, and zero-copy views of stored bytes.
mod alloc;
mod connection;
mod shared_view;

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use redisai_core::config::{Config, ConfigError};
use redisai_core::server::{now_ms, Server};

use connection::{Connection, Hooks};
use shared_view::SharedView;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// The server's shared state. The Python host creates one and uses `new_connection` as the
/// protocol factory of its listening socket.
#[pyclass(frozen, name = "Server", module = "redisai_fast._core")]
struct PyServer {
    inner: Arc<Server>,
    hooks: Arc<Hooks>,
}

#[pymethods]
impl PyServer {
    /// `options`: (name, value) pairs from the command line and config file, applied in order.
    #[new]
    fn new(options: Vec<(String, String)>, on_shutdown: Py<PyAny>) -> PyResult<Self> {
        let mut cfg = Config::default();
        for (name, value) in options {
            cfg.set(&name, &value, true).map_err(|e| match e {
                ConfigError::Unknown => PyValueError::new_err(format!("unknown option '{name}'")),
                ConfigError::Immutable => PyValueError::new_err(format!("option '{name}' cannot be set")),
                ConfigError::Invalid(why) => PyValueError::new_err(format!("bad value for '{name}': {why}")),
            })?;
        }
        let inner = Server::new(cfg, alloc::allocated);
        Ok(PyServer { inner, hooks: Arc::new(Hooks { on_shutdown }) })
    }

    /// Protocol factory: one `Connection` per accepted socket.
    fn new_connection(&self) -> Connection {
        Connection::new(self.inner.clone(), self.hooks.clone())
    }

    /// Records the port actually bound (for `--port 0`), so INFO and CONFIG GET show it.
    fn set_bound_port(&self, port: u16) -> PyResult<()> {
        self.inner.config.write().set("port", &port.to_string(), true).map_err(|_| PyValueError::new_err("bad port"))
    }

    /// Current value of an option, as CONFIG GET shows it.
    fn config_get(&self, name: &str) -> Option<String> {
        self.inner.config.read().get(name).map(str::to_string)
    }

    /// Deletes keys whose TTL has passed (called periodically by the host); returns how many.
    fn expire_cycle(&self, py: Python<'_>) -> usize {
        py.detach(|| self.inner.ks.lock().expire_cycle(now_ms(), 1000))
    }

    /// Sets the text of an extra INFO section (e.g. "ai").
    fn set_info_section(&self, name: &str, text: &str) {
        self.inner.extra_info.write().insert(name.to_lowercase(), text.to_string());
    }

    /// Number of keys (for logs and tests).
    fn dbsize(&self) -> usize {
        self.inner.ks.lock().len()
    }

    fn client_count(&self) -> usize {
        self.inner.client_count()
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
    m.add_class::<SharedView>()?;
    m.add_function(wrap_pyfunction!(allocated_bytes, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
