//! End-to-end results: the JSON files `scripts/bench-e2e.sh` leaves in its output folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::codec::{fmt_ratio, verdict};

/// The client counts of the concurrency test.
pub(crate) const CLIENTS: [u32; 4] = [1, 10, 100, 1000];

/// Every JSON document of one run, by file name (without `.json`); missing ones are `Null`.
pub(crate) struct Results {
    dir: PathBuf,
}

impl Results {
    /// The results in `dir`, which must hold at least one of the files.
    pub(crate) fn read(dir: &Path) -> Result<Self, String> {
        let results = Self { dir: dir.to_path_buf() };
        let any = ["raw-ping", "framelink-ping", "iperf3-tcp", "clients-1"]
            .iter()
            .any(|n| !results.doc(n).is_null());
        if any { Ok(results) } else { Err(format!("nothing in {}", dir.display())) }
    }

    /// The document `name`.json, or `Null`.
    pub(crate) fn doc(&self, name: &str) -> Value {
        std::fs::read_to_string(self.dir.join(format!("{name}.json")))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(Value::Null)
    }

    /// The RTT distribution `[percent, µs]` of a raw-ping or clients document.
    pub(crate) fn distribution(&self, name: &str) -> Vec<(f64, f64)> {
        let doc = self.doc(name);
        let rtt = if doc["rtt"].is_null() { &doc } else { &doc["rtt"] };
        rtt["distribution"]
            .as_array()
            .map(|points| points.iter().filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()?))).collect())
            .unwrap_or_default()
    }

    /// Gbit/s received by the iperf3 client or server, from its `--json` output.
    fn iperf3_gbps(&self, name: &str) -> Option<f64> {
        let end = &self.doc(name)["end"];
        let bits = end["sum_received"]["bits_per_second"].as_f64().or_else(|| {
            // UDP in iperf3 3.12 has only `sum`: the sender's rate and the receiver's loss.
            let sum = &end["sum"];
            Some(
                sum["bits_per_second"].as_f64()?
                    * (1.0 - sum["lost_percent"].as_f64().unwrap_or(0.0) / 100.0),
            )
        })?;
        Some(bits / 1e9)
    }

    fn framelink_gbps(&self, name: &str) -> Option<f64> {
        Some(self.doc(name)["bits_per_second"].as_f64()? / 1e9)
    }

    /// The tables and goals, as Markdown.
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::from(
            "| throughput, loopback | framelink bench | iperf3 | ratio | goal |\n|---|---|---|---|---|\n",
        );
        for (what, ours, theirs, goal) in [
            ("TCP, client to server", "framelink-bench-tcp", "iperf3-tcp", Some(0.9)),
            ("TCP, server to client (`-R`)", "framelink-bench-tcp-reverse", "iperf3-tcp-reverse", Some(0.9)),
            ("UDP, 1200-byte messages, client to server", "framelink-bench-udp", "iperf3-udp", None),
        ] {
            let (a, b) = (self.framelink_gbps(ours), self.iperf3_gbps(theirs));
            let ratio = a.zip(b).map(|(a, b)| a / b);
            let goal = goal.map_or(String::from("-"), |g| format!(">= {g}: {}", verdict(ratio, g, true)));
            let _ = writeln!(out, "| {what} | {} | {} | {} | {goal} |", gbit(a), gbit(b), fmt_ratio(ratio));
        }

        let raw = self.doc("raw-ping");
        let ping = self.doc("framelink-ping");
        let (raw50, raw99) = (raw["p50_us"].as_f64(), raw["p99_us"].as_f64());
        let (ping50, ping99) = (ping["rtt_us"]["p50"].as_f64(), ping["rtt_us"]["p99"].as_f64());
        let ratio = ping50.zip(raw50).map(|(a, b)| a / b);
        out.push_str("\n| round trip, 64 B, both ends on CPU 0 | p50 µs | p99 µs |\n|---|---|---|\n");
        let _ =
            writeln!(out, "| raw std TCP ping-pong (echo in one write) | {} | {} |", us(raw50), us(raw99));
        let _ = writeln!(out, "| `framelink ping -i 0` over TCP | {} | {} |", us(ping50), us(ping99));
        let _ = writeln!(
            out,
            "| ratio of medians (goal <= 1.2) | {} {} | |",
            fmt_ratio(ratio),
            verdict(ratio, 1.2, false)
        );

        out.push_str(
            "\n| clients pinging one `framelink serve` | pings | lost | p50 µs | p99 µs | server RSS MiB | server CPU % |\n|---|---|---|---|---|---|---|\n",
        );
        let mut single_p99 = None;
        let mut last_p99 = None;
        for n in CLIENTS {
            let doc = self.doc(&format!("clients-{n}"));
            let server = self.doc(&format!("server-{n}"));
            let p99 = doc["rtt"]["p99_us"].as_f64();
            if n == 1 {
                single_p99 = p99;
            }
            last_p99 = p99;
            let _ = writeln!(
                out,
                "| {n} | {} | {} | {} | {} | {} | {} |",
                int(doc["sent"].as_f64()),
                int(doc["lost"].as_f64()),
                us(doc["rtt"]["p50_us"].as_f64()),
                us(p99),
                server["rss_kib"].as_f64().map_or("-".into(), |k| format!("{:.0}", k / 1024.0)),
                server["cpu_percent"].as_f64().map_or("-".into(), |c| format!("{c:.0}")),
            );
        }
        let ratio = last_p99.zip(single_p99).map(|(a, b)| a / b);
        let _ = writeln!(
            out,
            "\np99 of 1,000 clients / p99 of 1 client: {} (goal <= 2: {})\n",
            fmt_ratio(ratio),
            verdict(ratio, 2.0, false)
        );
        out
    }
}

fn gbit(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.2} Gbit/s"))
}

fn us(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.1}"))
}

fn int(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.0}"))
}
