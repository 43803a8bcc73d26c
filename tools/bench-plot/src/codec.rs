//! Codec results from criterion's estimates: throughput per method and payload size.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

/// The payload sizes of `benches/codec.rs`.
pub(crate) const SIZES: [u64; 3] = [64, 1024, 65535];

/// The methods in table order, with what each row is.
pub(crate) const METHODS: [(&str, &str); 10] = [
    ("framelink_length_delimited", "framelink length-delimited (CRC-32C)"),
    ("framelink_datagram", "framelink datagram (CRC-32C)"),
    ("framelink_cobs", "framelink COBS (CRC-32C)"),
    ("tokio_length_delimited_crc32c", "tokio-util LengthDelimitedCodec + crc32c"),
    ("tokio_length_delimited", "tokio-util LengthDelimitedCodec, no CRC"),
    ("corncobs", "corncobs, no CRC"),
    ("cobs", "cobs (postcard's author), no CRC"),
    ("crc32c_hardware", "CRC-32C alone, crc32c crate (hardware)"),
    ("crc32c_portable", "CRC-32C alone, portable table"),
    ("memcpy", "memcpy"),
];

/// Throughput in GB/s (10^9 bytes of payload per second) by method and size.
pub(crate) struct Results {
    pub(crate) gbps: BTreeMap<String, BTreeMap<u64, f64>>,
}

impl Results {
    /// Reads `<dir>/<method>/<size>/new/estimates.json` (median time per iteration, ns).
    pub(crate) fn read(dir: &Path) -> Result<Self, String> {
        let mut gbps: BTreeMap<String, BTreeMap<u64, f64>> = BTreeMap::new();
        for (method, _) in METHODS {
            for size in SIZES {
                let file = dir.join(method).join(size.to_string()).join("new/estimates.json");
                let Ok(text) = std::fs::read_to_string(&file) else { continue };
                let json: Value =
                    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
                let nanos = json["median"]["point_estimate"]
                    .as_f64()
                    .ok_or_else(|| format!("{}: no median", file.display()))?;
                gbps.entry(method.to_string()).or_default().insert(size, size as f64 / nanos);
            }
        }
        if gbps.is_empty() {
            return Err(format!("nothing in {}", dir.display()));
        }
        Ok(Self { gbps })
    }

    /// GB/s of `method` at `size`, if measured.
    pub(crate) fn get(&self, method: &str, size: u64) -> Option<f64> {
        self.gbps.get(method)?.get(&size).copied()
    }

    fn ratio(&self, method: &str, size: u64, reference: &str) -> Option<f64> {
        Some(self.get(method, size)? / self.get(reference, size)?)
    }

    /// The table and the codec's goals (ratios to its references), as Markdown.
    pub(crate) fn markdown(&self) -> String {
        let mut out =
            String::from("| encode + decode, GB/s of payload | 64 B | 1 KiB | 64 KiB |\n|---|---|---|---|\n");
        for (method, label) in METHODS {
            let cells: Vec<String> = SIZES
                .iter()
                .map(|&s| self.get(method, s).map_or("-".into(), |v| format!("{v:.2}")))
                .collect();
            let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
        }
        let goals = [
            ("length-delimited / hardware CRC-32C alone, 64 KiB", 65535, "crc32c_hardware", 0.5),
            ("length-delimited / tokio-util + crc32c, 64 KiB", 65535, "tokio_length_delimited_crc32c", 1.0),
            ("length-delimited / tokio-util + crc32c, 64 B", 64, "tokio_length_delimited_crc32c", 1.5),
        ];
        out.push_str("\n| goal (ratio, same run) | ratio | target | |\n|---|---|---|---|\n");
        for (what, size, reference, target) in goals {
            let ratio = self.ratio("framelink_length_delimited", size, reference);
            let _ = writeln!(
                out,
                "| {what} | {} | >= {target} | {} |",
                fmt_ratio(ratio),
                verdict(ratio, target, true)
            );
        }
        for (what, size) in
            [("framelink COBS / corncobs, 64 KiB", 65535), ("framelink COBS / cobs, 64 KiB", 65535)]
        {
            let reference = if what.contains("corncobs") { "corncobs" } else { "cobs" };
            let ratio = self.ratio("framelink_cobs", size, reference);
            let _ = writeln!(out, "| {what} (they check no CRC) | {} | | |", fmt_ratio(ratio));
        }
        out.push('\n');
        out
    }
}

/// A ratio with two decimals, or `-`.
pub(crate) fn fmt_ratio(ratio: Option<f64>) -> String {
    ratio.map_or("-".into(), |r| format!("{r:.2}x"))
}

/// "met" or "missed": at least `target` when `higher`, at most otherwise.
pub(crate) fn verdict(ratio: Option<f64>, target: f64, higher: bool) -> &'static str {
    match ratio {
        Some(r) if (higher && r >= target) || (!higher && r <= target) => "met",
        Some(_) => "**missed**",
        None => "not measured",
    }
}
