//! Handing a session's events to the [`Handler`], and to the test-service responder first when
//! the server answers it: what every kind of served client (event loop, UDP socket, serial
//! port) shares.

use std::panic::{AssertUnwindSafe, catch_unwind};

use framelink_core::Instant;
use framelink_core::service::{Responder, ResponderDriver};
use framelink_core::session::{CloseReason, Event, State};

use super::{Control, Handler, Outbox, PeerInfo, Reply, ServerConfig};
use crate::conn::{Framed, Sess};

/// A client being served, apart from its session.
pub(super) struct Served {
    pub(super) info: PeerInfo,
    pub(super) outbox: Outbox,
    pub(super) connected: bool,
    /// Our own send buffer's largest message.
    pub(super) own_max: usize,
    /// Who the responder says it is, when the server answers the test service.
    pub(super) responder: Option<(&'static str, &'static str)>,
    /// The test-service responder, made when the session has its first event (the end of the
    /// handshake); its reply buffer is allocated at the first message.
    pub(super) service: Option<ResponderDriver<'static, ReplyBuffer>>,
    /// The session's authentication failures already added to the server's count.
    pub(super) auth_counted: u64,
}

/// The responder's reply buffer: as large as the largest message plus the ECHO header, but
/// allocated (zeroed: pages a reply does not reach cost nothing) only when the first message
/// arrives, so that a client that stays quiet after its handshake holds none.
#[derive(Debug)]
pub(super) struct ReplyBuffer {
    pub(super) len: usize,
    pub(super) bytes: Vec<u8>,
}

impl AsRef<[u8]> for ReplyBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl AsMut<[u8]> for ReplyBuffer {
    fn as_mut(&mut self) -> &mut [u8] {
        if self.bytes.len() < self.len {
            self.bytes = vec![0; self.len];
        }
        &mut self.bytes
    }
}

impl Served {
    pub(super) fn new(info: PeerInfo, config: &ServerConfig) -> Self {
        let own_max = config.link.buffer_len() - 4;
        let responder = config.responder;
        Self {
            info,
            outbox: Outbox::default(),
            connected: false,
            own_max,
            responder,
            service: None,
            auth_counted: 0,
        }
    }

    /// Gives back the responder's reply buffer if nothing waits in it (it is allocated again
    /// at the next message).
    pub(super) fn give_back_reply_buffer(&mut self) {
        if let Some(out) = self.service.as_mut().and_then(ResponderDriver::idle_buffer_mut) {
            out.bytes = Vec::new();
        }
    }

    /// The responder, made on first use.
    pub(super) fn service(&mut self) -> Option<&mut ResponderDriver<'static, ReplyBuffer>> {
        let (name, software) = self.responder?;
        let out = ReplyBuffer { len: self.own_max + 6, bytes: Vec::new() };
        Some(self.service.get_or_insert_with(|| ResponderDriver::new(Responder::new(name, software), out)))
    }
}

/// What [`dispatch`] found.
pub(super) enum Dispatch {
    /// Waiting for input, or for room for replies.
    Wait,
    /// The session ended.
    Ended(CloseReason),
    /// The handler panicked: drop the client.
    Panicked,
}

/// What an event is handled with: the session's state, the largest reply, the session id.
#[derive(Clone, Copy)]
pub(super) struct EventContext {
    pub(super) state: State,
    pub(super) max: usize,
    pub(super) session_id: u32,
}

impl EventContext {
    pub(super) fn of(session: &Sess, own_max: usize) -> Self {
        let peer_max = session.peer().map_or(0, |p| usize::try_from(p.max_message).unwrap_or(usize::MAX));
        Self { state: session.state(), max: peer_max.min(own_max), session_id: session.session_id() }
    }
}

/// Hands one session event to the handler; `Some` when dispatching stops (the session ended,
/// or the handler panicked).
fn on_event<H: Handler>(
    handler: &H,
    event: Event<'_>,
    info: &mut PeerInfo,
    outbox: &mut Outbox,
    connected: &mut bool,
    at: EventContext,
) -> Option<Dispatch> {
    let call = match event {
        Event::Connected => {
            *connected = true;
            info.session_id = at.session_id;
            catch_unwind(AssertUnwindSafe(|| handler.on_connect(info)))
        }
        Event::Message(message) => {
            let mut reply = Reply { outbox, state: at.state, max: at.max };
            catch_unwind(AssertUnwindSafe(|| handler.on_message(info, message, &mut reply)))
        }
        Event::Closed(CloseReason::Reset) if at.state != State::Closed => {
            // The client started a new session on the same address: the old one ended.
            let was = std::mem::take(connected);
            *outbox = Outbox::default();
            catch_unwind(AssertUnwindSafe(|| {
                if was {
                    handler.on_close(info, Ok(CloseReason::Reset));
                }
            }))
        }
        Event::Closed(reason) => return Some(Dispatch::Ended(reason)),
        _ => Ok(()),
    };
    call.is_err().then_some(Dispatch::Panicked)
}

/// Adds what the session dropped for failing authentication since the last call to the
/// server's count (a session that restarted counts from 0 again).
pub(super) fn count_auth_failures(framed: &Framed, served: &mut Served, control: &Control) {
    let failures = framed.session().stats().auth_failures;
    if failures > served.auth_counted {
        control.auth_failures.fetch_add(failures - served.auth_counted, std::sync::atomic::Ordering::Relaxed);
    }
    served.auth_counted = failures;
}

/// Hands the session's events to the handler until none is left or replies wait for room.
pub(super) fn dispatch<H: Handler>(
    handler: &H,
    framed: &mut Framed,
    served: &mut Served,
    control: &Control,
    now: Instant,
) -> Dispatch {
    count_auth_failures(framed, served, control);
    if served.responder.is_some() {
        return dispatch_with_service(handler, framed, served, control, now);
    }
    loop {
        let session = framed.session_mut();
        served.outbox.pump(session, now);
        if !served.outbox.is_empty() && !session.is_closed() {
            return Dispatch::Wait;
        }
        let at = EventContext::of(session, served.own_max);
        let Some(event) = session.poll_event() else { return Dispatch::Wait };
        let Served { info, outbox, connected, .. } = served;
        if let Some(end) = on_event(handler, event, info, outbox, connected, at) {
            return end;
        }
    }
}

/// [`dispatch`] when the server answers the test service: the responder takes the session's
/// events, serves what is addressed to it, streams SOURCE data as room allows, and hands the
/// rest to the handler.
fn dispatch_with_service<H: Handler>(
    handler: &H,
    framed: &mut Framed,
    served: &mut Served,
    control: &Control,
    now: Instant,
) -> Dispatch {
    let decoder = framed.decoder_stats();
    let session = framed.session_mut();
    served.outbox.pump(session, now);
    if !served.outbox.is_empty() && !session.is_closed() {
        return Dispatch::Wait;
    }
    if served.service.is_none() && (!session.has_event() || served.service().is_none()) {
        return Dispatch::Wait;
    }
    let at = EventContext::of(session, served.own_max);
    let Served { info, outbox, connected, service, .. } = served;
    let Some(driver) = service.as_mut() else { return Dispatch::Wait };
    driver.responder_mut().set_server_counters(Some(control.counters()));
    let mut outcome = Dispatch::Wait;
    driver.poll(now, session, decoder, |event| {
        if matches!(outcome, Dispatch::Wait)
            && let Some(end) = on_event(handler, event, info, outbox, connected, at)
        {
            outcome = end;
        }
    });
    outbox.pump(session, now);
    outcome
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use super::*;
    use crate::Transport;

    #[test]
    fn the_reply_buffer_is_allocated_at_first_use_and_given_back_when_idle() {
        let config = ServerConfig::new().max_message(1000).responder("test", "0");
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let info =
            PeerInfo { id: 1, addr: any, local: any, transport: Transport::Tcp, session_id: 0, port: None };
        let mut served = Served::new(info, &config);
        let driver = served.service().expect("the responder is on");
        let out = driver.idle_buffer_mut().expect("nothing waits");
        assert!(out.as_ref().is_empty(), "nothing allocated before a message");
        assert_eq!(out.as_mut().len(), config.link.buffer_len() - 4 + 6);
        served.give_back_reply_buffer();
        let out = served.service().and_then(ResponderDriver::idle_buffer_mut).expect("nothing waits");
        assert_eq!((out.bytes.len(), out.bytes.capacity()), (0, 0));
        assert_eq!(out.as_mut().len(), config.link.buffer_len() - 4 + 6, "allocated again on use");
    }
}
