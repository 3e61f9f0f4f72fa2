//! Input validation. Every check names the field the way a client spelled it.

use crate::config::Limits;
use crate::error::ValidationError;
use crate::types::{Concept, Edge, WriteBatch, WriteOp};

type Check = Result<(), ValidationError>;

impl WriteBatch {
    /// Checks the batch against `limits` and the store's vector dimension. The node
    /// calls this before a write enters the log; `apply` calls it again with
    /// [`Limits::hard`]. An empty batch is valid only when `allow_empty`.
    pub fn validate(&self, limits: &Limits, dimension: u32, allow_empty: bool) -> Check {
        if let Some(session) = &self.session {
            check_text("client_id", &session.client_id, limits.max_client_id_bytes)?;
            if session.sequence == 0 {
                return Err(ValidationError::new("sequence", "must be at least 1"));
            }
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
            validate_op(op, &format!("ops[{i}]"), limits, dimension)?;
        }
        Ok(())
    }
}

fn validate_op(op: &WriteOp, at: &str, limits: &Limits, dimension: u32) -> Check {
    match op {
        WriteOp::PutConcept { concept, .. } => validate_concept(
            concept,
            &format!("{at}.put_concept.concept"),
            limits,
            dimension,
        ),
        WriteOp::DeleteConcept { id, .. } => {
            check_text(&format!("{at}.delete_concept.id"), id, limits.max_id_bytes)
        }
        WriteOp::PutEdge(edge) => validate_edge(edge, &format!("{at}.put_edge.edge"), limits),
        WriteOp::DeleteEdge { from, to, relation } => {
            let at = format!("{at}.delete_edge");
            check_text(&format!("{at}.from"), from, limits.max_id_bytes)?;
            check_text(&format!("{at}.to"), to, limits.max_id_bytes)?;
            check_text(
                &format!("{at}.relation"),
                relation,
                limits.max_relation_bytes,
            )
        }
        WriteOp::CheckVersion { id, .. } => {
            check_text(&format!("{at}.check.id"), id, limits.max_id_bytes)
        }
    }
}

/// Checks one concept. `at` is the path of the concept field.
pub fn validate_concept(concept: &Concept, at: &str, limits: &Limits, dimension: u32) -> Check {
    check_text(&format!("{at}.id"), &concept.id, limits.max_id_bytes)?;
    if concept.content.len() > limits.max_content_bytes {
        return Err(ValidationError::new(
            format!("{at}.content"),
            format!(
                "{} bytes, at most {} allowed",
                concept.content.len(),
                limits.max_content_bytes
            ),
        ));
    }
    if !concept.embedding.is_empty() {
        validate_vector(&concept.embedding, &format!("{at}.embedding"), dimension)?;
    }
    if concept.attributes.len() > limits.max_attributes {
        return Err(ValidationError::new(
            format!("{at}.attributes"),
            format!(
                "{} entries, at most {} allowed",
                concept.attributes.len(),
                limits.max_attributes
            ),
        ));
    }
    for (key, value) in &concept.attributes {
        check_text(
            &format!("{at}.attributes[{key:?}].key"),
            key,
            limits.max_attribute_key_bytes,
        )?;
        if value.len() > limits.max_attribute_value_bytes {
            return Err(ValidationError::new(
                format!("{at}.attributes[{key:?}].value"),
                format!(
                    "{} bytes, at most {} allowed",
                    value.len(),
                    limits.max_attribute_value_bytes
                ),
            ));
        }
    }
    Ok(())
}

fn validate_edge(edge: &Edge, at: &str, limits: &Limits) -> Check {
    check_text(&format!("{at}.from"), &edge.from, limits.max_id_bytes)?;
    check_text(&format!("{at}.to"), &edge.to, limits.max_id_bytes)?;
    check_text(
        &format!("{at}.relation"),
        &edge.relation,
        limits.max_relation_bytes,
    )?;
    if !edge.weight.is_finite() {
        return Err(ValidationError::new(
            format!("{at}.weight"),
            "must be a finite number",
        ));
    }
    Ok(())
}

/// Checks that `vector` has `dimension` finite values.
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

/// Checks a non-empty string of at most `max` bytes without NUL.
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
