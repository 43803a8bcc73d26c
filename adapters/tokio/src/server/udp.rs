//! Serving a UDP socket: one task reads every datagram and tells the clients apart by source
//! address through the core's [`Endpoint`] (session tags, RETRY cookies, the session table);
//! each client's [`Link`] runs in a task of its own, fed its datagrams through a channel, and
//! answers on the shared socket.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use framelink_core::endpoint::{self, ANSWER_LEN, CookieKey, Endpoint, Entry, Route};
use framelink_core::session::CloseReason;
use framelink_std::{StdClock, Transport};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{Shared, drain_time, serve_client, stopped};
use crate::Link;
use crate::io::{Io, UdpPeer};
use crate::link::DATAGRAM_READ;

/// Datagrams queued for a client whose task has not read them yet; beyond, they are dropped
/// (the session repairs the loss, as it does the network's).
const INBOX: usize = 64;

/// A client's entry in the endpoint's table: its id, and where its datagrams go.
#[derive(Debug)]
struct Client {
    id: u64,
    inbox: mpsc::Sender<Vec<u8>>,
}

/// A client's link was dropped: its address, its id, and how its session ended, if it did.
pub(crate) type Ended = (SocketAddr, u64, Option<CloseReason>);

/// Serves every client of one UDP socket until the server stops; then waits for their tasks
/// (at most [`drain_time`]), still passing them their datagrams so that they close gracefully.
pub(super) async fn serve_datagrams<H, F>(socket: UdpSocket, shared: Arc<Shared>, handler: Arc<H>)
where
    H: Fn(Link) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let socket = Arc::new(socket);
    let link = &shared.config.link;
    // A CLOSE repeated because our CLOSE-ACK was lost is answered for as long as the session
    // would have waited for it.
    let settings = endpoint::Config::new().linger(link.close_timeout_value());
    let mut endpoint = Endpoint::new(random_key(), BTreeMap::<SocketAddr, Entry<Client>>::new(), settings);
    let (ended_tx, mut ended) = mpsc::unbounded_channel::<Ended>();
    let mut clients = JoinSet::new();
    let mut stop = shared.stop.clone();
    let mut drain_until: Option<StdInstant> = None;
    let clock = StdClock::new();
    let mut input = vec![0u8; DATAGRAM_READ];
    let mut answer = [0u8; ANSWER_LEN];
    let mut next_id = 0u64;
    let mut strays = 0;
    loop {
        if drain_until.is_some_and(|until| clients.is_empty() || StdInstant::now() >= until) {
            return;
        }
        let deadline =
            [endpoint.poll_timeout().map(|at| clock.to_std(at)), drain_until].into_iter().flatten().min();
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = stopped(&mut stop), if drain_until.is_none() => {
                drain_until = Some(StdInstant::now() + drain_time(&shared));
            }
            Some((addr, id, reason)) = ended.recv() => {
                if endpoint.get_mut(&addr).is_some_and(|client| client.id == id) {
                    match reason {
                        Some(CloseReason::Peer) => drop(endpoint.remove_closed(&addr, clock.now())),
                        _ => drop(endpoint.remove(&addr)),
                    }
                }
            }
            Some(_) = clients.join_next(), if !clients.is_empty() => {}
            received = socket.recv_from(&mut input) => {
                // An ICMP error reported on the socket (a client's port unreachable): read on.
                let Ok((len, from)) = received else { continue };
                let datagram = &input[..len];
                let now = clock.now();
                match endpoint.handle(now, from, datagram, &mut answer) {
                    // A full inbox drops the datagram; a closed one belongs to a client whose
                    // `ended` is on its way.
                    Route::Session(client) => drop(client.inbox.try_send(datagram.to_vec())),
                    Route::Incoming(incoming) => {
                        let slot = if drain_until.is_none() { shared.counters.take_slot() } else { None };
                        let Some(slot) = slot else {
                            shared.counters.refused();
                            let n = endpoint.refuse(incoming, shared.limit(), &mut answer);
                            let _ = socket.send_to(&answer[..n], from).await;
                            continue;
                        };
                        next_id += 1;
                        let (tx, inbox) = mpsc::channel(INBOX);
                        let _ = tx.try_send(datagram.to_vec());
                        if endpoint.accept(incoming, Client { id: next_id, inbox: tx }).is_ok() {
                            let socket = Arc::clone(&socket);
                            let peer = UdpPeer { socket, addr: from, inbox, id: next_id, ended: ended_tx.clone(), stash: None };
                            let (shared, handler) = (Arc::clone(&shared), Arc::clone(&handler));
                            clients.spawn(serve_client(Io::Peer(peer), Transport::Udp, shared, handler, slot));
                        }
                    }
                    Route::Answer(n) => drop(socket.send_to(&answer[..n], from).await),
                    Route::Drop => {}
                }
                let counted = endpoint.counters().stray;
                shared.counters.stray(counted - strays);
                strays = counted;
            }
            () = timer => endpoint.handle_timeout(clock.now()),
        }
    }
}

/// The key of the RETRY cookies: 16 bytes from the OS's random source, else from std's
/// randomly keyed hasher.
fn random_key() -> CookieKey {
    let mut key = [0u8; 16];
    if getrandom::fill(&mut key).is_err() {
        use std::hash::BuildHasher;
        let (first, second) =
            (std::collections::hash_map::RandomState::new(), std::collections::hash_map::RandomState::new());
        key[..8].copy_from_slice(&first.hash_one(0u8).to_le_bytes());
        key[8..].copy_from_slice(&second.hash_one(1u8).to_le_bytes());
    }
    CookieKey::new(key)
}
