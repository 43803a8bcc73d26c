//! Puts memory.x where the linker finds it.

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    // The defmt feature needs its linker script too (`-Tlink.x` comes from .cargo/config.toml).
    if env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo:rustc-link-arg=-Tdefmt.x");
    }
    if env::var_os("CARGO_FEATURE_PSK").is_some() {
        write_key(&out);
    }
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
}

/// The `psk` build's key, as `const PSK: [u8; 32]` in OUT_DIR/psk.rs: from the file that
/// FRAMELINK_FIRMWARE_PSK_FILE names (64 hex digits), else the example key (public: never for a
/// real device).
fn write_key(out: &std::path::Path) {
    println!("cargo:rerun-if-env-changed=FRAMELINK_FIRMWARE_PSK_FILE");
    println!("cargo:rerun-if-changed=example-only.psk");
    let path =
        env::var_os("FRAMELINK_FIRMWARE_PSK_FILE").map_or_else(|| "example-only.psk".into(), PathBuf::from);
    println!("cargo:rerun-if-changed={}", path.display());
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the key file {}: {e}", path.display()));
    let hex = text.trim();
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{}: a key is 64 hex digits",
        path.display()
    );
    let bytes: Vec<String> = (0..32).map(|i| format!("0x{}", &hex[2 * i..2 * i + 2])).collect();
    let code = format!(
        "/// The pre-shared key, from {}.\nconst PSK: [u8; 32] = [{}];\n",
        path.display(),
        bytes.join(", ")
    );
    fs::write(out.join("psk.rs"), code).expect("write psk.rs");
}
