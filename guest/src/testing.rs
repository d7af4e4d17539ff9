//! In-memory capabilities for native unit tests of the pipe logic.

use crate::caps::{
    BodyStream, Emit, EmitError, Env, HttpRequest, HttpResponse, InvokeOptions, Kv, KvError,
    ToolError, ToolResult, ToolSpec, Tools, TransportError, Upstream,
};
use crate::types::Event;
use crate::types::ToolCall;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};

#[derive(Default)]
pub struct MemKv {
    pub map: RefCell<HashMap<String, Vec<u8>>>,
    pub locks: RefCell<HashMap<String, String>>,
}

impl Kv for MemKv {
    fn get(&self, key: &str, max_bytes: u32) -> Result<Option<Vec<u8>>, KvError> {
        match self.map.borrow().get(key) {
            Some(v) if v.len() > max_bytes as usize => Err(KvError::TooLarge),
            v => Ok(v.cloned()),
        }
    }
    fn set(&self, key: &str, value: &[u8], _ttl_ms: Option<u64>) -> Result<(), KvError> {
        self.map
            .borrow_mut()
            .insert(key.to_string(), value.to_vec());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.map.borrow_mut().remove(key).is_some())
    }
    fn lock(&self, name: &str, _ttl_ms: u64) -> Result<Option<String>, KvError> {
        let mut locks = self.locks.borrow_mut();
        if locks.contains_key(name) {
            return Ok(None);
        }
        locks.insert(name.to_string(), "tok".into());
        Ok(Some("tok".into()))
    }
    fn unlock(&self, name: &str, token: &str) -> Result<bool, KvError> {
        let mut locks = self.locks.borrow_mut();
        Ok(locks.get(name).is_some_and(|t| t == token) && locks.remove(name).is_some())
    }
}

#[derive(Default)]
pub struct VecEmit {
    pub events: Vec<Event>,
    pub closed: bool,
}

impl Emit for VecEmit {
    fn send(&mut self, event: Event) -> Result<(), EmitError> {
        if self.closed {
            return Err(EmitError::Closed);
        }
        self.events.push(event);
        Ok(())
    }
}

pub struct FixedEnv {
    pub now: Cell<u64>,
    pub rng: Cell<u64>,
    pub logs: RefCell<Vec<String>>,
}

impl Default for FixedEnv {
    fn default() -> Self {
        FixedEnv {
            now: Cell::new(1_000_000),
            rng: Cell::new(0xabc),
            logs: RefCell::new(Vec::new()),
        }
    }
}

impl Env for FixedEnv {
    fn now_ms(&self) -> u64 {
        self.now.get()
    }
    fn log(&self, line: &str) {
        self.logs.borrow_mut().push(line.to_string());
    }
    /// Sleeping advances the fake clock and returns at once; a ready read still wins a race
    /// because reads are polled first.
    async fn sleep_ms(&self, ms: u64) {
        self.now.set(self.now.get() + ms);
    }
    fn random_u64(&self) -> u64 {
        let v = self
            .rng
            .get()
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.rng.set(v);
        v
    }
}

/// A canned response: status, headers, body chunks (an `Err` chunk cuts the body).
#[derive(Clone)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub chunks: Vec<Result<Vec<u8>, TransportError>>,
}

impl Canned {
    pub fn json(status: u16, body: &str) -> Self {
        Canned {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            chunks: vec![Ok(body.as_bytes().to_vec())],
        }
    }
    pub fn sse(chunks: &[&str]) -> Self {
        Canned {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            chunks: chunks.iter().map(|c| Ok(c.as_bytes().to_vec())).collect(),
        }
    }
}

/// Scripted answers for one URL suffix, in order.
type Script = (String, VecDeque<Result<Canned, TransportError>>);

/// Answers requests by URL suffix, in order per suffix; records every request.
#[derive(Default)]
pub struct ScriptedUpstream {
    pub routes: RefCell<Vec<Script>>,
    pub requests: RefCell<Vec<HttpRequest>>,
}

impl ScriptedUpstream {
    pub fn on(self, suffix: &str, answer: Result<Canned, TransportError>) -> Self {
        {
            let mut routes = self.routes.borrow_mut();
            match routes.iter_mut().find(|(s, _)| s == suffix) {
                Some((_, q)) => q.push_back(answer),
                None => routes.push((suffix.to_string(), VecDeque::from([answer]))),
            }
        }
        self
    }
    pub fn count(&self, suffix: &str) -> usize {
        self.requests
            .borrow()
            .iter()
            .filter(|r| r.url.ends_with(suffix))
            .count()
    }
}

pub struct CannedBody(VecDeque<Result<Vec<u8>, TransportError>>);

impl BodyStream for CannedBody {
    async fn next_chunk(&mut self) -> Option<Result<Vec<u8>, TransportError>> {
        self.0.pop_front()
    }
}

impl Upstream for ScriptedUpstream {
    type Body = CannedBody;
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse<CannedBody>, TransportError> {
        let url = request.url.clone();
        self.requests.borrow_mut().push(request);
        let mut routes = self.routes.borrow_mut();
        let (_, queue) = routes
            .iter_mut()
            .find(|(s, _)| url.ends_with(s.as_str()))
            .ok_or_else(|| TransportError::Connect(format!("no scripted answer for {url}")))?;
        // The last answer repeats once the queue is down to one.
        let canned = if queue.len() > 1 {
            queue.pop_front()
        } else {
            queue.front().cloned()
        }
        .ok_or_else(|| TransportError::Connect("empty script".into()))??;
        Ok(HttpResponse {
            status: canned.status,
            headers: canned.headers,
            body: CannedBody(canned.chunks.into()),
        })
    }
}

/// Run a future to completion on the current thread (the logic under test never really waits).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

/// Host tools in memory: the specs it serves, an answer per tool name (the default echoes the
/// arguments), and every `invoke` it received with its options.
#[derive(Default)]
pub struct FakeTools {
    pub specs: Vec<ToolSpec>,
    pub answers: HashMap<String, Result<String, ToolError>>,
    pub invokes: RefCell<Vec<(Vec<ToolCall>, InvokeOptions)>>,
}

impl FakeTools {
    pub fn serving(names: &[(&str, &str)]) -> Self {
        FakeTools {
            specs: names
                .iter()
                .map(|(name, schema)| ToolSpec {
                    name: (*name).to_string(),
                    description: format!("The {name} tool"),
                    parameters_json: (*schema).to_string(),
                })
                .collect(),
            ..FakeTools::default()
        }
    }
    pub fn answer(mut self, name: &str, answer: Result<String, ToolError>) -> Self {
        self.answers.insert(name.to_string(), answer);
        self
    }
    pub fn calls(&self) -> Vec<ToolCall> {
        self.invokes
            .borrow()
            .iter()
            .flat_map(|(c, _)| c.clone())
            .collect()
    }
}

impl Tools for FakeTools {
    fn available(&self) -> Result<Vec<ToolSpec>, ToolError> {
        Ok(self.specs.clone())
    }
    fn invoke(&self, calls: &[ToolCall], options: &InvokeOptions) -> Vec<ToolResult> {
        self.invokes.borrow_mut().push((calls.to_vec(), *options));
        calls
            .iter()
            .map(|c| ToolResult {
                call_id: c.call_id.clone(),
                output: self
                    .answers
                    .get(&c.name)
                    .cloned()
                    .unwrap_or_else(|| Ok(format!("{} says {}", c.name, c.arguments_json))),
            })
            .collect()
    }
}

// ---- artifact store and crypto fakes -------------------------------------------------------

use crate::caps::{Crypto, CryptoError, Row, Store, StoreError, StoreTable};

/// Tables in memory. `fail` makes every call fail with that error; `calls` records each call.
#[derive(Default)]
pub struct MemStore {
    pub tables: RefCell<HashMap<String, Vec<Row>>>,
    pub fail: RefCell<Option<StoreError>>,
    pub calls: RefCell<Vec<String>>,
}

impl MemStore {
    pub fn len(&self, table: &str) -> usize {
        self.tables.borrow().get(table).map_or(0, Vec::len)
    }
    pub fn rows(&self, table: &str) -> Vec<Row> {
        self.tables.borrow().get(table).cloned().unwrap_or_default()
    }
}

struct MemTable<'a> {
    store: &'a MemStore,
    name: String,
}

impl MemTable<'_> {
    fn check(&self, call: String) -> Result<(), StoreError> {
        self.store.calls.borrow_mut().push(call);
        match self.store.fail.borrow().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl StoreTable for MemTable<'_> {
    fn put_many(&self, rows: &[Row]) -> Result<(), StoreError> {
        self.check(format!("put_many {}", rows.len()))?;
        let mut tables = self.store.tables.borrow_mut();
        let t = tables.entry(self.name.clone()).or_default();
        for r in rows {
            t.retain(|x| x.id != r.id);
            t.push(r.clone());
        }
        Ok(())
    }
    fn get_many(&self, ids: &[String], max_bytes: u64) -> Result<Vec<Row>, StoreError> {
        self.check(format!("get_many {}", ids.len()))?;
        let tables = self.store.tables.borrow();
        let rows: Vec<Row> = tables
            .get(&self.name)
            .map(|t| t.iter().filter(|r| ids.contains(&r.id)).cloned().collect())
            .unwrap_or_default();
        if rows.iter().map(|r| r.payload.len() as u64).sum::<u64>() > max_bytes {
            return Err(StoreError::TooLarge);
        }
        Ok(rows)
    }
    fn delete(&self, ids: &[String]) -> Result<u64, StoreError> {
        self.check(format!("delete {}", ids.len()))?;
        let mut tables = self.store.tables.borrow_mut();
        let t = tables.entry(self.name.clone()).or_default();
        let before = t.len();
        t.retain(|r| !ids.contains(&r.id));
        Ok((before - t.len()) as u64)
    }
    fn scan(&self, after_id: &str, limit: u32, max_bytes: u64) -> Result<Vec<Row>, StoreError> {
        self.check(format!("scan {after_id} {limit}"))?;
        let tables = self.store.tables.borrow();
        let mut rows: Vec<Row> = tables
            .get(&self.name)
            .map(|t| {
                t.iter()
                    .filter(|r| r.id.as_str() > after_id)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        let mut out = Vec::new();
        let mut total = 0u64;
        for r in rows.into_iter().take(limit as usize) {
            total += r.payload.len() as u64;
            if total > max_bytes {
                if out.is_empty() {
                    return Err(StoreError::TooLarge);
                }
                break;
            }
            out.push(r);
        }
        Ok(out)
    }
    fn delete_older_than(&self, cutoff_ms: u64, limit: u32) -> Result<u64, StoreError> {
        self.check(format!("delete_older_than {cutoff_ms} {limit}"))?;
        let mut tables = self.store.tables.borrow_mut();
        let t = tables.entry(self.name.clone()).or_default();
        let mut n = 0u64;
        t.retain(|r| {
            if r.created_at_ms < cutoff_ms && n < u64::from(limit) {
                n += 1;
                false
            } else {
                true
            }
        });
        Ok(n)
    }
}

impl Store for MemStore {
    fn open(&self, name: &str) -> Result<Box<dyn StoreTable + '_>, StoreError> {
        self.calls.borrow_mut().push(format!("open {name}"));
        if let Some(e) = self.fail.borrow().clone() {
            return Err(e);
        }
        Ok(Box::new(MemTable {
            store: self,
            name: name.to_string(),
        }))
    }
}

/// No key configured (the component's own "nothing configured" crypto).
pub use crate::artifacts::Unavailable as NoCrypto;

/// A stand-in for the host's AEAD with the same contract (not a cipher: a checksum over the
/// associated data and the plaintext, and the plaintext masked so it is not readable as is).
/// `fail` makes every call fail; `off` behaves like a host without a key.
#[derive(Default)]
pub struct MemCrypto {
    pub fail: Cell<bool>,
    pub seals: Cell<u32>,
    pub off: Cell<bool>,
}

impl MemCrypto {
    /// No key configured: nothing is sealed or opened.
    pub fn disabled() -> Self {
        MemCrypto {
            off: Cell::new(true),
            ..MemCrypto::default()
        }
    }
}

fn fnv(parts: &[&[u8]]) -> [u8; 8] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.iter().chain(&(p.len() as u64).to_be_bytes()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h.to_be_bytes()
}

impl Crypto for MemCrypto {
    fn enabled(&self) -> bool {
        !self.off.get()
    }
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if self.off.get() {
            return Err(CryptoError::NotConfigured);
        }
        if self.fail.get() {
            return Err(CryptoError::TooLarge);
        }
        self.seals.set(self.seals.get() + 1);
        let mut out = fnv(&[aad, plaintext]).to_vec();
        out.extend(plaintext.iter().map(|b| b ^ 0xa5));
        Ok(out)
    }
    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if self.off.get() {
            return Err(CryptoError::NotConfigured);
        }
        if self.fail.get() {
            return Err(CryptoError::InvalidRecord);
        }
        let (tag, body) = sealed
            .split_at_checked(8)
            .ok_or(CryptoError::InvalidRecord)?;
        let plain: Vec<u8> = body.iter().map(|b| b ^ 0xa5).collect();
        if fnv(&[aad, &plain]) != tag {
            return Err(CryptoError::InvalidRecord);
        }
        Ok(plain)
    }
}
