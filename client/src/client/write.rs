//! The writes of a [`Client`]: concepts, edges and atomic batches, each on the leader
//! and retried safely under one exactly-once header.

use std::sync::atomic::Ordering;

use sutra_proto::storage::{
    BatchRequest, Concept, DeleteConceptRequest, DeleteEdgeRequest, Edge, PutConceptRequest,
    PutEdgeRequest, WriteHeader, WriteResponse,
};

use super::Client;
use crate::batch::{Batch, BatchOutcome};
use crate::error::ClientError;
use crate::options::CallOptions;

impl Client {
    /// Creates or replaces a concept, optionally only at `expected_version` (0 = must not
    /// exist). Retried through failovers; applied once.
    pub async fn put(
        &self,
        concept: Concept,
        expected_version: Option<u64>,
    ) -> Result<WriteResponse, ClientError> {
        self.put_with(concept, expected_version, CallOptions::default())
            .await
    }

    /// [`put`](Self::put) with call options.
    pub async fn put_with(
        &self,
        concept: Concept,
        expected_version: Option<u64>,
        opts: CallOptions,
    ) -> Result<WriteResponse, ClientError> {
        let req = PutConceptRequest {
            header: Some(self.next_header()),
            concept: Some(concept),
            expected_version,
        };
        let (resp, ep) = self
            .calls
            .write(&self.router, req, opts, |mut c, r| async move {
                c.put_concept(r).await
            })
            .await?;
        self.note_write(&ep, &resp);
        Ok(resp)
    }

    /// Deletes a concept and its edges, optionally only at `expected_version`; returns
    /// whether it existed.
    pub async fn delete(
        &self,
        id: &str,
        expected_version: Option<u64>,
    ) -> Result<bool, ClientError> {
        self.delete_with(id, expected_version, CallOptions::default())
            .await
    }

    /// [`delete`](Self::delete) with call options.
    pub async fn delete_with(
        &self,
        id: &str,
        expected_version: Option<u64>,
        opts: CallOptions,
    ) -> Result<bool, ClientError> {
        let req = DeleteConceptRequest {
            header: Some(self.next_header()),
            id: id.to_string(),
            expected_version,
        };
        let (resp, ep) = self
            .calls
            .write(&self.router, req, opts, |mut c, r| async move {
                c.delete_concept(r).await
            })
            .await?;
        if let Some(w) = &resp.write {
            self.note_write(&ep, w);
        }
        Ok(resp.existed)
    }

    /// Creates an edge or replaces its weight; both ends must exist
    /// ([`ClientError::Conflict`] otherwise).
    pub async fn put_edge(&self, edge: Edge) -> Result<WriteResponse, ClientError> {
        self.put_edge_with(edge, CallOptions::default()).await
    }

    /// [`put_edge`](Self::put_edge) with call options.
    pub async fn put_edge_with(
        &self,
        edge: Edge,
        opts: CallOptions,
    ) -> Result<WriteResponse, ClientError> {
        let req = PutEdgeRequest {
            header: Some(self.next_header()),
            edge: Some(edge),
        };
        let (resp, ep) = self
            .calls
            .write(&self.router, req, opts, |mut c, r| async move {
                c.put_edge(r).await
            })
            .await?;
        self.note_write(&ep, &resp);
        Ok(resp)
    }

    /// Deletes the edge `(from, relation, to)`; returns whether it existed.
    pub async fn delete_edge(
        &self,
        from: &str,
        to: &str,
        relation: &str,
    ) -> Result<bool, ClientError> {
        self.delete_edge_with(from, to, relation, CallOptions::default())
            .await
    }

    /// [`delete_edge`](Self::delete_edge) with call options.
    pub async fn delete_edge_with(
        &self,
        from: &str,
        to: &str,
        relation: &str,
        opts: CallOptions,
    ) -> Result<bool, ClientError> {
        let req = DeleteEdgeRequest {
            header: Some(self.next_header()),
            from: from.to_string(),
            to: to.to_string(),
            relation: relation.to_string(),
        };
        let (resp, ep) = self
            .calls
            .write(&self.router, req, opts, |mut c, r| async move {
                c.delete_edge(r).await
            })
            .await?;
        if let Some(w) = &resp.write {
            self.note_write(&ep, w);
        }
        Ok(resp.existed)
    }

    /// Applies `batch` atomically: every op in order, or none
    /// ([`ClientError::Conflict`] names the op whose precondition failed).
    pub async fn batch(&self, batch: &Batch) -> Result<BatchOutcome, ClientError> {
        self.batch_with(batch, CallOptions::default()).await
    }

    /// [`batch`](Self::batch) with call options.
    pub async fn batch_with(
        &self,
        batch: &Batch,
        opts: CallOptions,
    ) -> Result<BatchOutcome, ClientError> {
        self.send_batch(batch, self.next_header(), opts).await
    }

    /// [`batch_with`](Self::batch_with) under a sequence the caller chose instead of
    /// this client's next one: a writer that must resend the same write with the same
    /// identity after its process restarted (a resumable import) keeps its own numbering,
    /// with a fixed [`ClientConfig::client_id`](crate::ClientConfig::client_id). The
    /// cluster answers a resent `(client_id, sequence)` from its session table
    /// (`write.deduplicated`) and refuses a sequence below the last one it applied for
    /// that id as [`ClientError::Conflict`]. Later automatic sequences of this client
    /// continue above `sequence`.
    pub async fn batch_at(
        &self,
        batch: &Batch,
        sequence: u64,
        opts: CallOptions,
    ) -> Result<BatchOutcome, ClientError> {
        self.sequence.fetch_max(sequence, Ordering::AcqRel);
        let header = WriteHeader {
            client_id: self.client_id.clone(),
            sequence,
        };
        self.send_batch(batch, header, opts).await
    }

    async fn send_batch(
        &self,
        batch: &Batch,
        header: WriteHeader,
        opts: CallOptions,
    ) -> Result<BatchOutcome, ClientError> {
        let req = BatchRequest {
            header: Some(header),
            ops: batch.ops().to_vec(),
        };
        let (resp, ep) = self
            .calls
            .write(&self.router, req, opts, |mut c, r| async move {
                c.batch(r).await
            })
            .await?;
        let write = resp.write.unwrap_or_default();
        self.note_write(&ep, &write);
        Ok(BatchOutcome {
            write,
            existed: resp.results.iter().map(|r| r.existed).collect(),
        })
    }

    fn next_header(&self) -> WriteHeader {
        WriteHeader {
            client_id: self.client_id.clone(),
            sequence: self.sequence.fetch_add(1, Ordering::AcqRel) + 1,
        }
    }

    fn note_write(&self, endpoint: &str, w: &WriteResponse) {
        self.last_version.fetch_max(w.version, Ordering::AcqRel);
        self.router.observe(endpoint, w.served_by, w.leader_id);
    }
}
