/**
 * The node's wire types, written from the Rust `status.rs` / `lungs.rs` / `reconcile.rs`
 * serialisations. `wire.generated.ts` holds what the node's own types send (written by
 * the Rust test `tests/wire_types.rs`), typed by these: the build fails when they part.
 * The UI renders these; it never derives node state that is not in them.
 */

/** Which lung carries sync. Exactly these strings on the wire. */
export type Lung = 'P2P' | 'HTTP';
/** Which lung may carry sync; `auto` lets the heartbeat decide. */
export type Mode = 'auto' | 'p2p' | 'http';
export const MODES: readonly Mode[] = ['auto', 'p2p', 'http'];

export type NeighborHealth = 'unknown' | 'healthy' | 'unhealthy';
/** `private`: behind a NAT (reached through relays and hole punching). */
export type Reachability = 'public' | 'private' | 'unknown';

/** The lungs' states as the core decides them (sync/states.rs); faces render, never derive. */
export type P2pState = 'carrying' | 'countdown' | 'down' | 'cut' | 'off';
export type HttpState = 'carrying' | 'failing' | 'standby' | 'unready' | 'off';
export type SyncState = 'p2p' | 'http' | 'isolated';
export type FallbackPhase = 'forced' | 'watching' | 'countdown' | 'active';
export const P2P_STATES: readonly P2pState[] = ['carrying', 'countdown', 'down', 'cut', 'off'];
export const HTTP_STATES: readonly HttpState[] = ['carrying', 'failing', 'standby', 'unready', 'off'];
export const SYNC_STATES: readonly SyncState[] = ['p2p', 'http', 'isolated'];
export const FALLBACK_PHASES: readonly FallbackPhase[] = ['forced', 'watching', 'countdown', 'active'];

/** Entries one lung carried since the node started (status.rs `EntryFlow`). */
export interface EntryFlow {
  received: number;
  sent: number;
}

export interface EntriesByLung {
  p2p: EntryFlow;
  http: EntryFlow;
}

export interface NodeInfo {
  peer_id: string;
  /** `LATTICE_NODE_NAME`, when set ("Branch A"). */
  name: string | null;
  version: string;
  http_listen: string;
  started_at_ms: number;
}

export interface Transition {
  at_ms: number;
  from: Lung;
  to: Lung;
  reason: string;
}

/** What one reconciliation moved (sync/reconcile.rs `ReconcileReport`). */
export interface ReconcileReport {
  their_root: string;
  our_root: string;
  in_sync_before: boolean;
  pulled: number;
  pushed: number;
  rounds: number;
  requests: number;
  bytes_sent: number;
  bytes_received: number;
  /** Entries offered whose authors are not members here: not stored. */
  refused: number;
  /** How the difference was found. */
  method: ReconcileMethod;
  /** Coded symbols received (v2's sketch). */
  symbols: number;
}

/** `trivial`: roots equal or one side empty; `walk`: v1's Merkle walk; `sketch`: v2's set
 * sketch decoded; `ids`: it did not, and the other side's ids were listed. */
export type ReconcileMethod = 'trivial' | 'walk' | 'sketch' | 'ids';

export interface NeighborStatus {
  url: string;
  /** The ledger id its state answer named (refused when not ours: `last_error_kind` other_ledger). */
  ledger?: string | null;
  /** The PeerId and name its last state answer gave (null until one was had). */
  peer_id: string | null;
  name: string | null;
  /** When it was last asked for its state (unix ms), by a sync or the standby check. */
  checked_at_ms: number | null;
  health: NeighborHealth;
  last_sync_ms: number | null;
  last_error: string | null;
  last_error_kind: string | null;
  consecutive_failures: number;
  next_attempt_ms: number | null;
  root: string | null;
  root_matches: boolean | null;
  events_connected: boolean;
  events_next_attempt_ms: number | null;
  last_report: ReconcileReport | null;
  /** Entries its event stream announced that were dropped over `LATTICE_PEER_RATE`. */
  rate_dropped?: number;
}

export interface PeerStatus {
  peer_id: string;
  address: string | null;
  /** `tcp` or `quic`. */
  transport: string;
  /** `relayed` while the only connection runs through a relay (never a sync peer). */
  path?: 'direct' | 'relayed';
  rtt_ms: number | null;
  connected_since_ms: number;
  in_mesh: boolean;
  sync_capable: boolean;
  /** The last proof of life (unix ms): a ping answered, or any traffic. */
  last_heard_ms: number;
  /** Set when it keeps another ledger (its id): never a sync peer. */
  other_ledger?: string | null;
  /** False while it waits for Accept / Ignore (a closed ledger's unknown peer). */
  admitted?: boolean;
  /** Unsolicited entries (gossip, sync pushes) dropped over `LATTICE_PEER_RATE`. */
  rate_dropped?: number;
  root: string | null;
  root_matches: boolean | null;
  last_sync_ms: number | null;
}

/** The last reconciliation, whichever lung carried it. */
export interface SyncSummary {
  lung: Lung;
  with: string;
  at_ms: number;
  pulled: number;
  pushed: number;
  bytes: number;
}

/** The status snapshot: the one truth every face shows. */
/** Which ledger this node keeps, and who may write to it (`status.ledger`). */
export interface LedgerInfo {
  id: string;
  name: string;
  /** The development ledger: any key may write, any peer may sync. */
  open: boolean;
  authors: number;
  can_write: boolean;
  /** Entries refused so far because their authors are not members. */
  refused: number;
}

export interface Status {
  /** Absent from nodes older than the ledger identity. */
  ledger?: LedgerInfo;
  p2p_state: P2pState;
  p2p_reason: string;
  http_state: HttpState;
  http_reason: string;
  sync_state: SyncState;
  sync_reason: string;
  fallback_phase: FallbackPhase;
  entries_by_lung: EntriesByLung;
  /** Grows by one with every snapshot of this node (from 1 at its start). */
  seq: number;
  peer_count: number;
  has_peers: boolean;
  http_sync_enabled: boolean;
  sync_mode: Lung;
  heartbeat_active: boolean;
  mode: Mode;
  peerless_since_ms: number | null;
  fallback_deadline_ms: number | null;
  fallback_active_since_ms: number | null;
  fallback_after_ms: number;
  heartbeat_ms: number;
  http_poll_ms: number;
  last_transition: Transition | null;
  merkle_root: string;
  entry_count: number;
  node: NodeInfo;
  neighbors: NeighborStatus[];
  last_sync: SyncSummary | null;
  p2p_blocked: boolean;
  p2p_listen: string[];
  peers: PeerStatus[];
  store_failure: string | null;
  /** Whether this node can be dialed from the internet, as AutoNAT judged it. */
  reachability: Reachability;
  /** The node's clock when the snapshot was taken (unix ms). */
  now_ms: number;
  // presenter: the field below is read by the timeline strip.
  /** The node's recent story, oldest first (at most 32): lung changes, countdowns, operator actions. */
  transitions: TransitionRecord[];
}

/** What an operator did (status.rs `OperatorAction`). */
export type OperatorAction = 'p2p_cut' | 'p2p_restored' | 'mode_set';

/** One step of the node's story (status.rs `TransitionRecord`, tagged by `kind`). */
export type TransitionRecord = { at_ms: number } & (
  | { kind: 'lung'; from: Lung; to: Lung; reason: string }
  | { kind: 'countdown_started'; deadline_ms: number }
  | { kind: 'countdown_reset'; peers: number }
  | { kind: 'operator'; action: OperatorAction; mode: Mode | null; by: string }
);

/** The heartbeat state machine's events (`LungEvent`, tagged by `kind`). */
export type LungEvent =
  | { kind: 'started' }
  | { kind: 'peers_stable'; peers: number }
  | { kind: 'peerless_timer_started'; since_ms: number; deadline_ms: number }
  | { kind: 'peerless_timer_reset'; peers: number }
  | { kind: 'fallback_activated'; after_ms: number }
  | { kind: 'mode_changed'; from: Mode; to: Mode }
  | ({ kind: 'transition' } & Transition);

/** Something that happened on the node, with when (`NodeEvent`, tagged by `type`). */
export type NodeEvent = { at_ms: number } & (
  | { type: 'lung'; event: LungEvent }
  | { type: 'entry_added'; id: string; author: string }
  | { type: 'diverged'; neighbor: string; ours: string; theirs: string }
  | { type: 'sync_completed'; lung: Lung; with: string; report: ReconcileReport }
  | { type: 'store_failed'; reason: string }
  | { type: 'sync_failed'; lung: Lung; with: string; kind: string; message: string }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string }
  | { type: 'operator'; action: OperatorAction; mode: Mode | null; by: string }
  | { type: 'hole_punched'; peer: string }
);

/** A signed entry as JSON. */
export interface WireEntry {
  id: string;
  author: string;
  created_at: number;
  payload: unknown;
  signature: string;
}

export interface ProofStep {
  /** The critical bit index (0 = most significant bit of byte 0). */
  bit: number;
  /** The sibling subtree's hash, hex. */
  sibling: string;
}

/** Inclusion proof; steps run from the root down. */
export interface Proof {
  id: string;
  root: string;
  steps: ProofStep[];
}

export interface PutResult {
  id: string;
  inserted: boolean;
  merkle_root: string;
  entry_count: number;
  /** The payload as stored: canonical JSON, exactly what was signed. */
  payload?: unknown;
}

export interface EntryList {
  entries: WireEntry[];
  entry_count: number;
}

export interface EntryWithProof {
  entry: WireEntry;
  proof: Proof | null;
  proof_verified: boolean;
}

export interface DemoNode {
  name: string;
  url: string;
  peer_id: string;
  status: Status;
}

export interface DemoStatus {
  running: boolean;
  /** Which demo node the window watches (`null`: the app's own node). */
  focus: number | null;
  nodes: DemoNode[];
  /** The automatic traffic (null while no cluster runs). */
  traffic?: TrafficStatus | null;
  /** The last cut's counter (null before the first cut). */
  cut?: CutCounter | null;
}

export interface TrafficStatus {
  on: boolean;
  per_second: number;
  written: number;
  max_entries: number;
}

/** "Written during the cut: N, delivered to X of Y nodes" (lattice-node demo `CutCounter`). */
export interface CutCounter {
  since_ms: number;
  restored_ms: number | null;
  written: number;
  on_every_node: number;
  least_delivered: number;
  nodes: number;
}

export interface SampleWritten {
  node: string;
  peer_id: string;
  id: string;
  entry_count: number;
}

/** The built-in demo cluster (Tauri only). */
export interface DemoControls {
  start(nodes: number): Promise<unknown>;
  cut(): Promise<unknown>;
  restore(): Promise<unknown>;
  stop(): Promise<unknown>;
  status(): Promise<DemoStatus>;
  /** Watch demo node `index` in the whole window, or the app's own node with `null`. */
  focus(index: number | null): Promise<unknown>;
  /** Automatic traffic from every demo node (a few entries a second, bounded). */
  traffic?(on: boolean): Promise<DemoStatus>;
  /** One sample entry on the watched demo node. */
  sample?(): Promise<SampleWritten>;
}

export type Unsubscribe = () => void;

/** One interface, two transports: Tauri IPC inside the app, HTTP + SSE in a browser. */
export interface Backend {
  kind: 'tauri' | 'http';
  getStatus(): Promise<Status>;
  /** Pushed snapshots, never polled. */
  onStatus(cb: (s: Status) => void): Unsubscribe;
  onEvent(cb: (e: NodeEvent) => void): Unsubscribe;
  /** Whether the push channel is up (SSE open; always true over IPC). */
  onConnection(cb: (connected: boolean) => void): Unsubscribe;
  switchMode(mode: Mode): Promise<Status>;
  /**
   * Signs and appends the payload given as JSON text, sent as typed: parsing it here
   * would silently drop a duplicate key or round a long number before the node could
   * refuse it.
   */
  put(payloadJson: string): Promise<PutResult>;
  listEntries(limit: number): Promise<EntryList>;
  getEntry(id: string): Promise<EntryWithProof>;
  /** "Cut P2P" / "Restore P2P" for this node. */
  setP2pBlocked(blocked: boolean): Promise<Status>;
  /** Accept (true) or Ignore a pending P2P peer; kept in the node's data directory. */
  decidePeer(peerId: string, accept: boolean): Promise<unknown>;
  demo?: DemoControls;
}
