//! The one codec for application commands on the wire: `Entry.normal` carries a
//! [`Command`] as postcard bytes, the same encoding the log store keeps on disk.

use crate::command::{Command, CommandResponse};

use super::ProtoError;

/// Encodes a command for `Entry.normal`.
pub fn encode_command(cmd: &Command) -> Result<Vec<u8>, ProtoError> {
    postcard::to_allocvec(cmd).map_err(|e| ProtoError::Encode {
        what: "command",
        reason: e.to_string(),
    })
}

/// Decodes `Entry.normal`; trailing bytes are an error, so one payload is one command.
pub fn decode_command(bytes: &[u8]) -> Result<Command, ProtoError> {
    let (cmd, rest) = postcard::take_from_bytes::<Command>(bytes)
        .map_err(|e| ProtoError::invalid("", format!("undecodable command: {e}")))?;
    if !rest.is_empty() {
        return Err(ProtoError::invalid(
            "",
            format!("{} trailing bytes after the command", rest.len()),
        ));
    }
    Ok(cmd)
}

/// Encodes a command's response for `ForwardWriteResponse.response`.
pub fn encode_response(resp: &CommandResponse) -> Result<Vec<u8>, ProtoError> {
    postcard::to_allocvec(resp).map_err(|e| ProtoError::Encode {
        what: "command response",
        reason: e.to_string(),
    })
}

/// Decodes `ForwardWriteResponse.response`; trailing bytes are an error.
pub fn decode_response(bytes: &[u8]) -> Result<CommandResponse, ProtoError> {
    let (resp, rest) = postcard::take_from_bytes::<CommandResponse>(bytes).map_err(|e| {
        ProtoError::invalid("response", format!("undecodable command response: {e}"))
    })?;
    if !rest.is_empty() {
        return Err(ProtoError::invalid(
            "response",
            format!("{} trailing bytes after the command response", rest.len()),
        ));
    }
    Ok(resp)
}
