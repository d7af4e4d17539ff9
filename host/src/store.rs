//! The `store` capability: artifact tables. Its SQLite and PostgreSQL backends arrive with the
//! persistence work; until then every `open` answers the typed `unavailable` error (never a
//! trap), so a guest that tries to persist degrades cleanly.

use crate::bindings::store::{self, Row, StoreError};
use wasmtime::component::Resource;

/// The host-side value behind a guest's `table` handle.
#[derive(Debug)]
pub struct TableHandle {
    pub name: String,
}

/// The per-instance view the guest's `store` calls land on.
pub struct StoreView<'a> {
    pub table: &'a mut wasmtime::component::ResourceTable,
}

fn not_configured() -> StoreError {
    StoreError::Unavailable("artifact storage is not available on this host yet".into())
}

impl store::Host for StoreView<'_> {
    async fn open(&mut self, _name: String) -> Result<Resource<TableHandle>, StoreError> {
        Err(not_configured())
    }
}

impl store::HostTable for StoreView<'_> {
    async fn put_many(
        &mut self,
        _table: Resource<TableHandle>,
        _rows: Vec<Row>,
    ) -> Result<(), StoreError> {
        Err(not_configured())
    }
    async fn get_many(
        &mut self,
        _table: Resource<TableHandle>,
        _ids: Vec<String>,
        _max_bytes: u64,
    ) -> Result<Vec<Row>, StoreError> {
        Err(not_configured())
    }
    async fn delete(
        &mut self,
        _table: Resource<TableHandle>,
        _ids: Vec<String>,
    ) -> Result<u64, StoreError> {
        Err(not_configured())
    }
    async fn delete_older_than(
        &mut self,
        _table: Resource<TableHandle>,
        _cutoff_ms: u64,
        _limit: u32,
    ) -> Result<u64, StoreError> {
        Err(not_configured())
    }
    async fn drop(&mut self, rep: Resource<TableHandle>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}
