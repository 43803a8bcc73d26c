//! The framelink responder on a Cortex-M3: ECHO, SINK, SOURCE, STATS and INFO over UART0 with
//! COBS framing and retransmission, the same `no_std` code `framelink serve` runs.
//!
//! Under QEMU (`qemu.sh PORT`) UART0 is a TCP port on 127.0.0.1: `framelink info
//! tcp+cobs://127.0.0.1:PORT`. The UART never sees a client come or go, so the session is a
//! server that takes a new HELLO at any time and starts over. A panic exits QEMU with failure.
//!
//! `size.sh` prints the release image's size: text (code, rodata and a 240-byte vector table),
//! data and bss (the buffers below, 6,756 bytes at these defaults, and 4 bytes of flags); the
//! session and the responder live on the stack.
#![no_std]
#![no_main]

mod clock;
#[cfg(feature = "psk")]
mod entropy;
mod uart;

use cortex_m_rt::{ExceptionFrame, entry, exception};
use cortex_m_semihosting::debug;
#[cfg(feature = "defmt")]
use defmt_semihosting as _;
use framelink_core::connection::Connection;
use framelink_core::framing::CobsDecoder;
use framelink_core::io::IoLink;
use framelink_core::service::{Responder, ResponderDriver};
use framelink_core::session::{Config, Event, Session};
// Its vector table: the 44 interrupts of this chip (176 bytes, not the default 960).
use lm3s6965 as _;

/// The largest DATA payload we accept (and send): small, for a slow UART.
const MAX_PAYLOAD: u16 = 256;
/// Send and receive buffers: the largest message is this minus 4.
const BUFFER: usize = 2048;
/// What sealing adds to a packet in the keyed (`psk`) build: packet number and tag.
const SEAL: usize = if cfg!(feature = "psk") { 24 } else { 0 };
/// One packet: 13 bytes of header and CRC plus the payload (sealed, 24 more).
const PACKET: usize = 13 + MAX_PAYLOAD as usize + SEAL;
/// One COBS frame of the largest packet, and one for the preamble.
const FRAME: usize = PACKET + PACKET / 254 + 3;
/// DATA packets in flight, each way.
const WINDOW: usize = 8;

const CONFIG: Config = Config::new()
    .max_payload(MAX_PAYLOAD)
    .max_message(BUFFER as u32 - 4)
    .window(WINDOW as u16)
    .retransmit(true);

// The `psk` build's key (`const PSK`), written by build.rs.
#[cfg(feature = "psk")]
include!(concat!(env!("OUT_DIR"), "/psk.rs"));
/// The key as the session takes it: a static, read in place (a `Psk` made on the stack is a
/// copy to make, and to wipe after).
#[cfg(feature = "psk")]
static KEY: framelink_core::auth::Psk = framelink_core::auth::Psk::new(PSK);

/// The link over UART0.
type Link<'a> = IoLink<uart::Uart, CobsDecoder<PACKET>, &'a mut [u8], WINDOW>;

/// The buffers, 6,756 bytes at these defaults.
struct Buffers {
    tx: [u8; BUFFER],
    rx: [u8; BUFFER],
    packet: [u8; PACKET],
    read: [u8; 64],
    write: [u8; FRAME],
    reply: [u8; BUFFER + 6],
    /// Room to open one sealed packet into.
    #[cfg(feature = "psk")]
    open: [u8; MAX_PAYLOAD as usize],
}

#[entry]
fn main() -> ! {
    // cortex-m-rt hands `main` its `static mut`s as `&'static mut`, safely: they are in .bss
    // (zeroed at reset, counted by size.sh) rather than on the stack.
    static mut BUFFERS: Buffers = Buffers {
        tx: [0; BUFFER],
        rx: [0; BUFFER],
        packet: [0; PACKET],
        read: [0; 64],
        write: [0; FRAME],
        reply: [0; BUFFER + 6],
        #[cfg(feature = "psk")]
        open: [0; MAX_PAYLOAD as usize],
    };
    serve(BUFFERS)
}

/// Runs the responder over UART0 with `buffers`.
///
/// The session is built here and driven by [`run`], out of line: on Thumb-2 a field more than
/// 4 KiB from its base register costs three instructions instead of one, so the loop reaches the
/// session through a pointer rather than at a large offset in a frame that also holds the
/// temporaries of building it (1.8 KB less flash than one function doing both with the buffers on
/// its stack).
#[inline(never)]
fn serve(buffers: &mut Buffers) -> ! {
    // No handlers run: SysTick and the UART only wake WFI.
    cortex_m::interrupt::disable();
    let Some(peripherals) = cortex_m::Peripherals::take() else { fail() };
    let Some(uart) = uart::Uart::take() else { fail() };
    let mut clock = clock::Clock::new(peripherals.SYST);

    #[cfg(not(feature = "psk"))]
    let Buffers { tx, rx, packet, read, write, reply } = buffers;
    #[cfg(feature = "psk")]
    let Buffers { tx, rx, packet, read, write, reply, open } = buffers;
    let session: Session<&mut [u8], WINDOW> = Session::server(CONFIG, &mut tx[..], &mut rx[..], clock.now());
    #[cfg(feature = "psk")]
    let session = {
        // A real board seeds from its TRNG; QEMU has none (see entropy.rs and README.md).
        let Ok(auth) =
            framelink_core::auth::SessionAuth::new(&KEY, &mut entropy::HostTiming::gather(&mut clock));
        session.with_auth(auth, &mut open[..])
    };
    let connection = Connection::new(session, CobsDecoder::<PACKET>::new(), &mut packet[..]);
    let mut link: Link<'_> = IoLink::new(uart, connection, &mut read[..], &mut write[..]);
    let mut responder = ResponderDriver::new(
        Responder::new("framelink firmware (lm3s6965, QEMU)", env!("CARGO_PKG_VERSION")),
        &mut reply[..],
    );

    run(&mut clock, &mut link, &mut responder)
}

/// The firmware's loop, out of line from where the session is built: it reaches the session
/// through a pointer, one short instruction per field.
#[inline(never)]
fn run(clock: &mut clock::Clock, link: &mut Link<'_>, responder: &mut ResponderDriver<'_, &mut [u8]>) -> ! {
    loop {
        let now = clock.now();
        // Reads what the UART holds, runs timers, writes what the session owes.
        let read = link.poll(now).unwrap_or(false);
        let decoder = link.connection().decoder_stats();
        // Events that are not service requests need nothing here: after a client closed or
        // vanished the session waits for the next HELLO, and plain text messages are dropped.
        responder.poll(now, link.session_mut(), decoder, |_: Event<'_>| {});
        if link.flush(now).is_err() {
            fail();
        }
        if !read && !link.session().has_event() {
            link.transport_mut().wait();
        }
    }
}

fn fail() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    fail()
}

// SAFETY: cortex-m-rt requires the HardFault handler to be an `unsafe fn`; this one reads
// nothing from the frame and only asks QEMU to exit with failure.
#[exception]
unsafe fn HardFault(_frame: &ExceptionFrame) -> ! {
    fail()
}
