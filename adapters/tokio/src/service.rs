//! The remote test service on a served link: the core's [`ResponderDriver`] takes the
//! session's events first, answers ECHO, SINK, SOURCE, STATS and INFO, and passes on the rest.

use std::collections::VecDeque;
use std::sync::Arc;

use framelink_core::Instant;
use framelink_core::service::{Responder, ResponderDriver};
use framelink_core::session::{CloseReason, Event};
use framelink_std::LinkEvent;
use framelink_std::shared::Framed;

use crate::server::Counters;

/// What a link hands out next.
#[derive(Debug)]
pub(crate) enum Next {
    /// The handshake completed.
    Connected,
    /// An event for the application.
    Event(LinkEvent),
    /// The session ended and its [`LinkEvent::Closed`] was handed out.
    Ended(CloseReason),
}

impl Next {
    /// What the link hands out for an event of the session.
    pub(crate) fn of(event: Event<'_>) -> Option<Self> {
        match event {
            Event::Connected => Some(Self::Connected),
            Event::Message(message) => Some(Self::Event(LinkEvent::Message(message.to_vec()))),
            Event::Pong { token, rtt } => Some(Self::Event(LinkEvent::Pong { token, rtt })),
            Event::Closed(reason) => Some(Self::Event(LinkEvent::Closed(reason))),
            _ => None,
        }
    }
}

/// The responder's reply buffer: allocated at the first request, so that a client that stays
/// quiet holds none.
#[derive(Debug)]
pub(crate) struct ReplyBuffer {
    len: usize,
    bytes: Vec<u8>,
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

/// The responder of one served link and the events it passed on.
pub(crate) struct Service {
    driver: ResponderDriver<'static, ReplyBuffer>,
    passed: VecDeque<Next>,
    counters: Arc<Counters>,
}

impl Service {
    /// A responder introducing itself as `name` running `software`, whose replies are at most
    /// `max_reply` bytes, reporting the server's `counters` in STATS.
    pub(crate) fn new(
        name: &'static str,
        software: &'static str,
        max_reply: usize,
        counters: Arc<Counters>,
    ) -> Self {
        let out = ReplyBuffer { len: max_reply, bytes: Vec::new() };
        Self {
            driver: ResponderDriver::new(Responder::new(name, software), out),
            passed: VecDeque::new(),
            counters,
        }
    }

    /// Serves what the session has received, streams SOURCE data as room allows, and keeps the
    /// other events for [`pop`](Self::pop).
    pub(crate) fn poll(&mut self, now: Instant, framed: &mut Framed) {
        let decoder = framed.decoder_stats();
        let Self { driver, passed, counters } = self;
        driver.responder_mut().set_server_counters(Some(counters.snapshot()));
        driver.poll(now, framed.session_mut(), decoder, |event| passed.extend(Next::of(event)));
    }

    /// The next event passed on.
    pub(crate) fn pop(&mut self) -> Option<Next> {
        self.passed.pop_front()
    }
}
