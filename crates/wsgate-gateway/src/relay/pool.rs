//! Read buffers, lent per read and given back when a direction goes quiet.
//!
//! An idle connection holds no buffer at all: this is what keeps an idle proxied connection at
//! a few hundred bytes. A busy one reuses the same few buffers per worker thread, so the hot
//! path allocates nothing once the pool is warm. Thread-local, so taking and giving back is a
//! `Vec` push/pop with no lock.

use std::cell::RefCell;

/// Size of one read. Big enough that a 4 KiB message and its neighbours arrive in one read,
/// small enough that thousands of busy connections fit in cache-friendly memory.
pub const BUFFER_SIZE: usize = 16 * 1024;
/// Buffers kept per thread; beyond this, given-back buffers are freed.
const KEPT_PER_THREAD: usize = 256;

pub type Buffer = Box<[u8]>;

thread_local! {
    static FREE: RefCell<Vec<Buffer>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of [`BUFFER_SIZE`] bytes, reused when one is free.
pub fn take() -> Buffer {
    FREE.with(|free| free.borrow_mut().pop()).unwrap_or_else(|| vec![0; BUFFER_SIZE].into_boxed_slice())
}

/// Hands a buffer back for the next read on this thread.
pub fn give(buffer: Buffer) {
    FREE.with(|free| {
        let mut free = free.borrow_mut();
        if free.len() < KEPT_PER_THREAD {
            free.push(buffer);
        }
    });
}
