//! Verdicts across a healed two-way partition. A node cut off both ways
//! hears nobody, so it declares the members it probes down while the
//! cluster declares it down; nobody suspects it where it can hear, so
//! local health (see `health`) never holds it. Left to foca, the heal
//! ends in a mutual kill: each side tells the other it is down (foca
//! honours that news even from a member it holds down), and the cut-off
//! node, once rejoined, keeps its old verdicts and gossips them. Members
//! that stayed reachable then have to rejoin. These rules stop that:
//!
//! 1. A "you are down" from a member this node saw declared down and then
//!    heard again (or from a later life at its address) is refused, unless this node is itself
//!    cut off: it saw at least as many members declared down recently as
//!    it holds live (itself included). The minority side of a partition
//!    yields; an even split yields on both sides, as foca would. A member
//!    that says so is talking: this node forgets its own verdict on it
//!    and says "you are down" back, so a member that holds this node down
//!    and is not cut off forgets that verdict in turn: two members that
//!    each hold the other down (each rejoined by others) take each other
//!    back at once.
//! 2. From such a discredited sender (a crashed member never sends again,
//!    so its restart is not one), news that a member this node holds
//!    live (or this node) is down is stripped before foca reads it;
//!    suspicions pass, as they can be refuted. A later life of that
//!    member (it took the verdict and rejoined) is discredited only while
//!    the old life's verdicts may still echo (twice the suspicion timeout
//!    plus a probe period): past that its verdicts are its own, formed
//!    where it hears the cluster (a paused registry that rejoined then
//!    sees the next crash as every other member does).
//! 3. A node that the cluster declared down forgets, as it rejoins, the
//!    verdicts it saw recently: they were formed while it could not hear
//!    the cluster. It learns again who is live from the cluster's answers
//!    (a verdict the cluster shares reaches it again as news).
//! 4. A member this node declared down recently that talks again with the
//!    same identity (a crashed one never does) is taken back, its verdict
//!    forgotten, when the verdict is doubtful: this node is isolated
//!    (most of its last probes, to several members, failed; see `health`),
//!    had to refute a suspicion of itself and is not heard yet, or is
//!    cut off. Otherwise foca tells it that it is down and it rejoins
//!    under a new identity, which every member accepts at once; taking
//!    it back everywhere instead would leave each pair of members to meet
//!    directly before they list each other again (seconds after a heal).
//!    Cut off includes *doubtful*: most of its probes failed lately, or
//!    it suspects as many members as it holds alive (members cut off
//!    together share their suspicions, so each soon suspects the whole
//!    side it cannot hear); its own "down" verdicts then wait too (see
//!    `health`).
//! 5. News that a member other than the sender is down is stripped when
//!    this node heard that member directly within the suspicion timeout:
//!    the verdict was formed where the member could not be heard (a
//!    crashed member is silent for longer before it is declared down).
//! 6. A "you are down" from a member heard before that was silent to this
//!    node lately (for longer than the suspicion timeout, within it; an
//!    identity never heard, as a mangled header gives, was not) discredits that
//!    member as in rule 1, unless this node is on the cut-off side
//!    (isolated, refuted a suspicion of itself, resumed lately from a
//!    pause as long as a suspicion's timeout, cut off, or outnumbered by
//!    its suspects): the verdict was formed where this node could not be
//!    heard, and the cut-off side is the sender's. foca sends that
//!    message to every member it declares down, so a verdict given just
//!    before a heal would otherwise reach a member that stayed reachable.
//!    A paused process is on the cut-off side: to it every member was
//!    silent, and the cluster's verdict on it is right. (Dropping the
//!    refuted-suspicion clause, as the simulator's heals suggest, failed
//!    the chaos stage: see RELIABILITY.md.)
//!
//! "Recently" is `GossipConfig::verdict_window`; past it foca's own rule
//! (both sides rejoin) applies again, so no stand-off outlives it.

use super::Machine;
use crate::gossip::codec::{put_varint, NodeCodec};
use crate::gossip::identity::NodeId;
use crate::gossip::packet::KIND_FOCA;
use bytes::Buf;
use foca::{Codec as _, Header, Message, State};
use std::borrow::Cow;
use std::collections::VecDeque;

/// Members seen declared down.
pub(super) struct Verdicts {
    /// Members declared down (leaves excluded), oldest first, with the tick.
    downs: VecDeque<(NodeId, u64)>,
    /// Members whose verdict this node forgot, as they proved alive.
    forgotten: VecDeque<(NodeId, u64)>,
    /// Members this node told, in answer, that it holds them down.
    answered: VecDeque<(NodeId, u64)>,
    /// Lives declared down and heard since (or discredited by rule 6),
    /// with the tick.
    undead: VecDeque<(NodeId, u64)>,
    /// `verdict_window` in ticks.
    window: u64,
}

impl Verdicts {
    /// `window`: how long a verdict counts as recent, in ticks.
    pub(super) fn new(window: u64) -> Verdicts {
        Verdicts {
            downs: VecDeque::new(),
            answered: VecDeque::new(),
            undead: VecDeque::new(),
            forgotten: VecDeque::new(),
            window,
        }
    }

    /// `id` was declared down at `tick`.
    pub(super) fn down(&mut self, id: NodeId, tick: u64) {
        self.prune(tick);
        self.downs.push_back((id, tick));
    }

    /// Whether `to` was not answered yet in the window (it is then
    /// counted as answered).
    fn first_answer(&mut self, to: NodeId, tick: u64) -> bool {
        let from = tick.saturating_sub(self.window);
        self.answered.retain(|(_, at)| *at >= from);
        if self.answered.iter().any(|(id, _)| *id == to) {
            return false;
        }
        self.answered.push_back((to, tick));
        true
    }

    /// Whether this node forgot its verdict on `id` within the last
    /// `span` ticks.
    fn forgot(&self, id: &NodeId, tick: u64, span: u64) -> bool {
        let from = tick.saturating_sub(span.min(self.window));
        self.forgotten.iter().any(|(f, at)| f == id && *at >= from)
    }

    /// `src` sent a datagram at `tick`: if it is a life declared down
    /// recently, its address is discredited (the verdict on it was false,
    /// or it was paused; a crashed member never sends again), and true is
    /// returned.
    fn heard(&mut self, src: NodeId, tick: u64) -> bool {
        let undead = self.recent(tick).any(|id| *id == src);
        if undead {
            self.discredit(src, tick);
        }
        undead
    }

    /// `src` gave a verdict on this node where it could not hear it (rule
    /// 6): discredited as a life declared down and heard again is.
    fn discredit(&mut self, src: NodeId, tick: u64) {
        self.undead.retain(|(id, _)| id.addr != src.addr);
        self.undead.push_back((src, tick));
    }

    /// Whether `src` is discredited: its life was declared down recently
    /// and heard since, or, within the last `echoes` ticks, an earlier
    /// life at its address was. A later life is the member rejoined: past
    /// the echoes of the old life's verdicts, its own are fresh (a member
    /// paused, declared down and rejoined sees real crashes again).
    fn discredited(&self, src: NodeId, tick: u64, echoes: u64) -> bool {
        self.undead.iter().any(|(id, at)| {
            let span = if *id == src {
                self.window
            } else {
                echoes.min(self.window)
            };
            id.addr == src.addr && *at >= tick.saturating_sub(span)
        })
    }

    /// Whether this node saw at least as many members declared down
    /// recently as it holds live (`live` others, plus itself).
    fn cut_off(&self, live: usize, tick: u64) -> bool {
        self.recent(tick).count() > live
    }

    fn recent(&self, tick: u64) -> impl Iterator<Item = &NodeId> {
        let from = tick.saturating_sub(self.window);
        self.downs
            .iter()
            .filter(move |(_, at)| *at >= from)
            .map(|(id, _)| id)
    }

    fn prune(&mut self, tick: u64) {
        let from = tick.saturating_sub(self.window);
        while self.downs.front().is_some_and(|(_, at)| *at < from) {
            self.downs.pop_front();
        }
        while self.forgotten.front().is_some_and(|(_, at)| *at < from) {
            self.forgotten.pop_front();
        }
        while self.undead.front().is_some_and(|(_, at)| *at < from) {
            self.undead.pop_front();
        }
    }
}

impl Machine {
    /// This node was declared down and rejoined: it forgets the verdicts
    /// it saw recently (rule 3); returns whether foca held any of them.
    pub(super) fn forget_recent_verdicts(&mut self) -> bool {
        let tick = self.clock.tick;
        let recent: Vec<NodeId> = self.verdicts.recent(tick).copied().collect();
        let mut any = false;
        for id in recent {
            any |= self.forget_verdict(id);
        }
        self.verdicts.downs.clear();
        any
    }

    /// foca forgets that `id` is down: news of it, or a datagram from
    /// it, brings it back. Returns whether foca held it down.
    fn forget_verdict(&mut self, id: NodeId) -> bool {
        let held = self
            .foca
            .iter_membership_state()
            .any(|m| *m.id() == id && m.state() == State::Down);
        if held {
            self.verdicts.forgotten.push_back((id, self.clock.tick));
            if let Err(e) = self
                .foca
                .handle_timer(foca::Timer::RemoveDown(id), &mut self.fout)
            {
                tracing::trace!(error = %e, "gossip: forget a verdict");
            }
        }
        held
    }

    /// Whether this node's verdicts are doubtful now (rule 4): it is
    /// isolated, or its probes failed lately (see `health`), or it had
    /// to refute a suspicion of itself and is not heard yet, or it is
    /// cut off, or outnumbered.
    pub(super) fn doubtful(&self, tick: u64) -> bool {
        let span = self
            .clock
            .ticks(self.config.suspect_to_down_after + self.config.probe_period);
        self.health.isolated()
            || self.health.failing_lately(tick, span)
            || self.health.holds_verdicts(tick)
            || self.verdicts.cut_off(self.view.live.len(), tick)
            || self.outnumbered()
    }

    /// How long news of a verdict still echoes through the cluster once
    /// its cause is gone, in ticks: twice the suspicion timeout plus a
    /// probe period.
    fn echoes(&self) -> u64 {
        self.clock
            .ticks(2 * self.config.suspect_to_down_after + self.config.probe_period)
    }

    /// Whether this node is on the cut-off side (rule 6).
    fn cut_off_side(&self, tick: u64) -> bool {
        let span = self
            .clock
            .ticks(self.config.suspect_to_down_after + self.config.probe_period);
        self.health.isolated()
            || self.health.holds_verdicts(tick)
            || self.health.resumed_lately(tick, span)
            || self.verdicts.cut_off(self.view.live.len(), tick)
            || self.outnumbered()
    }

    /// Whether this node suspects at least as many members as it holds
    /// alive (itself included), and several (one whose only peer is
    /// gone is not outnumbered):
    /// members cut off together share their suspicions of the rest, so
    /// each of them soon suspects the whole side it cannot hear.
    fn outnumbered(&self) -> bool {
        let (mut alive, mut suspect) = (1, 0);
        for m in self.foca.iter_membership_state() {
            match m.state() {
                State::Alive => alive += 1,
                State::Suspect => suspect += 1,
                State::Down => {}
            }
        }
        suspect >= alive.max(2)
    }

    /// Tells `to`, whose verdict on this node was refused, that this node
    /// holds (or held) it down: `to` then forgets its verdict in turn (or,
    /// cut off, yields). Sent once per forgotten verdict and once per
    /// sender in the window, so two members cannot echo it forever.
    fn answer_mutual_verdict(&mut self, to: NodeId) {
        let header = Header {
            src: self.identity(),
            src_incarnation: self.health.incarnation(),
            dst: to,
            message: Message::TurnUndead,
        };
        let mut body = vec![KIND_FOCA];
        put_varint(&mut body, self.local.version);
        if NodeCodec.encode_header(&header, &mut body).is_ok() {
            self.send(to.addr, &body);
        }
    }

    /// Applies rules 1 and 2 to a foca datagram (`header` decoded from
    /// `data`) before foca reads it: `None` refuses it, else the datagram
    /// foca gets.
    pub(super) fn screen_verdicts<'a>(
        &mut self,
        header: &Header<NodeId>,
        data: &'a [u8],
    ) -> Option<Cow<'a, [u8]>> {
        let tick = self.clock.tick;
        let src = header.src;
        if self.verdicts.heard(src, tick) && self.doubtful(tick) && self.forget_verdict(src) {
            tracing::debug!(member = %src, "gossip: heard from a member declared down: verdict forgotten");
        }
        let recently = self.clock.ticks(self.config.suspect_to_down_after);
        if header.message == Message::TurnUndead {
            let silent = self.heard.silent_lately(&src, tick, recently);
            let cut_off_side = silent && self.cut_off_side(tick);
            tracing::debug!(from = %src, silent, cut_off_side, "gossip: told this node is down");
            if silent && !cut_off_side {
                self.verdicts.discredit(src, tick);
            }
        }
        let discredited = self.verdicts.discredited(src, tick, self.echoes());
        let mut out = Cow::Borrowed(data);
        if header.message == Message::TurnUndead && discredited {
            if self.verdicts.cut_off(self.view.live.len(), tick) {
                return Some(out);
            }
            tracing::debug!(from = %src, "gossip: refused a verdict on this node from a member declared down");
            self.stats.stale_verdicts_refused += 1;
            if self.forget_verdict(src) || self.verdicts.first_answer(src, tick) {
                self.answer_mutual_verdict(src);
            }
            // Read as plain gossip: the sender is still heard.
            out = Cow::Owned(as_gossip(header, data)?);
        } else if header.message == Message::Broadcast {
            return Some(out);
        }
        match self.strip_stale_downs(&out, src, discredited, tick) {
            Some((kept, stripped)) if stripped > 0 => {
                tracing::debug!(from = %src, stripped, "gossip: stripped verdicts on live members");
                self.stats.stale_verdicts_refused += stripped;
                Some(Cow::Owned(kept))
            }
            _ => Some(out),
        }
    }

    /// `data` without its stale updates, and how many were removed:
    /// news that a member was declared down whose verdict this node
    /// forgot (it talked since) within the time such news still echoes
    /// (twice the suspicion timeout plus a probe period; later, the news
    /// is of a new fault, such as a pause), that a member other than `src` is down
    /// while this node heard it directly within the suspicion timeout (a
    /// verdict formed where it could not be heard: a crashed member is
    /// silent for longer than that before it is declared down), and, from
    /// a `discredited` sender, that a member this node holds live (or
    /// this node) is down. `None` if it does not decode (foca then counts
    /// it).
    fn strip_stale_downs(
        &self,
        data: &[u8],
        src: NodeId,
        discredited: bool,
        tick: u64,
    ) -> Option<(Vec<u8>, u64)> {
        let recently = self.clock.ticks(self.config.suspect_to_down_after);
        let echoes = self.echoes();
        let mut buf = data;
        NodeCodec.decode_header(&mut buf).ok()?;
        let header_len = data.len() - buf.len();
        if buf.remaining() < 2 {
            return None;
        }
        let count = buf.get_u16();
        let me = self.identity();
        let mut kept = Vec::with_capacity(data.len());
        kept.extend_from_slice(&data[..header_len]);
        kept.extend_from_slice(&[0, 0]);
        let (mut n, mut stripped) = (0u16, 0u64);
        for _ in 0..count {
            let before = buf;
            let m = NodeCodec.decode_member(&mut buf).ok()?;
            let live = *m.id() == me || self.view.live.contains(m.id());
            let heard = *m.id() != src && self.heard.within(m.id(), tick, recently);
            let stale = (discredited && live) || heard || self.verdicts.forgot(m.id(), tick, echoes);
            if m.state() == State::Down && stale {
                stripped += 1;
            } else {
                kept.extend_from_slice(&before[..before.len() - buf.len()]);
                n += 1;
            }
        }
        kept[header_len..header_len + 2].copy_from_slice(&n.to_be_bytes());
        kept.extend_from_slice(buf);
        Some((kept, stripped))
    }
}

/// `data` (a datagram whose header is `header`) as a plain gossip message
/// with the same payload; `None` if it does not decode.
fn as_gossip(header: &Header<NodeId>, data: &[u8]) -> Option<Vec<u8>> {
    let mut rest = data;
    NodeCodec.decode_header(&mut rest).ok()?;
    let header = Header {
        message: Message::Gossip,
        ..header.clone()
    };
    let mut out = Vec::with_capacity(data.len());
    NodeCodec.encode_header(&header, &mut out).ok()?;
    out.extend_from_slice(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn id(port: u16, gen: u64) -> NodeId {
        NodeId {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            gen,
        }
    }

    #[test]
    fn a_verdict_is_recent_for_the_window_and_counts_against_the_live() {
        let mut v = Verdicts::new(100);
        v.down(id(1, 1), 10);
        v.down(id(2, 1), 20);
        assert!(!v.discredited(id(1, 2), 50, 20), "not heard since: a crash");
        v.heard(id(1, 1), 50);
        v.heard(id(2, 2), 50);
        assert!(v.discredited(id(1, 2), 50, 20), "a later life at the address");
        assert!(
            !v.discredited(id(2, 2), 50, 20),
            "a restart is not the life declared down"
        );
        assert!(!v.discredited(id(3, 1), 50, 20));
        assert!(v.cut_off(1, 50), "two down, one live besides itself");
        assert!(!v.cut_off(2, 50), "two down, two live besides itself");
        assert!(v.discredited(id(1, 1), 149, 20));
        assert!(
            v.discredited(id(1, 2), 70, 20) && !v.discredited(id(1, 2), 71, 20),
            "a later life: for the echoes only"
        );
        assert!(!v.discredited(id(1, 1), 151, 20), "past the window");
        assert!(v.cut_off(0, 111) && !v.cut_off(1, 111));
        v.down(id(3, 1), 200);
        assert_eq!(v.downs.len(), 1, "old verdicts are pruned");
    }

    #[test]
    fn a_forgotten_verdict_strips_its_echoes_only_for_the_span_given() {
        let mut v = Verdicts::new(100);
        v.forgotten.push_back((id(1, 1), 10));
        assert!(v.forgot(&id(1, 1), 30, 20) && !v.forgot(&id(1, 1), 31, 20));
        assert!(!v.forgot(&id(1, 2), 30, 20), "another life of the member");
        assert!(
            v.forgot(&id(1, 1), 110, u64::MAX) && !v.forgot(&id(1, 1), 111, u64::MAX),
            "never past the window"
        );
    }
}
