//! A `defmt` global logger for host test binaries.
//!
//! Firmware links a real logger (RTT, semihosting). A host test that builds framelink-core with
//! the `defmt` feature and a `DEFMT_LOG` level needs one too, or it fails to link
//! (`undefined symbol: _defmt_acquire`). This one encodes every frame as a real logger would and
//! counts the bytes, then drops them; [`bytes_logged`] lets a test check that logging ran.
//!
//! Link it from a test crate with `use framelink_defmt_sink as _;`.
//!
//! This crate is the one place in the workspace with `unsafe`: `defmt::Logger` is an unsafe
//! trait (its implementer promises the acquire/release discipline below). The library crates
//! forbid unsafe code.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

static TAKEN: AtomicBool = AtomicBool::new(false);
static ENCODER: Mutex<defmt::Encoder> = Mutex::new(defmt::Encoder::new());
static BYTES: AtomicUsize = AtomicUsize::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);

/// Bytes of encoded defmt frames logged so far by this process.
pub fn bytes_logged() -> usize {
    BYTES.load(Ordering::Relaxed)
}

fn count(bytes: &[u8]) {
    BYTES.fetch_add(bytes.len(), Ordering::Relaxed);
}

fn with_encoder(f: impl FnOnce(&mut defmt::Encoder)) {
    let mut encoder = ENCODER.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    f(&mut encoder);
}

#[defmt::global_logger]
struct Sink;

// SAFETY: `acquire` takes a process-wide flag and spins until it is free, so frames from
// several threads never interleave; `release` is only called by defmt after `acquire`, and
// `write` only between the two, as the trait requires.
unsafe impl defmt::Logger for Sink {
    fn acquire() {
        while TAKEN.swap(true, Ordering::Acquire) {
            core::hint::spin_loop();
        }
        with_encoder(|e| e.start_frame(count));
    }

    unsafe fn flush() {}

    unsafe fn release() {
        with_encoder(|e| e.end_frame(count));
        TAKEN.store(false, Ordering::Release);
    }

    unsafe fn write(bytes: &[u8]) {
        with_encoder(|e| e.write(bytes, count));
    }
}

defmt::timestamp!("{=u64}", TICKS.fetch_add(1, Ordering::Relaxed));
