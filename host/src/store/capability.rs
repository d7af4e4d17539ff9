//! The `store` capability as the component calls it: a `table` resource per opened table, each
//! call forwarded to the shared [`ArtifactStore`], which enforces what the guest may touch.

use super::ArtifactStore;
use crate::bindings::store::{self, Row, StoreError};
use std::sync::Arc;
use wasmtime::component::Resource;

/// The host-side value behind a guest's `table` handle.
#[derive(Debug)]
pub struct TableHandle {
    pub name: String,
}

/// The per-instance view the guest's `store` calls land on.
pub struct StoreView<'a> {
    pub table: &'a mut wasmtime::component::ResourceTable,
    pub store: &'a Arc<ArtifactStore>,
}

impl StoreView<'_> {
    fn name_of(&self, handle: &Resource<TableHandle>) -> Result<String, StoreError> {
        self.table
            .get(handle)
            .map(|h| h.name.clone())
            .map_err(|_| StoreError::Other("unknown table handle".into()))
    }
}

impl store::Host for StoreView<'_> {
    async fn open(&mut self, name: String) -> Result<Resource<TableHandle>, StoreError> {
        self.store.open(&name).await?;
        self.table
            .push(TableHandle { name })
            .map_err(|_| StoreError::Other("too many open tables".into()))
    }
}

impl store::HostTable for StoreView<'_> {
    async fn put_many(
        &mut self,
        table: Resource<TableHandle>,
        rows: Vec<Row>,
    ) -> Result<(), StoreError> {
        let name = self.name_of(&table)?;
        self.store.put_many(&name, rows).await
    }
    async fn get_many(
        &mut self,
        table: Resource<TableHandle>,
        ids: Vec<String>,
        max_bytes: u64,
    ) -> Result<Vec<Row>, StoreError> {
        let name = self.name_of(&table)?;
        self.store.get_many(&name, ids, max_bytes).await
    }
    async fn delete(
        &mut self,
        table: Resource<TableHandle>,
        ids: Vec<String>,
    ) -> Result<u64, StoreError> {
        let name = self.name_of(&table)?;
        self.store.delete(&name, ids).await
    }
    async fn delete_older_than(
        &mut self,
        table: Resource<TableHandle>,
        cutoff_ms: u64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let name = self.name_of(&table)?;
        self.store.delete_older_than(&name, cutoff_ms, limit).await
    }
    async fn scan(
        &mut self,
        table: Resource<TableHandle>,
        after_id: String,
        limit: u32,
        max_bytes: u64,
    ) -> Result<Vec<Row>, StoreError> {
        let name = self.name_of(&table)?;
        self.store.scan(&name, after_id, limit, max_bytes).await
    }
    async fn drop(&mut self, rep: Resource<TableHandle>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}
