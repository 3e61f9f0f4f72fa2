//! Input validation. Every check names the field the way a client spelled it.
//! Field paths are only formatted when a check fails, so valid input costs no
//! allocations here (apply re-validates every write).

use crate::config::Limits;
use crate::error::ValidationError;
use crate::types::{Concept, Edge, SessionKey, WriteBatch, WriteOp};

type Check = Result<(), ValidationError>;

impl ValidationError {
    /// Prefixes the field path with `parent` (`id` under `concept` is `concept.id`).
    pub fn under(mut self, parent: &str) -> Self {
        self.field = if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

impl WriteBatch {
    /// Checks the batch against `limits` and the store's vector dimension. The node
    /// calls this before a write enters the log; `apply` calls it again with
    /// [`Limits::hard`]. An empty batch is valid only when `allow_empty`.
    pub fn validate(&self, limits: &Limits, dimension: u32, allow_empty: bool) -> Check {
        if let Some(session) = &self.session {
            session.validate(limits)?;
        }
        if self.ops.is_empty() && !allow_empty {
            return Err(ValidationError::new(
                "ops",
                "a write needs at least one operation",
            ));
        }
        if self.ops.len() > limits.max_batch_ops {
            return Err(ValidationError::new(
                "ops",
                format!(
                    "{} operations, at most {} allowed",
                    self.ops.len(),
                    limits.max_batch_ops
                ),
            ));
        }
        for (i, op) in self.ops.iter().enumerate() {
            validate_op(op, limits, dimension).map_err(|e| e.under(&format!("ops[{i}]")))?;
        }
        Ok(())
    }
}

impl SessionKey {
    /// Checks the client id (non-empty, at most `limits.max_client_id_bytes`, no NUL)
    /// and that the sequence is at least 1.
    pub fn validate(&self, limits: &Limits) -> Check {
        check_text("client_id", &self.client_id, limits.max_client_id_bytes)?;
        if self.sequence == 0 {
            return Err(ValidationError::new("sequence", "must be at least 1"));
        }
        Ok(())
    }
}

fn validate_op(op: &WriteOp, limits: &Limits, dimension: u32) -> Check {
    match op {
        WriteOp::PutConcept { concept, .. } => {
            concept_fields(concept, limits, dimension).map_err(|e| e.under("put_concept.concept"))
        }
        WriteOp::DeleteConcept { id, .. } => {
            check_text("id", id, limits.max_id_bytes).map_err(|e| e.under("delete_concept"))
        }
        WriteOp::PutEdge(edge) => edge_fields(edge, limits).map_err(|e| e.under("put_edge.edge")),
        WriteOp::DeleteEdge { from, to, relation } => (|| {
            check_text("from", from, limits.max_id_bytes)?;
            check_text("to", to, limits.max_id_bytes)?;
            check_text("relation", relation, limits.max_relation_bytes)
        })()
        .map_err(|e| e.under("delete_edge")),
        WriteOp::CheckVersion { id, .. } => {
            check_text("id", id, limits.max_id_bytes).map_err(|e| e.under("check"))
        }
    }
}

/// Checks one concept. `at` is the path of the concept field.
pub fn validate_concept(concept: &Concept, at: &str, limits: &Limits, dimension: u32) -> Check {
    concept_fields(concept, limits, dimension).map_err(|e| e.under(at))
}

fn concept_fields(concept: &Concept, limits: &Limits, dimension: u32) -> Check {
    check_text("id", &concept.id, limits.max_id_bytes)?;
    if concept.content.len() > limits.max_content_bytes {
        return Err(ValidationError::new(
            "content",
            format!(
                "{} bytes, at most {} allowed",
                concept.content.len(),
                limits.max_content_bytes
            ),
        ));
    }
    if !concept.embedding.is_empty() {
        validate_vector(&concept.embedding, "embedding", dimension)?;
    }
    if concept.attributes.len() > limits.max_attributes {
        return Err(ValidationError::new(
            "attributes",
            format!(
                "{} entries, at most {} allowed",
                concept.attributes.len(),
                limits.max_attributes
            ),
        ));
    }
    for (key, value) in &concept.attributes {
        let at = || format!("attributes[{key:?}]");
        check_text("key", key, limits.max_attribute_key_bytes).map_err(|e| e.under(&at()))?;
        if value.len() > limits.max_attribute_value_bytes {
            return Err(ValidationError::new(
                format!("{}.value", at()),
                format!(
                    "{} bytes, at most {} allowed",
                    value.len(),
                    limits.max_attribute_value_bytes
                ),
            ));
        }
    }
    check_record_len(crate::record::concept_len(concept))
}

/// The hard limits bound each field but not their sum: a concept must still fit the
/// `u32` length of one record.
fn check_record_len(len: u64) -> Check {
    if len.next_multiple_of(8) > crate::record::MAX_RECORD_LEN {
        return Err(ValidationError::new(
            "attributes",
            format!(
                "the concept takes {len} bytes, more than one record holds ({})",
                crate::record::MAX_RECORD_LEN
            ),
        ));
    }
    Ok(())
}

fn edge_fields(edge: &Edge, limits: &Limits) -> Check {
    check_text("from", &edge.from, limits.max_id_bytes)?;
    check_text("to", &edge.to, limits.max_id_bytes)?;
    check_text("relation", &edge.relation, limits.max_relation_bytes)?;
    if !edge.weight.is_finite() {
        return Err(ValidationError::new("weight", "must be a finite number"));
    }
    Ok(())
}

/// Checks that `vector` has `dimension` finite values; `at` names the field.
pub fn validate_vector(vector: &[f32], at: &str, dimension: u32) -> Check {
    if vector.len() != dimension as usize {
        return Err(ValidationError::new(
            at,
            format!(
                "has {} values, the store's dimension is {dimension}",
                vector.len()
            ),
        ));
    }
    if let Some(i) = vector.iter().position(|v| !v.is_finite()) {
        return Err(ValidationError::new(
            format!("{at}[{i}]"),
            "must be a finite number (no NaN or infinity)",
        ));
    }
    Ok(())
}

/// Checks a non-empty string of at most `max` bytes. NUL is refused because page
/// tokens use it as a separator.
pub fn check_text(field: &str, value: &str, max: usize) -> Check {
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(ValidationError::new(
            field,
            format!("{} bytes, at most {max} allowed", value.len()),
        ));
    }
    if value.contains('\0') {
        return Err(ValidationError::new(field, "must not contain NUL"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A concept that fits every hard limit can still be too large for one record
    /// (65,535 attributes of 128 KiB); that is invalid content, not a panic in the
    /// encoder. Measured without building such a concept.
    #[test]
    fn record_length_is_bounded() {
        let c = Concept {
            id: "abc".into(),
            content: vec![0; 5],
            embedding: vec![0.0; 2],
            attributes: [("k".to_string(), "vv".to_string())].into(),
            version: 0,
        };
        assert_eq!(crate::record::concept_len(&c), 40 + 8 + 3 + 5 + 4 + 1 + 2);
        assert!(check_record_len(crate::record::MAX_RECORD_LEN).is_ok());
        let err = check_record_len(crate::record::MAX_RECORD_LEN + 1).unwrap_err();
        assert_eq!(err.field, "attributes");
        let worst = u64::from(u16::MAX) * (4 + 2 * u64::from(u16::MAX)) + (64 << 20);
        assert!(
            check_record_len(worst).is_err(),
            "reachable within Limits::hard"
        );
    }
}
