//! Serial ports through `tokio-serial`: `serial:///dev/ttyACM0?baud=115200`, `serial://COM3`.
//!
//! The port is opened with the settings of the address ([`framelink_std::SerialSettings`]),
//! exclusively on Unix, and read and written as a tokio stream (epoll on Unix, overlapped I/O
//! on Windows). A port that cannot be opened is [`LinkError::Io`] naming the port and the
//! cause.

use std::io;

use framelink_std::{Addr, DataBits, FlowControl, LinkError, Parity, StopBits};
use tokio_serial::SerialStream;

use crate::io::Io;

/// Opens the serial port of `addr`.
pub(crate) fn open(addr: &Addr) -> Result<Io, LinkError> {
    let settings = addr.serial_settings();
    let builder = tokio_serial::new(&addr.host, settings.baud)
        .data_bits(match settings.data_bits {
            DataBits::Five => tokio_serial::DataBits::Five,
            DataBits::Six => tokio_serial::DataBits::Six,
            DataBits::Seven => tokio_serial::DataBits::Seven,
            DataBits::Eight => tokio_serial::DataBits::Eight,
        })
        .parity(match settings.parity {
            Parity::None => tokio_serial::Parity::None,
            Parity::Odd => tokio_serial::Parity::Odd,
            Parity::Even => tokio_serial::Parity::Even,
        })
        .stop_bits(match settings.stop_bits {
            StopBits::One => tokio_serial::StopBits::One,
            StopBits::Two => tokio_serial::StopBits::Two,
        })
        .flow_control(match settings.flow {
            FlowControl::None => tokio_serial::FlowControl::None,
            FlowControl::Software => tokio_serial::FlowControl::Software,
            FlowControl::Hardware => tokio_serial::FlowControl::Hardware,
        });
    let port = SerialStream::open(&builder).map_err(|error| {
        let kind = io::Error::from(error.clone()).kind();
        LinkError::Io(io::Error::new(kind, format!("cannot open serial port {}: {error}", addr.host)))
    })?;
    Ok(Io::Serial(Box::new(port), addr.host.clone()))
}
