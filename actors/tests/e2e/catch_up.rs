//! Catch-up after load: a node whose data directory was emptied rejoins a chain of full
//! blocks while the others keep taking transactions, and reaches the head.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{load, round_of, signed_transfers, u64_field, Net, DEADLINE};

/// 40,000 transfers in full blocks, then node 3's data directory is emptied: it reaches the
/// loaded height and then the head (each within the harness deadline of 60 s) while the
/// others take about 1,000 transfers a second, and no peer drops it for being slow.
///
/// Mutation caught before leader reputation: catch-up replies gated by the costly-check
/// allowance (`on_synced` asking `checks` instead of `refusals`) — the view changes node 3
/// heard when it was back (one at each of its turns) failed their checks (their
/// checkpoints in epochs it did not know yet), spent every peer's allowance, and it never
/// took a block. Now the others pass node 3 over after its first failed turn, so few view
/// changes reach it; the separate allowance stays, and this test keeps the load.
#[test]
fn an_emptied_node_catches_up_with_a_loaded_chain() {
    catch_up_after(40_000);
}

/// The same after 200,000 transfers: a benchmark, not for CI (about three minutes here).
/// `cargo test -p almagill-node --test e2e catch_up -- --ignored --nocapture`
#[test]
#[ignore = "a benchmark: run with --ignored"]
fn an_emptied_node_catches_up_with_200k_transfers() {
    catch_up_after(200_000);
}

/// Commits `loaded` transfers, empties node 3, and measures its catch-up under load.
/// Epochs are 20 blocks, so that the head is several epochs past what an empty node knows:
/// the view changes it hears then fail their checks and spend its peers' allowance, which
/// must not stop it hearing their blocks.
fn catch_up_after(loaded: u64) {
    let mut net = Net::launch_with(4, Some(20));
    net.wait_height(&[0, 1, 2, 3], 2);
    let per_sender = loaded / 2;
    let load_started = Instant::now();
    load(&net, loaded);
    let loaded_height = net.height(0);
    // Node 3 loses everything it had.
    net.kill(3);
    net.wipe(3);
    eprintln!(
        "catch-up: {loaded} transfers committed in {:?}, up to height {loaded_height}",
        load_started.elapsed()
    );
    // Down a while: the others change view at its first turn to lead (then pass it over)
    // and go on three epochs, so that what it hears when it is back lies in epochs it does
    // not know yet.
    let round = round_of(&net.status(0));
    net.wait_until(
        DEADLINE,
        "the others to change view and go on 3 epochs",
        || {
            net.try_ok(0, "STATUS").is_some_and(|s| {
                round_of(&s) > round && u64_field(&s, "height") >= loaded_height + 60
            })
        },
    );

    // While node 3 catches up, the others keep taking about 1,000 transfers a second.
    let stop = Arc::new(AtomicBool::new(false));
    let more = signed_transfers(&net, "alice", "bob", per_sender..per_sender + 60_000);
    let admin_port = net.ports.admin(2);
    let load = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut sent = 0;
            let started = Instant::now();
            for batch in more.chunks(100) {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut admin) = crate::harness::Admin::connect(admin_port) else {
                    break;
                };
                let lines: String = batch.iter().map(|h| format!("SUBMIT {h}\n")).collect();
                if admin.send_raw(lines.as_bytes()).is_err() {
                    break;
                }
                for _ in batch {
                    let _ = admin.read_line();
                }
                sent += batch.len();
                // Pace to about 1,000 a second: this is load, not synchronisation.
                let due = Duration::from_millis(sent as u64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    thread::sleep(wait);
                }
            }
            sent
        })
    };
    net.start(3);
    let started = Instant::now();
    net.wait_until(DEADLINE, "node3 to reach the loaded height", || {
        net.try_height(3).is_some_and(|h| h >= loaded_height)
    });
    let synced = started.elapsed();
    net.wait_until(DEADLINE, "node3 to reach the head", || {
        let head = net.max_height(&[0, 1, 2]);
        net.try_height(3).is_some_and(|h| h + 2 >= head)
    });
    let at_head = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let sent = load.join().expect("the load thread");
    let blocks_per_s = loaded_height as f64 / synced.as_secs_f64();
    let tx_per_s = loaded as f64 / synced.as_secs_f64();
    eprintln!(
        "catch-up: node3 (emptied) reached height {loaded_height} in {synced:?} \
         ({blocks_per_s:.0} blocks/s, {tx_per_s:.0} tx/s) and the head in {at_head:?}, \
         while the others took {sent} more transfers"
    );
    let log = net.current_log(3);
    assert!(
        !log.contains("too slow or gone"),
        "node3's peers dropped it while it caught up"
    );
}
