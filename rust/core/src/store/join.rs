//! Waits for several store replies that arrive on any thread: the last one to arrive hands all
//! of them, in the order asked, to the continuation.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

type Done<T> = Box<dyn FnOnce(Vec<T>) + Send>;

struct Inner<T> {
    results: Mutex<Vec<Option<T>>>,
    left: AtomicUsize,
    done: Mutex<Option<Done<T>>>,
}

/// `n` results; `done` runs once, on the thread that delivers the last one.
pub struct Join<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Join<T> {
    fn clone(&self) -> Self {
        Join { inner: self.inner.clone() }
    }
}

impl<T: Send + 'static> Join<T> {
    pub fn new(n: usize, done: Done<T>) -> Join<T> {
        let join = Join { inner: Arc::new(Inner { results: Mutex::new((0..n).map(|_| None).collect()), left: AtomicUsize::new(n), done: Mutex::new(Some(done)) }) };
        if n == 0 {
            join.finish();
        }
        join
    }

    /// Result `i` arrived.
    pub fn put(&self, i: usize, value: T) {
        if let Some(slot) = self.inner.results.lock().get_mut(i) {
            *slot = Some(value);
        }
        if self.inner.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.finish();
        }
    }

    fn finish(&self) {
        let all: Vec<T> = self.inner.results.lock().drain(..).flatten().collect();
        if let Some(done) = self.inner.done.lock().take() {
            done(all);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_from_any_thread() {
        let (tx, rx) = std::sync::mpsc::channel();
        let j: Join<usize> = Join::new(3, Box::new(move |v| tx.send(v).unwrap_or(())));
        let handles: Vec<_> = [2usize, 0, 1].into_iter().map(|i| {
            let j = j.clone();
            std::thread::spawn(move || j.put(i, i * 10))
        }).collect();
        for h in handles {
            let _ = h.join();
        }
        assert_eq!(rx.recv().ok(), Some(vec![0, 10, 20]));
        let (tx, rx) = std::sync::mpsc::channel();
        let _empty: Join<u8> = Join::new(0, Box::new(move |v| tx.send(v.len()).unwrap_or(())));
        assert_eq!(rx.recv().ok(), Some(0));
    }
}
