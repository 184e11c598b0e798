//! `SharedView`: a read-only Python buffer over shared Rust bytes (tensor data, model chunks),
//! handed to the transport so large replies are written without a copy.
use std::os::raw::c_int;

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use redisai_core::tensor::buffer::SharedBytes;

#[pyclass(frozen, module = "redisai_fast._core")]
pub struct SharedView {
    data: SharedBytes,
    off: usize,
    len: usize,
}

impl SharedView {
    pub fn new(data: SharedBytes, off: usize, len: usize) -> Self {
        SharedView { data, off, len }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.data.as_slice()[self.off..self.off + self.len]
    }
}

#[pymethods]
impl SharedView {
    unsafe fn __getbuffer__(slf: Bound<'_, Self>, view: *mut ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        if flags & ffi::PyBUF_WRITABLE != 0 {
            return Err(PyBufferError::new_err("SharedView is read-only"));
        }
        let me = slf.get();
        let bytes = &me.data.as_slice()[me.off..me.off + me.len];
        // SAFETY: the bytes are immutable and live as long as `slf`, which the view references.
        let rc = unsafe {
            ffi::PyBuffer_FillInfo(view, slf.as_ptr(), bytes.as_ptr() as *mut _, bytes.len() as ffi::Py_ssize_t, 1, flags)
        };
        if rc != 0 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}

    fn __len__(&self) -> usize {
        self.len
    }
}
