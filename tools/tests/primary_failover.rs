//! kill -9 of the primary of a single-primary group under load, on real `tutti server`
//! processes: a new primary is elected within `suspicion_timeout` plus
//! `member_expel_timeout` plus 2 s, clients that follow the READONLY hint go on writing,
//! and no acknowledged write is lost.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{reply, wait_until, Group, WAIT};
use tutti::client::{frame_text, RespClient};

/// Writes unique keys until `stop`, starting at `home` and following every READONLY hint
/// to the primary; a connection that fails (its member died) starts over at `home`.
/// Returns how many hints it followed.
fn follow_the_primary(
    writer: usize,
    home: &str,
    stop: &AtomicBool,
    acknowledged: &Mutex<Vec<String>>,
) -> usize {
    let mut target = home.to_owned();
    let (mut followed, mut n) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut client) = RespClient::connect(&target, Duration::from_secs(2)) else {
            home.clone_into(&mut target);
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        while !stop.load(Ordering::Relaxed) {
            let key = format!("w{writer}-{n}");
            let Some(text) = reply(&mut client, &[b"SET", key.as_bytes(), b"v"]) else {
                home.clone_into(&mut target);
                break;
            };
            let hint = text
                .strip_prefix("READONLY")
                .and_then(|rest| rest.rsplit("primary is ").next())
                .filter(|hint| hint.contains(':'));
            if text == "OK" {
                acknowledged.lock().unwrap().push(key);
                n += 1;
            } else if let Some(hint) = hint {
                hint.trim().clone_into(&mut target);
                followed += 1;
                break;
            } else {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    followed
}

#[test]
fn killing_the_primary_under_load_elects_a_new_one_and_loses_no_acknowledged_write() {
    let (suspicion, expel) = (1, 2);
    let mut group = Group::start_all(
        3,
        &[
            "--log-sync",
            "batch",
            "--single-primary-mode=true",
            "--suspicion-timeout",
            &format!("{suspicion}s"),
            "--member-expel-timeout",
            &format!("{expel}s"),
        ],
    );
    let addresses: Vec<String> = group.members.iter().map(|m| m.client.to_string()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    // Two writers start at a secondary and follow READONLY hints to the primary.
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let (stop, acknowledged, home) = (
                Arc::clone(&stop),
                Arc::clone(&acknowledged),
                addresses[1 + writer].clone(),
            );
            std::thread::spawn(move || follow_the_primary(writer, &home, &stop, &acknowledged))
        })
        .collect();
    wait_until("writes flow", WAIT, || {
        acknowledged.lock().unwrap().len() > 50
    });
    let killed_at = Instant::now();
    group.members[0].kill9();
    wait_until("a survivor is elected primary", WAIT, || {
        matches!(group.primary(1), Some(1 | 2)) && group.primary(2) == group.primary(1)
    });
    let elected_after = killed_at.elapsed();
    eprintln!("a new primary {elected_after:?} after kill -9 of the old one");
    let before = acknowledged.lock().unwrap().len();
    wait_until("writes flow to the new primary", WAIT, || {
        acknowledged.lock().unwrap().len() > before + 50
    });
    stop.store(true, Ordering::Relaxed);
    let followed: usize = writers
        .into_iter()
        .map(|writer| writer.join().expect("writer"))
        .sum();
    assert!(
        followed >= 2,
        "each writer followed the READONLY hint at least once"
    );
    assert!(
        elected_after <= Duration::from_secs(suspicion + expel + 2),
        "new primary after {elected_after:?}"
    );
    let keys = acknowledged.lock().unwrap().clone();
    for index in [1, 2] {
        let mut client = group.members[index].client();
        wait_until(
            "the survivor applied every acknowledged write",
            WAIT,
            || {
                frame_text(
                    &client
                        .command(&[b"EXISTS", keys.last().unwrap().as_bytes()])
                        .expect("EXISTS"),
                ) == "1"
            },
        );
        for chunk in keys.chunks(500) {
            let mut args: Vec<&[u8]> = vec![b"EXISTS"];
            args.extend(chunk.iter().map(String::as_bytes));
            let present = frame_text(&client.command(&args).expect("EXISTS"));
            assert_eq!(
                present,
                chunk.len().to_string(),
                "member {index} lost acknowledged writes"
            );
        }
    }
}
