//! The wasmtime engine: one `Engine` per process with epoch interruption and the pooling
//! allocator sized explicitly, the component precompiled once and cached in the data directory
//! (keyed by the component's hash and the wasmtime version; a stale or corrupt cache entry is
//! recompiled, never fatal), and a 10 ms epoch ticker that drives the per-instance CPU budget.

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
/// 3 core instances, 2 tables, 1 memory per instance; WASM.md §8).
const CORE_INSTANCES_PER_GUEST: u32 = 6;
const TABLES_PER_GUEST: u32 = 4;
const MEMORIES_PER_GUEST: u32 = 2;

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
        cache_dir: Option<&Path>,
        sizing: &EngineSizing,
    ) -> Result<Self, EngineError> {
        let engine = Engine::new(&engine_config(sizing))
            .map_err(|e| EngineError::Config(format!("{e:#}")))?;
        let component_hash = hex::encode(Sha256::digest(wasm));
        let component = match cache_dir {
            Some(dir) => load_cached(&engine, wasm, &component_hash, dir)?,
            None => {
                Component::new(&engine, wasm).map_err(|e| EngineError::Compile(format!("{e:#}")))?
            }
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
            ticker_stop,
        })
    }
}

fn cache_paths(dir: &Path, hash: &str, fingerprint: &str) -> (PathBuf, PathBuf) {
    let stem = format!(
        "component-{}-wasmtime-{WASMTIME_VERSION}-{fingerprint}",
        &hash[..16.min(hash.len())]
    );
    (
        dir.join(format!("{stem}.cwasm")),
        dir.join(format!("{stem}.sha256")),
    )
}

/// Load the precompiled component from the cache when its checksum matches; otherwise compile,
/// write the cache (atomically) and use the fresh result. Cache trouble is logged, never fatal.
fn load_cached(
    engine: &Engine,
    wasm: &[u8],
    hash: &str,
    dir: &Path,
) -> Result<Component, EngineError> {
    let (cwasm_path, sum_path) = cache_paths(dir, hash, &engine_fingerprint(engine));
    if let (Ok(bytes), Ok(sum)) = (
        std::fs::read(&cwasm_path),
        std::fs::read_to_string(&sum_path),
    ) {
        if hex::encode(Sha256::digest(&bytes)) == sum.trim() {
            match deserialize(engine, &bytes) {
                Ok(c) => {
                    tracing::info!(path = %cwasm_path.display(), "loaded the precompiled component from the cache");
                    return Ok(c);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the cached component is unusable; recompiling")
                }
            }
        } else {
            tracing::warn!(path = %cwasm_path.display(), "the cached component fails its checksum; recompiling");
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
    if let Err(e) = write_cache(dir, &cwasm_path, &sum_path, &bytes) {
        tracing::warn!(error = %e, dir = %dir.display(), "could not write the component cache");
    }
    deserialize(engine, &bytes).map_err(|e| EngineError::Compile(format!("{e:#}")))
}

fn write_cache(dir: &Path, cwasm: &Path, sum: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::now_v7()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, cwasm)?;
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::now_v7()));
    std::fs::write(&tmp, hex::encode(Sha256::digest(bytes)))?;
    std::fs::rename(&tmp, sum)
}

#[allow(
    unsafe_code,
    reason = "deserializing precompiled code is unsafe by API: the bytes are ones this process \
              wrote to its own data directory and their SHA-256 was checked just before, or they \
              were produced by precompile_component in this process"
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

    #[test]
    fn a_corrupt_cache_entry_is_recompiled_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = std::fs::read(env!("GUEST_WASM")).unwrap();
        let first = PipeEngine::new(&wasm, Some(dir.path()), &sizing()).unwrap();
        let (cwasm, _) = cache_paths(
            dir.path(),
            &first.component_hash,
            &engine_fingerprint(&first.engine),
        );
        assert!(cwasm.exists(), "the compiled component is cached");
        let mut bytes = std::fs::read(&cwasm).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&cwasm, &bytes).unwrap();
        let second = PipeEngine::new(&wasm, Some(dir.path()), &sizing());
        assert!(second.is_ok(), "a corrupt cache entry is replaced");
        let fixed = std::fs::read(&cwasm).unwrap();
        assert_ne!(fixed, bytes, "the corrupt entry was rewritten");
    }
}
