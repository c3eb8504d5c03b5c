//! Starting the group core: checking the options, opening the data directory, starting
//! the transport and choosing how the gcs begins (bootstrap, join, restart).
//!
//! The storage and the transport are opened on the group core thread itself (they are
//! not `Send`); `start` waits for that thread to report that they are open, so a bad
//! data directory or a busy port fails `start` with its reason. This module must never
//! form a group unless told to bootstrap on a fresh data directory.

use std::sync::Arc;

use parking_lot::Mutex;
use tutti_net::gcs::{EntryBody, Gcs, GcsConfig, MemberId, MessageKind};
use tutti_net::transport::{spawn_on_core, PeerId, Transport, TransportConfig};
use tutti_net::wire::FrameOrigin;

use super::constants::{MEMBER_WEIGHT_MAX, PROPOSE_QUEUE_MAX, START_WAIT_MAX};
use super::delivery::DeliverySink;
use super::directory::{Directory, MemberAddress};
use super::error::GroupError;
use super::handle::{GroupHandle, Request, Shared};
use super::identity::{format_uuid, load_or_create};
use super::persist::Persistence;
use super::shell::{Clock, PendingStart, Shell};
use super::GroupOptions;

/// What the group core thread reports once it is up.
type Ready = Result<u64, GroupError>;

pub(super) fn start(
    options: GroupOptions,
    sink: Box<dyn DeliverySink>,
) -> Result<GroupHandle, GroupError> {
    let config = gcs_config(&options, 1)?;
    let member = load_or_create(&options.data_dir, options.group_name)?;
    let shared = Arc::new(Shared::default());
    let (requests, inbox) = flume::bounded::<Request>(PROPOSE_QUEUE_MAX);
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Ready>(1);
    let thread_shared = Arc::clone(&shared);
    let thread = spawn_on_core(
        "tutti-group".to_owned(),
        options.io_backend,
        options.core,
        move || async move {
            let config = GcsConfig {
                member: MemberId(member),
                ..config
            };
            match prepare(&options, config, thread_shared, sink, inbox) {
                Ok(shell) => {
                    let _ = ready_tx.send(Ok(shell.origin.incarnation));
                    shell.run().await
                }
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                    Ok(())
                }
            }
        },
    )
    .map_err(|error| GroupError::Thread(error.to_string()))?;
    let incarnation = match ready_rx.recv_timeout(START_WAIT_MAX) {
        Ok(Ok(incarnation)) => incarnation,
        Ok(Err(error)) => return Err(error),
        Err(_) => {
            // The thread ended without reporting: its runtime could not be built.
            return match thread.join() {
                Ok(Err(error)) => Err(GroupError::Runtime(error)),
                _ => Err(GroupError::Thread(
                    "the group core thread did not start".to_owned(),
                )),
            };
        }
    };
    Ok(GroupHandle {
        shared,
        requests,
        thread: Mutex::new(Some(thread)),
        member,
        incarnation,
    })
}

/// The gcs settings for `options` (member filled in later), checked.
fn gcs_config(options: &GroupOptions, member: u128) -> Result<GcsConfig, GroupError> {
    if options.group_name == 0 {
        return Err(GroupError::Option {
            name: "group_name",
            value: format_uuid(0),
            allowed: "a UUID other than the nil UUID",
        });
    }
    if options.member_weight > MEMBER_WEIGHT_MAX {
        return Err(GroupError::Option {
            name: "member_weight",
            value: options.member_weight.to_string(),
            allowed: "an integer from 0 to 100",
        });
    }
    if options.peer_addr.ip().is_unspecified() {
        return Err(GroupError::Option {
            name: "peer_address",
            value: options.peer_addr.to_string(),
            allowed: "an address the other members can reach (not 0.0.0.0 or ::), for example 127.0.0.1:33061",
        });
    }
    let mut config = GcsConfig::new(MemberId(member), options.group_name);
    config.heartbeat_interval = options.heartbeat_interval;
    config.suspicion_timeout = options.suspicion_timeout;
    config.member_expel_timeout = options.member_expel_timeout;
    config.unreachable_majority_timeout = options.unreachable_majority_timeout;
    config.durable_acks = options.log_sync == tutti_storage::log::SyncPolicy::Batch;
    config.validate()?;
    Ok(config)
}

/// Opens everything on the group core thread and decides how the gcs starts.
fn prepare(
    options: &GroupOptions,
    config: GcsConfig,
    shared: Arc<Shared>,
    sink: Box<dyn DeliverySink>,
    requests: flume::Receiver<Request>,
) -> Result<Shell, GroupError> {
    let me = config.member.0;
    let (mut store, report) = Persistence::open(&options.data_dir, options.log_sync)?;
    if let Some(torn) = &report.torn_tail {
        tracing::warn!(segment = %torn.segment.display(), offset = torn.offset, records = torn.records_dropped,
            reason = torn.reason, "log recovery cut a torn tail");
    }
    let incarnation = if store.has_state() {
        store.next_incarnation()
    } else {
        1
    };
    let (transport, directory, known) = open_network(options, me, incarnation, &shared)?;
    let clock = Clock::new();
    let (gcs, pending_start) = choose_start(options, &config, &mut store, known, clock.now())?;
    let origin = FrameOrigin {
        group_name: options.group_name,
        sender: me,
        incarnation,
    };
    Ok(Shell {
        config,
        me,
        gcs,
        pending_start,
        transport,
        origin,
        store,
        directory,
        clock,
        shared,
        sink,
        requests,
        waiting: std::collections::HashMap::new(),
        leave_waiters: Vec::new(),
        timer_at: None,
        states: std::collections::BTreeMap::new(),
        scratch: Vec::new(),
        frame_buffer: Vec::new(),
        delivered_count: 0,
        log_appends: 0,
        frames_undecodable: 0,
        tables_dirty: true,
        stop: false,
        seed_wait_logged: None,
    })
}

/// Starts the transport, loads the directory, adds every known member as a peer and
/// dials the seeds. Returns the members the directory knows (besides this one).
fn open_network(
    options: &GroupOptions,
    me: u128,
    incarnation: u64,
    shared: &Shared,
) -> Result<(Transport, Directory, Vec<MemberId>), GroupError> {
    let mut transport_config = TransportConfig::new(
        options.group_name,
        PeerId(me),
        incarnation,
        options.peer_addr,
    );
    transport_config.heartbeat_kind = Some(MessageKind::Heartbeat as u16);
    let transport = Transport::start(transport_config)?;
    let _ = shared.transport.set(transport.handle());
    let _ = shared.peer_addr.set(transport.listen_addr());
    let own = MemberAddress {
        member: me,
        incarnation,
        peer_addr: transport.listen_addr(),
        client_addr: options.client_addr,
        weight: options.member_weight,
    };
    let directory = Directory::load(&options.data_dir, own)?;
    let mut known = Vec::new();
    for record in directory.records().filter(|record| record.member != me) {
        transport.add_peer(PeerId(record.member), record.peer_addr)?;
        known.push(MemberId(record.member));
    }
    for seed in options
        .seeds
        .iter()
        .filter(|seed| **seed != transport.listen_addr())
    {
        transport.add_seed(*seed);
    }
    Ok((transport, directory, known))
}

/// Restart, bootstrap or join: the gcs to run now, or what to build once a seed answers.
fn choose_start(
    options: &GroupOptions,
    config: &GcsConfig,
    store: &mut Persistence,
    known: Vec<MemberId>,
    now: tutti_net::gcs::Time,
) -> Result<(Option<Gcs>, Option<PendingStart>), GroupError> {
    let me = config.member.0;
    if store.has_state() {
        if options.bootstrap {
            tracing::info!("bootstrap is ignored: this data directory already belongs to a group");
        }
        let incarnation = store.next_incarnation();
        let restored = store.restore(known)?;
        let has_config = restored
            .log
            .iter()
            .any(|entry| matches!(entry.body, EntryBody::Reconfigure { .. }));
        tracing::info!(member = %format_uuid(me), incarnation, entries = restored.log.len(), "restarting from the data directory");
        if has_config || !restored.seeds.is_empty() {
            return Ok((Some(Gcs::restart(config.clone(), restored, now)), None));
        }
        // The gcs (which persists the incarnation) starts only when a seed answers;
        // this start is counted now.
        store.store_incarnation(incarnation)?;
        return Ok((None, Some(PendingStart::Restart(restored))));
    }
    if options.bootstrap {
        tracing::info!(member = %format_uuid(me), group = %format_uuid(options.group_name), "bootstrapping a new group");
        return Ok((Some(Gcs::bootstrap(config.clone(), now)), None));
    }
    tracing::info!(member = %format_uuid(me), seeds = ?options.seeds, "joining through the seeds");
    Ok((None, Some(PendingStart::Join)))
}
