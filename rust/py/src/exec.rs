//! The Python face of the execution layer: run queues and batches for the worker threads, host
//! jobs (model/backend loading) for the loader threads, and the completion eventfd that wakes the
//! event loop to resume blocked clients.
use std::any::Any;
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyList;
use redisai_core::ai::{Model, ModelSpec};
use redisai_core::exec::{Batch, HostJob, LoadedModel, RunQueue, Work};
use redisai_core::tensor::{DType, Tensor, TensorInit};

use crate::deferred::{release_pending, PyRef};
use crate::ort;
use crate::shared_view::SharedView;
use crate::tensor_view::{dlpack_capsule, tensor_from_py, TensorView};

/// A model's or script's framework object (what a backend adapter's `load` returned), and the
/// session the server runs itself when the adapter gave one (`native`: ONNX on the CPU).
pub struct PyHandle {
    pub obj: PyRef,
    pub native: Option<Arc<ort::Session>>,
    /// What the server calls itself for the run (a TorchScript model on the CPU): see `Direct`.
    pub direct: Option<Direct>,
}

impl PyHandle {
    pub fn new(obj: Bound<'_, PyAny>) -> Self {
        PyHandle { obj: PyRef::new(obj), native: None, direct: None }
    }
}

/// An adapter's direct-call tuple (the TORCH adapter's `direct`): `forward(*tensors)`, the DLPack
/// import, autograd off for the calling thread, the adapter's output conversion, and the
/// exception-to-reply mapping (a BackendError). Runs then need no Python frame of ours.
pub struct Direct {
    forward: PyRef,
    from_dlpack: PyRef,
    no_grad: PyRef,
    to_outputs: PyRef,
    run_error: PyRef,
}

impl Direct {
    fn from_tuple(t: &Bound<'_, PyAny>) -> Option<Direct> {
        let t = t.cast::<pyo3::types::PyTuple>().ok()?;
        if t.len() != 5 {
            return None;
        }
        let item = |i: usize| t.get_item(i).ok().map(PyRef::new);
        Some(Direct { forward: item(0)?, from_dlpack: item(1)?, no_grad: item(2)?, to_outputs: item(3)?, run_error: item(4)? })
    }
}

thread_local! {
    /// `Direct::no_grad` ran on this thread (autograd's mode is per thread).
    static GRAD_OFF: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs a batch through its direct call: stored tensors to torch by DLPack, `forward`, and the
/// outputs as numpy views of the result tensors (the adapter's conversion when that does not do).
fn run_direct(py: Python<'_>, d: &Direct, batch: Batch) {
    let reply = |e: PyErr| -> String {
        match d.run_error.bind(py).call1((e.value(py),)) {
            Ok(be) => error_message(py, &PyErr::from_value(be)),
            Err(e2) => error_message(py, &e2),
        }
    };
    let ran = (|| -> Result<Vec<Tensor>, String> {
        if !GRAD_OFF.with(|g| g.replace(true)) {
            d.no_grad.bind(py).call0().map_err(reply)?;
        }
        let tensors = batch.inputs()?;
        let from = d.from_dlpack.bind(py);
        let mut args = Vec::with_capacity(tensors.len());
        for t in &tensors {
            if t.dtype() == DType::String {
                return Err("ERR STRING tensors cannot be given to a TorchScript model".into());
            }
            args.push(from.call1((dlpack_capsule(py, t).map_err(reply)?,)).map_err(reply)?);
        }
        let out = d.forward.bind(py).call1(pyo3::types::PyTuple::new(py, args).map_err(reply)?).map_err(reply)?;
        if let Some(quick) = quick_outputs(&out) {
            return Ok(quick);
        }
        let arrays = d.to_outputs.bind(py).call1((&out,)).map_err(reply)?;
        arrays.try_iter().and_then(|it| it.map(|o| o.and_then(|o| tensor_from_py(&o))).collect()).map_err(reply)
    })();
    match ran {
        Ok(t) => batch.complete(t),
        Err(e) => batch.fail(e),
    }
}

/// A result's tensors through `.numpy()` (a view, no copy), if each one gives a C-contiguous
/// array of a stored type; None sends the result through the adapter's conversion.
fn quick_outputs(out: &Bound<'_, PyAny>) -> Option<Vec<Tensor>> {
    let one = |t: &Bound<'_, PyAny>| t.call_method0(pyo3::intern!(t.py(), "numpy")).ok().and_then(|a| tensor_from_py(&a).ok());
    if let Ok(tuple) = out.cast::<pyo3::types::PyTuple>() {
        return tuple.iter().map(|t| one(&t)).collect();
    }
    if let Ok(list) = out.cast::<PyList>() {
        return list.iter().map(|t| one(&t)).collect();
    }
    one(out).map(|t| vec![t])
}

/// The `PyHandle` behind a model's or script's host handle (every handle this host makes is one).
fn as_py_handle(handle: &Arc<dyn Any + Send + Sync>) -> Option<&PyHandle> {
    let any: &(dyn Any + Send + Sync) = &**handle;
    any.downcast_ref::<PyHandle>()
}

fn py_handle(py: Python<'_>, handle: &Arc<dyn Any + Send + Sync>) -> PyResult<Py<PyAny>> {
    match as_py_handle(handle) {
        Some(h) => Ok(h.obj.bind(py).unbind()),
        None => Err(PyRuntimeError::new_err("no Python handle")),
    }
}

/// The `PyHandle` of the model `work` runs (None for scripts).
fn model_handle(work: &Work) -> Option<&PyHandle> {
    let Work::Model(m) = work else { return None };
    as_py_handle(&m.handle)
}

/// The session a batch runs on without Python, if its model has one.
fn native_session(batch: &Batch) -> Option<Arc<ort::Session>> {
    model_handle(batch.work()).and_then(|h| h.native.clone())
}

/// Whether the request's model runs through a native session (no Python, no GIL).
pub fn runs_native(r: &redisai_core::exec::RunRequest) -> bool {
    model_handle(&r.work).is_some_and(|h| h.native.is_some())
}

/// Runs a batch of a native model on the calling thread, which need not hold the GIL.
pub fn run_native_batch(batch: Batch) {
    match native_session(&batch) {
        Some(session) => run_native(&session, batch),
        None => batch.fail("ERR the model has no native session".into()),
    }
}

/// Runs a batch through its native session on the calling thread (which needs no GIL), then
/// completes its requests.
fn run_native(session: &ort::Session, batch: Batch) {
    match batch.inputs().and_then(|t| session.run(&t)) {
        Ok(outputs) => batch.complete(outputs),
        Err(e) => batch.fail(e),
    }
}

pub fn handle_of(py: Python<'_>, model: &Model) -> PyResult<Py<PyAny>> {
    py_handle(py, &model.handle)
}

/// The framework object a batch runs: a model's, or the compiled script's.
fn work_handle(py: Python<'_>, work: &Work) -> PyResult<Py<PyAny>> {
    match work {
        Work::Model(m) => handle_of(py, m),
        Work::Script(c) => py_handle(py, &c.script.handle),
    }
}

/// Calls what a batch runs: `model.run(inputs)` or `script.call(function, inputs, keys, args, n_outputs)`.
fn call_work<'py>(py: Python<'py>, work: &Work, inputs: Bound<'py, PyList>) -> PyResult<Bound<'py, PyAny>> {
    let handle = work_handle(py, work)?;
    match work {
        Work::Model(_) => handle.bind(py).call_method1(pyo3::intern!(py, "run"), (inputs,)),
        Work::Script(c) => redisai_core::acl::with_script_caller(c.caller.clone(), || {
            handle.bind(py).call_method1(pyo3::intern!(py, "call"), (c.function.as_str(), inputs, c.keys.clone(), c.args.clone(), c.n_outputs))
        }),
    }
}

/// A device's run queue, for its worker threads.
#[pyclass(frozen, module = "redisai_fast._core")]
pub struct RunQueueHandle {
    pub queue: Arc<RunQueue>,
}

#[pymethods]
impl RunQueueHandle {
    #[getter]
    fn device(&self) -> String {
        self.queue.device.clone()
    }

    /// Blocks (without the GIL) until a batch that needs Python is ready; None when the queue is
    /// closed. Batches of models with a native session run here meanwhile, still without the GIL.
    fn next_batch(&self, py: Python<'_>) -> Option<PyBatch> {
        release_pending(py);
        let q = self.queue.clone();
        py.detach(move || loop {
            let batch = q.next_batch()?;
            match native_session(&batch) {
                Some(session) => run_native(&session, batch),
                None => return Some(batch),
            }
        })
        .map(|b| PyBatch { batch: Mutex::new(Some(b)) })
    }

    fn __len__(&self) -> usize {
        self.queue.len()
    }
}

/// Requests of one model to run together.
#[pyclass(frozen, module = "redisai_fast._core")]
pub struct PyBatch {
    batch: Mutex<Option<Batch>>,
}

impl PyBatch {
    fn with<T>(&self, f: impl FnOnce(&Batch) -> PyResult<T>) -> PyResult<T> {
        match self.batch.lock().as_ref() {
            Some(b) => f(b),
            None => Err(PyRuntimeError::new_err("batch already completed")),
        }
    }

    fn take(&self) -> PyResult<Batch> {
        self.batch.lock().take().ok_or_else(|| PyRuntimeError::new_err("batch already completed"))
    }
}

#[pymethods]
impl PyBatch {
    /// "model" or "script".
    #[getter]
    fn kind(&self) -> PyResult<&'static str> {
        self.with(|b| Ok(if matches!(b.work(), Work::Model(_)) { "model" } else { "script" }))
    }

    /// Number of client requests in the batch.
    #[getter]
    fn size(&self) -> PyResult<usize> {
        self.with(|b| Ok(b.requests.len()))
    }

    /// Input tensors (concatenated along dimension 0 when several requests share the run).
    fn inputs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let tensors = self.with(|b| b.inputs().map_err(PyRuntimeError::new_err))?;
        let views: Vec<TensorView> = tensors.into_iter().map(TensorView::new).collect();
        PyList::new(py, views)
    }

    /// Runs the batch on this thread and hands the outputs (or the error) to its requests. Runs
    /// with the GIL held: giving it up here would only add a hand-off.
    fn run(&self, py: Python<'_>) -> PyResult<()> {
        run_batch(py, self.take()?);
        release_pending(py);
        Ok(())
    }
}

fn finish(py: Python<'_>, batch: Batch, tensors: PyResult<Vec<Tensor>>) {
    match tensors {
        Ok(t) => batch.complete(t),
        Err(e) => batch.fail(format!("ERR {}", e.value(py))),
    }
}

/// The error reply for an exception raised by a backend adapter (BackendError carries it ready).
fn error_message(py: Python<'_>, e: &PyErr) -> String {
    let v = e.value(py);
    if let Ok(m) = v.getattr("message").and_then(|m| m.extract::<String>()) {
        return m;
    }
    format!("ERR {v}")
}

/// Runs a batch on the calling thread (a worker, or the event loop for the inline path), then
/// completes its requests.
pub fn run_batch(py: Python<'_>, batch: Batch) {
    if let Some(session) = native_session(&batch) {
        return run_native(&session, batch);
    }
    if let Work::Model(m) = batch.work() {
        // the batch moves into the run: hold its model (and so the direct call) meanwhile
        let model = m.clone();
        if let Some(d) = as_py_handle(&model.handle).and_then(|h| h.direct.as_ref()) {
            return run_direct(py, d, batch);
        }
    }
    let run = (|| -> PyResult<Bound<'_, PyAny>> {
        let tensors = batch.inputs().map_err(PyRuntimeError::new_err)?;
        let views = PyList::new(py, tensors.into_iter().map(TensorView::new))?;
        call_work(py, batch.work(), views)
    })();
    match run {
        Ok(out) => {
            let tensors = out.try_iter().and_then(|it| it.map(|o| o.and_then(|o| tensor_from_py(&o))).collect());
            finish(py, batch, tensors);
        }
        Err(e) => batch.fail(error_message(py, &e)),
    }
}

/// `redisAI.model_execute` from a script: runs the model now, on this thread (the script already
/// occupies a worker; queueing behind itself could never finish).
pub fn model_execute_now(
    py: Python<'_>,
    server: &Arc<redisai_core::server::Server>,
    key: &[u8],
    inputs: Vec<Bound<'_, PyAny>>,
    n_outputs: usize,
) -> PyResult<Vec<TensorView>> {
    use redisai_core::exec::{RunOutcome, RunRequest};
    use redisai_core::keyspace::Value;
    redisai_core::session::check_script_model_run(server, key).map_err(PyRuntimeError::new_err)?;
    let found = match server.store.get() {
        // store mode: the model from this node's cache or the store (loading it needs the GIL)
        Some(store) => py.detach(|| redisai_core::store::ai::model_now(server, store, key)),
        None => server.ks.lock().get(key, redisai_core::server::now_ms()).map(redisai_core::persist::codec::snapshot_clone).ok_or_else(|| "ERR model key is empty".to_string()),
    };
    let model = {
        match found {
            Ok(Value::Model(m)) => m,
            Ok(_) => return Err(PyRuntimeError::new_err("WRONGTYPE Operation against a key holding the wrong kind of value")),
            Err(e) => return Err(PyRuntimeError::new_err(e)),
        }
    };
    if inputs.len() != model.ninputs() {
        return Err(PyRuntimeError::new_err(format!("ERR Expected {} inputs but got {}", model.ninputs(), inputs.len())));
    }
    if let Some(n) = model.noutputs() {
        if n != n_outputs {
            return Err(PyRuntimeError::new_err(format!("ERR Expected {n} outputs but got {n_outputs}")));
        }
    }
    let tensors = inputs.iter().map(tensor_from_py).collect::<PyResult<Vec<_>>>()?;
    let slot: Arc<Mutex<Option<RunOutcome>>> = Arc::new(Mutex::new(None));
    let sink = slot.clone();
    let (queue, _) = server.exec.queue(&model.spec.queue);
    let request = RunRequest {
        work: Work::Model(model),
        inputs: tensors,
        enqueued: std::time::Instant::now(),
        deadline: None,
        cancel: None,
        done: Box::new(move |o| *sink.lock() = Some(o)),
    };
    run_batch(py, queue.inline_batch(request));
    let outcome = slot.lock().take();
    match outcome {
        Some(RunOutcome::Ok(outs)) => Ok(outs.into_iter().map(TensorView::new).collect()),
        Some(RunOutcome::Err(e)) => Err(PyRuntimeError::new_err(e)),
        _ => Err(PyRuntimeError::new_err("ERR the model run did not complete")),
    }
}

/// Work the loader threads do for a blocked client (loading a model or a backend adapter).
#[pyclass(frozen, module = "redisai_fast._core")]
pub struct PyHostJob {
    job: Mutex<Option<HostJob>>,
}

impl PyHostJob {
    pub fn new(job: HostJob) -> Self {
        PyHostJob { job: Mutex::new(Some(job)) }
    }

    fn spec<T>(&self, f: impl FnOnce(&ModelSpec) -> T) -> PyResult<T> {
        match self.job.lock().as_ref() {
            Some(HostJob::LoadModel { spec, .. }) => Ok(f(spec)),
            _ => Err(PyRuntimeError::new_err("not a model job")),
        }
    }

    fn script_spec<T>(&self, f: impl FnOnce(&redisai_core::ai::ScriptSpec) -> T) -> PyResult<T> {
        match self.job.lock().as_ref() {
            Some(HostJob::CompileScript { spec, .. }) => Ok(f(spec)),
            _ => Err(PyRuntimeError::new_err("not a script job")),
        }
    }
}

#[pymethods]
impl PyHostJob {
    /// "load_model" or "load_backend".
    #[getter]
    fn kind(&self) -> PyResult<&'static str> {
        match self.job.lock().as_ref() {
            Some(HostJob::LoadModel { .. }) => Ok("load_model"),
            Some(HostJob::CompileScript { .. }) => Ok("compile_script"),
            Some(HostJob::LoadBackend { .. }) => Ok("load_backend"),
            None => Err(PyRuntimeError::new_err("job already finished")),
        }
    }

    #[getter]
    fn backend(&self) -> PyResult<String> {
        match self.job.lock().as_ref() {
            Some(HostJob::LoadModel { spec, .. }) => Ok(spec.backend.name().to_string()),
            Some(HostJob::LoadBackend { backend, .. }) => Ok(backend.clone()),
            Some(HostJob::CompileScript { .. }) => Ok("TORCH".into()),
            None => Err(PyRuntimeError::new_err("job already finished")),
        }
    }

    #[getter]
    fn path(&self) -> PyResult<String> {
        match self.job.lock().as_ref() {
            Some(HostJob::LoadBackend { path, .. }) => Ok(path.clone()),
            _ => Err(PyRuntimeError::new_err("not a backend job")),
        }
    }

    /// Device as given (e.g. "gpu:1").
    #[getter]
    fn device(&self) -> PyResult<String> {
        self.spec(|s| s.device.clone()).or_else(|_| self.script_spec(|s| s.device.clone()))
    }

    /// Upper-case run-queue name (e.g. "GPU:1").
    #[getter]
    fn queue(&self) -> PyResult<String> {
        self.spec(|s| s.queue.clone()).or_else(|_| self.script_spec(|s| s.queue.clone()))
    }

    /// Script jobs: the TorchScript source.
    #[getter]
    fn source(&self) -> PyResult<String> {
        self.script_spec(|s| s.source.clone())
    }

    /// Script jobs: the entry points to check.
    #[getter]
    fn entry_points(&self) -> PyResult<Vec<String>> {
        self.script_spec(|s| s.entry_points.clone())
    }

    /// The script compiled: `handle` is what runs its functions.
    fn done_script(&self, handle: Py<PyAny>, py: Python<'_>) -> PyResult<()> {
        match self.job.lock().take() {
            Some(HostJob::CompileScript { spec, done }) => {
                let h: Arc<dyn Any + Send + Sync> = Arc::new(PyHandle::new(handle.into_bound(py)));
                py.detach(move || done(spec, Ok(h)));
                Ok(())
            }
            _ => Err(PyRuntimeError::new_err("not a pending script job")),
        }
    }

    #[getter]
    fn inputs(&self) -> PyResult<Vec<String>> {
        self.spec(|s| s.inputs.clone())
    }

    #[getter]
    fn outputs(&self) -> PyResult<Vec<String>> {
        self.spec(|s| s.outputs.clone())
    }

    #[getter]
    fn batchsize(&self) -> PyResult<u64> {
        self.spec(|s| s.batchsize)
    }

    /// The serialized model, read-only and without a copy.
    #[getter]
    fn blob(&self) -> PyResult<SharedView> {
        self.spec(|s| SharedView::new(s.blob.clone(), 0, s.blob.len()))
    }

    /// The model loaded: `handle` is what runs it; names as the framework reports them.
    fn done_model(&self, handle: Py<PyAny>, input_names: Vec<String>, output_names: Vec<String>, py: Python<'_>) -> PyResult<()> {
        match self.job.lock().take() {
            Some(HostJob::LoadModel { spec, done }) => {
                let handle = handle.into_bound(py);
                let mut h = PyHandle::new(handle.clone());
                if let Ok(native) = handle.getattr(pyo3::intern!(py, "native")) {
                    if let Ok(s) = native.cast::<ort::PyOrtSession>() {
                        h.native = Some(s.get().session.clone());
                    }
                }
                if let Ok(direct) = handle.getattr(pyo3::intern!(py, "direct")) {
                    h.direct = Direct::from_tuple(&direct);
                }
                let loaded = LoadedModel { handle: Arc::new(h), input_names, output_names };
                py.detach(move || done(spec, Ok(loaded)));
                Ok(())
            }
            _ => Err(PyRuntimeError::new_err("not a pending model job")),
        }
    }

    fn done(&self, py: Python<'_>) -> PyResult<()> {
        match self.job.lock().take() {
            Some(HostJob::LoadBackend { done, .. }) => {
                py.detach(move || done(Ok(())));
                Ok(())
            }
            _ => Err(PyRuntimeError::new_err("not a pending backend job")),
        }
    }

    /// The job failed; the client gets `message` as its error reply.
    fn fail(&self, message: String, py: Python<'_>) -> PyResult<()> {
        match self.job.lock().take() {
            Some(HostJob::LoadModel { spec, done }) => py.detach(move || done(spec, Err(message))),
            Some(HostJob::CompileScript { spec, done }) => py.detach(move || done(spec, Err(message))),
            Some(HostJob::LoadBackend { done, .. }) => py.detach(move || done(Err(message))),
            None => return Err(PyRuntimeError::new_err("job already finished")),
        }
        Ok(())
    }
}

/// A tensor view of any C-contiguous array (tests and custom backend adapters use it to call
/// `LoadedModel.run` the way the server does).
#[pyfunction]
pub fn tensor_view(array: Bound<'_, PyAny>) -> PyResult<TensorView> {
    tensor_from_py(&array).map(TensorView::new)
}

/// A STRING tensor from Python bytes (for backends whose outputs are strings).
#[pyfunction]
pub fn string_tensor(shape: Vec<i64>, items: Vec<Vec<u8>>) -> PyResult<TensorView> {
    if redisai_core::tensor::element_count(&shape) != Some(items.len()) {
        return Err(PyRuntimeError::new_err("number of strings does not match the shape"));
    }
    let vals: Vec<&[u8]> = items.iter().map(|v| v.as_slice()).collect();
    Tensor::build(DType::String, shape, TensorInit::Values(vals), usize::MAX)
        .map(TensorView::new)
        .map_err(|e| PyRuntimeError::new_err(e.0))
}
