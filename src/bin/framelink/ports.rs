//! `framelink ports`: the serial ports present, by name, with what USB says of them.

use framelink::std::{PortInfo, available_ports};
use serde::Serialize;

use crate::output::{self, Failure, Mode, Outcome, Report, Run};

/// One port, for people and for `--json`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Port {
    /// What follows `serial://`.
    pub(crate) name: String,
    /// `usb`, `pci`, `bluetooth` or `unknown`.
    pub(crate) kind: &'static str,
    /// USB vendor id, as four hex digits.
    pub(crate) vid: Option<String>,
    /// USB product id, as four hex digits.
    pub(crate) pid: Option<String>,
    /// USB manufacturer.
    pub(crate) manufacturer: Option<String>,
    /// USB product.
    pub(crate) product: Option<String>,
    /// USB serial number.
    pub(crate) serial_number: Option<String>,
}

impl From<PortInfo> for Port {
    fn from(p: PortInfo) -> Self {
        Self {
            name: p.name,
            kind: p.kind.name(),
            vid: p.vid.map(|v| format!("{v:04x}")),
            pid: p.pid.map(|v| format!("{v:04x}")),
            manufacturer: p.manufacturer,
            product: p.product,
            serial_number: p.serial_number,
        }
    }
}

/// The ports found.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PortsReport {
    /// Every port, sorted by name.
    pub(crate) ports: Vec<Port>,
}

impl Report for PortsReport {
    fn print_text(&self) {
        if self.ports.is_empty() {
            output::say(format_args!(
                "no serial ports found (ptys, such as socat's or QEMU's, are not listed; use their path)"
            ));
        }
        for port in &self.ports {
            let mut line = format!("serial://{}  {}", port.name, port.kind);
            if let (Some(vid), Some(pid)) = (&port.vid, &port.pid) {
                line.push_str(&format!(" {vid}:{pid}"));
            }
            for text in [&port.manufacturer, &port.product].into_iter().flatten() {
                line.push_str(&format!(" {text}"));
            }
            if let Some(serial) = &port.serial_number {
                line.push_str(&format!(" (serial {serial})"));
            }
            output::say(format_args!("{line}"));
        }
    }
}

/// Runs `framelink ports`.
pub(crate) fn run(_mode: Mode) -> Run<PortsReport> {
    let ports = available_ports().map_err(|e| Failure(format!("cannot list serial ports: {e}")))?;
    Ok(Outcome::new(PortsReport { ports: ports.into_iter().map(Port::from).collect() }, None))
}
