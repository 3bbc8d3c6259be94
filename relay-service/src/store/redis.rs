//! The session store that several relays share: Redis holds each session's record,
//! its buffer of recent images, the frame ids already accepted and a sequence counter;
//! Redis pub/sub carries "image ready for session X" to every relay that has a
//! subscriber of X. A browser may therefore be subscribed on another relay than the one
//! that decoded its frames, and a simulation-service may re-send a frame to another
//! relay after losing one without the frame being reconstructed twice.
//!
//! # Keys
//! Under a configurable prefix `P` (`--redis-prefix`, default `v1:`), per session `S`:
//! - `P session:S` — hash `issued_to`, `created_ms`, written by the relay that issued it.
//! - `P buf:S` — list of the last `--buffered-images` images, oldest first, each stored as
//!   `"<seq> <frame_id or -> <reconstructed_image JSON>"`; trimmed with `LTRIM`.
//! - `P seen:S` — sorted set of accepted frame ids scored by acceptance order, trimmed to
//!   the newest [`DEDUP_WINDOW`] (the same window as the in-memory store).
//! - `P seq:S` — counter giving every accepted frame and every image an increasing number.
//! - `P flight:S` — hash frame id -> when (Redis clock, ms) a relay accepted it, for the
//!   frames accepted and not yet published.
//! - channel `P img:S` — every new image, in the buffer's entry format.
//!
//! Every key gets `PEXPIRE --session-idle-secs` on each frame, and relays refresh the keys
//! of sessions they have subscribers for, so a session without frames and without
//! subscribers disappears from Redis on its own: the idle expiry of the in-memory store.
//! Admission and publication are Lua scripts, so each is one atomic step and one round
//! trip: two relays accepting the same re-sent frame cannot both win, and the order of
//! `seq` in the buffer is the order of publication.
//!
//! # A relay lost with frames in flight
//! A frame id in `seen` is not enough to acknowledge a re-send: the relay that accepted
//! it may have died before publishing its image, and the re-send (to another relay) is
//! then the frame's only chance. So an accepted frame stays in `flight` until its image
//! is published. A re-send of a frame in flight is [`Admission::Pending`]: the relay asks
//! again every [`PENDING_POLL`] until the image is published (then it acknowledges) or
//! [`IN_FLIGHT_LEASE`] has passed since the frame was accepted (then it takes the frame
//! over and reconstructs it). A live relay publishes within milliseconds; one so
//! overloaded that it takes longer than the lease may publish a second image of the same
//! frame, which pages show once since they key images by frame id.
//!
//! # Fan-out
//! Each relay holds one command connection and ONE pub/sub connection (RESP3, so that
//! pushes arrive beside command replies), whichever the number of browsers: it
//! subscribes to the channel of a session when its first local subscriber arrives,
//! unsubscribes when the last one has gone, and fans each message out locally through the
//! same per-session broadcast channel as the in-memory store. A relay that decoded an
//! image does not push it to its own subscribers directly; they get it from Redis like
//! everyone else, so there is exactly one path per image.
//!
//! # Replay, then live, without gaps or duplicates
//! A new subscriber first joins the local broadcast channel and makes sure the relay is
//! subscribed in Redis (confirmed), then reads the buffer. An image published after the
//! read arrives live; one published before it is in the buffer (unless the buffer
//! already dropped it, exactly as in the in-memory store); one published in between is
//! both, and the live copy is dropped because its `seq` is not above the highest `seq`
//! replayed.
//!
//! # Limits and outages
//! `--max-sessions` and `--max-sessions-per-client` count what this relay holds and
//! issued: with N relays a client may hold up to N times the per-client limit. A session
//! that a subscription on this relay brings into its local table (issued by another
//! relay, or forgotten here while idle) counts against the subscriber's address, as in
//! the in-memory store; one that frames from the trusted simulation-service bring in
//! counts against no one. A Redis
//! error or timeout becomes [`SessionError::Unavailable`] (the `unavailable` code) for
//! the frame or request at hand, never a panic; the connections reconnect by themselves
//! (the pub/sub one also re-subscribes), and the subscribers of this relay are told when
//! the pub/sub link broke, since images published meanwhile reach them only through a
//! new replay.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ProtocolVersion, PushInfo, PushKind, RedisError, Script, Value};
use shared_protocol::SessionId;
use tokio::sync::broadcast;
use tracing::{debug, warn};

use super::{Admission, Live, PendingWait, Published, SessionError, Store, Subscription, Text, DEDUP_WINDOW};
use crate::config::{redact, Limits, RedisConfig};

/// Longest wait for Redis to connect or answer: a frame waits at most this long before
/// it is refused as `unavailable`.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How long a frame accepted by a relay may stay unpublished before another relay takes
/// it over (see the module documentation).
const IN_FLIGHT_LEASE: Duration = Duration::from_secs(3);
/// How often a re-send of a frame in flight asks whether it is done.
const PENDING_POLL: Duration = Duration::from_millis(100);
/// The longest time between two housekeeping rounds: they also keep the pub/sub link
/// alive (reconnecting it after an outage) and refresh the sessions watched here.
const HOUSEKEEPING: Duration = Duration::from_secs(5);

/// Accepts a frame id once per session. KEYS: seen, seq, session record, flight. ARGV:
/// frame id (empty for a frame without one), window, idle ms, lease ms. Returns 1 for a
/// new frame (or one taken over from a relay that did not publish it within the lease),
/// 0 for a re-send of a published one, 2 for one still in flight.
const ADMIT_LUA: &str = r"
local idle = tonumber(ARGV[3])
redis.call('PEXPIRE', KEYS[3], idle)
if ARGV[1] == '' then return 1 end
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local since = redis.call('HGET', KEYS[4], ARGV[1])
  if not since then return 0 end
  if tonumber(now) - tonumber(since) < tonumber(ARGV[4]) then return 2 end
  redis.call('HSET', KEYS[4], ARGV[1], now)
  redis.call('PEXPIRE', KEYS[4], idle)
  return 1
end
redis.call('HSET', KEYS[4], ARGV[1], now)
redis.call('PEXPIRE', KEYS[4], idle)
local order = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], idle)
redis.call('ZADD', KEYS[1], order, ARGV[1])
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1) end
redis.call('PEXPIRE', KEYS[1], idle)
return 1
";

/// Buffers an image and publishes it. KEYS: buffer, seq, session record, seen, flight.
/// ARGV: frame id or `-`, image JSON, buffer capacity, idle ms, channel. Returns
/// `{seq, 1 if the oldest image was dropped else 0}`.
const PUBLISH_LUA: &str = r"
local idle = tonumber(ARGV[4])
if ARGV[1] ~= '-' then redis.call('HDEL', KEYS[5], ARGV[1]) end
local cap = tonumber(ARGV[3])
local seq = redis.call('INCR', KEYS[2])
local entry = string.format('%d %s %s', seq, ARGV[1], ARGV[2])
local n = redis.call('RPUSH', KEYS[1], entry)
local dropped = 0
if n > cap then
  redis.call('LTRIM', KEYS[1], -cap, -1)
  dropped = 1
end
redis.call('PEXPIRE', KEYS[1], idle)
redis.call('PEXPIRE', KEYS[2], idle)
redis.call('PEXPIRE', KEYS[3], idle)
redis.call('PEXPIRE', KEYS[4], idle)
redis.call('PUBLISH', ARGV[5], entry)
return {seq, dropped}
";

/// Key and channel names under the configured prefix.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn key(&self, kind: &str, id: &SessionId) -> String {
        format!("{}{kind}:{}", self.prefix, id.as_str())
    }

    fn session(&self, id: &SessionId) -> String {
        self.key("session", id)
    }

    fn buffer(&self, id: &SessionId) -> String {
        self.key("buf", id)
    }

    fn seen(&self, id: &SessionId) -> String {
        self.key("seen", id)
    }

    fn seq(&self, id: &SessionId) -> String {
        self.key("seq", id)
    }

    fn flight(&self, id: &SessionId) -> String {
        self.key("flight", id)
    }

    fn channel(&self, id: &SessionId) -> String {
        self.key("img", id)
    }

    /// The session a channel name belongs to.
    fn session_of_channel(&self, channel: &[u8]) -> Option<SessionId> {
        let name = std::str::from_utf8(channel).ok()?;
        let id = name.strip_prefix(&self.prefix)?.strip_prefix("img:")?;
        SessionId::parse(id).ok()
    }
}

/// One buffered or published image as stored in Redis.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    seq: u64,
    frame_id: Option<u64>,
    json: Text,
}

impl Entry {
    /// Parses `"<seq> <frame_id or -> <json>"`; None for anything else (another program
    /// writing under the same prefix), which is skipped.
    fn parse(bytes: Vec<u8>) -> Option<Self> {
        let text = String::from_utf8(bytes).ok()?;
        let (seq, rest) = text.split_once(' ')?;
        let (frame, json) = rest.split_once(' ')?;
        let seq = seq.parse().ok()?;
        let frame_id = if frame == "-" { None } else { Some(frame.parse().ok()?) };
        if !json.starts_with('{') {
            return None;
        }
        Some(Self { seq, frame_id, json: Text::from(json.to_owned()) })
    }
}

/// What this relay knows of a session: its local subscribers and limits bookkeeping.
#[derive(Debug)]
struct LocalSession {
    tx: broadcast::Sender<Live>,
    last_active: Instant,
    in_flight: usize,
    /// The address it counts against for the per-client limit (issued to it, or created
    /// here by its subscription); `None` when frames created it.
    issued_to: Option<IpAddr>,
    /// Whether the pub/sub connection is subscribed to the session's channel.
    listening: bool,
}

#[derive(Debug, Default)]
struct Local {
    sessions: HashMap<SessionId, LocalSession>,
    per_client: HashMap<IpAddr, usize>,
}

fn lock(local: &Mutex<Local>) -> MutexGuard<'_, Local> {
    // Every critical section finishes its updates before anything can fail, so a
    // poisoned lock still holds consistent data.
    match local.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Sessions shared through Redis (see the module documentation).
pub struct RedisStore {
    commands: ConnectionManager,
    pubsub: ConnectionManager,
    /// Serialises the decisions to SUBSCRIBE or UNSUBSCRIBE a channel, so that an
    /// unsubscribe for a session that just lost its last subscriber cannot overtake the
    /// subscribe of a new one.
    channel_ops: tokio::sync::Mutex<()>,
    local: Arc<Mutex<Local>>,
    keys: Keys,
    admit: Script,
    publish: Script,
    /// The Redis URL without its password, for messages.
    name: String,
    max_sessions: usize,
    max_per_client: usize,
    buffered_images: usize,
    idle: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("redis", &self.name).field("prefix", &self.keys.prefix).finish_non_exhaustive()
    }
}

/// The session store could not be reached at start-up.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to the session store (Redis) at {url}: {source}; start Redis there or fix --redis-url / V1_REDIS_URL")]
pub struct ConnectError {
    pub url: String,
    #[source]
    pub source: RedisError,
}

impl RedisStore {
    /// Connects both connections (failing within a few seconds when Redis is not there).
    /// `frames_out` counts the images pushed to this relay's subscribers.
    pub async fn connect(config: &RedisConfig, limits: &Limits, frames_out: Counter) -> Result<Self, ConnectError> {
        let name = redact(&config.url);
        let err = |source: RedisError| ConnectError { url: name.clone(), source };
        let client = Client::open(config.url.as_str()).map_err(err)?;
        let info = client.get_connection_info().clone();
        let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        let client = Client::open(info.set_redis_settings(settings)).map_err(err)?;
        let base = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(TIMEOUT);
        let commands = client.get_connection_manager_with_config(base.clone()).await.map_err(err)?;
        let local = Arc::new(Mutex::new(Local::default()));
        let keys = Keys { prefix: config.prefix.clone() };
        let fan_out = {
            let local = local.clone();
            let keys = keys.clone();
            move |info: PushInfo| -> Result<(), std::convert::Infallible> {
                deliver(&local, &keys, &frames_out, info);
                Ok(())
            }
        };
        let pubsub_config = base.set_push_sender(fan_out).set_automatic_resubscription();
        let pubsub = client.get_connection_manager_with_config(pubsub_config).await.map_err(err)?;
        Ok(Self {
            commands,
            pubsub,
            channel_ops: tokio::sync::Mutex::new(()),
            local,
            keys,
            admit: Script::new(ADMIT_LUA),
            publish: Script::new(PUBLISH_LUA),
            name,
            max_sessions: limits.max_sessions,
            max_per_client: limits.max_sessions_per_client,
            buffered_images: limits.buffered_images,
            idle: limits.session_idle,
        })
    }

    fn unavailable(&self, doing: &'static str, e: &RedisError) -> SessionError {
        SessionError::Unavailable { store: self.name.clone(), doing, why: e.to_string() }
    }

    fn idle_ms(&self) -> u64 {
        u64::try_from(self.idle.as_millis()).unwrap_or(u64::MAX)
    }

    /// The local entry of a session, created on first use within `--max-sessions` (and,
    /// for an `owner`, within its `--max-sessions-per-client`).
    fn local_mut<'a>(
        &self,
        local: &'a mut Local,
        id: &SessionId,
        owner: Option<IpAddr>,
        now: Instant,
    ) -> Result<&'a mut LocalSession, SessionError> {
        if !local.sessions.contains_key(id) {
            self.create_local(local, id.clone(), owner, now)?;
        }
        match local.sessions.get_mut(id) {
            Some(s) => {
                s.last_active = now;
                Ok(s)
            }
            None => Err(SessionError::Full { max: self.max_sessions }),
        }
    }

    /// Adds a local entry, counted against `owner` when there is one.
    fn create_local(&self, local: &mut Local, id: SessionId, owner: Option<IpAddr>, now: Instant) -> Result<(), SessionError> {
        if local.sessions.len() >= self.max_sessions {
            return Err(SessionError::Full { max: self.max_sessions });
        }
        if let Some(client) = owner {
            let count = local.per_client.get(&client).copied().unwrap_or(0);
            if count >= self.max_per_client {
                return Err(SessionError::ClientLimit { client, max: self.max_per_client });
            }
            local.per_client.insert(client, count + 1);
        }
        let (tx, _) = broadcast::channel(self.buffered_images.max(1));
        local.sessions.insert(id, LocalSession { tx, last_active: now, in_flight: 0, issued_to: owner, listening: false });
        Ok(())
    }

    /// One admitted frame is no longer in flight.
    fn settle(&self, id: &SessionId) {
        if let Some(s) = lock(&self.local).sessions.get_mut(id) {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
    }
}

impl Store for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    /// The Redis URL (without password) and key prefix, for logs and `/healthz`.
    fn describe(&self) -> String {
        format!("redis at {} (prefix {:?})", self.name, self.keys.prefix)
    }

    fn pending_wait(&self) -> PendingWait {
        PendingWait { poll: PENDING_POLL, lease: IN_FLIGHT_LEASE }
    }

    fn housekeeping_interval(&self) -> Duration {
        HOUSEKEEPING
    }

    /// Registers a session issued here: counted against this relay's limits, recorded
    /// in Redis so that it is known to every relay.
    async fn issue(&self, id: SessionId, client: IpAddr, now: Instant) -> Result<(), SessionError> {
        self.create_local(&mut lock(&self.local), id.clone(), Some(client), now)?;
        let created_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let key = self.keys.session(&id);
        let result = redis::pipe()
            .cmd("HSET")
            .arg(&key)
            .arg("issued_to")
            .arg(client.to_string())
            .arg("created_ms")
            .arg(created_ms)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(self.idle_ms())
            .ignore()
            .query_async::<()>(&mut self.commands.clone())
            .await;
        if let Err(e) = result {
            let mut local = lock(&self.local);
            local.sessions.remove(&id);
            release_client(&mut local, client);
            return Err(self.unavailable("recording a new session", &e));
        }
        Ok(())
    }

    /// Accepts a frame, or recognises one that any relay sharing this Redis accepted.
    async fn admit(&self, id: &SessionId, frame_id: Option<u64>, now: Instant) -> Result<Admission, SessionError> {
        {
            let mut local = lock(&self.local);
            self.local_mut(&mut local, id, None, now)?.in_flight += 1;
        }
        let frame = frame_id.map(|f| f.to_string()).unwrap_or_default();
        let mut invocation = self.admit.prepare_invoke();
        invocation
            .key(self.keys.seen(id))
            .key(self.keys.seq(id))
            .key(self.keys.session(id))
            .key(self.keys.flight(id))
            .arg(frame)
            .arg(DEDUP_WINDOW)
            .arg(self.idle_ms())
            .arg(IN_FLIGHT_LEASE.as_millis() as u64);
        match invocation.invoke_async::<i64>(&mut self.commands.clone()).await {
            Ok(1) => Ok(Admission::New),
            Ok(2) => {
                self.settle(id);
                Ok(Admission::Pending)
            }
            Ok(_) => {
                self.settle(id);
                Ok(Admission::Duplicate)
            }
            Err(e) => {
                self.settle(id);
                Err(self.unavailable("checking the frame id", &e))
            }
        }
    }

    /// A frame admitted by [`Store::admit`] could not be reconstructed: forget its id so
    /// that a re-send (to any relay) is tried again.
    async fn abandon(&self, id: &SessionId, frame_id: Option<u64>) {
        self.settle(id);
        let Some(f) = frame_id else { return };
        let result = redis::pipe()
            .cmd("ZREM")
            .arg(self.keys.seen(id))
            .arg(f)
            .ignore()
            .cmd("HDEL")
            .arg(self.keys.flight(id))
            .arg(f)
            .ignore()
            .query_async::<()>(&mut self.commands.clone())
            .await;
        if let Err(e) = result {
            warn!(session = %id, frame = f, "could not forget an abandoned frame id in Redis: {e}; a re-send of it will be acknowledged without an image");
        }
    }

    /// Buffers an image in Redis and publishes it to every relay with subscribers of
    /// the session (this one included). `subscribers` is 0: the fan-out counts them.
    async fn publish(&self, id: &SessionId, frame_id: Option<u64>, json: Text, now: Instant) -> Result<Published, SessionError> {
        if let Some(s) = lock(&self.local).sessions.get_mut(id) {
            s.in_flight = s.in_flight.saturating_sub(1);
            s.last_active = now;
        }
        let frame = frame_id.map_or_else(|| "-".to_owned(), |f| f.to_string());
        let mut invocation = self.publish.prepare_invoke();
        invocation
            .key(self.keys.buffer(id))
            .key(self.keys.seq(id))
            .key(self.keys.session(id))
            .key(self.keys.seen(id))
            .key(self.keys.flight(id))
            .arg(frame)
            .arg(json.as_str())
            .arg(self.buffered_images)
            .arg(self.idle_ms())
            .arg(self.keys.channel(id));
        let (_seq, dropped) = invocation
            .invoke_async::<(u64, u8)>(&mut self.commands.clone())
            .await
            .map_err(|e| self.unavailable("buffering and publishing an image", &e))?;
        Ok(Published { subscribers: 0, dropped_oldest: dropped == 1 })
    }

    /// Subscribes to a session: the images buffered in Redis in frame order (images
    /// without a frame id follow, in publication order), then every new one. A local
    /// entry this creates counts against `client`.
    async fn subscribe(&self, id: &SessionId, client: Option<IpAddr>, now: Instant) -> Result<Subscription, SessionError> {
        let live = {
            let mut local = lock(&self.local);
            self.local_mut(&mut local, id, client, now)?.tx.subscribe()
        };
        {
            let _ops = self.channel_ops.lock().await;
            let listening = lock(&self.local).sessions.get(id).is_some_and(|s| s.listening);
            if !listening {
                self.pubsub
                    .clone()
                    .subscribe(self.keys.channel(id))
                    .await
                    .map_err(|e| self.unavailable("subscribing to the session's images", &e))?;
                if let Some(s) = lock(&self.local).sessions.get_mut(id) {
                    s.listening = true;
                }
            }
        }
        let raw: Vec<Vec<u8>> = redis::cmd("LRANGE")
            .arg(self.keys.buffer(id))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.commands.clone())
            .await
            .map_err(|e| self.unavailable("reading the session's buffered images", &e))?;
        let mut entries: Vec<Entry> = raw.into_iter().filter_map(Entry::parse).collect();
        entries.sort_by_key(|e| (e.frame_id.is_none(), e.frame_id, e.seq));
        let replayed_through = entries.iter().map(|e| e.seq).max().unwrap_or(0);
        let replay = entries.into_iter().map(|e| e.json).collect();
        Ok(Subscription { replay, live, replayed_through })
    }

    /// Forgets local sessions that are idle, stops listening to sessions without local
    /// subscribers, and refreshes the expiry of the sessions watched here (Redis expires
    /// the rest by itself). Also pings the pub/sub connection so that it reconnects and
    /// re-subscribes after an outage even when no subscriber arrives. Returns how many
    /// local sessions were forgotten.
    async fn expire_idle(&self, now: Instant) -> usize {
        let _ops = self.channel_ops.lock().await;
        let mut unlisten = Vec::new();
        let mut relisten = Vec::new();
        let mut watched = Vec::new();
        let expired = {
            let mut guard = lock(&self.local);
            let local = &mut *guard;
            let mut expired: Vec<(SessionId, Option<IpAddr>)> = Vec::new();
            for (id, s) in local.sessions.iter_mut() {
                let receivers = s.tx.receiver_count();
                if receivers > 0 {
                    if !s.listening {
                        relisten.push(id.clone());
                    }
                    watched.push(id.clone());
                    continue;
                }
                if s.listening {
                    s.listening = false;
                    unlisten.push(self.keys.channel(id));
                }
                if now.saturating_duration_since(s.last_active) >= self.idle && s.in_flight == 0 {
                    expired.push((id.clone(), s.issued_to));
                }
            }
            for (id, client) in &expired {
                local.sessions.remove(id);
                if let Some(c) = client {
                    release_client(local, *c);
                }
            }
            expired.len()
        };
        if !unlisten.is_empty() {
            if let Err(e) = self.pubsub.clone().unsubscribe(&unlisten).await {
                debug!("could not unsubscribe {} channels: {e}", unlisten.len());
            }
        }
        if !relisten.is_empty() {
            let channels: Vec<String> = relisten.iter().map(|id| self.keys.channel(id)).collect();
            match self.pubsub.clone().subscribe(&channels).await {
                Ok(()) => {
                    let mut local = lock(&self.local);
                    for id in &relisten {
                        if let Some(s) = local.sessions.get_mut(id) {
                            s.listening = true;
                        }
                    }
                }
                Err(e) => debug!("could not subscribe again to {} channels: {e}", channels.len()),
            }
        }
        if !watched.is_empty() {
            let mut pipe = redis::pipe();
            for id in &watched {
                let keys = [self.keys.session(id), self.keys.buffer(id), self.keys.seen(id), self.keys.seq(id), self.keys.flight(id)];
                for key in keys {
                    pipe.cmd("PEXPIRE").arg(key).arg(self.idle_ms()).ignore();
                }
            }
            if let Err(e) = pipe.query_async::<()>(&mut self.commands.clone()).await {
                warn!(sessions = watched.len(), "could not refresh the expiry of watched sessions in Redis: {e}");
            }
        }
        if let Err(e) = redis::cmd("PING").query_async::<()>(&mut self.pubsub.clone()).await {
            debug!("Redis pub/sub connection not answering: {e}");
        }
        expired
    }

    /// Sessions this relay holds now.
    fn len(&self) -> usize {
        lock(&self.local).sessions.len()
    }

    /// Live subscribers on this relay, summed over sessions.
    fn subscribers(&self) -> usize {
        lock(&self.local).sessions.values().map(|s| s.tx.receiver_count()).sum()
    }
}

fn release_client(local: &mut Local, client: IpAddr) {
    let left = local.per_client.get(&client).copied().unwrap_or(1).saturating_sub(1);
    if left == 0 {
        local.per_client.remove(&client);
    } else {
        local.per_client.insert(client, left);
    }
}

/// Handles one push from the pub/sub connection, on the connection's own task: it must
/// not block, and does not (a lock held for a hash lookup, a non-blocking broadcast).
fn deliver(local: &Mutex<Local>, keys: &Keys, frames_out: &Counter, info: PushInfo) {
    match info.kind {
        PushKind::Message => {
            let mut data = info.data.into_iter();
            let (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) = (data.next(), data.next()) else {
                return;
            };
            let Some(id) = keys.session_of_channel(&channel) else { return };
            let Some(entry) = Entry::parse(payload) else {
                warn!(session = %id, "skipped a message on the session's channel that is not an image entry");
                return;
            };
            let guard = lock(local);
            if let Some(s) = guard.sessions.get(&id) {
                let sent = s.tx.send(Live::Image { seq: entry.seq, json: entry.json }).unwrap_or(0);
                frames_out.inc_by(sent as u64);
            }
        }
        PushKind::Disconnection => {
            let mut guard = lock(local);
            let mut told = 0;
            for s in guard.sessions.values_mut() {
                // Subscribed again explicitly (and confirmed) by the next subscriber or
                // the next expiry round, whatever the reconnection does by itself.
                s.listening = false;
                if s.tx.receiver_count() > 0 {
                    told += s.tx.send(Live::Interrupted).unwrap_or(0);
                }
            }
            warn!(subscribers = told, "lost the Redis pub/sub connection; reconnecting (subscribers were told to subscribe again)");
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_junk_is_skipped() {
        let e = Entry::parse(b"12 7 {\"type\":\"reconstructed_image\"}".to_vec()).unwrap();
        assert_eq!((e.seq, e.frame_id, e.json.as_str()), (12, Some(7), "{\"type\":\"reconstructed_image\"}"));
        let e = Entry::parse(b"3 - {\"a\":\"b c\"}".to_vec()).unwrap();
        assert_eq!((e.seq, e.frame_id, e.json.as_str()), (3, None, "{\"a\":\"b c\"}"));
        for junk in ["", "x 1 {}", "1 y {}", "1 2", "1 2 not-json", "\u{fffd}"] {
            assert!(Entry::parse(junk.as_bytes().to_vec()).is_none(), "{junk:?}");
        }
        assert!(Entry::parse(vec![0xff, b' ', b'1', b' ', b'{']).is_none());
    }

    #[test]
    fn channels_map_back_to_their_sessions_under_the_prefix_only() {
        let keys = Keys { prefix: "v1:".into() };
        let id = SessionId::parse("abc-1").unwrap();
        assert_eq!(keys.channel(&id), "v1:img:abc-1");
        assert_eq!(keys.buffer(&id), "v1:buf:abc-1");
        assert_eq!(keys.session_of_channel(b"v1:img:abc-1"), Some(id));
        assert_eq!(keys.session_of_channel(b"v2:img:abc-1"), None);
        assert_eq!(keys.session_of_channel(b"v1:buf:abc-1"), None);
        assert_eq!(keys.session_of_channel(b"v1:img:bad id"), None);
    }
}
