// ---- the client -------------------------------------------------------------

/** Where the client is. */
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** A room's place in its history: the last `seq` handed to the app, and its `epoch`. */
export interface RoomPosition {
  room: string;
  epoch: string;
  seq: number;
}

/**
 * Why a room was reset (frames after the last one handed over will not come: reload the
 * room's state): `resume`: the server answered `recovered: false` (new epoch, or its
 * history no longer reaches back); `epoch`: a live frame came with a new epoch (the
 * room's history was lost); `gap`: frames were missing when the gap had to close (the
 * holding buffer was full, or the `resumed` answer came and they had not).
 */
export type ResetReason = 'resume' | 'epoch' | 'gap';

/** What `hook(..)` reports. */
export interface ClientEvents {
  /** A connection attempt starts (`attempt` 0 is the first since the last open). */
  connecting: { attempt: number };
  /** The socket is open. */
  open: { attempt: number };
  /** The socket closed; `opened`: whether it had opened (else the upgrade failed). */
  close: { code: number; reason: string; opened: boolean; willReconnect: boolean };
  /** The next attempt is scheduled at `at` (epoch ms), after `delayMs`. */
  reconnecting: { attempt: number; delayMs: number; at: number };
  /** An error frame from the server (one that no `request(..)` is waiting for). */
  error: ErrorFrame['error'];
  /** Preparing a connection failed (`url` or `protocols` threw). */
  failure: { error: unknown };
  /** Any frame as it arrives, before ordering and before the `on(action)` handlers. */
  frame: ServerFrame;
  /** `resume` recovered the room: every frame missed was handed over, in order, up to `seq`. */
  recovered: { room: string; epoch: string; seq: number };
  /** Frames of the room were lost (see `ResetReason`): reload its state; frames after `seq` follow. */
  reset: { room: string; epoch: string; seq: number; reason: ResetReason };
  /** The server refused to resume the room (the app's room check): the client forgets it. */
  refused: { room: string; error: ErrorFrame['error'] };
}

/** How to connect. */
export interface ClientOptions {
  /** The WebSocket URL, e.g. `wss://host/ws`, or a function asked on every attempt. */
  url: string | (() => string);
  /**
   * Subprotocols to offer, asked on every attempt: with the JWT authorizer,
   * `['switchboard', idToken]` (browsers cannot set an Authorization header).
   */
  protocols?: () => string[] | Promise<string[]>;
  /** `ping` every this many ms while open (default 40000: CloudFront drops idle sockets after 60 s); 0: never. */
  heartbeatMs?: number;
  /** Reconnect with exponential backoff and jitter (default 1 s doubling up to 30 s); `false`: never. */
  reconnect?: { minMs?: number; maxMs?: number } | false;
  /** The WebSocket constructor (default: the global one). */
  WebSocket?: typeof WebSocket;
  /** The room of a room frame (one with `seq` and `epoch`); default: its `room` field, else the room whose epoch it carries. */
  roomOf?: (frame: Record<string, unknown>) => string | undefined;
  /** How many frames per room are held behind a gap (default 1000); beyond, the gap closes with a `reset`. */
  maxHeld?: number;
  /** A gap still open after this many ms asks for the missing frames with `resume` (default 3000); 0: never. */
  gapMs?: number;
  /** `request(..)`'s timeout when the call names none (default 10000 ms). */
  requestTimeoutMs?: number;
  /**
   * Runs each time the socket opens, after the `open` hook; the client sends `resume`
   * when it settles (or after `requestTimeoutMs`). Rejoin rooms here when your `join`
   * announces the caller: `resume` makes it a member again silently, and a `join` after
   * it finds the caller already in.
   */
  beforeResume?: () => unknown;
}

/** `request(..)`'s options. */
export interface RequestOptions {
  /** Reject with a `timeout` RequestError after this many ms (default: the client's `requestTimeoutMs`). */
  timeoutMs?: number;
}

/**
 * Why a `request(..)` failed: `code` is the error frame's (`frame` is the frame), or
 * `timeout` (no answer in time), `closed` (the socket closed first) or `not_connected`.
 */
export class RequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly route: string,
    readonly frame?: ErrorFrame,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

type Handler<T> = (value: T) => void;

/** `send`'s payload argument: optional when the route takes no required field. */
export type PayloadArg<K extends Route> = {} extends RoutePayloads[K]
  ? [payload?: RoutePayloads[K]]
  : [payload: RoutePayloads[K]];

/** What `RoomOrder` hands back, in order: frames for the app and room events. */
export type RoomOutput =
  | { kind: 'frame'; frame: unknown }
  | { kind: 'recovered'; room: string; epoch: string; seq: number }
  | { kind: 'reset'; room: string; epoch: string; seq: number; reason: ResetReason };

/** One room `RoomOrder` follows. */
interface Followed {
  epoch: string;
  /** The last seq handed over. */
  seq: number;
  /** Frames that skipped ahead, by seq. */
  held: Map<number, unknown>;
}

/**
 * Exactly once, in order: the room frames (the ones with `seq` and `epoch`) of every room
 * followed. A duplicate (a `seq` already handed over or held) is dropped; a frame that
 * skips ahead is held until the gap fills, the `resumed` answer closes it, or more than
 * `maxHeld` frames wait (then the held frames go out in order and the room is reset).
 * No I/O and no timers: `SwitchboardClient` feeds it and acts on what it returns.
 */
export class RoomOrder {
  private readonly rooms = new Map<string, Followed>();

  constructor(private readonly maxHeld = 1000) {}

  /** Where each followed room is (what `resume` sends). */
  positions(): RoomPosition[] {
    return [...this.rooms].map(([room, f]) => ({ room, epoch: f.epoch, seq: f.seq }));
  }

  /** Where `room` is, if followed. */
  position(room: string): RoomPosition | undefined {
    const f = this.rooms.get(room);
    return f && { room, epoch: f.epoch, seq: f.seq };
  }

  /** Stops following `room` (after leaving it): it is not resumed any more. */
  forget(room: string): void {
    this.rooms.delete(room);
  }

  /** Whether `room` has frames held behind a gap. */
  hasGap(room: string): boolean {
    return (this.rooms.get(room)?.held.size ?? 0) > 0;
  }

  /** The followed room whose epoch `epoch` is. */
  roomOfEpoch(epoch: string): string | undefined {
    for (const [room, f] of this.rooms) if (f.epoch === epoch) return room;
    return undefined;
  }

  /** A room frame arrived: what to hand over now. The first frame of a room starts its position. */
  accept(room: string, seq: number, epoch: string, frame: unknown): RoomOutput[] {
    const out: RoomOutput[] = [];
    let f = this.rooms.get(room);
    if (!f) {
      f = { epoch, seq: seq - 1, held: new Map() };
      this.rooms.set(room, f);
    } else if (f.epoch !== epoch) {
      // The room's history was lost and restarted: what we held belongs to the old one.
      f.held.clear();
      f.epoch = epoch;
      f.seq = seq - 1;
      out.push({ kind: 'reset', room, epoch, seq: f.seq, reason: 'epoch' });
    }
    if (seq <= f.seq || f.held.has(seq)) return out;
    f.held.set(seq, frame);
    this.drain(f, out);
    if (f.held.size > this.maxHeld) {
      this.release(f, Infinity, out);
      out.push({ kind: 'reset', room, epoch: f.epoch, seq: f.seq, reason: 'gap' });
    }
    return out;
  }

  /**
   * The `resumed` answer for `room`: its epoch, its last `seq`, and whether the replay
   * (already accepted, it comes first) recovered everything.
   */
  resumed(room: string, epoch: string, seq: number, recovered: boolean): RoomOutput[] {
    const out: RoomOutput[] = [];
    let f = this.rooms.get(room);
    if (!f) {
      f = { epoch, seq, held: new Map() };
      this.rooms.set(room, f);
    }
    if (!recovered || f.epoch !== epoch) {
      // Nothing was replayed: the app reloads the room as of `seq`; frames after it follow.
      for (const s of [...f.held.keys()]) if (s <= seq) f.held.delete(s);
      f.epoch = epoch;
      f.seq = Math.max(0, seq);
      out.push({ kind: 'reset', room, epoch, seq: f.seq, reason: 'resume' });
      this.drain(f, out);
      return out;
    }
    // Every frame up to `seq` was replayed, so nothing up to it is still coming.
    const complete = this.release(f, seq, out);
    this.drain(f, out);
    out.push(
      complete
        ? { kind: 'recovered', room, epoch, seq: f.seq }
        : { kind: 'reset', room, epoch, seq: f.seq, reason: 'gap' },
    );
    return out;
  }

  /** Hands over the consecutive held frames after the position. */
  private drain(f: Followed, out: RoomOutput[]): void {
    while (f.held.has(f.seq + 1)) {
      const next = f.held.get(f.seq + 1);
      f.held.delete(f.seq + 1);
      f.seq++;
      out.push({ kind: 'frame', frame: next });
    }
  }

  /**
   * Closes the gap up to `upTo`: hands over every held frame up to it in seq order, and
   * moves the position to `upTo` (or the last frame, for `Infinity`). `true` when no
   * frame was missing.
   */
  private release(f: Followed, upTo: number, out: RoomOutput[]): boolean {
    const seqs = [...f.held.keys()].filter((s) => s <= upTo).sort((a, b) => a - b);
    let complete = true;
    for (const s of seqs) {
      if (s !== f.seq + 1) complete = false;
      out.push({ kind: 'frame', frame: f.held.get(s) });
      f.held.delete(s);
      f.seq = s;
    }
    if (Number.isFinite(upTo) && f.seq < upTo) {
      complete = false;
      f.seq = upTo;
    }
    return complete;
  }
}

/** One `request(..)` waiting for its answer. */
interface Pending {
  route: string;
  resolve: (frame: unknown) => void;
  reject: (error: RequestError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * A small typed client: one socket, reconnected until `close()`. Room frames (with
 * `seq` and `epoch`) reach `on(action)` handlers exactly once and in order, per room;
 * after every reconnect the client sends `resume` for the rooms it follows.
 */
export class SwitchboardClient {
  private ws: WebSocket | null = null;
  private wanted = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private currentState: ConnectionState = 'idle';
  private readonly handlers = new Map<string, Set<Handler<never>>>();
  private readonly hooks = new Map<string, Set<Handler<never>>>();
  private readonly order: RoomOrder;
  private readonly pending = new Map<string, Pending>();
  private readonly gapTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private nextId = 0;

  constructor(private readonly options: ClientOptions) {
    this.order = new RoomOrder(options.maxHeld ?? 1000);
  }

  /** Where the client is. */
  get state(): ConnectionState {
    return this.currentState;
  }

  /** Whether frames can be sent now. */
  get connected(): boolean {
    return this.ws !== null && this.ws.readyState === 1;
  }

  /** Where each room the client follows is in its history (what the next `resume` sends). */
  get rooms(): RoomPosition[] {
    return this.order.positions();
  }

  /** Connects, and keeps reconnecting after drops until `close()`. */
  connect(): void {
    this.wanted = true;
    if (this.ws || this.currentState === 'connecting') return;
    this.clearRetry();
    void this.open();
  }

  /** Skips the backoff wait (e.g. when the browser comes back online). */
  reconnectNow(): void {
    if (this.wanted && !this.ws && this.retryTimer !== undefined) {
      this.clearRetry();
      void this.open();
    }
  }

  /** Closes the socket and stops reconnecting. */
  close(code = 1000, reason = ''): void {
    this.wanted = false;
    this.clearRetry();
    this.stopHeartbeat();
    this.dropConnection();
    const ws = this.ws;
    this.ws = null;
    this.currentState = 'closed';
    if (ws) {
      try {
        ws.close(code, reason);
      } catch {
        // already closing
      }
    }
  }

  /** Sends a route's frame; `false` when not connected (nothing is queued). */
  send<K extends Route>(route: K, ...payload: PayloadArg<K>): boolean {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify({ ...(payload[0] ?? {}), action: route }));
    return true;
  }

  /**
   * Sends a route's frame with a fresh `id` and resolves with the answer carrying that id
   * (which then skips the `on(action)` handlers); rejects with a `RequestError`: the
   * error frame's code, `timeout`, `closed` or `not_connected`.
   */
  request<K extends Route>(
    route: K,
    payload: RoutePayloads[K],
    options: RequestOptions = {},
  ): Promise<RouteReplies[K]> {
    return new Promise<RouteReplies[K]>((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== 1) {
        reject(new RequestError('not_connected', `${route}: not connected`, route));
        return;
      }
      const id = `r${++this.nextId}`;
      const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs ?? 10000;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RequestError('timeout', `${route}: no answer within ${timeoutMs} ms`, route));
      }, timeoutMs);
      this.pending.set(id, { route, resolve: resolve as (frame: unknown) => void, reject, timer });
      this.ws.send(JSON.stringify({ ...(payload ?? {}), action: route, id }));
    });
  }

  /** Stops following `room` (call it after leaving): it is not resumed after reconnects. */
  forgetRoom(room: string): void {
    this.order.forget(room);
    this.clearGapTimer(room);
  }

  /** Calls `handler` with every server message of `action`; returns the unsubscriber. */
  on<A extends Action>(action: A, handler: Handler<ServerMessages[A]>): () => void {
    return add(this.handlers, action, handler);
  }

  /** Observes the connection (`open`, `close`, `reconnecting`, `error` frames, `reset`, ...). */
  hook<E extends keyof ClientEvents>(event: E, handler: Handler<ClientEvents[E]>): () => void {
    return add(this.hooks, event, handler);
  }

  private emit<E extends keyof ClientEvents>(event: E, value: ClientEvents[E]): void {
    for (const h of this.hooks.get(event) ?? []) (h as Handler<ClientEvents[E]>)(value);
  }

  private async open(): Promise<void> {
    this.currentState = 'connecting';
    this.emit('connecting', { attempt: this.attempt });
    let ws: WebSocket;
    try {
      const url = typeof this.options.url === 'function' ? this.options.url() : this.options.url;
      const protocols = this.options.protocols ? await this.options.protocols() : undefined;
      if (!this.wanted) return;
      const Ctor = this.options.WebSocket ?? WebSocket;
      ws = protocols && protocols.length ? new Ctor(url, protocols) : new Ctor(url);
    } catch (error) {
      this.emit('failure', { error });
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      opened = true;
      const attempt = this.attempt;
      this.attempt = 0;
      this.currentState = 'open';
      this.startHeartbeat();
      if (!this.options.beforeResume) this.resume(this.order.positions());
      this.emit('open', { attempt });
      if (this.options.beforeResume) void this.resumeAfter(ws, this.options.beforeResume);
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (this.ws === ws && typeof ev.data === 'string') this.dispatch(ev.data);
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopHeartbeat();
      this.dropConnection();
      const willReconnect = this.wanted && this.options.reconnect !== false;
      this.currentState = willReconnect ? 'reconnecting' : 'closed';
      this.emit('close', { code: ev.code, reason: ev.reason, opened, willReconnect });
      this.scheduleReconnect();
    };
  }

  /** Sends `resume` once `before` settles (at most `requestTimeoutMs`), if `ws` is still the socket. */
  private async resumeAfter(ws: WebSocket, before: () => unknown): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const limit = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.options.requestTimeoutMs ?? 10000);
    });
    try {
      await Promise.race([Promise.resolve().then(before), limit]);
    } catch {
      // resume anyway: the frames are still wanted
    } finally {
      clearTimeout(timer);
    }
    if (this.ws === ws) this.resume(this.order.positions());
  }

  /** Asks the server for the frames after each position (and membership again). */
  private resume(positions: RoomPosition[]): void {
    if (!positions.length || !this.ws || this.ws.readyState !== 1) return;
    const rooms = positions.map((p) => ({ room: p.room, since: p.seq, epoch: p.epoch }));
    this.ws.send(JSON.stringify({ action: 'resume', rooms }));
  }

  private dispatch(data: string): void {
    let frame: unknown;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (!frame || typeof frame !== 'object' || Array.isArray(frame)) return;
    const f = frame as Record<string, unknown>;
    this.emit('frame', frame as ServerFrame);
    // A `resumed` answer moves the rooms on even when a `request('resume', ..)` waits for it.
    if (f.action === 'resumed') this.onResumed(f);
    if (typeof f.id === 'string' && this.settle(f.id, f)) return;
    if (f.error && typeof f.error === 'object') {
      this.emit('error', f.error as ErrorFrame['error']);
      return;
    }
    if (typeof f.seq === 'number' && typeof f.epoch === 'string') {
      const room = this.options.roomOf
        ? this.options.roomOf(f)
        : typeof f.room === 'string'
          ? f.room
          : this.order.roomOfEpoch(f.epoch);
      if (room !== undefined) {
        this.output(this.order.accept(room, f.seq, f.epoch, f));
        this.watchGap(room);
        return;
      }
    }
    this.deliver(f);
  }

  /** Resolves or rejects the request `id` names; `false` when none waits for it. */
  private settle(id: string, f: Record<string, unknown>): boolean {
    const p = this.pending.get(id);
    if (!p) return false;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (f.error && typeof f.error === 'object') {
      const e = f.error as ErrorFrame['error'];
      p.reject(new RequestError(e.code, e.message ?? e.code, p.route, f as unknown as ErrorFrame));
    } else {
      p.resolve(f);
    }
    return true;
  }

  private onResumed(f: Record<string, unknown>): void {
    if (!Array.isArray(f.rooms)) return;
    for (const entry of f.rooms as Record<string, unknown>[]) {
      if (!entry || typeof entry.room !== 'string') continue;
      const room = entry.room;
      this.clearGapTimer(room);
      if (entry.error && typeof entry.error === 'object') {
        this.order.forget(room);
        this.emit('refused', { room, error: entry.error as ErrorFrame['error'] });
      } else if (typeof entry.epoch === 'string' && typeof entry.seq === 'number') {
        this.output(this.order.resumed(room, entry.epoch, entry.seq, entry.recovered === true));
      }
    }
  }

  private output(outputs: RoomOutput[]): void {
    for (const o of outputs) {
      if (o.kind === 'frame') this.deliver(o.frame as Record<string, unknown>);
      else if (o.kind === 'recovered') this.emit('recovered', { room: o.room, epoch: o.epoch, seq: o.seq });
      else this.emit('reset', { room: o.room, epoch: o.epoch, seq: o.seq, reason: o.reason });
    }
  }

  private deliver(f: Record<string, unknown>): void {
    if (typeof f.action !== 'string') return;
    for (const h of this.handlers.get(f.action) ?? []) (h as Handler<unknown>)(f);
  }

  /** A gap that stays open is closed by asking for what is missing. */
  private watchGap(room: string): void {
    const gapMs = this.options.gapMs ?? 3000;
    if (!this.order.hasGap(room)) {
      this.clearGapTimer(room);
      return;
    }
    if (gapMs <= 0 || this.gapTimers.has(room)) return;
    this.gapTimers.set(
      room,
      setTimeout(() => {
        this.gapTimers.delete(room);
        const position = this.order.position(room);
        if (position && this.order.hasGap(room)) this.resume([position]);
      }, gapMs),
    );
  }

  private clearGapTimer(room: string): void {
    const timer = this.gapTimers.get(room);
    if (timer !== undefined) clearTimeout(timer);
    this.gapTimers.delete(room);
  }

  /** The socket is gone: pending requests fail and gap timers stop (the reconnect resumes). */
  private dropConnection(): void {
    for (const timer of this.gapTimers.values()) clearTimeout(timer);
    this.gapTimers.clear();
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(new RequestError('closed', `${p.route}: the connection closed before the answer`, p.route));
    }
  }

  private scheduleReconnect(): void {
    this.clearRetry();
    const policy = this.options.reconnect;
    if (!this.wanted || policy === false) {
      this.currentState = 'closed';
      return;
    }
    const min = policy?.minMs ?? 1000;
    const max = policy?.maxMs ?? 30000;
    const base = Math.min(max, min * Math.pow(2, Math.min(this.attempt, 10)));
    const delayMs = Math.min(max, Math.round(base * (0.75 + Math.random() * 0.5)));
    this.attempt++;
    this.currentState = 'reconnecting';
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.open();
    }, delayMs);
    this.emit('reconnecting', { attempt: this.attempt, delayMs, at: Date.now() + delayMs });
  }

  private clearRetry(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    const every = this.options.heartbeatMs ?? 40000;
    if (every > 0) {
      this.heartbeat = setInterval(() => {
        if (this.ws && this.ws.readyState === 1) this.ws.send('{"action":"ping"}');
      }, every);
    }
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }
}

function add<T>(map: Map<string, Set<Handler<never>>>, key: string, handler: Handler<T>): () => void {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  const h = handler as Handler<never>;
  set.add(h);
  return () => {
    set.delete(h);
  };
}
