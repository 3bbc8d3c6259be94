//! The relay's sessions held in this process ([`MemoryStore`], the default store of a
//! single relay): for each, a bounded buffer of recent reconstructions (for subscribers
//! who join late), the frame ids already accepted (so that a re-sent frame is
//! reconstructed once), and a broadcast channel to the live subscribers.
//!
//! All state sits behind one mutex with short critical sections (no I/O, no await
//! inside). Every method takes `now` so that expiry is tested without waiting.
//!
//! Drop policy: when a session's buffer is full the oldest image is dropped. A
//! subscriber that falls more than a buffer's worth behind the live stream is told how
//! many images it missed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use shared_protocol::SessionId;
use tokio::sync::broadcast;

use super::{Admission, Live, PendingWait, Published, SessionError, Store, Subscription, Text, DEDUP_WINDOW};

/// One reconstruction, already serialised as the text frame subscribers receive.
#[derive(Debug, Clone)]
struct Buffered {
    frame_id: Option<u64>,
    /// Arrival order, for frames without an id and for the drop policy.
    arrival: u64,
    json: Text,
}

#[derive(Debug)]
struct Session {
    buffer: VecDeque<Buffered>,
    /// Frame ids accepted (in flight or done), and their order for trimming the window.
    seen: HashSet<u64>,
    seen_order: VecDeque<u64>,
    /// Reconstructions accepted but not yet published; a session is not idle while any.
    in_flight: usize,
    tx: broadcast::Sender<Live>,
    last_active: Instant,
    /// The client address it counts against for the per-client limit: the one
    /// `POST /api/sessions` issued it to, or the subscriber whose subscription
    /// (re)created it. `None` for a session created by ingest.
    issued_to: Option<IpAddr>,
}

impl Session {
    fn new(capacity: usize, now: Instant, issued_to: Option<IpAddr>) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self {
            buffer: VecDeque::with_capacity(capacity.min(64)),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            in_flight: 0,
            tx,
            last_active: now,
            issued_to,
        }
    }

    fn remember(&mut self, frame_id: u64) {
        if self.seen.insert(frame_id) {
            self.seen_order.push_back(frame_id);
            while self.seen_order.len() > DEDUP_WINDOW {
                if let Some(old) = self.seen_order.pop_front() {
                    self.seen.remove(&old);
                }
            }
        }
    }

    fn forget(&mut self, frame_id: u64) {
        if self.seen.remove(&frame_id) {
            self.seen_order.retain(|f| *f != frame_id);
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<SessionId, Session>,
    per_client: HashMap<IpAddr, usize>,
    arrivals: u64,
}

/// All sessions of the relay, in this process.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    max_sessions: usize,
    max_per_client: usize,
    buffered_images: usize,
    idle: Duration,
}

impl MemoryStore {
    pub fn new(max_sessions: usize, max_per_client: usize, buffered_images: usize, idle: Duration) -> Self {
        Self { inner: Mutex::new(Inner::default()), max_sessions, max_per_client, buffered_images, idle }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every method finishes
        // its updates before anything can fail), so a poisoned lock is still usable.
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Registers a session issued to `client` by `POST /api/sessions`.
    pub fn issue(&self, id: SessionId, client: IpAddr, now: Instant) -> Result<(), SessionError> {
        let mut inner = self.lock();
        self.create(&mut inner, id, Some(client), now)
    }

    /// Adds a session within `--max-sessions`, and counts it against `owner` within
    /// `--max-sessions-per-client` when there is one.
    fn create(&self, inner: &mut Inner, id: SessionId, owner: Option<IpAddr>, now: Instant) -> Result<(), SessionError> {
        if inner.sessions.len() >= self.max_sessions {
            return Err(SessionError::Full { max: self.max_sessions });
        }
        if let Some(client) = owner {
            let count = inner.per_client.get(&client).copied().unwrap_or(0);
            if count >= self.max_per_client {
                return Err(SessionError::ClientLimit { client, max: self.max_per_client });
            }
            inner.per_client.insert(client, count + 1);
        }
        inner.sessions.insert(id, Session::new(self.buffered_images, now, owner));
        Ok(())
    }

    /// The session, created on first use (a token is stateless, so a session issued
    /// before a restart, or by another relay, is still valid). `owner` is the client it
    /// then counts against; frames (ingest) create sessions for no one, since only the
    /// trusted simulation-service sends them, and only for sessions whose tokens it has
    /// checked.
    fn session_mut<'a>(
        &self,
        inner: &'a mut Inner,
        id: &SessionId,
        owner: Option<IpAddr>,
        now: Instant,
    ) -> Result<&'a mut Session, SessionError> {
        if !inner.sessions.contains_key(id) {
            self.create(inner, id.clone(), owner, now)?;
        }
        match inner.sessions.get_mut(id) {
            Some(s) => {
                s.last_active = now;
                Ok(s)
            }
            None => Err(SessionError::Full { max: self.max_sessions }),
        }
    }

    /// Accepts a frame for reconstruction, or recognises a re-send. A new frame with an
    /// id is remembered at once, so a re-send that arrives while the first copy is still
    /// being reconstructed is also a duplicate.
    pub fn admit(&self, id: &SessionId, frame_id: Option<u64>, now: Instant) -> Result<Admission, SessionError> {
        let mut inner = self.lock();
        let session = self.session_mut(&mut inner, id, None, now)?;
        if let Some(f) = frame_id {
            if session.seen.contains(&f) {
                return Ok(Admission::Duplicate);
            }
            session.remember(f);
        }
        session.in_flight += 1;
        Ok(Admission::New)
    }

    /// A frame admitted by [`Self::admit`] could not be reconstructed: forget its id so
    /// that a re-send is tried again.
    pub fn abandon(&self, id: &SessionId, frame_id: Option<u64>) {
        let mut inner = self.lock();
        if let Some(session) = inner.sessions.get_mut(id) {
            session.in_flight = session.in_flight.saturating_sub(1);
            if let Some(f) = frame_id {
                session.forget(f);
            }
        }
    }

    /// Buffers a reconstruction and pushes it to the live subscribers, atomically with
    /// respect to [`Self::subscribe`] (a new subscriber sees it either in its replay or
    /// live, never both, never neither).
    pub fn publish(&self, id: &SessionId, frame_id: Option<u64>, json: Text, now: Instant) -> Published {
        let mut inner = self.lock();
        inner.arrivals += 1;
        let arrival = inner.arrivals;
        let capacity = self.buffered_images;
        // The session may have expired meanwhile only if it had nothing in flight, which
        // this frame contradicts; recreate it rather than lose the image.
        let session = match self.session_mut(&mut inner, id, None, now) {
            Ok(s) => s,
            Err(_) => return Published { subscribers: 0, dropped_oldest: false },
        };
        session.in_flight = session.in_flight.saturating_sub(1);
        let mut dropped_oldest = false;
        if session.buffer.len() >= capacity {
            session.buffer.pop_front();
            dropped_oldest = true;
        }
        session.buffer.push_back(Buffered { frame_id, arrival, json: json.clone() });
        let subscribers = session.tx.send(Live::Image { seq: arrival, json }).unwrap_or(0);
        Published { subscribers, dropped_oldest }
    }

    /// Subscribes to a session: its buffered images in frame order (images without a
    /// frame id follow, in arrival order), then every new one. A session this creates
    /// (forgotten while idle, or never held here) counts against `client`, so that old
    /// tokens do not lift the per-client limit.
    pub fn subscribe(&self, id: &SessionId, client: Option<IpAddr>, now: Instant) -> Result<Subscription, SessionError> {
        let mut inner = self.lock();
        let session = self.session_mut(&mut inner, id, client, now)?;
        let mut items: Vec<&Buffered> = session.buffer.iter().collect();
        items.sort_by_key(|b| (b.frame_id.is_none(), b.frame_id, b.arrival));
        let replayed_through = items.iter().map(|b| b.arrival).max().unwrap_or(0);
        let replay = items.into_iter().map(|b| b.json.clone()).collect();
        Ok(Subscription { replay, live: session.tx.subscribe(), replayed_through })
    }

    /// Forgets sessions idle for longer than the idle limit: no frame, no subscription,
    /// nothing in flight. Returns how many were removed.
    pub fn expire_idle(&self, now: Instant) -> usize {
        let mut inner = self.lock();
        let idle = self.idle;
        let mut expired: Vec<(SessionId, Option<IpAddr>)> = Vec::new();
        for (id, s) in &inner.sessions {
            let quiet = now.saturating_duration_since(s.last_active) >= idle;
            if quiet && s.in_flight == 0 && s.tx.receiver_count() == 0 {
                expired.push((id.clone(), s.issued_to));
            }
        }
        for (id, client) in &expired {
            inner.sessions.remove(id);
            if let Some(c) = client {
                let left = inner.per_client.get(c).copied().unwrap_or(1).saturating_sub(1);
                if left == 0 {
                    inner.per_client.remove(c);
                } else {
                    inner.per_client.insert(*c, left);
                }
            }
        }
        expired.len()
    }

    /// Sessions held now.
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Images buffered for a session (0 for an unknown one).
    pub fn buffered(&self, id: &SessionId) -> usize {
        self.lock().sessions.get(id).map_or(0, |s| s.buffer.len())
    }

    /// Live subscribers, summed over sessions.
    pub fn subscribers(&self) -> usize {
        self.lock().sessions.values().map(|s| s.tx.receiver_count()).sum()
    }
}

/// The in-memory calls are synchronous (no I/O, no await inside), so the trait's async
/// methods only wrap the inherent ones, and the unit tests call those directly.
impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn describe(&self) -> String {
        "memory (this relay only)".to_owned()
    }

    /// Never used: in one process a frame in flight is a duplicate, never
    /// [`Admission::Pending`]; a zero lease makes a caller give up at once should it be.
    fn pending_wait(&self) -> PendingWait {
        PendingWait { poll: Duration::from_millis(100), lease: Duration::ZERO }
    }

    /// Housekeeping only forgets idle sessions here, so it can be rare.
    fn housekeeping_interval(&self) -> Duration {
        Duration::from_secs(30)
    }

    async fn issue(&self, id: SessionId, client: IpAddr, now: Instant) -> Result<(), SessionError> {
        MemoryStore::issue(self, id, client, now)
    }

    async fn admit(&self, id: &SessionId, frame_id: Option<u64>, now: Instant) -> Result<Admission, SessionError> {
        MemoryStore::admit(self, id, frame_id, now)
    }

    async fn abandon(&self, id: &SessionId, frame_id: Option<u64>) {
        MemoryStore::abandon(self, id, frame_id);
    }

    async fn publish(&self, id: &SessionId, frame_id: Option<u64>, json: Text, now: Instant) -> Result<Published, SessionError> {
        Ok(MemoryStore::publish(self, id, frame_id, json, now))
    }

    async fn subscribe(&self, id: &SessionId, client: Option<IpAddr>, now: Instant) -> Result<Subscription, SessionError> {
        MemoryStore::subscribe(self, id, client, now)
    }

    async fn expire_idle(&self, now: Instant) -> usize {
        MemoryStore::expire_idle(self, now)
    }

    fn len(&self) -> usize {
        MemoryStore::len(self)
    }

    fn subscribers(&self) -> usize {
        MemoryStore::subscribers(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> SessionId {
        SessionId::parse(s).unwrap()
    }

    fn json(s: &str) -> Text {
        Text::from(s)
    }

    #[test]
    fn duplicate_frames_are_admitted_once_even_while_in_flight() {
        let store = MemoryStore::new(10, 10, 4, Duration::from_secs(60));
        let now = Instant::now();
        let s = id("a");
        assert_eq!(store.admit(&s, Some(5), now).unwrap(), Admission::New);
        assert_eq!(store.admit(&s, Some(5), now).unwrap(), Admission::Duplicate);
        store.publish(&s, Some(5), json("5"), now);
        assert_eq!(store.admit(&s, Some(5), now).unwrap(), Admission::Duplicate);
        // The same id in another session is another frame.
        assert_eq!(store.admit(&id("b"), Some(5), now).unwrap(), Admission::New);
        // Frames without ids are never duplicates.
        assert_eq!(store.admit(&s, None, now).unwrap(), Admission::New);
        assert_eq!(store.admit(&s, None, now).unwrap(), Admission::New);
    }

    #[test]
    fn abandoned_frames_can_be_sent_again() {
        let store = MemoryStore::new(10, 10, 4, Duration::from_secs(60));
        let now = Instant::now();
        let s = id("a");
        assert_eq!(store.admit(&s, Some(1), now).unwrap(), Admission::New);
        store.abandon(&s, Some(1));
        assert_eq!(store.admit(&s, Some(1), now).unwrap(), Admission::New);
    }

    #[test]
    fn dedup_window_is_bounded() {
        let store = MemoryStore::new(10, 10, 4, Duration::from_secs(60));
        let now = Instant::now();
        let s = id("a");
        for f in 0..(DEDUP_WINDOW as u64 + 10) {
            assert_eq!(store.admit(&s, Some(f), now).unwrap(), Admission::New);
        }
        assert_eq!(store.admit(&s, Some(DEDUP_WINDOW as u64 + 9), now).unwrap(), Admission::Duplicate);
        // The oldest ids left the window.
        assert_eq!(store.admit(&s, Some(0), now).unwrap(), Admission::New);
    }

    #[test]
    fn buffer_drops_the_oldest_and_replays_in_frame_order() {
        let store = MemoryStore::new(10, 10, 3, Duration::from_secs(60));
        let now = Instant::now();
        let s = id("a");
        for f in [4u64, 2, 3] {
            store.admit(&s, Some(f), now).unwrap();
            let p = store.publish(&s, Some(f), json(&f.to_string()), now);
            assert!(!p.dropped_oldest);
        }
        store.admit(&s, Some(1), now).unwrap();
        let p = store.publish(&s, Some(1), json("1"), now);
        assert!(p.dropped_oldest, "4 was the oldest");
        let sub = store.subscribe(&s, None, now).unwrap();
        let got: Vec<&str> = sub.replay.iter().map(|j| j.as_str()).collect();
        assert_eq!(got, vec!["1", "2", "3"]);
    }

    #[test]
    fn subscribers_get_new_images_live_and_other_sessions_never() {
        let store = MemoryStore::new(10, 10, 3, Duration::from_secs(60));
        let now = Instant::now();
        let mut a = store.subscribe(&id("a"), None, now).unwrap();
        let mut b = store.subscribe(&id("b"), None, now).unwrap();
        assert!(a.replay.is_empty());
        let p = store.publish(&id("a"), Some(1), json("a1"), now);
        assert_eq!(p.subscribers, 1);
        match a.live.try_recv().unwrap() {
            Live::Image { json, .. } => assert_eq!(json.as_str(), "a1"),
            Live::Interrupted => panic!("the memory store is never interrupted"),
        }
        assert!(b.live.try_recv().is_err());
        assert_eq!(store.subscribers(), 2);
    }

    #[test]
    fn idle_sessions_expire_unless_subscribed_or_in_flight() {
        let idle = Duration::from_secs(60);
        let store = MemoryStore::new(10, 2, 3, idle);
        let t0 = Instant::now();
        let client: IpAddr = "127.0.0.1".parse().unwrap();
        store.issue(id("quiet"), client, t0).unwrap();
        store.issue(id("watched"), client, t0).unwrap();
        assert_eq!(
            store.issue(id("third"), client, t0).unwrap_err(),
            SessionError::ClientLimit { client, max: 2 }
        );
        let _sub = store.subscribe(&id("watched"), Some(client), t0).unwrap();
        store.admit(&id("busy"), Some(1), t0).unwrap();
        assert_eq!(store.expire_idle(t0 + idle / 2), 0);
        assert_eq!(store.expire_idle(t0 + idle), 1, "only `quiet` expires");
        assert_eq!(store.len(), 2);
        // Its slot is free again for the client.
        store.issue(id("third"), client, t0 + idle).unwrap();
    }

    #[test]
    fn sessions_recreated_by_subscribing_count_against_the_subscriber() {
        let idle = Duration::from_secs(60);
        let store = MemoryStore::new(100, 2, 3, idle);
        let t0 = Instant::now();
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        store.issue(id("old1"), client, t0).unwrap();
        store.issue(id("old2"), client, t0).unwrap();
        // Both are forgotten; their tokens would still be valid.
        assert_eq!(store.expire_idle(t0 + idle), 2);
        let t1 = t0 + idle;
        store.issue(id("new1"), client, t1).unwrap();
        // Subscribing to a forgotten session recreates it, counted: the client is at 2.
        let _old1 = store.subscribe(&id("old1"), Some(client), t1).unwrap();
        assert_eq!(store.issue(id("new2"), client, t1).unwrap_err(), SessionError::ClientLimit { client, max: 2 });
        assert_eq!(
            store.subscribe(&id("old2"), Some(client), t1).unwrap_err(),
            SessionError::ClientLimit { client, max: 2 },
            "a client at its limit cannot exceed it by subscribing to forgotten sessions"
        );
        // Subscribing again to a session it holds, or to one held for someone else,
        // creates nothing and is not refused.
        let _again = store.subscribe(&id("old1"), Some(client), t1).unwrap();
        store.issue(id("theirs"), other, t1).unwrap();
        let _theirs = store.subscribe(&id("theirs"), Some(client), t1).unwrap();
        // A session created by ingest counts against no one.
        store.admit(&id("ingested"), Some(1), t1).unwrap();
        let _ingested = store.subscribe(&id("ingested"), Some(client), t1).unwrap();
        assert_eq!(store.issue(id("new2"), other, t1).map(|_| ()), Ok(()));
        // Once the recreated session expires, its slot is free again.
        drop(_old1);
        drop(_again);
        assert!(store.expire_idle(t1 + idle) >= 2);
        store.issue(id("new3"), client, t1 + idle).unwrap();
    }

    #[test]
    fn the_store_is_bounded() {
        let store = MemoryStore::new(2, 10, 3, Duration::from_secs(60));
        let now = Instant::now();
        store.admit(&id("a"), None, now).unwrap();
        store.admit(&id("b"), None, now).unwrap();
        assert_eq!(store.admit(&id("c"), None, now).unwrap_err(), SessionError::Full { max: 2 });
        // Known sessions keep working.
        store.admit(&id("a"), None, now).unwrap();
    }
}
