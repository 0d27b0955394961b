//! The API's handlers: one-liners over [`NodeHandle`] plus the shaping of answers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt, stream};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use tokio_stream::wrappers::BroadcastStream;

use super::{ApiError, AppState, Json, authorized, body_error, parse_json, to_json, unauthorized};
use crate::node::{Created, NodeError, NodeHandle};
use crate::sync::reconcile::{
    ChildrenRequest, EntriesMessage, FetchRequest, IdsRequest, PushResponse, answer,
};
use crate::sync::reconcile_v2;

pub(super) async fn status(State(node): State<NodeHandle>) -> Json {
    to_json(&node.status())
}

pub(super) async fn switch(
    State(node): State<NodeHandle>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json, ApiError> {
    let mode = q
        .get("mode")
        .ok_or_else(|| NodeHandle::missing_mode("use ?mode=auto, ?mode=p2p or ?mode=http"))?;
    Ok(to_json(&node.switch_to(mode).await?))
}

/// Cuts P2P for real: closes every connection and refuses new ones until unblocked.
pub(super) async fn block_p2p(State(node): State<NodeHandle>) -> Result<Json, ApiError> {
    Ok(to_json(&node.block_p2p(true).await?))
}

pub(super) async fn unblock_p2p(State(node): State<NodeHandle>) -> Result<Json, ApiError> {
    Ok(to_json(&node.block_p2p(false).await?))
}

/// The ledger's genesis record, for a node configured with only `LATTICE_LEDGER`.
pub(super) async fn genesis(State(node): State<NodeHandle>) -> Json {
    let ledger = node.store().ledger();
    to_json(&crate::http::wire::GenesisAnswer {
        ledger: ledger.id(),
        genesis: ledger.genesis().to_base64(),
    })
}

/// Bumped whenever the state answer's shape or meaning changes, so that no client holds
/// an old answer under a tag that still matches.
const STATE_ETAG_VERSION: u32 = 3;

/// The state answer, tagged so a neighbour can re-check it cheaply: the tag names the
/// Merkle root and is bound to the whole answer (the digest covers the other fields), so
/// it matches exactly when the answer would be the same. Clients treat it as opaque.
pub(super) async fn state(State(node): State<NodeHandle>, headers: HeaderMap) -> Response {
    let mut state = answer::state(node.store(), node.peer_id());
    state.name = node.config().node_name.clone();
    let body = serde_json::to_string(&state).expect("the state serializes");
    let digest = hex::encode(Sha256::digest(body.as_bytes()));
    let etag = format!(
        "\"v{STATE_ETAG_VERSION}-{}-{}\"",
        hex::encode(state.root),
        &digest[..16]
    );
    let etag_value = HeaderValue::from_str(&etag).expect("hex is a valid header value");
    if if_none_match_hits(&headers, &etag) {
        // A 304 repeats the headers the 200 would have carried for caching (RFC 9110).
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag_value),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
        )
            .into_response();
    }
    (
        [
            (header::ETAG, etag_value),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// Whether an `If-None-Match` header names `etag` (weak comparison, RFC 9110 13.1.2).
fn if_none_match_hits(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[derive(Deserialize)]
pub(super) struct PutBody {
    /// Kept as text until checked (see [`NodeHandle::put_json`]).
    payload: Box<RawValue>,
}

pub(super) async fn put_entry(
    State(node): State<NodeHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Created>), ApiError> {
    let body: PutBody = parse_json(&body.map_err(body_error)?)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(node.put_json(body.payload.get()).await?),
    ))
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    limit: Option<usize>,
}

pub(super) async fn list_entries(
    State(node): State<NodeHandle>,
    Query(q): Query<ListQuery>,
) -> Result<Json, ApiError> {
    Ok(to_json(&node.entries(q.limit)?))
}

pub(super) async fn get_entry(
    State(node): State<NodeHandle>,
    Path(id): Path<String>,
) -> Result<Json, ApiError> {
    Ok(to_json(&node.entry(&id)?))
}

pub(super) async fn children(
    State(node): State<NodeHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json, ApiError> {
    let req: ChildrenRequest = parse_json(&body.map_err(body_error)?)?;
    let resp = answer::children(node.store(), &req)
        .map_err(|m| ApiError::bad_request("bad_reconcile_request", m))?;
    Ok(to_json(&resp))
}

pub(super) async fn ids(
    State(node): State<NodeHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json, ApiError> {
    let req: IdsRequest = parse_json(&body.map_err(body_error)?)?;
    let resp = answer::ids(node.store(), &req)
        .map_err(|m| ApiError::bad_request("bad_reconcile_request", m))?;
    Ok(to_json(&resp))
}

pub(super) async fn fetch(
    State(node): State<NodeHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: FetchRequest = parse_json(&body.map_err(body_error)?)?;
    let msg = answer::fetch(node.store(), &req)
        .map_err(|m| ApiError::bad_request("bad_reconcile_request", m))?;
    node.served(msg.entries.len()).await;
    // Raw entries are already JSON; serialize the message as is.
    let text = serde_json::to_string(&msg).expect("entries serialize");
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

/// Runs one of v2's answers on a blocking thread (each may hash every id of the ledger);
/// a request it refuses is a 400 naming why.
async fn v2_answer<T, E>(
    node: &NodeHandle,
    body: Result<Bytes, BytesRejection>,
    what: &'static str,
    answer: fn(&crate::ledger::Store, &[u8]) -> Result<T, E>,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let body = body.map_err(body_error)?;
    let store = node.store().clone();
    tokio::task::spawn_blocking(move || answer(&store, &body))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                what,
                format!("answering the {what} request failed"),
            )
        })?
        .map_err(|e| ApiError::bad_request("bad_reconcile_request", e.to_string()))
}

fn binary(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
}

/// v2's first round trip, binary both ways: the root compare and, when roots differ,
/// the first symbols.
pub(super) async fn hello(
    State(node): State<NodeHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    Ok(binary(
        v2_answer(&node, body, "hello", |s, b| {
            reconcile_v2::answer::hello(s, b)
        })
        .await?,
    ))
}

/// v2: a page of coded symbols, binary both ways.
pub(super) async fn sketch(
    State(node): State<NodeHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    Ok(binary(
        v2_answer(&node, body, "sketch", |s, b| {
            reconcile_v2::answer::sketch(s, b)
        })
        .await?,
    ))
}

/// v2: entries by short id (a binary request, the entries as JSON as in `fetch`).
pub(super) async fn fetch_short(
    State(node): State<NodeHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let msg = v2_answer(&node, body, "fetch", |s, b| {
        reconcile_v2::answer::fetch(s, b)
    })
    .await?;
    node.served(msg.entries.len()).await;
    let text = serde_json::to_string(&msg).expect("entries serialize");
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

/// A neighbour's (or anyone's) push: nobody asked for it, so it is held to
/// `LATTICE_PEER_RATE` per caller address (429 with `Retry-After` beyond it).
pub(super) async fn push(
    State(node): State<NodeHandle>,
    remote: Option<axum::Extension<super::conn::RemoteAddr>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json, ApiError> {
    let msg: EntriesMessage = parse_json(&body.map_err(body_error)?)?;
    let entries = answer::verify_push(&msg, node.config().max_payload)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.kind(), e.to_string()))?;
    // Served some other way (no address known): every such caller shares one bucket.
    let from = remote.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |r| r.0.0.ip());
    let appended = node.ingest_pushed(from, entries).await?;
    let accepted = appended.iter().filter(|a| a.inserted).count();
    Ok(to_json(&PushResponse {
        accepted,
        already_present: appended.len() - accepted,
    }))
}

/// Admission: the decisions kept, and every connected peer with its standing.
pub(super) async fn peers(State(node): State<NodeHandle>) -> Json {
    let view = node.admission().await;
    to_json(&json!({
        "enforced": view.enforced,
        "accepted": view.accepted,
        "ignored": view.ignored,
        "peers": node.status().peers,
    }))
}

/// `POST /api/lattice/peers/{peer_id}/accept` and `.../ignore`.
pub(super) async fn decide_peer(
    State(node): State<NodeHandle>,
    Path((peer, decision)): Path<(String, String)>,
) -> Result<Json, ApiError> {
    let accept = match decision.as_str() {
        "accept" => true,
        "ignore" => false,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no such decision {other:?}: accept or ignore"),
            ));
        }
    };
    Ok(to_json(&node.decide(&peer, accept).await?))
}

#[derive(Deserialize)]
pub(super) struct MembersQuery {
    /// A PeerId: also list that author's stored entries (what a removal would keep).
    author: Option<String>,
}

/// The ledger's membership now: authors, administrators, removed authors and every
/// record (applied or on a losing branch), plus `head`, which a new record names.
pub(super) async fn members(
    State(node): State<NodeHandle>,
    Query(q): Query<MembersQuery>,
) -> Result<Json, ApiError> {
    let ledger = node.store().ledger();
    let mut body = serde_json::to_value(ledger.members()).expect("members serialize");
    if let Some(author) = q.author {
        let key = author
            .trim()
            .parse::<crate::p2p::PeerId>()
            .ok()
            .and_then(|p| crate::identity::public_key_of(&p))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "bad_author",
                    format!("author {author:?} is not the PeerId of an ed25519 key"),
                )
            })?;
        let ids = node.store().ids_of_author(&key).map_err(NodeError::from)?;
        body["author_entries"] = json!(ids);
    }
    Ok(axum::Json(body))
}

pub(super) async fn metrics(State(node): State<NodeHandle>) -> Result<Response, ApiError> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, node.registry()).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics",
            "encoding metrics failed",
        )
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct EventsQuery {
    only: Option<String>,
}

/// `status` events (coalesced snapshots), `event` events (node events) and `entry`
/// events (each new entry, as JSON). `?only=entries` sends just the entries: what
/// neighbours follow.
///
/// With a token configured, `entry` events (payloads) go only to clients that send it:
/// `?only=entries` without it is refused, and the plain stream omits them.
pub(super) async fn events(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let only_entries = q.only.as_deref() == Some("entries");
    let may_read_entries = authorized(&app.node, &headers);
    if only_entries && !may_read_entries {
        return Err(unauthorized());
    }
    let permit = app.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!(
                "{} event streams are open already; try again later",
                app.options.max_event_streams
            ),
        )
    })?;
    let node = app.node.clone();
    let entries = if may_read_entries {
        BroadcastStream::new(node.store().subscribe())
            .filter_map(|batch| async move { batch.ok() })
            .flat_map(|batch| {
                stream::iter(
                    batch
                        .iter()
                        .map(|e| Ok(Event::default().event("entry").data(e.to_json())))
                        .collect::<Vec<_>>(),
                )
            })
            .boxed()
    } else {
        stream::empty().boxed()
    };
    let rest = if only_entries {
        stream::empty().boxed()
    } else {
        let node_events =
            BroadcastStream::new(node.subscribe_events()).filter_map(|e| async move {
                e.ok().map(|e| {
                    Ok(Event::default()
                        .event("event")
                        .data(serde_json::to_string(&e).expect("events serialize")))
                })
            });
        stream::select(
            status_stream(node.clone(), app.options.sse_status_interval),
            node_events,
        )
        .boxed()
    };
    let shutdown = node.shutdown_token();
    // The permit lives as long as the stream.
    let all = stream::select(entries, rest)
        .take_until(shutdown.cancelled_owned())
        .map(move |e| {
            let _held = &permit;
            e
        });
    Ok(Sse::new(all).keep_alive(KeepAlive::new().interval(app.options.sse_keepalive)))
}

/// The current status at once, then at most one snapshot per `interval`.
fn status_stream(
    node: NodeHandle,
    interval: Duration,
) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    let rx = node.subscribe_status();
    stream::unfold((rx, true), move |(mut rx, first)| async move {
        if !first {
            tokio::time::sleep(interval).await;
            rx.changed().await.ok()?;
        }
        let status = rx.borrow_and_update().clone();
        let event = Event::default()
            .event("status")
            .data(serde_json::to_string(&status).expect("status serializes"));
        Some((Ok(event), (rx, false)))
    })
}
