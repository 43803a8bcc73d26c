//! Ctrl-C: the first one asks the running command to stop and print its summary so far; a
//! second one ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use framelink::std::CancelToken;

/// Set by Ctrl-C (or by a closed stdout); every loop of every command checks it, and links
/// connected with [`token`] end their waits on it.
static REQUESTED: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// Installs the Ctrl-C handler. Without one (the handler could not be installed), Ctrl-C ends
/// the process as usual.
pub(crate) fn install() {
    let _ = ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            // The second Ctrl-C: the summary is not coming fast enough for the user.
            std::process::exit(130);
        }
    });
}

/// Whether the command should stop and report what it has.
pub(crate) fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Asks the command to stop, as Ctrl-C does.
pub(crate) fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// A cancel token on the Ctrl-C flag: a link holding it gives up its waits on Ctrl-C.
pub(crate) fn token() -> CancelToken {
    CancelToken::from_flag(Arc::clone(&REQUESTED))
}
