//! The worker protocol: frames of a 4-byte big-endian length and that many bytes of JSON, on
//! the worker's stdin (requests) and stdout (answers). User code's own output (console.log,
//! print) goes to stderr, which igloo logs line by line.
//!
//! 1. The worker loads the transform and answers `{"ready":true}` or
//!    `{"load_error":"<message and stack>"}`, then exits.
//! 2. igloo sends `{"records":[…]}`; the worker answers `{"results":[…]}`, one per record in
//!    order: `{"out":[…]}` (the records returned: none when it returned null, several for a
//!    list) or `{"error":"…","stack":"…"}` when the function threw.
//! 3. End of stdin: the worker exits.

use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest frame read from a worker.
const MAX_FRAME: usize = 1 << 30;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Hello {
    Ready { ready: bool },
    LoadError { load_error: String },
}

#[derive(Debug, Deserialize)]
pub struct Results {
    pub results: Vec<RecordResult>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum RecordResult {
    Out {
        out: Vec<Value>,
    },
    Error {
        error: String,
        #[serde(default)]
        stack: Option<String>,
    },
}

/// `{"records":[r1,r2,…]}` from records that are already JSON text.
pub fn records_frame<'a>(records: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut body = b"{\"records\":[".to_vec();
    for (i, r) in records.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(r.as_bytes());
    }
    body.extend_from_slice(b"]}");
    body
}

pub async fn write_frame(w: &mut (impl AsyncWriteExt + Unpin), body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len()).map_err(|_| std::io::Error::other("frame larger than 4 GiB"))?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(body).await?;
    w.flush().await
}

/// The next frame; `Ok(None)` at a clean end of stream.
pub async fn read_frame(r: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "a frame of {len} bytes: the worker wrote something else on stdout"
        )));
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).await?;
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &records_frame(["{\"a\":1}", "{\"a\":2}"])).await.unwrap();
        let mut r = &buf[..];
        let body = read_frame(&mut r).await.unwrap().unwrap();
        assert_eq!(body, b"{\"records\":[{\"a\":1},{\"a\":2}]}");
        assert!(read_frame(&mut r).await.unwrap().is_none());
    }

    #[test]
    fn results_parse() {
        let r: Results =
            serde_json::from_str(r#"{"results":[{"out":[{"x":1}]},{"out":[]},{"error":"boom","stack":"at f"}]}"#)
                .unwrap();
        assert_eq!(r.results[1], RecordResult::Out { out: vec![] });
        assert_eq!(r.results[2], RecordResult::Error { error: "boom".into(), stack: Some("at f".into()) });
    }
}
