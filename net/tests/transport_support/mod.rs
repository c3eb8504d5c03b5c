//! A test member: one transport on its own thread and runtime, driven from the test
//! thread through a command queue, recording what it receives.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tutti_net::transport::{
    spawn_on_core, Inbound, IoBackend, PeerId, PeerStats, RuntimeError, Transport, TransportConfig,
    TransportError, TransportHandle, TransportSnapshot,
};
use tutti_net::wire::{encode_frame, FrameOrigin};

/// The group every test member belongs to.
pub const GROUP: u128 = 0x7475_7474_6900_0000_0000_0000_0000_0001;
/// The message kind test frames use.
pub const TEST_KIND: u16 = 7;
/// The kind test members mark as heartbeat.
pub const HEARTBEAT_KIND: u16 = 8;

/// What one member received from one peer: sequence numbers, in arrival order.
#[derive(Default)]
pub struct Received {
    pub frames: Vec<(PeerId, u64, u64)>,
    pub ups: Vec<(PeerId, u64)>,
    pub downs: Vec<(PeerId, u64)>,
}

impl Received {
    /// Sequence numbers received from `peer` (with the incarnation they came from).
    pub fn from(&self, peer: PeerId) -> Vec<(u64, u64)> {
        self.frames
            .iter()
            .filter(|(from, _, _)| *from == peer)
            .map(|(_, incarnation, seq)| (*incarnation, *seq))
            .collect()
    }
}

enum Command {
    AddPeer(PeerId, SocketAddr),
    RemovePeer(PeerId),
    /// Send `count` frames numbered from `first`, each with `body_bytes` of body.
    Send {
        to: PeerId,
        first: u64,
        count: u64,
        body_bytes: usize,
    },
    Stop,
}

/// Encodes one test frame carrying `seq`.
pub fn test_frame(origin: FrameOrigin, kind: u16, seq: u64, body_bytes: usize) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, kind, origin, |body| {
        body.extend_from_slice(&seq.to_le_bytes());
        body.resize(body.len() + body_bytes.saturating_sub(8), 0xAB);
    })
    .expect("test frames are small");
    out
}

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("loopback address")
}

pub fn config(member: u128, incarnation: u64, listen_addr: SocketAddr) -> TransportConfig {
    let mut config = TransportConfig::new(GROUP, PeerId(member), incarnation, listen_addr);
    config.reconnect_backoff_min = Duration::from_millis(20);
    config.reconnect_backoff_max = Duration::from_millis(200);
    config.handshake_timeout = Duration::from_secs(2);
    config.heartbeat_kind = Some(HEARTBEAT_KIND);
    config
}

pub struct Member {
    pub id: PeerId,
    pub incarnation: u64,
    pub listen_addr: SocketAddr,
    pub handle: TransportHandle,
    pub received: Arc<Mutex<Received>>,
    commands: Arc<Mutex<VecDeque<Command>>>,
    thread: Option<JoinHandle<()>>,
}

/// Why a member did not start.
#[derive(Debug)]
pub enum StartError {
    Runtime(RuntimeError),
    Transport(TransportError),
}

impl Member {
    /// Starts a member on its own thread with `backend`.
    pub fn start(config: TransportConfig, backend: IoBackend) -> Result<Self, StartError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let commands = Arc::new(Mutex::new(VecDeque::new()));
        let received = Arc::new(Mutex::new(Received::default()));
        let id = config.member;
        let incarnation = config.incarnation;
        let thread_commands = Arc::clone(&commands);
        let thread_received = Arc::clone(&received);
        let start_tx = ready_tx.clone();
        let thread = spawn_on_core(format!("member-{id}"), backend, None, move || async move {
            let transport = match Transport::start(config) {
                Ok(transport) => transport,
                Err(error) => {
                    let _ = start_tx.send(Err(StartError::Transport(error)));
                    return;
                }
            };
            let _ = start_tx.send(Ok((transport.listen_addr(), transport.handle())));
            run_member(transport, thread_commands, thread_received).await;
        })
        .expect("thread spawned");
        // A runtime that cannot be built ends the thread at once with the error.
        let thread = std::thread::spawn(move || match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                let _ = ready_tx.send(Err(StartError::Runtime(error)));
            }
            Err(panic) => std::panic::resume_unwind(panic),
        });
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok((listen_addr, handle))) => Ok(Self {
                id,
                incarnation,
                listen_addr,
                handle,
                received,
                commands,
                thread: Some(thread),
            }),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            Err(error) => panic!("member {id} did not start: {error}"),
        }
    }

    fn command(&self, command: Command) {
        self.commands
            .lock()
            .expect("command lock")
            .push_back(command);
    }

    pub fn add_peer(&self, other: &Member) {
        self.add_peer_at(other.id, other.listen_addr);
    }

    pub fn add_peer_at(&self, peer: PeerId, addr: SocketAddr) {
        self.command(Command::AddPeer(peer, addr));
    }

    pub fn remove_peer(&self, peer: PeerId) {
        self.command(Command::RemovePeer(peer));
    }

    pub fn send(&self, to: PeerId, first: u64, count: u64, body_bytes: usize) {
        self.command(Command::Send {
            to,
            first,
            count,
            body_bytes,
        });
    }

    pub fn origin(&self) -> FrameOrigin {
        FrameOrigin {
            group_name: GROUP,
            sender: self.id.0,
            incarnation: self.incarnation,
        }
    }

    pub fn snapshot(&self) -> TransportSnapshot {
        self.handle.snapshot()
    }

    pub fn peer_stats(&self, peer: PeerId) -> Option<PeerStats> {
        self.snapshot()
            .peers
            .into_iter()
            .find(|row| row.peer == peer)
    }

    /// Stops the member and joins its thread.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        self.command(Command::Stop);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("member thread ended cleanly");
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if self.thread.is_some() && !std::thread::panicking() {
            self.stop_inner();
        } else if self.thread.is_some() {
            self.command(Command::Stop);
        }
    }
}

async fn run_member(
    transport: Transport,
    commands: Arc<Mutex<VecDeque<Command>>>,
    received: Arc<Mutex<Received>>,
) {
    loop {
        if let Ok(inbound) = monoio::time::timeout(Duration::from_millis(2), transport.recv()).await
        {
            record(&received, inbound);
            while let Some(inbound) = transport.try_recv() {
                record(&received, inbound);
            }
        }
        let pending: Vec<Command> = commands.lock().expect("command lock").drain(..).collect();
        for command in pending {
            match command {
                Command::AddPeer(peer, addr) => transport.add_peer(peer, addr).expect("peer added"),
                Command::RemovePeer(peer) => {
                    transport.remove_peer(peer);
                }
                Command::Send {
                    to,
                    first,
                    count,
                    body_bytes,
                } => {
                    for seq in first..first + count {
                        transport
                            .send_with(to, TEST_KIND, |body| {
                                body.extend_from_slice(&seq.to_le_bytes());
                                body.resize(body.len() + body_bytes.saturating_sub(8), 0xAB);
                            })
                            .expect("test frames are small");
                    }
                }
                Command::Stop => {
                    assert!(transport.shutdown().await, "every transport task ended");
                    return;
                }
            }
        }
    }
}

fn record(received: &Mutex<Received>, inbound: Inbound) {
    let mut received = received.lock().expect("received lock");
    match inbound {
        Inbound::Frame(frame) => {
            let mut word = [0u8; 8];
            word.copy_from_slice(&frame.body()[..8]);
            received.frames.push((
                frame.peer,
                frame.header.origin.incarnation,
                u64::from_le_bytes(word),
            ));
        }
        Inbound::PeerUp {
            peer, incarnation, ..
        } => received.ups.push((peer, incarnation)),
        Inbound::PeerDown {
            peer, incarnation, ..
        } => received.downs.push((peer, incarnation)),
    }
}

/// Waits until `condition` holds, at most `limit`; panics with `what` otherwise.
pub fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Asserts that `seqs` is exactly `first..first + count` in order.
pub fn assert_in_order(seqs: &[u64], first: u64, count: u64) {
    assert_eq!(seqs.len() as u64, count, "every frame arrived exactly once");
    for (expected, seq) in (first..).zip(seqs) {
        assert_eq!(
            *seq, expected,
            "frames from one peer arrive in the order sent"
        );
    }
}
