//! Why a serial port could not be opened, or was lost: [`SerialError`].

use std::fmt;
use std::io;

/// Why a serial port could not be opened, or stopped working; one variant per cause, each
/// printed as one line (without the port's name, which the fields carry).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SerialError {
    /// Nothing at that path (a board that is unplugged, or named otherwise).
    NotFound {
        /// The port's name.
        port: String,
    },
    /// The user may not open the port.
    PermissionDenied {
        /// The port's name.
        port: String,
        /// The group that owns the device, when it can be told (`dialout` on Debian and Ubuntu,
        /// `uucp` on Arch and Fedora): members may open it.
        group: Option<String>,
    },
    /// Another program has the port open (a serial monitor, ModemManager, another framelink):
    /// the port is opened exclusively.
    Busy {
        /// The port's name.
        port: String,
    },
    /// The port refused the baud rate, or runs at another one.
    UnsupportedBaud {
        /// The port's name.
        port: String,
        /// The rate asked for.
        baud: u32,
        /// The rate the port reports instead, if it opened.
        actual: Option<u32>,
    },
    /// The path is not a serial port (not a terminal device).
    NotASerialPort {
        /// The port's name.
        port: String,
    },
    /// The port went away while in use: unplugged, or the other end of a pty closed.
    Disconnected {
        /// The port's name.
        port: String,
    },
    /// Anything else the system said.
    Other {
        /// The port's name.
        port: String,
        /// What the system said.
        message: String,
    },
}

impl SerialError {
    /// The port's name.
    pub fn port(&self) -> &str {
        match self {
            Self::NotFound { port }
            | Self::PermissionDenied { port, .. }
            | Self::Busy { port }
            | Self::UnsupportedBaud { port, .. }
            | Self::NotASerialPort { port }
            | Self::Disconnected { port }
            | Self::Other { port, .. } => port,
        }
    }

    /// What opening `port` at `baud` failed with, by cause.
    pub(crate) fn from_open(port: &str, baud: u32, error: &serialport::Error) -> Self {
        use serialport::ErrorKind as K;
        let port = port.to_owned();
        match error.kind() {
            K::Io(io::ErrorKind::NotFound) => Self::NotFound { port },
            K::Io(io::ErrorKind::PermissionDenied) => {
                let group = owner_group(&port);
                Self::PermissionDenied { port, group }
            }
            // On Unix: TIOCEXCL answered EBUSY, or the exclusive flock is held. (On Windows
            // the same kind also means "no such port", which the check before opening
            // has ruled out where it can.)
            K::NoDevice => Self::Busy { port },
            // Platforms with a fixed list of rates refuse others up front; Linux takes any rate
            // and the driver answers EINVAL for one it cannot make.
            K::InvalidInput => Self::UnsupportedBaud { port, baud, actual: None },
            // ENOTTY, as nix and libc word it.
            _ if ["Inappropriate ioctl", "Not a typewriter"]
                .iter()
                .any(|t| error.description.contains(t)) =>
            {
                Self::NotASerialPort { port }
            }
            _ if error.description.contains("Invalid argument") => {
                Self::UnsupportedBaud { port, baud, actual: None }
            }
            _ => Self::Other { port, message: error.description.clone() },
        }
    }
}

impl fmt::Display for SerialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound { .. } => f.write_str("no such serial port (is the board plugged in?)"),
            Self::PermissionDenied { group: Some(group), .. } => write!(
                f,
                "permission denied: the port belongs to group `{group}`; join it \
                 (`sudo usermod -aG {group} $USER`) and log in again"
            ),
            Self::PermissionDenied { group: None, .. } => f.write_str(
                "permission denied: join the group that owns the port (`dialout` on Debian and \
                 Ubuntu, `uucp` on Arch and Fedora) and log in again",
            ),
            Self::Busy { .. } => f.write_str(
                "port busy: another program has it open (a serial monitor, ModemManager, another framelink)",
            ),
            Self::UnsupportedBaud { baud, actual: Some(actual), .. } => {
                write!(f, "unsupported baud rate {baud}: the port runs at {actual} instead")
            }
            Self::UnsupportedBaud { baud, actual: None, .. } => {
                write!(f, "unsupported baud rate {baud}: the port refused it")
            }
            Self::NotASerialPort { .. } => f.write_str("not a serial port (not a terminal device)"),
            Self::Disconnected { .. } => f.write_str("serial port closed or unplugged"),
            Self::Other { message, .. } => write!(f, "serial port: {message}"),
        }
    }
}

impl std::error::Error for SerialError {}

impl From<SerialError> for io::Error {
    fn from(error: SerialError) -> Self {
        let kind = match &error {
            SerialError::NotFound { .. } => io::ErrorKind::NotFound,
            SerialError::PermissionDenied { .. } => io::ErrorKind::PermissionDenied,
            SerialError::Busy { .. } => io::ErrorKind::ResourceBusy,
            SerialError::UnsupportedBaud { .. } | SerialError::NotASerialPort { .. } => {
                io::ErrorKind::InvalidInput
            }
            SerialError::Disconnected { .. } => io::ErrorKind::BrokenPipe,
            SerialError::Other { .. } => io::ErrorKind::Other,
        };
        Self::new(kind, error)
    }
}

/// The name of the group whose members may open the device at `path` (from `/etc/group`):
/// `None` when that cannot be told, or when joining the group would not help (the group has no
/// read and write permission, or it is root's).
#[cfg(unix)]
pub(crate) fn owner_group(path: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let gid = meta.gid();
    if gid == 0 || meta.mode() & 0o060 != 0o060 {
        return None;
    }
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    group_name(&groups, gid).or_else(|| Some(gid.to_string()))
}

/// The group that owns a device, on a system without Unix groups: none.
#[cfg(not(unix))]
pub(crate) fn owner_group(_path: &str) -> Option<String> {
    None
}

/// The name of group `gid` in the text of `/etc/group` (`name:password:gid:members` lines).
#[cfg_attr(not(unix), allow(dead_code))]
fn group_name(groups: &str, gid: u32) -> Option<String> {
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?.parse::<u32>().ok()?;
        (id == gid && !name.is_empty()).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_open_failure_has_its_cause() {
        use serialport::{Error, ErrorKind as K};
        let open = |kind, text: &str| SerialError::from_open("/dev/ttyX", 9600, &Error::new(kind, text));
        let port = || "/dev/ttyX".to_owned();
        assert_eq!(open(K::Io(io::ErrorKind::NotFound), "x"), SerialError::NotFound { port: port() });
        assert!(matches!(
            open(K::Io(io::ErrorKind::PermissionDenied), "x"),
            SerialError::PermissionDenied { .. }
        ));
        assert_eq!(open(K::NoDevice, "Device or resource busy"), SerialError::Busy { port: port() });
        let baud = SerialError::UnsupportedBaud { port: port(), baud: 9600, actual: None };
        assert_eq!(open(K::InvalidInput, "Unsupported baud rate"), baud);
        assert_eq!(open(K::Unknown, "Invalid argument"), baud);
        assert_eq!(
            open(K::Unknown, "Inappropriate ioctl for device"),
            SerialError::NotASerialPort { port: port() }
        );
        assert!(matches!(open(K::Unknown, "odd"), SerialError::Other { .. }));
    }

    #[test]
    fn messages_are_one_line_and_name_the_group() {
        let denied =
            SerialError::PermissionDenied { port: "/dev/ttyACM0".into(), group: Some("dialout".into()) };
        assert!(denied.to_string().contains("group `dialout`"), "{denied}");
        let unknown = SerialError::PermissionDenied { port: "/dev/ttyACM0".into(), group: None };
        assert!(unknown.to_string().contains("`dialout` on Debian"), "{unknown}");
        for error in [denied, unknown, SerialError::Disconnected { port: "p".into() }] {
            assert!(!error.to_string().contains('\n'));
            assert!(!error.port().is_empty());
        }
        assert_eq!(
            io::Error::from(SerialError::Busy { port: "p".into() }).kind(),
            io::ErrorKind::ResourceBusy
        );
    }

    #[test]
    fn group_names_come_from_etc_group() {
        let groups = "root:x:0:\ntty:x:5:\ndialout:x:20:alice,bob\nbroken\n";
        assert_eq!(group_name(groups, 20).as_deref(), Some("dialout"));
        assert_eq!(group_name(groups, 5).as_deref(), Some("tty"));
        assert_eq!(group_name(groups, 99), None);
    }
}
