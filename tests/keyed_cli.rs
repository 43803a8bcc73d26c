//! The tool's keys: `framelink keygen` writes a key only its owner may read; `--psk-file`
//! (and `FRAMELINK_PSK_FILE`) on serve, info, ping, bench and send; a key file others may read
//! is refused, as ssh refuses such a private key; a different key or none fails at once with
//! words that say so.

mod common;

use std::process::Command;

use common::WAIT;
use common::socat::TempDir;
use common::tool::{BIN, Running, listener, run};

fn keygen(dir: &TempDir, name: &str) -> String {
    let path = dir.path(name);
    run(&["keygen", path.to_str().unwrap()]).ok();
    path.to_str().unwrap().to_owned()
}

#[test]
fn keygen_writes_a_key_only_its_owner_may_read_and_never_overwrites() {
    let dir = TempDir::new("keyed-keygen");
    let path = keygen(&dir, "key");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim().len(), 64);
    assert!(text.trim().bytes().all(|b| b.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let other = keygen(&dir, "other");
    assert_ne!(std::fs::read_to_string(&other).unwrap(), text, "a new key each time");
    run(&["keygen", &path]).failed("exists");
}

#[cfg(unix)]
#[test]
fn a_key_file_others_may_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("keyed-open");
    let path = keygen(&dir, "key");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let ran = run(&["info", "--psk-file", &path, "tcp://127.0.0.1:9"]);
    assert_eq!(ran.code, Some(2), "{:?}", ran.stderr);
    assert!(ran.stderr.iter().any(|line| line.contains("too open")), "{:?}", ran.stderr);
}

#[test]
fn keyed_serve_answers_info_ping_bench_and_send_with_the_key_only() {
    let dir = TempDir::new("keyed-tool");
    let (key, other) = (keygen(&dir, "key"), keygen(&dir, "other"));
    let mut server = Running::start(&[
        "serve",
        "--listen",
        "tcp://127.0.0.1:0",
        "--listen",
        "udp://127.0.0.1:0",
        "--psk-file",
        &key,
    ]);
    let listening = server.listening(2);
    let (tcp, udp) = (listener(&listening, "tcp"), listener(&listening, "udp"));
    for addr in [&tcp, &udp] {
        let info = run(&["--json", "info", "--psk-file", &key, addr]).ok().json();
        assert!(info["name"].as_str().unwrap().contains("framelink serve"), "{info}");
        let ping = run(&["--json", "ping", "-c", "5", "-i", "0.01", "--psk-file", &key, addr]).ok().json();
        assert_eq!(ping["received"], 5, "{ping}");
        run(&["--json", "bench", "-t", "0.5", "--psk-file", &key, addr]).ok();
        run(&["ping", "-c", "1", "--psk-file", &other, addr])
            .failed("authentication failed: the peer has a different key");
        run(&["ping", "-c", "1", addr]).failed("one side has a pre-shared key and the other has none");
    }
    // The key from the environment.
    let ran =
        Command::new(BIN).args(["send", &tcp, "hello"]).env("FRAMELINK_PSK_FILE", &key).output().unwrap();
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    server.interrupt();
    assert_eq!(server.wait(WAIT), Some(0));
}
