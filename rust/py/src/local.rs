//! `LocalClient`: the in-process client behind the Python `Database`. A call turns its Python
//! arguments into a command's arguments (an array is copied once, into the buffer the stored
//! tensor then keeps), runs the command through the core's command path
//! (`redisai_core::local`), waits for a blocking command with the GIL released, and turns the
//! reply into Python values; `tensorget` gives the tensor's data as a read-only view of the
//! stored buffer.
use std::ffi::{c_void, CStr};
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyList, PyString, PyTuple};
use pyo3::IntoPyObjectExt;
use redisai_core::local::LocalClient as CoreClient;
use redisai_core::resp::{Arg, Args, Out, Segment};
use redisai_core::server::Server;
use redisai_core::tensor::buffer::{AlignedBuf, FillingBuf};
use redisai_core::tensor::INLINE_LIMIT;

use crate::shared_view::SharedView;
use crate::tensor_view::{dtype_from_format, TensorView};

/// Arguments at least this big go in an aligned buffer of their own, which a handler keeps
/// without another copy (a tensor's BLOB, a model's blob), as the socket path does.
const OWN_BUFFER_MIN: usize = 32 * 1024;
/// Copies at least this big run with the GIL released.
const DETACHED_COPY_MIN: usize = 1 << 20;

#[pyclass(frozen, module = "redisai_fast._core")]
pub struct LocalClient {
    pool: Mutex<Pool>,
    closed: AtomicBool,
    /// `make_error(line)` builds the exception for an error reply.
    make_error: Py<PyAny>,
    /// Raised (with a message) once the client is closed.
    closed_error: Py<PyAny>,
}

/// The server (None once closed: the client no longer keeps it, and its data, alive) and the
/// idle clients; a call takes one (or registers a new one), so concurrent calls from several
/// threads are like several connections.
struct Pool {
    server: Option<Arc<Server>>,
    idle: Vec<CoreClient>,
}

impl LocalClient {
    pub fn new(server: Arc<Server>, make_error: Py<PyAny>, closed_error: Py<PyAny>) -> Self {
        let pool = Pool { server: Some(server), idle: Vec::new() };
        LocalClient { pool: Mutex::new(pool), closed: AtomicBool::new(false), make_error, closed_error }
    }

    fn error(&self, py: Python<'_>, line: &str) -> PyErr {
        match self.make_error.call1(py, (line,)) {
            Ok(exc) => PyErr::from_value(exc.into_bound(py)),
            Err(e) => e,
        }
    }

    fn checkout(&self, py: Python<'_>) -> PyResult<CoreClient> {
        let mut pool = self.pool.lock();
        if let Some(c) = pool.idle.pop() {
            return Ok(c);
        }
        let Some(server) = pool.server.clone() else {
            drop(pool);
            return Err(PyErr::from_value(self.closed_error.call1(py, ("the database is closed",))?.into_bound(py)));
        };
        drop(pool);
        CoreClient::new(&server).map_err(|reply| self.error(py, reply.trim_start_matches('-').trim_end()))
    }

    fn checkin(&self, client: CoreClient) {
        let mut pool = self.pool.lock();
        if pool.server.is_some() {
            pool.idle.push(client);
        }
    }

    /// Runs one command and decodes its reply (`share`: stored payloads come back as views).
    /// `Arg::Range` arguments are bytes of `base`.
    fn run<'py>(&self, py: Python<'py>, base: &[u8], items: &mut [Arg], share: bool) -> PyResult<Bound<'py, PyAny>> {
        let mut client = self.checkout(py)?;
        let mut out = if share { Out::sharing_all(false) } else { Out::new(false) };
        // (the arguments are read only here: a command that blocks has copied what it keeps)
        let blocked = client.start(&mut out, &mut Args::new(base, items));
        if blocked {
            py.detach(|| {
                client.wait(&mut out);
                client.flush_log();
            });
        } else if client.flush_will_sync() {
            py.detach(|| client.flush_log());
        } else {
            client.flush_log();
        }
        self.checkin(client);
        let segments = out.take();
        crate::deferred::release_pending(py);
        let mut reader = Reader { segs: &segments, i: 0, pos: 0, share };
        reader.value(py, self, true)
    }
}

#[pymethods]
impl LocalClient {
    /// Runs a command and returns its reply: str for status replies, bytes for bulk strings,
    /// int, None, lists; an error reply raises `make_error(line)` (inside an array it is an
    /// element). Arguments are bytes, str, int, float, or anything with the buffer protocol.
    #[pyo3(signature = (*args))]
    fn execute<'py>(&self, py: Python<'py>, args: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
        let mut items = Vec::with_capacity(args.len());
        for a in args.iter() {
            items.push(to_arg(&a)?);
        }
        self.run(py, &[], &mut items, false)
    }

    /// `AI.TENSORSET key <dtype> <shape...> BLOB <data>` for an array (anything with a typed
    /// buffer), whose data is copied once, into the buffer the stored tensor keeps.
    fn tensorset<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>, array: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let buf = Buffer::get(array, ffi::PyBUF_STRIDES | ffi::PyBUF_FORMAT)?;
        let dtype = buf.dtype()?;
        let shape = buf.shape();
        let mut items = Vec::with_capacity(5 + shape.len());
        items.push(Arg::Inline(b"AI.TENSORSET".to_vec()));
        items.push(to_arg(key)?);
        items.push(Arg::Inline(dtype.name().as_bytes().to_vec()));
        let mut num = itoa::Buffer::new();
        for d in shape {
            items.push(Arg::Inline(num.format(d).as_bytes().to_vec()));
        }
        items.push(Arg::Inline(b"BLOB".to_vec()));
        if let Some(bytes) = buf.contiguous_bytes().filter(|b| b.len() < INLINE_LIMIT) {
            // a small tensor copies its data into its own allocation: the BLOB argument is
            // the array's memory itself, so that is the one copy
            items.push(Arg::Range { off: 0, len: bytes.len() });
            return self.run(py, bytes, &mut items, false);
        }
        // a large one keeps the aligned buffer its BLOB arrives in: the copy into it is the one
        items.push(Arg::Big(buf.copy(py)?));
        drop(buf);
        self.run(py, &[], &mut items, false)
    }

    /// `AI.TENSORGET key META BLOB`: `[b"dtype", type, b"shape", dims, b"blob", view]`, where
    /// the view is the stored tensor itself (a `TensorView`: typed and shaped, so that
    /// `numpy.asarray(view)` is the tensor, read-only, without a copy; a `SharedView` of the
    /// stored bytes for STRING tensors).
    fn tensorget<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let mut items = vec![Arg::Inline(b"AI.TENSORGET".to_vec()), to_arg(key)?, Arg::Inline(b"META".to_vec()), Arg::Inline(b"BLOB".to_vec())];
        self.run(py, &[], &mut items, true)
    }

    /// Refuses further calls, unregisters the idle clients (busy ones when they finish), answers
    /// calls still waiting for a blocked command `ERR the server is shutting down`, and lets go
    /// of the server.
    fn close(&self) {
        self.closed.store(true, Relaxed);
        let (server, idle) = {
            let mut pool = self.pool.lock();
            (pool.server.take(), std::mem::take(&mut pool.idle))
        };
        drop(idle);
        if let Some(server) = server {
            server.exec.completions.close_direct();
        }
    }

    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Relaxed)
    }
}

/// One command argument from a Python value (redis-py's rules: bytes, str, int, float).
fn to_arg(v: &Bound<'_, PyAny>) -> PyResult<Arg> {
    if let Ok(b) = v.cast::<PyBytes>() {
        return bytes_arg(b.as_bytes());
    }
    if let Ok(s) = v.cast::<PyString>() {
        return bytes_arg(s.to_str()?.as_bytes());
    }
    if v.is_instance_of::<PyBool>() {
        return Err(invalid_input(v));
    }
    if v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>() {
        // as redis-py sends them: str() of an int, repr() of a float
        let text = if v.is_instance_of::<PyInt>() { v.str()? } else { v.repr()? };
        return Ok(Arg::Inline(text.to_str()?.as_bytes().to_vec()));
    }
    match Buffer::get(v, ffi::PyBUF_STRIDES) {
        // a numpy scalar (or 0-d array) is a number, not its raw bytes
        Ok(buf) if buf.0.ndim == 0 => {
            drop(buf);
            number_arg(v)
        }
        Ok(buf) => buf.copy(v.py()).map(Arg::Big),
        // SAFETY: PyIndex_Check only reads the object's type.
        Err(_) if unsafe { PyIndex_Check(v.as_ptr()) } == 1 => number_arg(v),
        Err(_) => Err(invalid_input(v)),
    }
}

extern "C" {
    // in the stable ABI since 3.8; pyo3-ffi 0.28 binds its limited-API declaration to PyPy's
    // symbol name (PyPyIndex_Check), which an abi3 build for CPython cannot resolve
    fn PyIndex_Check(o: *mut ffi::PyObject) -> std::os::raw::c_int;
}

/// An integer-like or float-like object as redis-py would send the Python number.
fn number_arg(v: &Bound<'_, PyAny>) -> PyResult<Arg> {
    // SAFETY: PyIndex_Check only reads the object's type.
    let text = if unsafe { PyIndex_Check(v.as_ptr()) } == 1 {
        v.call_method0(pyo3::intern!(v.py(), "__index__"))?.str()?
    } else {
        let x: f64 = v.extract().map_err(|_| invalid_input(v))?;
        PyFloat::new(v.py(), x).repr()?
    };
    Ok(Arg::Inline(text.to_str()?.as_bytes().to_vec()))
}

fn bytes_arg(b: &[u8]) -> PyResult<Arg> {
    if b.len() >= OWN_BUFFER_MIN {
        AlignedBuf::from_slice(b).map(Arg::Big).map_err(|e| PyValueError::new_err(e.to_string()))
    } else {
        Ok(Arg::Inline(b.to_vec()))
    }
}

fn invalid_input(v: &Bound<'_, PyAny>) -> PyErr {
    let name = v.get_type().name().map(|n| n.to_string()).unwrap_or_default();
    PyTypeError::new_err(format!("Invalid input of type: '{name}'. Convert to a bytes, string, int or float first."))
}

/// A Python buffer held for the duration of a copy (released on drop).
struct Buffer(ffi::Py_buffer);

impl Buffer {
    fn get(obj: &Bound<'_, PyAny>, flags: std::os::raw::c_int) -> PyResult<Buffer> {
        // SAFETY: zeroed storage for CPython to fill; released in Drop only after a successful fill.
        let mut view: ffi::Py_buffer = unsafe { std::mem::zeroed() };
        if unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), &mut view, flags) } != 0 {
            return Err(PyErr::fetch(obj.py()));
        }
        Ok(Buffer(view))
    }

    fn dtype(&self) -> PyResult<redisai_core::tensor::DType> {
        let v = &self.0;
        // SAFETY: a non-null format is a NUL-terminated string owned by the exporter.
        let format = if v.format.is_null() { "B".into() } else { unsafe { CStr::from_ptr(v.format) }.to_string_lossy().into_owned() };
        dtype_from_format(&format, v.itemsize as usize).ok_or_else(|| {
            PyTypeError::new_err(format!(
                "tensors of element type '{format}' ({} bytes) are not supported: use float32, float64, int8, int16, int32, \
                 int64, uint8, uint16 or bool in native byte order",
                v.itemsize
            ))
        })
    }

    fn shape(&self) -> Vec<i64> {
        let v = &self.0;
        if v.ndim == 0 || v.shape.is_null() {
            return if v.ndim == 0 { vec![] } else { vec![v.len as i64 / v.itemsize.max(1) as i64] };
        }
        // SAFETY: the exporter provides `ndim` dimensions.
        (0..v.ndim as usize).map(|i| unsafe { *v.shape.add(i) } as i64).collect()
    }

    /// The exporter's memory, when it is C-contiguous.
    fn contiguous_bytes(&self) -> Option<&[u8]> {
        let v = &self.0;
        if v.len == 0 {
            return Some(&[]);
        }
        // SAFETY: `v` was filled by PyObject_GetBuffer and stays valid until Drop; a C-contiguous
        // buffer is `len` readable bytes at `buf`.
        (unsafe { ffi::PyBuffer_IsContiguous(v, b'C' as c_char) } == 1)
            .then(|| unsafe { std::slice::from_raw_parts(v.buf as *const u8, v.len as usize) })
    }

    /// The data, C-ordered, in an aligned buffer of its own: one copy (without the GIL when big).
    fn copy(&self, py: Python<'_>) -> PyResult<AlignedBuf> {
        let v = &self.0;
        let len = v.len as usize;
        let mut dst = FillingBuf::new(len).map_err(|e| PyValueError::new_err(e.to_string()))?;
        // SAFETY: `v` was filled by PyObject_GetBuffer and stays valid until Drop.
        if unsafe { ffi::PyBuffer_IsContiguous(v, b'C' as c_char) } == 1 {
            // SAFETY: a C-contiguous buffer is `len` readable bytes at `buf`.
            let src = unsafe { std::slice::from_raw_parts(v.buf as *const u8, len) };
            if len >= DETACHED_COPY_MIN {
                py.detach(|| dst.extend_from_slice(src));
            } else {
                dst.extend_from_slice(src);
            }
        } else {
            let (p, room) = dst.window();
            debug_assert!(room >= len);
            // SAFETY: `p` has room for `len` bytes; CPython walks the strides of `v`.
            if unsafe { ffi::PyBuffer_ToContiguous(p as *mut c_void, v, len as ffi::Py_ssize_t, b'C' as c_char) } != 0 {
                return Err(PyErr::fetch(py));
            }
            // SAFETY: PyBuffer_ToContiguous wrote `len` bytes at the start of the window.
            unsafe { dst.assume_filled(len) };
        }
        dst.finish().map_err(|_| PyValueError::new_err("the array changed size while it was copied"))
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: filled by a successful PyObject_GetBuffer; every caller holds the GIL.
        unsafe { ffi::PyBuffer_Release(&mut self.0) };
    }
}

/// Decodes a RESP2 reply spread over segments; a bulk string that is a shared segment (stored
/// bytes) becomes a `SharedView` when `share`, else bytes.
struct Reader<'a> {
    segs: &'a [Segment],
    i: usize,
    pos: usize,
    share: bool,
}

impl<'a> Reader<'a> {
    fn bytes_at(&self, i: usize) -> Option<&'a [u8]> {
        match self.segs.get(i) {
            Some(Segment::Bytes(b)) => Some(b),
            _ => None,
        }
    }

    fn line(&mut self) -> PyResult<&'a [u8]> {
        while self.bytes_at(self.i).is_some_and(|b| self.pos >= b.len()) {
            self.i += 1;
            self.pos = 0;
        }
        let rest = &self.bytes_at(self.i).ok_or_else(unreadable)?[self.pos..];
        let end = rest.iter().position(|&c| c == b'\r').ok_or_else(unreadable)?;
        self.pos += end + 2;
        Ok(&rest[..end])
    }

    fn value<'py>(&mut self, py: Python<'py>, owner: &LocalClient, top: bool) -> PyResult<Bound<'py, PyAny>> {
        let line = self.line()?;
        let (&kind, text) = line.split_first().ok_or_else(unreadable)?;
        let number = || std::str::from_utf8(text).ok().and_then(|t| t.parse::<i64>().ok()).ok_or_else(unreadable);
        match kind {
            b'+' => PyString::new(py, &String::from_utf8_lossy(text)).into_bound_py_any(py),
            b'-' => {
                let err = owner.error(py, &String::from_utf8_lossy(text));
                if top {
                    Err(err)
                } else {
                    Ok(err.into_value(py).into_bound(py).into_any())
                }
            }
            b':' => number()?.into_bound_py_any(py),
            b'$' => {
                let n = number()?;
                if n < 0 {
                    return Ok(py.None().into_bound(py));
                }
                self.bulk(py, n as usize)
            }
            b'*' => {
                let n = number()?;
                if n < 0 {
                    return Ok(py.None().into_bound(py));
                }
                let list = PyList::empty(py);
                for _ in 0..n {
                    list.append(self.value(py, owner, false)?)?;
                }
                Ok(list.into_any())
            }
            _ => Err(unreadable()),
        }
    }

    fn bulk<'py>(&mut self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyAny>> {
        let here = self.bytes_at(self.i).ok_or_else(unreadable)?;
        if self.pos >= here.len() {
            let stored = match self.segs.get(self.i + 1) {
                Some(Segment::Shared { data, off, len }) if *len == n => {
                    Some(if self.share {
                        Bound::new(py, SharedView::new(data.clone(), *off, *len))?.into_any()
                    } else {
                        PyBytes::new(py, &data.as_slice()[*off..*off + *len]).into_any()
                    })
                }
                // a stored tensor's data: a typed, shaped view of the tensor itself
                Some(Segment::Tensor(t)) if t.byte_len() == n => Some(Bound::new(py, TensorView::new(t.clone()))?.into_any()),
                _ => None,
            };
            if let Some(value) = stored {
                // the CRLF after it starts the next segment
                self.i += 2;
                self.pos = 2;
                return Ok(value);
            }
        }
        let body = here.get(self.pos..self.pos + n).ok_or_else(unreadable)?;
        self.pos += n + 2;
        Ok(PyBytes::new(py, body).into_any())
    }
}

fn unreadable() -> PyErr {
    PyValueError::new_err("unreadable reply")
}
