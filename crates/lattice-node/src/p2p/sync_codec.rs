//! How sync messages travel over a libp2p stream: binary under
//! [`SYNC_PROTOCOL_V2`](super::protocol::SYNC_PROTOCOL_V2), JSON under the older
//! [`SYNC_PROTOCOL`](super::protocol::SYNC_PROTOCOL).
//!
//! A node offers both names; the dialing side proposes the binary one first, so two
//! current nodes speak binary and an older node (JSON only) is still understood. The
//! binary form is a tag byte, then the message: ids as 32 raw bytes (not 64 hex
//! characters), counts as LEB128 varints, entries as length-prefixed JSON texts (an
//! entry's JSON is what its signature covers, so it travels unchanged), and v2's
//! reconciliation messages as their own binary encoding. The state and the v1 walk's
//! children keep their JSON inside the frame: a binary peer reconciles through v2's
//! hello and sketch, so these are the rare fallbacks.

use std::io;

use libp2p::StreamProtocol;
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use libp2p::request_response;
use serde_json::value::RawValue;

use super::protocol::{Binary, MAX_SYNC_MESSAGE, SYNC_PROTOCOL_V2, SyncRequest, SyncResponse};
use crate::ledger::EntryId;
use crate::sync::reconcile::{EntriesMessage, FetchRequest, IdsRequest, IdsResponse, PushResponse};
use crate::sync::varint::{self, VarintError};

/// A binary sync message that cannot be read (named; nothing is done with it).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a sync message is truncated ({0})")]
    Truncated(&'static str),
    #[error("a sync message of unknown tag {0}")]
    Tag(u8),
    #[error("a sync message holds {0} bytes after its end")]
    Trailing(usize),
    #[error("a sync message's {0} is not valid: {1}")]
    Invalid(&'static str, String),
}

/// Whether `protocol` is the binary sync protocol (of any ledger).
pub fn is_binary(protocol: &str) -> bool {
    protocol.starts_with(SYNC_PROTOCOL_V2)
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    varint::put(out, b.len() as u64);
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FrameError> {
        if self.0.len() < n {
            return Err(FrameError::Truncated(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, FrameError> {
        varint::take(&mut self.0).map_err(|e| match e {
            VarintError::Truncated => FrameError::Truncated(what),
            VarintError::TooLong => FrameError::Invalid(what, "a varint over 64 bits".into()),
        })
    }

    fn usize(&mut self, what: &'static str) -> Result<usize, FrameError> {
        usize::try_from(self.varint(what)?)
            .map_err(|_| FrameError::Invalid(what, "beyond memory".into()))
    }

    fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], FrameError> {
        let n = self.usize(what)?;
        self.take(n, what)
    }

    fn text(&mut self, what: &'static str) -> Result<String, FrameError> {
        String::from_utf8(self.bytes(what)?.to_vec())
            .map_err(|e| FrameError::Invalid(what, e.to_string()))
    }

    fn ids(&mut self, what: &'static str) -> Result<Vec<EntryId>, FrameError> {
        let n = self.usize(what)?;
        if n > self.0.len() / 32 {
            return Err(FrameError::Truncated(what));
        }
        (0..n)
            .map(|_| Ok(EntryId(self.take(32, what)?.try_into().expect("32 bytes"))))
            .collect()
    }

    fn entries(&mut self) -> Result<EntriesMessage, FrameError> {
        let what = "entries";
        let n = self.usize(what)?;
        if n > self.0.len() {
            return Err(FrameError::Truncated(what));
        }
        let entries = (0..n)
            .map(|_| {
                RawValue::from_string(self.text(what)?)
                    .map_err(|e| FrameError::Invalid(what, e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(EntriesMessage { entries })
    }

    fn json<T: serde::de::DeserializeOwned>(
        &mut self,
        what: &'static str,
    ) -> Result<T, FrameError> {
        let b = self.bytes(what)?;
        serde_json::from_slice(b).map_err(|e| FrameError::Invalid(what, e.to_string()))
    }

    fn rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0).to_vec()
    }

    fn end<T>(&self, value: T) -> Result<T, FrameError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(FrameError::Trailing(self.0.len()))
        }
    }
}

fn put_ids(out: &mut Vec<u8>, ids: &[EntryId]) {
    varint::put(out, ids.len() as u64);
    for id in ids {
        out.extend_from_slice(id.as_bytes());
    }
}

fn put_entries(out: &mut Vec<u8>, m: &EntriesMessage) {
    varint::put(out, m.entries.len() as u64);
    for e in &m.entries {
        put_bytes(out, e.get().as_bytes());
    }
}

fn put_json<T: serde::Serialize>(out: &mut Vec<u8>, v: &T) {
    put_bytes(
        out,
        &serde_json::to_vec(v).expect("sync messages serialize"),
    );
}

mod tag {
    pub const STATE: u8 = 0;
    pub const CHILDREN: u8 = 1;
    pub const IDS: u8 = 2;
    pub const FETCH: u8 = 3;
    pub const PUSH: u8 = 4;
    pub const SKETCH: u8 = 5;
    pub const FETCH_SHORT: u8 = 6;
    pub const HELLO: u8 = 7;
    // Answers only.
    pub const ENTRIES: u8 = 3;
    pub const PUSHED: u8 = 4;
    pub const ERROR: u8 = 6;
}

/// A request in the binary form.
pub fn encode_request(req: &SyncRequest) -> Vec<u8> {
    let mut out = Vec::new();
    match req {
        SyncRequest::State => out.push(tag::STATE),
        SyncRequest::Children(c) => {
            out.push(tag::CHILDREN);
            put_json(&mut out, c);
        }
        SyncRequest::Ids(r) => {
            out.push(tag::IDS);
            put_bytes(&mut out, r.prefix.as_bytes());
            match &r.after {
                Some(id) => {
                    out.push(1);
                    out.extend_from_slice(id.as_bytes());
                }
                None => out.push(0),
            }
            varint::put(&mut out, r.limit as u64);
        }
        SyncRequest::Fetch(f) => {
            out.push(tag::FETCH);
            put_ids(&mut out, &f.ids);
        }
        SyncRequest::Push(m) => {
            out.push(tag::PUSH);
            put_entries(&mut out, m);
        }
        SyncRequest::Sketch(Binary(b)) => {
            out.push(tag::SKETCH);
            out.extend_from_slice(b);
        }
        SyncRequest::FetchShort(Binary(b)) => {
            out.push(tag::FETCH_SHORT);
            out.extend_from_slice(b);
        }
        SyncRequest::Hello(Binary(b)) => {
            out.push(tag::HELLO);
            out.extend_from_slice(b);
        }
    }
    out
}

/// Reads a request in the binary form.
pub fn decode_request(bytes: &[u8]) -> Result<SyncRequest, FrameError> {
    let mut r = Reader(bytes);
    let t = r.take(1, "tag")?[0];
    let req = match t {
        tag::STATE => SyncRequest::State,
        tag::CHILDREN => SyncRequest::Children(r.json("children request")?),
        tag::IDS => {
            let prefix = r.text("ids request")?;
            let after = match r.take(1, "ids request")?[0] {
                0 => None,
                1 => Some(EntryId(
                    r.take(32, "ids request")?.try_into().expect("32 bytes"),
                )),
                f => return Err(FrameError::Invalid("ids request", format!("flag {f}"))),
            };
            let limit = r.usize("ids request")?;
            SyncRequest::Ids(IdsRequest {
                prefix,
                after,
                limit,
            })
        }
        tag::FETCH => SyncRequest::Fetch(FetchRequest {
            ids: r.ids("fetch request")?,
        }),
        tag::PUSH => SyncRequest::Push(r.entries()?),
        tag::SKETCH => SyncRequest::Sketch(Binary(r.rest())),
        tag::FETCH_SHORT => SyncRequest::FetchShort(Binary(r.rest())),
        tag::HELLO => SyncRequest::Hello(Binary(r.rest())),
        other => return Err(FrameError::Tag(other)),
    };
    r.end(req)
}

/// An answer in the binary form.
pub fn encode_response(resp: &SyncResponse) -> Vec<u8> {
    let mut out = Vec::new();
    match resp {
        SyncResponse::State(s) => {
            out.push(tag::STATE);
            put_json(&mut out, s);
        }
        SyncResponse::Children(c) => {
            out.push(tag::CHILDREN);
            put_json(&mut out, c);
        }
        SyncResponse::Ids(i) => {
            out.push(tag::IDS);
            out.push(u8::from(i.more));
            put_ids(&mut out, &i.ids);
        }
        SyncResponse::Entries(m) => {
            out.push(tag::ENTRIES);
            put_entries(&mut out, m);
        }
        SyncResponse::Pushed(p) => {
            out.push(tag::PUSHED);
            varint::put(&mut out, p.accepted as u64);
            varint::put(&mut out, p.already_present as u64);
        }
        SyncResponse::Sketch(Binary(b)) => {
            out.push(tag::SKETCH);
            out.extend_from_slice(b);
        }
        SyncResponse::Error { kind, message } => {
            out.push(tag::ERROR);
            put_bytes(&mut out, kind.as_bytes());
            put_bytes(&mut out, message.as_bytes());
        }
        SyncResponse::Hello(Binary(b)) => {
            out.push(tag::HELLO);
            out.extend_from_slice(b);
        }
    }
    out
}

/// Reads an answer in the binary form.
pub fn decode_response(bytes: &[u8]) -> Result<SyncResponse, FrameError> {
    let mut r = Reader(bytes);
    let t = r.take(1, "tag")?[0];
    let resp = match t {
        tag::STATE => SyncResponse::State(r.json("state")?),
        tag::CHILDREN => SyncResponse::Children(r.json("children")?),
        tag::IDS => {
            let more = match r.take(1, "ids")?[0] {
                0 => false,
                1 => true,
                f => return Err(FrameError::Invalid("ids", format!("flag {f}"))),
            };
            SyncResponse::Ids(IdsResponse {
                ids: r.ids("ids")?,
                more,
            })
        }
        tag::ENTRIES => SyncResponse::Entries(r.entries()?),
        tag::PUSHED => SyncResponse::Pushed(PushResponse {
            accepted: r.usize("pushed")?,
            already_present: r.usize("pushed")?,
        }),
        tag::SKETCH => SyncResponse::Sketch(Binary(r.rest())),
        tag::ERROR => SyncResponse::Error {
            kind: r.text("error")?,
            message: r.text("error")?,
        },
        tag::HELLO => SyncResponse::Hello(Binary(r.rest())),
        other => return Err(FrameError::Tag(other)),
    };
    r.end(resp)
}

/// The bytes a request takes on the wire, under the binary protocol or the JSON one.
pub fn request_len(req: &SyncRequest, binary: bool) -> u64 {
    if binary {
        encode_request(req).len() as u64
    } else {
        serde_json::to_vec(req).map_or(0, |v| v.len() as u64)
    }
}

/// The bytes an answer takes on the wire, likewise.
pub fn response_len(resp: &SyncResponse, binary: bool) -> u64 {
    if binary {
        encode_response(resp).len() as u64
    } else {
        serde_json::to_vec(resp).map_or(0, |v| v.len() as u64)
    }
}

/// The kind of io error a request that the JSON protocol cannot carry fails with (v2's
/// hello: older nodes would not read it), so the asker falls back to the state answer.
pub const NOT_IN_JSON: &str = "this request is not carried by the JSON sync protocol";

/// The sync protocol's codec: binary or JSON by the protocol negotiated.
#[derive(Clone, Copy, Debug, Default)]
pub struct SyncCodec;

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

async fn read_capped<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut vec = Vec::new();
    io.take(MAX_SYNC_MESSAGE + 1).read_to_end(&mut vec).await?;
    if vec.len() as u64 > MAX_SYNC_MESSAGE {
        return Err(invalid(format!(
            "a sync message over {MAX_SYNC_MESSAGE} bytes"
        )));
    }
    Ok(vec)
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T>(&mut self, p: &StreamProtocol, io: &mut T) -> io::Result<SyncRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_capped(io).await?;
        if is_binary(p.as_ref()) {
            decode_request(&bytes).map_err(invalid)
        } else {
            serde_json::from_slice(&bytes).map_err(invalid)
        }
    }

    async fn read_response<T>(&mut self, p: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_capped(io).await?;
        if is_binary(p.as_ref()) {
            decode_response(&bytes).map_err(invalid)
        } else {
            serde_json::from_slice(&bytes).map_err(invalid)
        }
    }

    async fn write_request<T>(
        &mut self,
        p: &StreamProtocol,
        io: &mut T,
        req: SyncRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let data = if is_binary(p.as_ref()) {
            encode_request(&req)
        } else if matches!(req, SyncRequest::Hello(_)) {
            return Err(io::Error::new(io::ErrorKind::Unsupported, NOT_IN_JSON));
        } else {
            serde_json::to_vec(&req)?
        };
        io.write_all(&data).await
    }

    async fn write_response<T>(
        &mut self,
        p: &StreamProtocol,
        io: &mut T,
        resp: SyncResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let data = if is_binary(p.as_ref()) {
            encode_response(&resp)
        } else {
            serde_json::to_vec(&resp)?
        };
        io.write_all(&data).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::reconcile::{ChildSummary, ChildrenRequest, ChildrenResponse};

    fn entries() -> EntriesMessage {
        EntriesMessage {
            entries: vec![
                RawValue::from_string(r#"{"a":1}"#.into()).unwrap(),
                RawValue::from_string(r#"{"b":"x"}"#.into()).unwrap(),
            ],
        }
    }

    fn same_request(a: &SyncRequest, b: &SyncRequest) -> bool {
        serde_json::to_string(a).unwrap() == serde_json::to_string(b).unwrap()
    }

    #[test]
    fn every_request_and_answer_round_trips_through_the_binary_form() {
        let id = EntryId([7; 32]);
        let requests = [
            SyncRequest::State,
            SyncRequest::Children(ChildrenRequest {
                prefixes: vec!["01".into(), String::new()],
            }),
            SyncRequest::Ids(IdsRequest {
                prefix: "1".into(),
                after: Some(id),
                limit: 2048,
            }),
            SyncRequest::Ids(IdsRequest {
                prefix: String::new(),
                after: None,
                limit: 1,
            }),
            SyncRequest::Fetch(FetchRequest { ids: vec![id; 3] }),
            SyncRequest::Push(entries()),
            SyncRequest::Sketch(Binary(vec![2, 3, 4])),
            SyncRequest::FetchShort(Binary(vec![2; 25])),
            SyncRequest::Hello(Binary(vec![2; 60])),
        ];
        for r in &requests {
            let back = decode_request(&encode_request(r)).unwrap();
            assert!(same_request(r, &back), "{r:?} came back as {back:?}");
        }
        let answers = [
            SyncResponse::Children(ChildrenResponse {
                children: vec![vec![ChildSummary {
                    count: 2,
                    hash: None,
                    ids: Some(vec![id, id]),
                }]],
            }),
            SyncResponse::Ids(IdsResponse {
                ids: vec![id; 5],
                more: true,
            }),
            SyncResponse::Entries(entries()),
            SyncResponse::Pushed(PushResponse {
                accepted: 3,
                already_present: 300,
            }),
            SyncResponse::Sketch(Binary(vec![1; 40])),
            SyncResponse::Hello(Binary(vec![2, 0])),
            SyncResponse::Error {
                kind: "bad_request".into(),
                message: "no ✓".into(),
            },
        ];
        for a in &answers {
            let back = decode_response(&encode_response(a)).unwrap();
            assert_eq!(
                serde_json::to_string(a).unwrap(),
                serde_json::to_string(&back).unwrap()
            );
        }
    }

    #[test]
    fn the_binary_form_is_smaller_than_json_where_ids_travel() {
        let ids = SyncResponse::Ids(IdsResponse {
            ids: vec![EntryId([9; 32]); 100],
            more: false,
        });
        assert_eq!(response_len(&ids, true), 1 + 1 + 1 + 3200);
        assert!(response_len(&ids, false) > 6_600);
        let fetch = SyncRequest::Fetch(FetchRequest {
            ids: vec![EntryId([9; 32]); 10],
        });
        assert_eq!(request_len(&fetch, true), 2 + 320);
        let push = SyncRequest::Push(entries());
        assert!(request_len(&push, true) < request_len(&push, false));
    }

    #[test]
    fn broken_binary_messages_are_refused_by_name() {
        let refused = |b: &[u8]| decode_request(b).err();
        assert_eq!(refused(&[]), Some(FrameError::Truncated("tag")));
        assert_eq!(refused(&[99]), Some(FrameError::Tag(99)));
        assert_eq!(refused(&[tag::STATE, 1]), Some(FrameError::Trailing(1)));
        // A count of ids the message cannot hold.
        assert_eq!(
            refused(&[tag::FETCH, 0xff, 0x01]),
            Some(FrameError::Truncated("fetch request"))
        );
        assert!(matches!(
            decode_response(&[tag::ENTRIES, 1, 3, b'{', b'x', b'}']),
            Err(FrameError::Invalid("entries", _))
        ));
        assert!(matches!(
            decode_response(&[tag::IDS, 2, 0]),
            Err(FrameError::Invalid("ids", _))
        ));
    }
}
