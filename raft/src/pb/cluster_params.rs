//! `ClusterParams` → `sutra.cluster.ClusterParameters`, for `ClusterService/Status`.

use sutra_proto::cluster::ClusterParameters;

use super::IntoProto;
use crate::ClusterParams;

impl IntoProto<ClusterParameters> for ClusterParams {
    fn into_proto(self) -> ClusterParameters {
        ClusterParameters {
            cluster_id: self.cluster_id,
            vector_dimension: self.vector_dimension,
            max_content_bytes: self.max_content_bytes,
            max_batch_ops: self.max_batch_ops,
            session_ttl_ms: self.session_ttl_ms,
            max_sessions: self.max_sessions,
            max_sessions_per_owner: self.max_sessions_per_owner,
            quota_bytes: self.quota_bytes,
        }
    }
}
