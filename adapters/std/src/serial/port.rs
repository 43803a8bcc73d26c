//! An open serial port, read with a timeout and written whole; and the list of ports present.

use std::io::{self, Read, Write};
use std::time::Duration;

use super::{DataBits, FlowControl, Parity, SerialError, SerialSettings, StopBits};

/// The timeout of a read that has no deadline (the port's timeout cannot be infinite).
const FOREVER: Duration = Duration::from_secs(3600);
/// How far the rate the port reports may be from the one asked for (UARTs tolerate about 3%).
const BAUD_TOLERANCE: f64 = 0.03;

/// An open serial port (opened exclusively), with one timeout for reads and one for writes.
pub(crate) struct SerialPort {
    port: Box<dyn serialport::SerialPort>,
    name: String,
    /// The timeout the port has now (the crate has one for reads and writes).
    timeout: Option<Duration>,
}

impl SerialPort {
    /// Opens `name` with `settings`, exclusively, and drops whatever its input buffer held.
    pub(crate) fn open(name: &str, settings: &SerialSettings) -> Result<Self, SerialError> {
        check_device(name)?;
        let builder = serialport::new(name, settings.baud)
            .data_bits(match settings.data_bits {
                DataBits::Five => serialport::DataBits::Five,
                DataBits::Six => serialport::DataBits::Six,
                DataBits::Seven => serialport::DataBits::Seven,
                DataBits::Eight => serialport::DataBits::Eight,
            })
            .parity(match settings.parity {
                Parity::None => serialport::Parity::None,
                Parity::Odd => serialport::Parity::Odd,
                Parity::Even => serialport::Parity::Even,
            })
            .stop_bits(match settings.stop_bits {
                StopBits::One => serialport::StopBits::One,
                StopBits::Two => serialport::StopBits::Two,
            })
            .flow_control(match settings.flow {
                FlowControl::None => serialport::FlowControl::None,
                FlowControl::Software => serialport::FlowControl::Software,
                FlowControl::Hardware => serialport::FlowControl::Hardware,
            })
            .timeout(FOREVER);
        let port = builder.open().map_err(|e| SerialError::from_open(name, settings.baud, &e))?;
        if let Ok(actual) = port.baud_rate() {
            let off = (f64::from(actual) - f64::from(settings.baud)).abs() / f64::from(settings.baud);
            if off > BAUD_TOLERANCE {
                let (port, baud) = (name.to_owned(), settings.baud);
                return Err(SerialError::UnsupportedBaud { port, baud, actual: Some(actual) });
            }
        }
        // Stale bytes would only cost the decoder a resynchronisation; best effort.
        let _ = port.clear(serialport::ClearBuffer::Input);
        Ok(Self { port, name: name.to_owned(), timeout: Some(FOREVER) })
    }

    /// The port's name, as given to [`open`](Self::open).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Sets the port's timeout, if it is not `timeout` already.
    fn set_timeout(&mut self, timeout: Duration) -> Result<(), SerialError> {
        let timeout = timeout.clamp(Duration::from_micros(100), FOREVER);
        if self.timeout != Some(timeout) {
            self.timeout = None;
            self.port.set_timeout(timeout).map_err(|e| self.other(&e.description))?;
            self.timeout = Some(timeout);
        }
        Ok(())
    }

    /// One read into `buf`, waiting at most `wait` (`None`: as long as it takes); `Ok(None)`
    /// when nothing came in time.
    pub(crate) fn read(
        &mut self,
        buf: &mut [u8],
        wait: Option<Duration>,
    ) -> Result<Option<usize>, SerialError> {
        self.set_timeout(wait.unwrap_or(FOREVER))?;
        match self.port.read(buf) {
            Ok(0) => Err(self.gone()),
            Ok(len) => Ok(Some(len)),
            Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(_) => Err(self.gone()),
        }
    }

    /// Writes all of `bytes`, each write waiting at most `timeout` for room; `Ok(false)` when
    /// the port took nothing for that long (hardware flow control holding it, say).
    pub(crate) fn write_all(&mut self, mut bytes: &[u8], timeout: Duration) -> Result<bool, SerialError> {
        self.set_timeout(timeout)?;
        while !bytes.is_empty() {
            match self.port.write(bytes) {
                Ok(0) => return Err(self.gone()),
                Ok(len) => bytes = &bytes[len..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
                    return Ok(false);
                }
                Err(_) => return Err(self.gone()),
            }
        }
        Ok(true)
    }

    fn gone(&self) -> SerialError {
        SerialError::Disconnected { port: self.name.clone() }
    }

    fn other(&self, message: &str) -> SerialError {
        SerialError::Other { port: self.name.clone(), message: message.to_owned() }
    }
}

/// Before opening: a missing path, or one that is no device at all, named as such (the
/// `serialport` crate reports some of these alike on some platforms).
fn check_device(name: &str) -> Result<(), SerialError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        match std::fs::metadata(name) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SerialError::NotFound { port: name.to_owned() });
            }
            Ok(meta) if !meta.file_type().is_char_device() => {
                return Err(SerialError::NotASerialPort { port: name.to_owned() });
            }
            // Permission errors and the rest come from the open, with more detail.
            _ => {}
        }
    }
    let _ = name;
    Ok(())
}

/// How a port is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortKind {
    /// USB (CDC-ACM boards, FTDI, CP210x and CH340 bridges).
    Usb,
    /// PCI (a built-in or add-in UART).
    Pci,
    /// Bluetooth (rfcomm).
    Bluetooth,
    /// Could not be told (a SoC UART, a legacy 16550).
    Unknown,
}

impl PortKind {
    /// `usb`, `pci`, `bluetooth` or `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Usb => "usb",
            Self::Pci => "pci",
            Self::Bluetooth => "bluetooth",
            Self::Unknown => "unknown",
        }
    }
}

/// A serial port present on this machine, from [`available_ports`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PortInfo {
    /// What to put after `serial://`: `/dev/ttyACM0`, `COM3`.
    pub name: String,
    /// How it is attached.
    pub kind: PortKind,
    /// USB vendor id.
    pub vid: Option<u16>,
    /// USB product id.
    pub pid: Option<u16>,
    /// USB manufacturer string.
    pub manufacturer: Option<String>,
    /// USB product string.
    pub product: Option<String>,
    /// USB serial number.
    pub serial_number: Option<String>,
}

/// The serial ports present, sorted by name.
///
/// On Linux this scans `/sys/class/tty` (the `serialport` crate without libudev): it lists
/// USB, PCI, platform and Bluetooth UARTs with a driver behind them, not ptys (a pty pair from
/// socat, QEMU's `-serial pty`), which open all the same by their path. A machine without
/// `/sys` has none to list.
pub fn available_ports() -> Result<Vec<PortInfo>, SerialError> {
    // Without libudev the crate panics when /sys/class/tty is missing (a container).
    if cfg!(target_os = "linux") && !std::path::Path::new("/sys/class/tty").is_dir() {
        return Ok(Vec::new());
    }
    let ports = serialport::available_ports()
        .map_err(|e| SerialError::Other { port: String::new(), message: e.description })?;
    let mut list: Vec<PortInfo> = ports
        .into_iter()
        .map(|p| {
            let mut info = PortInfo {
                name: p.port_name,
                kind: PortKind::Unknown,
                vid: None,
                pid: None,
                manufacturer: None,
                product: None,
                serial_number: None,
            };
            match p.port_type {
                serialport::SerialPortType::UsbPort(usb) => {
                    info.kind = PortKind::Usb;
                    info.vid = Some(usb.vid);
                    info.pid = Some(usb.pid);
                    info.manufacturer = usb.manufacturer;
                    info.product = usb.product;
                    info.serial_number = usb.serial_number;
                }
                serialport::SerialPortType::PciPort => info.kind = PortKind::Pci,
                serialport::SerialPortType::BluetoothPort => info.kind = PortKind::Bluetooth,
                serialport::SerialPortType::Unknown => {}
            }
            info
        })
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list)
}
