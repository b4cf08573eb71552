//! State sync, the joining side: before the node starts, fetch a recent snapshot from peers
//! and install it, so the node executes only the blocks after it.
//!
//! Each peer is asked for the newest snapshot it can prove. Offers are tried from the
//! highest: the epoch proofs that lead from genesis to the offer's epoch are fetched (from
//! the offering peer first, then any other: they prove themselves), the offer is checked
//! against them, then its chunks are fetched and the ledger rebuilt from them, which checks
//! every account against the certified state root (`almagill::state_sync`). A peer whose
//! offer, proofs or chunks do not check out is refused and the next offer is tried.

use std::time::{Duration, Instant};

use almagill::config::Peer;
use almagill::encoding;
use almagill::genesis::Genesis;
use almagill::ledger::{Ledger, SnapshotChunk};
use almagill::state_sync::{EpochProof, KnownSets, Offer};
use anyhow::{anyhow, bail, Context as _, Result};
use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use tracing::{info, warn};

use crate::node::network::{dial, Me};
use crate::node::session::Session;
use crate::node::wire::{self, SyncReply, SyncRequest, Wire};

/// How long a peer may take to answer one request.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A snapshot fetched and checked: what the store installs and the node starts from.
pub struct Synced {
    /// The offer taken.
    pub offer: Offer,
    /// Its chunks.
    pub chunks: Vec<SnapshotChunk>,
    /// The epoch proofs that led to it.
    pub proofs: Vec<EpochProof>,
    /// The ledger the chunks make.
    pub ledger: Ledger,
}

/// An authenticated session used for state-sync requests only; what else the peer sends on
/// it (consensus traffic, gossip, pings) is read and dropped.
pub struct Link {
    name: String,
    session: Session,
}

impl Link {
    /// Connects to `peer` as `me`.
    pub async fn open(me: &Me, peer: &Peer) -> Result<Link> {
        Ok(Link {
            name: peer.name.clone(),
            session: dial(me, peer).await?,
        })
    }

    /// Sends `request` and waits for the answer.
    pub async fn ask(&mut self, request: SyncRequest) -> Result<SyncReply> {
        let frame = wire::encode(&Wire::SyncRequest(request));
        for message in self.session.sealer.seal(&frame)? {
            self.session.connection.send(message).await?;
        }
        let reply = async {
            loop {
                let message = self
                    .session
                    .connection
                    .next()
                    .await
                    .ok_or_else(|| anyhow!("the connection closed"))??;
                let Some(frame) = self.session.opener.open(&message)? else {
                    continue;
                };
                if let Wire::SyncReply(reply) = encoding::decode::<Wire>(&frame)? {
                    return Ok(reply);
                }
            }
        };
        tokio::time::timeout(REPLY_TIMEOUT, reply)
            .await
            .map_err(|_| anyhow!("no answer within {REPLY_TIMEOUT:?}"))?
    }
}

/// Fetches, checks and returns the newest snapshot above `height` that a peer can prove, or
/// `None` when no peer offers one (the node then catches up on blocks alone).
pub async fn fetch(
    me: &Me,
    peers: &[Peer],
    genesis: &Genesis,
    height: u64,
) -> Result<Option<Synced>> {
    let started = Instant::now();
    let sessions = join_all(peers.iter().map(|peer| async move {
        match Link::open(me, peer).await {
            Ok(link) => Some(link),
            Err(e) => {
                warn!(target: "sync", peer = %peer.name, "cannot reach the peer: {e:#}");
                None
            }
        }
    }))
    .await;
    let mut links: Vec<Link> = sessions.into_iter().flatten().collect();
    let mut offers = Vec::new();
    for (i, link) in links.iter_mut().enumerate() {
        match link.ask(SyncRequest::Offer).await {
            Ok(SyncReply::Offer(Some(offer))) => offers.push((i, offer)),
            Ok(_) => info!(target: "sync", peer = %link.name, "no snapshot offered"),
            Err(e) => warn!(target: "sync", peer = %link.name, "no offer: {e:#}"),
        }
    }
    // The highest first; among equals, the peers in the configuration's order.
    offers.sort_by_key(|(i, offer)| (std::cmp::Reverse(offer.head.height), *i));
    let mut known = KnownSets::from_genesis(genesis);
    let mut proofs = Vec::new();
    for (i, offer) in offers {
        let at = offer.head.height;
        if at <= height {
            break;
        }
        let name = links[i].name.clone();
        info!(target: "sync", peer = %name, height = at, accounts = offer.head.accounts, "trying a snapshot");
        match take(&mut links, i, offer, genesis, &mut known, &mut proofs).await {
            Ok(synced) => {
                info!(
                    target: "sync",
                    peer = %name,
                    height = at,
                    accounts = synced.offer.head.accounts,
                    epoch_proofs = synced.proofs.len(),
                    seconds = started.elapsed().as_secs_f64(),
                    "snapshot fetched and checked against its certified state root"
                );
                return Ok(Some(synced));
            }
            Err(e) => warn!(target: "sync", peer = %name, height = at, "snapshot refused: {e:#}"),
        }
    }
    Ok(None)
}

/// Checks offer `offer` of link `i` and fetches its chunks; proofs learned stay in `known`
/// and `proofs` for the next offer, since they prove themselves.
async fn take(
    links: &mut [Link],
    i: usize,
    offer: Offer,
    genesis: &Genesis,
    known: &mut KnownSets,
    proofs: &mut Vec<EpochProof>,
) -> Result<Synced> {
    let at = offer.head.height;
    while !known.knows(at) {
        let from = known.next_proof_height();
        let mut learned = false;
        // The offering peer first, then the others.
        let order = std::iter::once(i).chain((0..links.len()).filter(|&j| j != i));
        for j in order {
            let Ok(SyncReply::EpochProofs(got)) =
                links[j].ask(SyncRequest::EpochProofs { from }).await
            else {
                continue;
            };
            for proof in got {
                if known.add(&proof).is_err() {
                    break;
                }
                proofs.push(proof);
                learned = true;
            }
            if learned {
                break;
            }
        }
        if !learned {
            bail!("no peer proves the validators after height {from}");
        }
    }
    known
        .check_offer(&offer)
        .context("the offer does not check out")?;
    let link = &mut links[i];
    let mut chunks = Vec::with_capacity(offer.head.chunks as usize);
    for index in 1..=offer.head.chunks {
        match link.ask(SyncRequest::Chunk { height: at, index }).await? {
            SyncReply::Chunk(Some(chunk)) => chunks.push(chunk),
            _ => bail!("chunk {index} of {} is not served", offer.head.chunks),
        }
    }
    let ledger = Ledger::from_snapshot(genesis, &offer.head, chunks.clone())
        .context("its chunks do not match the certified state root")?;
    Ok(Synced {
        offer,
        chunks,
        proofs: proofs.clone(),
        ledger,
    })
}
