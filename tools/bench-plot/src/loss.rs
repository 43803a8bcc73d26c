//! Goodput through the lossy relay: the files `scripts/bench-loss.sh` leaves in its output
//! folder, `loss-framelink-L-D.json` and `loss-quic-L-D.json` (L: loss in percent, D: delay
//! each way in ms).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

/// The stacks measured, by file-name part, with their labels.
pub(crate) const STACKS: [(&str, &str); 2] = [("framelink", "framelink UDP"), ("quic", "QUIC (quinn)")];

/// One measurement.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cell {
    /// Goodput, MB/s (10^6 bytes).
    pub(crate) mb_per_s: f64,
    /// Packets the sender sent again (framelink) or declared lost (quinn).
    pub(crate) repairs: Option<u64>,
}

/// Every measurement of one run, by (stack, delay ms, loss percent).
pub(crate) struct Results {
    pub(crate) cells: BTreeMap<(String, u32, u32), Cell>,
}

impl Results {
    /// The results in `dir`, which must hold at least one of the files.
    pub(crate) fn read(dir: &Path) -> Result<Self, String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut cells = BTreeMap::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(key) = parse_name(&name) else { continue };
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let Some(bits) = doc["bits_per_second"].as_f64() else { continue };
            let repairs = doc["retransmits"].as_u64().or_else(|| doc["quic"]["lost_packets"].as_u64());
            cells.insert(key, Cell { mb_per_s: bits / 8e6, repairs });
        }
        if cells.is_empty() {
            return Err(format!("no loss-*.json in {}", dir.display()));
        }
        Ok(Self { cells })
    }

    /// The delays measured, in ms, ascending.
    pub(crate) fn delays(&self) -> Vec<u32> {
        let mut delays: Vec<u32> = self.cells.keys().map(|k| k.1).collect();
        delays.sort_unstable();
        delays.dedup();
        delays
    }

    /// The losses measured, in percent, ascending.
    pub(crate) fn losses(&self) -> Vec<u32> {
        let mut losses: Vec<u32> = self.cells.keys().map(|k| k.2).collect();
        losses.sort_unstable();
        losses.dedup();
        losses
    }

    /// One measurement.
    pub(crate) fn get(&self, stack: &str, delay: u32, loss: u32) -> Option<Cell> {
        self.cells.get(&(stack.to_owned(), delay, loss)).copied()
    }

    /// The table, as Markdown: a row per loss, a column per stack and delay.
    pub(crate) fn markdown(&self) -> String {
        let delays = self.delays();
        let mut head = String::from("| loss |");
        let mut rule = String::from("|---|");
        for &delay in &delays {
            for (_, label) in STACKS {
                let _ = write!(head, " {label}, {delay} ms |");
                rule.push_str("---|");
            }
            let _ = write!(head, " ratio, {delay} ms |");
            rule.push_str("---|");
        }
        let mut out = format!("{head}\n{rule}\n");
        for loss in self.losses() {
            let _ = write!(out, "| {loss} % |");
            for &delay in &delays {
                for (stack, _) in STACKS {
                    let cell = self.get(stack, delay, loss);
                    let text = cell.map_or("-".into(), |c| match c.repairs {
                        Some(repairs) => format!("{:.2} ({repairs})", c.mb_per_s),
                        None => format!("{:.2}", c.mb_per_s),
                    });
                    let _ = write!(out, " {text} |");
                }
                let ours = self.get("framelink", delay, loss).map(|c| c.mb_per_s);
                let theirs = self.get("quic", delay, loss).map(|c| c.mb_per_s);
                let ratio = ours.zip(theirs).filter(|&(_, b)| b > 0.0).map(|(a, b)| a / b);
                let _ = write!(out, " {} |", ratio.map_or("-".into(), |r| format!("{r:.2}x")));
            }
            out.push('\n');
        }
        out.push_str(
            "\nGoodput in MB/s (10^6 bytes a second); in brackets, framelink's DATA packets sent again \
             and quinn's packets declared lost. Ratio: framelink / quinn at the same loss and delay.\n\n",
        );
        out
    }
}

/// `loss-STACK-L-D.json` as (stack, delay, loss); `None` for any other name.
fn parse_name(name: &str) -> Option<(String, u32, u32)> {
    let rest = name.strip_prefix("loss-")?.strip_suffix(".json")?;
    let (stack, numbers) = rest.split_once('-')?;
    let (loss, delay) = numbers.split_once('-')?;
    STACKS.iter().any(|(s, _)| *s == stack).then_some(())?;
    Some((stack.to_owned(), delay.parse().ok()?, loss.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stack_loss_delay() {
        assert_eq!(parse_name("loss-quic-10-25.json"), Some(("quic".into(), 25, 10)));
        assert_eq!(parse_name("loss-framelink-0-5.json"), Some(("framelink".into(), 5, 0)));
        assert_eq!(parse_name("loss-relay-quic-0-5.json"), None);
        assert_eq!(parse_name("loss-quic-x-5.json"), None);
        assert_eq!(parse_name("loss-run.txt"), None);
    }
}
