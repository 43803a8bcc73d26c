//! Pre-shared key files: `--psk-file PATH` (or `FRAMELINK_PSK_FILE`) on every command, and
//! `framelink keygen PATH`. A key file holds 64 hex digits (a newline after them is fine); like
//! ssh with a private key, a file that others may read is refused.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use framelink::std::Psk;
use serde::Serialize;

use crate::output::{Failure, Outcome, Report, Run};

/// The key flag every command takes.
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct PskArgs {
    /// Keyed sessions: the pre-shared key in PATH (64 hex digits; `framelink keygen` makes
    /// one), which the peer must hold too; every packet is then authenticated and encrypted.
    /// Refused if others may read the file
    #[arg(long = "psk-file", value_name = "PATH", env = "FRAMELINK_PSK_FILE", value_parser = read_key_file)]
    pub(crate) psk: Option<Psk>,
}

/// Reads a key file, refusing one that others may read.
pub(crate) fn read_key_file(path: &str) -> Result<Psk, String> {
    let meta = fs::metadata(path).map_err(|e| format!("cannot read the key file {path}: {e}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "permissions {mode:04o} for the key file {path} are too open: others may read the key \
                 (chmod 600 {path})"
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = fs::read(path).map_err(|e| format!("cannot read the key file {path}: {e}"))?;
    Psk::from_hex(&text).map_err(|e| format!("the key file {path}: {e}"))
}

/// `framelink keygen PATH`.
#[derive(Args, Debug)]
pub(crate) struct KeygenArgs {
    /// Where to write the new key (the file must not exist; it is made readable by its owner
    /// only)
    #[arg(value_name = "PATH")]
    pub(crate) path: PathBuf,
}

/// What `keygen` did.
#[derive(Debug, Serialize)]
pub(crate) struct KeygenReport {
    /// The key file written.
    path: String,
}

impl Report for KeygenReport {
    fn print_text(&self) {
        println!("wrote a new key to {} (give the peer a copy, over a safe channel)", self.path);
    }
}

/// Writes a new random key to a new file, mode 0600.
pub(crate) fn keygen(args: &KeygenArgs) -> Run<KeygenReport> {
    let psk = framelink::std::new_psk().map_err(|e| Failure(format!("no random key: {e}")))?;
    let text: String = psk.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    write_new(&args.path, format!("{text}\n").as_bytes())
        .map_err(|e| Failure(format!("cannot write {}: {e}", args.path.display())))?;
    Ok(Outcome::new(KeygenReport { path: args.path.display().to_string() }, None))
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
