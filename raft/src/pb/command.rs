//! The one codec for application commands on the wire: `Entry.normal` carries a
//! [`Command`] as postcard bytes, the same encoding the log store keeps on disk.

use crate::command::Command;

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
