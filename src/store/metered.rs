//! Any store, its failures counted in the metrics (`model_compose_history_store_errors_total`):
//! one place for every backend and every caller.

use std::sync::Arc;

use compose::metrics::Metrics;

use super::{
    Conversation, ConversationSummary, Failure, Pruned, RunRecord, RunStore, RunSummary,
    StoreError, StoredUpload,
};
use compose::config::Retention;

/// `inner`, counting each of its errors.
pub struct Metered {
    inner: Arc<dyn RunStore>,
    metrics: Arc<Metrics>,
}

impl Metered {
    pub fn new(inner: Arc<dyn RunStore>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn counted<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() {
            self.metrics.store_error();
        }
        result
    }
}

#[async_trait::async_trait]
impl RunStore for Metered {
    async fn save(&self, record: &RunRecord) -> Result<(), StoreError> {
        self.counted(self.inner.save(record).await)
    }

    async fn list(&self, limit: u32, before: Option<&str>) -> Result<Vec<RunSummary>, StoreError> {
        self.counted(self.inner.list(limit, before).await)
    }

    async fn get(&self, task_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.counted(self.inner.get(task_id).await)
    }

    async fn delete(&self, task_id: &str) -> Result<bool, StoreError> {
        self.counted(self.inner.delete(task_id).await)
    }

    async fn fail_unfinished(&self, failure: &Failure) -> Result<u64, StoreError> {
        self.counted(self.inner.fail_unfinished(failure).await)
    }

    async fn create_conversation(
        &self,
        conversation: &ConversationSummary,
    ) -> Result<(), StoreError> {
        self.counted(self.inner.create_conversation(conversation).await)
    }

    async fn add_answer(
        &self,
        conversation_id: &str,
        position: Option<u32>,
        prompt: &str,
        task_id: &str,
        at: i64,
    ) -> Result<(u32, u32), StoreError> {
        let added = self
            .inner
            .add_answer(conversation_id, position, prompt, task_id, at)
            .await;
        self.counted(added)
    }

    async fn select_answer(
        &self,
        conversation_id: &str,
        position: u32,
        version: u32,
    ) -> Result<bool, StoreError> {
        let selected = self
            .inner
            .select_answer(conversation_id, position, version)
            .await;
        self.counted(selected)
    }

    async fn list_conversations(
        &self,
        limit: u32,
        before: Option<&str>,
        search: Option<&str>,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let listed = self.inner.list_conversations(limit, before, search).await;
        self.counted(listed)
    }

    async fn get_conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        self.counted(self.inner.get_conversation(id).await)
    }

    async fn rename_conversation(&self, id: &str, title: &str) -> Result<bool, StoreError> {
        self.counted(self.inner.rename_conversation(id, title).await)
    }

    async fn delete_conversation(&self, id: &str) -> Result<bool, StoreError> {
        self.counted(self.inner.delete_conversation(id).await)
    }

    async fn upload(
        &self,
        task_id: &str,
        upload_id: &str,
    ) -> Result<Option<(StoredUpload, Option<Vec<u8>>)>, StoreError> {
        self.counted(self.inner.upload(task_id, upload_id).await)
    }

    async fn prune(&self, retention: &Retention) -> Result<Pruned, StoreError> {
        self.counted(self.inner.prune(retention).await)
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}
