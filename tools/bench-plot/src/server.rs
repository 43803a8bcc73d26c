//! Server-scale results: the JSON files `scripts/bench-server.sh` leaves in its output folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::codec::{fmt_ratio, verdict};

/// Sessions held in the hold test.
const HELD: u32 = 10_000;
/// Clients pinging at once in the concurrency test.
const CLIENTS: u32 = 1000;
/// The RSS a held session may cost the server, KiB.
const RSS_PER_SESSION_KIB: f64 = 16.0;

/// Every JSON document of one run, by file name (without `.json`).
pub(crate) struct Results {
    dir: PathBuf,
}

impl Results {
    /// The results in `dir`, which must hold the hold test's document.
    pub(crate) fn read(dir: &Path) -> Result<Self, String> {
        let results = Self { dir: dir.to_path_buf() };
        if results.doc(&format!("hold-{HELD}")).is_null() {
            return Err(format!("no hold-{HELD}.json in {}", dir.display()));
        }
        Ok(results)
    }

    /// The document `name`.json, or `Null`.
    fn doc(&self, name: &str) -> Value {
        std::fs::read_to_string(self.dir.join(format!("{name}.json")))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(Value::Null)
    }

    /// The table of the server's targets, as Markdown.
    pub(crate) fn markdown(&self) -> String {
        let hold = self.doc(&format!("hold-{HELD}"));
        let cores = self.doc("machine")["cores"].as_f64();
        let many = self.doc(&format!("clients-{CLIENTS}"));
        let one = self.doc("clients-1");
        let (many_server, one_server) = (self.doc(&format!("server-{CLIENTS}")), self.doc("server-1"));

        let mut out = format!(
            "| `framelink serve`, {HELD} idle TCP sessions held | figure | target | |\n|---|---|---|---|\n"
        );
        let held = hold["held"].as_f64();
        let _ = writeln!(
            out,
            "| sessions handshaken and held (failed, lost while held) | {} ({}, {}) | {HELD} | {} |",
            int(held),
            int(hold["failed"].as_f64()),
            int(hold["lost"].as_f64()),
            verdict(held, f64::from(HELD), true)
        );
        let threads = hold["server_held"]["threads"].as_f64();
        let max_threads = cores.map(|c| 2.0 * c + 4.0);
        let _ = writeln!(
            out,
            "| server threads, all held (before: {}) | {} | <= {} (2 x cores + 4) | {} |",
            int(hold["server_before"]["threads"].as_f64()),
            int(threads),
            int(max_threads),
            threads.zip(max_threads).map_or("not measured", |(t, m)| verdict(Some(t), m, false))
        );
        let per_session = hold["rss_per_session_kib"].as_f64();
        let _ = writeln!(
            out,
            "| server RSS per held session, KiB (RSS {} -> {} MiB) | {} | <= {RSS_PER_SESSION_KIB} | {} |",
            mib(hold["server_before"]["rss_kib"].as_f64()),
            mib(hold["server_held"]["rss_kib"].as_f64()),
            one_decimal(per_session),
            verdict(per_session, RSS_PER_SESSION_KIB, false)
        );
        let (idle, busy) = (&hold["ping_none_held"]["rtt"], &hold["ping_all_held"]["rtt"]);
        let ratio = busy["p99_us"].as_f64().zip(idle["p99_us"].as_f64()).map(|(a, b)| a / b);
        let _ = writeln!(
            out,
            "| ping p99 µs, none held -> all held (p50 {} -> {}) | {} -> {} = {} | <= 2x | {} |",
            one_decimal(idle["p50_us"].as_f64()),
            one_decimal(busy["p50_us"].as_f64()),
            one_decimal(idle["p99_us"].as_f64()),
            one_decimal(busy["p99_us"].as_f64()),
            fmt_ratio(ratio),
            verdict(ratio, 2.0, false)
        );
        let ratio = many["rtt"]["p99_us"].as_f64().zip(one["rtt"]["p99_us"].as_f64()).map(|(a, b)| a / b);
        let _ = writeln!(
            out,
            "| ping p99 µs, 1 client -> {CLIENTS} clients (p50 {} -> {}) | {} -> {} = {} | <= 2x | {} |",
            one_decimal(one["rtt"]["p50_us"].as_f64()),
            one_decimal(many["rtt"]["p50_us"].as_f64()),
            one_decimal(one["rtt"]["p99_us"].as_f64()),
            one_decimal(many["rtt"]["p99_us"].as_f64()),
            fmt_ratio(ratio),
            verdict(ratio, 2.0, false)
        );
        let _ = writeln!(
            out,
            "| server peak RSS MiB and CPU %, 1 -> {CLIENTS} clients | {} -> {} MiB, {} -> {} % | | |",
            mib(one_server["rss_kib"].as_f64()),
            mib(many_server["rss_kib"].as_f64()),
            int(one_server["cpu_percent"].as_f64()),
            int(many_server["cpu_percent"].as_f64()),
        );
        out.push('\n');
        out
    }
}

fn int(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.0}"))
}

fn one_decimal(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.1}"))
}

fn mib(kib: Option<f64>) -> String {
    kib.map_or("-".into(), |k| format!("{:.0}", k / 1024.0))
}
