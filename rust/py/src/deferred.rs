//! Python references owned by Rust values that may be dropped anywhere: inside a framework's
//! deallocator (where PyO3 believes the GIL is held but torch has released it), on a thread
//! without the GIL, or with the keyspace locked. Dropping one never touches Python: the decref
//! is queued and done by `release_pending` at points known to hold the GIL.
use std::ptr::NonNull;

use parking_lot::Mutex;
use pyo3::ffi;
use pyo3::prelude::*;

static PENDING: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// An owned reference to a Python object whose release is deferred.
pub struct PyRef(NonNull<ffi::PyObject>);

// SAFETY: the object is only touched through `bind` (with the GIL) or by release_pending (with the GIL).
unsafe impl Send for PyRef {}
unsafe impl Sync for PyRef {}

impl PyRef {
    pub fn new(obj: Bound<'_, PyAny>) -> PyRef {
        // SAFETY: into_ptr gives us an owned, non-null reference.
        PyRef(unsafe { NonNull::new_unchecked(obj.into_ptr()) })
    }

    pub fn bind<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        // SAFETY: we own a reference, so the object is alive; borrowed creates a new strong ref.
        unsafe { Bound::from_borrowed_ptr(py, self.0.as_ptr()) }
    }
}

impl Drop for PyRef {
    fn drop(&mut self) {
        PENDING.lock().push(self.0.as_ptr() as usize);
    }
}

/// Releases the references dropped since the last call. Call only where the GIL is truly held.
pub fn release_pending(_py: Python<'_>) {
    let pending = std::mem::take(&mut *PENDING.lock());
    for p in pending {
        // SAFETY: each pointer is an owned reference handed over by PyRef::drop; we hold the GIL.
        unsafe { ffi::Py_DECREF(p as *mut ffi::PyObject) };
    }
}
