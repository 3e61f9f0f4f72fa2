//! One relayed write's answer inside `ForwardWritesResponse`: the encoded response, or
//! the gRPC status (code, message, ASCII metadata) that a `ForwardWrite` of it alone
//! would have failed with, so the relaying node maps both the same way.

use sutra_proto::raft::ForwardedWrite;
use tonic::Status;
use tonic::metadata::{KeyAndValueRef, MetadataKey, MetadataMap, MetadataValue};

/// The wire form of one relayed write's outcome.
pub fn forwarded_to_proto(outcome: Result<Vec<u8>, Status>) -> ForwardedWrite {
    match outcome {
        Ok(response) => ForwardedWrite {
            response,
            ..ForwardedWrite::default()
        },
        Err(status) => ForwardedWrite {
            response: Vec::new(),
            code: status.code() as i32,
            message: status.message().to_string(),
            metadata: status
                .metadata()
                .iter()
                .filter_map(|kv| match kv {
                    KeyAndValueRef::Ascii(k, v) => {
                        Some((k.as_str().to_string(), v.to_str().ok()?.to_string()))
                    }
                    KeyAndValueRef::Binary(..) => None,
                })
                .collect(),
        },
    }
}

/// The outcome a [`ForwardedWrite`] carries: the encoded response, or its status with
/// its metadata. Metadata that is not a valid header is dropped.
pub fn forwarded_from_proto(w: ForwardedWrite) -> Result<Vec<u8>, Status> {
    if w.code == tonic::Code::Ok as i32 {
        return Ok(w.response);
    }
    let mut metadata = MetadataMap::new();
    for (k, v) in &w.metadata {
        if let (Ok(k), Ok(v)) = (
            MetadataKey::from_bytes(k.as_bytes()),
            MetadataValue::try_from(v.as_str()),
        ) {
            metadata.insert(k, v);
        }
    }
    Err(Status::with_metadata(
        tonic::Code::from(w.code),
        w.message,
        metadata,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_comes_back_as_it_went() {
        let w = forwarded_to_proto(Ok(vec![1, 2, 3]));
        assert_eq!(w.code, 0);
        assert_eq!(forwarded_from_proto(w).unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn a_status_keeps_code_message_and_metadata() {
        let mut status = Status::unavailable("not the leader");
        status
            .metadata_mut()
            .insert("x-sutra-leader-id", "3".parse().unwrap());
        status.metadata_mut().insert_bin(
            "x-binary-bin",
            tonic::metadata::MetadataValue::from_bytes(b"\x00\x01"),
        );
        let w = forwarded_to_proto(Err(status));
        assert_eq!(w.code, tonic::Code::Unavailable as i32);
        assert!(w.response.is_empty());
        let back = forwarded_from_proto(w).unwrap_err();
        assert_eq!(back.code(), tonic::Code::Unavailable);
        assert_eq!(back.message(), "not the leader");
        assert_eq!(
            back.metadata().get("x-sutra-leader-id").unwrap(),
            "3",
            "ASCII metadata travels"
        );
        assert!(back.metadata().get_bin("x-binary-bin").is_none());
    }

    #[test]
    fn bad_metadata_is_dropped_not_fatal() {
        let w = ForwardedWrite {
            code: tonic::Code::Internal as i32,
            message: "boom".into(),
            metadata: [("Bad Key".to_string(), "v".to_string())].into(),
            ..ForwardedWrite::default()
        };
        let back = forwarded_from_proto(w).unwrap_err();
        assert_eq!(back.code(), tonic::Code::Internal);
        assert!(back.metadata().is_empty());
    }
}
