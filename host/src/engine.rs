//! The wasmtime engine: one `Engine` per process with epoch interruption and the pooling
//! allocator sized explicitly, the component precompiled once and cached in the data directory
//! (keyed by the component's hash and the wasmtime version; a stale or corrupt cache entry is
//! recompiled, never fatal), and a 10 ms epoch ticker that drives the per-instance CPU budget.
//!
//! Threat handled: a forged cache entry. Loading precompiled code runs it as native code, so an
//! entry is loaded only when its HMAC-SHA256 (over the entry's name and bytes) verifies under a
//! host key kept beside the data (`<data dir>/cache.key`: 32 random bytes, created exclusively
//! with mode 0600 when absent). Someone who can write to the cache directory but cannot read the
//! key cannot make the host load their code: a tampered or re-signed entry is recompiled. A cache
//! directory writable by group or others, or a key file that is not a private regular file, turns
//! the cache off for this run (the component is compiled in memory) with a warning naming the
//! path. Not handled: an attacker who can read the key or write the host's binary.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// One epoch tick; the CPU budget is counted in these.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// The wasmtime version baked into cache keys (pinned in Cargo.toml).
pub const WASMTIME_VERSION: &str = "48.0.8";
/// Core instances, tables and memories one instance of our guest uses, with headroom (measured:
/// 3 core instances, 2 tables, 1 memory per instance of the current component).
const CORE_INSTANCES_PER_GUEST: u32 = 6;
const TABLES_PER_GUEST: u32 = 4;
const MEMORIES_PER_GUEST: u32 = 2;

/// Where the compiled component is cached and the key that authenticates its entries.
#[derive(Clone, Debug)]
pub struct CacheSettings {
    pub dir: PathBuf,
    /// The HMAC key file (created when absent).
    pub key_path: PathBuf,
}

/// What the cache did at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// An authenticated entry was loaded.
    Loaded,
    /// The component was compiled (no usable entry); the entry was written when possible.
    Compiled,
    /// No cache: not configured, or its directory or key is not safe to trust.
    Disabled,
}

/// Length of the cache key in bytes.
const CACHE_KEY_BYTES: usize = 32;
/// Domain label of the cache MAC.
const CACHE_MAC_LABEL: &[u8] = b"responses-pipe/component-cache/v1\0";

/// Why the cache cannot be trusted this run (logged; the host compiles in memory instead).
#[derive(Debug, thiserror::Error)]
pub enum CacheTrustError {
    #[error("the cache path {path} is writable by group or others (mode {mode:o}); use chmod go-w")]
    WritableByOthers { path: PathBuf, mode: u32 },
    #[error(
        "the cache key {path} is readable or writable by group or others (mode {mode:o}); use chmod 600"
    )]
    KeyExposed { path: PathBuf, mode: u32 },
    #[error("the cache key {path} is not a regular file of {CACHE_KEY_BYTES} bytes")]
    KeyMalformed { path: PathBuf },
    #[error("the cache path {path} cannot be used: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the OS random source failed; no cache key was made")]
    Random,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("could not configure the wasm engine: {0}")]
    Config(String),
    #[error("could not compile the component: {0}")]
    Compile(String),
}

/// How the engine is sized.
#[derive(Clone, Debug)]
pub struct EngineSizing {
    /// Component instances that may exist at once (concurrent requests plus housekeeping).
    pub max_instances: u32,
    /// Per-instance linear memory cap.
    pub memory_limit_bytes: usize,
}

/// The engine and the compiled component.
pub struct PipeEngine {
    pub engine: Engine,
    pub component: Component,
    /// Hex SHA-256 of the component bytes (short form in logs).
    pub component_hash: String,
    /// What the precompiled-component cache did.
    pub cache: CacheOutcome,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for PipeEngine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

fn engine_config(sizing: &EngineSizing) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    let n = sizing.max_instances.max(1);
    pool.total_component_instances(n);
    pool.total_core_instances(n.saturating_mul(CORE_INSTANCES_PER_GUEST));
    pool.total_tables(n.saturating_mul(TABLES_PER_GUEST));
    pool.total_memories(n.saturating_mul(MEMORIES_PER_GUEST));
    pool.max_memory_size(sizing.memory_limit_bytes);
    pool.table_elements(100_000);
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // Reserve far less than the default 4 GiB of address space per slot.
    config.memory_reservation(memory_reservation(sizing.memory_limit_bytes));
    config.memory_guard_size(64 << 10);
    config.memory_reservation_for_growth(0);
    config
}

/// Address space reserved per linear memory: the cap rounded up to a power of two and at least
/// 256 MiB. The reservation shapes the compiled code (bounds checks), so every cap up to 256 MiB
/// compiles to the same artifact and shares one cache entry; the store's limiter and the pool's
/// `max_memory_size` enforce the cap itself.
fn memory_reservation(limit_bytes: usize) -> u64 {
    (limit_bytes as u64).max(256 << 20).next_power_of_two()
}

/// A short fingerprint of everything in the engine's configuration that compiled code depends
/// on, so differently configured hosts sharing a cache directory keep separate entries instead
/// of overwriting each other's.
fn engine_fingerprint(engine: &Engine) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

impl PipeEngine {
    /// Build the engine, load (or compile and cache) the component, start the epoch ticker.
    pub fn new(
        wasm: &[u8],
        cache: Option<&CacheSettings>,
        sizing: &EngineSizing,
    ) -> Result<Self, EngineError> {
        let engine = Engine::new(&engine_config(sizing))
            .map_err(|e| EngineError::Config(format!("{e:#}")))?;
        let component_hash = hex::encode(Sha256::digest(wasm));
        let trusted = cache.and_then(|c| match trusted_cache(c) {
            Ok(key) => Some((c.dir.as_path(), key)),
            Err(e) => {
                tracing::warn!(error = %e, "the component cache is off for this run; compiling in memory");
                None
            }
        });
        let (component, cache) = match trusted {
            Some((dir, key)) => load_cached(&engine, wasm, &component_hash, dir, &key)?,
            None => (
                Component::new(&engine, wasm)
                    .map_err(|e| EngineError::Compile(format!("{e:#}")))?,
                CacheOutcome::Disabled,
            ),
        };
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let stop = ticker_stop.clone();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| EngineError::Config(format!("could not start the epoch ticker: {e}")))?;
        Ok(PipeEngine {
            engine,
            component,
            component_hash,
            cache,
            ticker_stop,
        })
    }
}

/// Mode bits that let group or others write.
#[cfg(unix)]
const OTHERS_WRITE: u32 = 0o022;

/// The cache directory (created 0700 when missing) and the key, when both are safe to trust:
/// the directory not writable by group or others, the key a private regular file of
/// [`CACHE_KEY_BYTES`] bytes (created exclusively, 0600, when absent).
fn trusted_cache(cache: &CacheSettings) -> Result<[u8; CACHE_KEY_BYTES], CacheTrustError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CacheTrustError::Io { path, source }
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&cache.dir).map_err(io(&cache.dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache.dir)
            .map_err(io(&cache.dir))?
            .permissions()
            .mode();
        if mode & OTHERS_WRITE != 0 {
            return Err(CacheTrustError::WritableByOthers {
                path: cache.dir.clone(),
                mode: mode & 0o7777,
            });
        }
    }
    read_or_create_key(&cache.key_path)
}

fn read_or_create_key(path: &Path) -> Result<[u8; CACHE_KEY_BYTES], CacheTrustError> {
    let io = |source| CacheTrustError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            let mut key = [0u8; CACHE_KEY_BYTES];
            getrandom::fill(&mut key).map_err(|_| CacheTrustError::Random)?;
            std::io::Write::write_all(&mut file, &key).map_err(io)?;
            file.sync_all().map_err(io)?;
            tracing::info!(path = %path.display(), "created the component cache key");
            return Ok(key);
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    // Never follow a link: the key must be this very file.
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(CacheTrustError::KeyMalformed {
            path: path.to_path_buf(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(CacheTrustError::KeyExposed {
                path: path.to_path_buf(),
                mode: mode & 0o7777,
            });
        }
    }
    let bytes = std::fs::read(path).map_err(io)?;
    <[u8; CACHE_KEY_BYTES]>::try_from(bytes.as_slice()).map_err(|_| CacheTrustError::KeyMalformed {
        path: path.to_path_buf(),
    })
}

fn cache_paths(dir: &Path, hash: &str, fingerprint: &str) -> (PathBuf, PathBuf) {
    let stem = format!(
        "component-{}-wasmtime-{WASMTIME_VERSION}-{fingerprint}",
        &hash[..16.min(hash.len())]
    );
    (
        dir.join(format!("{stem}.cwasm")),
        dir.join(format!("{stem}.hmac")),
    )
}

/// HMAC-SHA256 under the cache key over the label, the entry's file name and its bytes: an
/// entry is bound to the name it was written under (another component's entry moved onto this
/// name does not verify).
/// (HMAC takes keys of any length, so `None` does not happen; it is treated as "no cache".)
fn cache_mac(key: &[u8; CACHE_KEY_BYTES], cwasm: &Path, bytes: &[u8]) -> Option<Hmac<Sha256>> {
    let name = cwasm
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
    mac.update(CACHE_MAC_LABEL);
    mac.update(&(name.len() as u64).to_be_bytes());
    mac.update(name.as_bytes());
    mac.update(bytes);
    Some(mac)
}

/// Whether `tag_hex` is the entry's MAC (constant-time comparison).
fn entry_verifies(key: &[u8; CACHE_KEY_BYTES], cwasm: &Path, bytes: &[u8], tag_hex: &str) -> bool {
    let Ok(tag) = hex::decode(tag_hex.trim()) else {
        return false;
    };
    cache_mac(key, cwasm, bytes).is_some_and(|mac| mac.verify_slice(&tag).is_ok())
}

/// Load the precompiled component from the cache when its MAC verifies; otherwise compile,
/// write the cache (atomically) and use the fresh result. Cache trouble is logged, never fatal.
fn load_cached(
    engine: &Engine,
    wasm: &[u8],
    hash: &str,
    dir: &Path,
    key: &[u8; CACHE_KEY_BYTES],
) -> Result<(Component, CacheOutcome), EngineError> {
    let (cwasm_path, mac_path) = cache_paths(dir, hash, &engine_fingerprint(engine));
    if let (Ok(bytes), Ok(tag)) = (
        std::fs::read(&cwasm_path),
        std::fs::read_to_string(&mac_path),
    ) {
        if entry_verifies(key, &cwasm_path, &bytes, &tag) {
            match deserialize(engine, &bytes) {
                Ok(c) => {
                    tracing::info!(path = %cwasm_path.display(), "loaded the precompiled component from the cache");
                    return Ok((c, CacheOutcome::Loaded));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the cached component is unusable; recompiling")
                }
            }
        } else {
            tracing::warn!(path = %cwasm_path.display(), "the cached component fails its authentication; recompiling");
        }
    }
    let started = std::time::Instant::now();
    let bytes = engine
        .precompile_component(wasm)
        .map_err(|e| EngineError::Compile(format!("{e:#}")))?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "compiled the component"
    );
    let tag = cache_mac(key, &cwasm_path, &bytes).map(|m| hex::encode(m.finalize().into_bytes()));
    if let Some(tag) = tag
        && let Err(e) = write_cache(dir, &cwasm_path, &mac_path, &bytes, &tag)
    {
        tracing::warn!(error = %e, dir = %dir.display(), "could not write the component cache");
    }
    let component =
        deserialize(engine, &bytes).map_err(|e| EngineError::Compile(format!("{e:#}")))?;
    Ok((component, CacheOutcome::Compiled))
}

fn write_cache(
    dir: &Path,
    cwasm: &Path,
    mac: &Path,
    bytes: &[u8],
    tag: &str,
) -> std::io::Result<()> {
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::now_v7()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, cwasm)?;
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::now_v7()));
    std::fs::write(&tmp, tag)?;
    std::fs::rename(&tmp, mac)
}

#[allow(
    unsafe_code,
    reason = "deserializing precompiled code is unsafe by API: the bytes were written by a host \
              holding the cache key and their HMAC under that key was verified just before, or \
              they were produced by precompile_component in this process"
)]
fn deserialize(engine: &Engine, bytes: &[u8]) -> Result<Component, String> {
    // SAFETY: see the reason above; wasmtime also checks the engine/version header.
    unsafe { Component::deserialize(engine, bytes) }.map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizing() -> EngineSizing {
        EngineSizing {
            max_instances: 4,
            memory_limit_bytes: 64 << 20,
        }
    }

    #[test]
    fn caps_up_to_256_mib_share_one_reservation_and_one_compiled_artifact() {
        assert_eq!(memory_reservation(16 << 20), 256 << 20);
        assert_eq!(memory_reservation(256 << 20), 256 << 20);
        assert_eq!(memory_reservation(300 << 20), 512 << 20);
        let fingerprint = |mb: usize| {
            let engine = Engine::new(&engine_config(&EngineSizing {
                max_instances: 2,
                memory_limit_bytes: mb << 20,
            }))
            .unwrap();
            engine_fingerprint(&engine)
        };
        assert_eq!(fingerprint(16), fingerprint(256));
        assert_ne!(fingerprint(256), fingerprint(1024));
    }

    fn cache_in(dir: &Path) -> CacheSettings {
        CacheSettings {
            dir: dir.join("cache"),
            key_path: dir.join("cache.key"),
        }
    }

    fn entry(engine: &PipeEngine, cache: &CacheSettings) -> (PathBuf, PathBuf) {
        cache_paths(
            &cache.dir,
            &engine.component_hash,
            &engine_fingerprint(&engine.engine),
        )
    }

    #[cfg(unix)]
    #[test]
    fn an_entry_is_loaded_only_when_its_mac_verifies_under_the_host_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = cache_in(dir.path());
        let wasm = std::fs::read(env!("GUEST_WASM")).unwrap();
        let first = PipeEngine::new(&wasm, Some(&cache), &sizing()).unwrap();
        assert_eq!(first.cache, CacheOutcome::Compiled);
        let key_mode = std::fs::metadata(&cache.key_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600, "the key is private");
        let dir_mode = std::fs::metadata(&cache.dir).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o077, 0, "the cache directory is private");
        let (cwasm, mac) = entry(&first, &cache);
        assert!(
            cwasm.exists() && mac.exists(),
            "the compiled component is cached"
        );
        let again = PipeEngine::new(&wasm, Some(&cache), &sizing()).unwrap();
        assert_eq!(
            again.cache,
            CacheOutcome::Loaded,
            "an authentic entry is used"
        );

        // Flip a byte and sign it again, with a key that is not the host's (a plain checksum
        // beside the entry would have been recomputed just as easily).
        let mut bytes = std::fs::read(&cwasm).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&cwasm, &bytes).unwrap();
        let wrong = [7u8; CACHE_KEY_BYTES];
        let forged = hex::encode(
            cache_mac(&wrong, &cwasm, &bytes)
                .unwrap()
                .finalize()
                .into_bytes(),
        );
        std::fs::write(&mac, &forged).unwrap();
        let third = PipeEngine::new(&wasm, Some(&cache), &sizing()).unwrap();
        assert_eq!(
            third.cache,
            CacheOutcome::Compiled,
            "never loaded, recompiled"
        );
        let fixed = std::fs::read(&cwasm).unwrap();
        assert_ne!(fixed, bytes, "the tampered entry was replaced");
        assert_ne!(std::fs::read_to_string(&mac).unwrap(), forged);
        // The old SHA-256 sidecar of an entry proves nothing either.
        std::fs::write(&mac, hex::encode(Sha256::digest(&fixed))).unwrap();
        let fourth = PipeEngine::new(&wasm, Some(&cache), &sizing()).unwrap();
        assert_eq!(fourth.cache, CacheOutcome::Compiled);
        // And the rewritten entry loads again.
        let fifth = PipeEngine::new(&wasm, Some(&cache), &sizing()).unwrap();
        assert_eq!(fifth.cache, CacheOutcome::Loaded);
    }

    #[test]
    fn an_entry_signed_for_another_name_does_not_verify() {
        let key = [1u8; CACHE_KEY_BYTES];
        let bytes = b"compiled code";
        let a = Path::new("/c/component-a.cwasm");
        let b = Path::new("/c/component-b.cwasm");
        let tag = hex::encode(cache_mac(&key, a, bytes).unwrap().finalize().into_bytes());
        assert!(entry_verifies(&key, a, bytes, &tag));
        assert!(!entry_verifies(&key, b, bytes, &tag));
        assert!(!entry_verifies(&[2u8; CACHE_KEY_BYTES], a, bytes, &tag));
        assert!(!entry_verifies(&key, a, bytes, "not hex"));
    }

    #[cfg(unix)]
    #[test]
    fn a_cache_writable_by_others_or_an_exposed_key_turns_the_cache_off() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = cache_in(dir.path());
        let wasm = std::fs::read(env!("GUEST_WASM")).unwrap();
        assert_eq!(
            PipeEngine::new(&wasm, Some(&cache), &sizing())
                .unwrap()
                .cache,
            CacheOutcome::Compiled
        );
        // A group-writable directory: whoever else can write there could plant entries.
        std::fs::set_permissions(&cache.dir, std::fs::Permissions::from_mode(0o775)).unwrap();
        let e = trusted_cache(&cache).unwrap_err().to_string();
        assert!(
            e.contains(&cache.dir.display().to_string()) && e.contains("775"),
            "{e}"
        );
        assert_eq!(
            PipeEngine::new(&wasm, Some(&cache), &sizing())
                .unwrap()
                .cache,
            CacheOutcome::Disabled,
            "compiled in memory, the entry there is not loaded"
        );
        std::fs::set_permissions(&cache.dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        // A key others can read could sign anything.
        std::fs::set_permissions(&cache.key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = trusted_cache(&cache).unwrap_err().to_string();
        assert!(e.contains("cache.key") && e.contains("644"), "{e}");
        std::fs::set_permissions(&cache.key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            PipeEngine::new(&wasm, Some(&cache), &sizing())
                .unwrap()
                .cache,
            CacheOutcome::Loaded
        );
        // A key that is a link, or of the wrong length, is not used.
        let elsewhere = dir.path().join("elsewhere.key");
        std::fs::rename(&cache.key_path, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &cache.key_path).unwrap();
        assert!(matches!(
            trusted_cache(&cache),
            Err(CacheTrustError::KeyMalformed { .. })
        ));
        std::fs::remove_file(&cache.key_path).unwrap();
        let mut short = std::fs::OpenOptions::new();
        std::os::unix::fs::OpenOptionsExt::mode(short.write(true).create_new(true), 0o600);
        std::io::Write::write_all(&mut short.open(&cache.key_path).unwrap(), b"short").unwrap();
        assert!(matches!(
            trusted_cache(&cache),
            Err(CacheTrustError::KeyMalformed { .. })
        ));
    }
}
