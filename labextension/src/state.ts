/**
 * The panel's shared state: who the user is, the environments, the user's requests and (for
 * admins) the queue, refreshed by one poll that every view listens to.
 */
import { Token } from '@lumino/coreutils';
import type { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import type { ISignal } from '@lumino/signaling';
import { Signal } from '@lumino/signaling';

import type { EnvShareClient } from './api';
import { ApiError } from './api';
import type {
  IEnvSummary,
  IFiledRequest,
  IInstallRequest,
  INewRequest,
  IWhoami,
  RequestAction
} from './models';

/** How often the panel asks the server again while it is visible. */
export const REFRESH_INTERVAL_MS = 30_000;
/** A refresh on regaining focus is skipped when the last one is younger than this. */
const FOCUS_REFRESH_MIN_AGE_MS = 5_000;

/** Something loaded from the server: its value, or why it could not be loaded. */
export interface ILoaded<T> {
  readonly value: T;
  readonly error: unknown;
}

/** The state every view of jupyter-envshare shares. */
export class EnvShareModel implements IDisposable {
  constructor(readonly client: EnvShareClient) {
    this._poll = new Poll({
      auto: false,
      factory: () => this._refresh(),
      frequency: {
        interval: REFRESH_INTERVAL_MS,
        backoff: true,
        max: 10 * REFRESH_INTERVAL_MS
      },
      name: 'jupyter-envshare:refresh',
      // Nobody looks: do not load a hub's database with requests from hidden tabs.
      standby: () => document.hidden || this._visible.size === 0
    });
    window.addEventListener('focus', this._onFocus);
  }

  /** Emitted whenever any part of the state changes. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Emitted after the user filed or acted on a request (views showing requests reload). */
  get requestsChanged(): ISignal<this, IInstallRequest> {
    return this._requestsChanged;
  }

  /** Emitted when some view asks to open the request form on an environment. */
  get requestFormAsked(): ISignal<this, string> {
    return this._requestFormAsked;
  }

  /** The caller (null until known). */
  get whoami(): ILoaded<IWhoami | null> {
    return this._whoami;
  }

  /** The environments the caller may use. */
  get envs(): ILoaded<readonly IEnvSummary[] | null> {
    return this._envs;
  }

  /** The caller's own requests. */
  get myRequests(): ILoaded<readonly IInstallRequest[] | null> {
    return this._mine;
  }

  /** Every request (admins only; null for others). */
  get queue(): ILoaded<readonly IInstallRequest[] | null> {
    return this._queue;
  }

  /** Whether the caller administers shared environments. */
  get isAdmin(): boolean {
    return this._whoami.value?.isAdmin === true;
  }

  /** When the state was last refreshed (successfully or not), or null before the first time. */
  get refreshedAt(): Date | null {
    return this._refreshedAt;
  }

  /** Whether a refresh is running. */
  get refreshing(): boolean {
    return this._refreshing;
  }

  /** The summary of one environment, if listed. */
  env(name: string): IEnvSummary | undefined {
    return this._envs.value?.find(e => e.name === name);
  }

  /** Say whether a view is visible: the poll runs only while at least one is. */
  setVisible(view: string, visible: boolean): void {
    const before = this._visible.size;
    if (visible) {
      this._visible.add(view);
    } else {
      this._visible.delete(view);
    }
    if (before === 0 && this._visible.size > 0) {
      void this._poll.start();
      if (this._isStale()) {
        void this.refresh();
      }
    }
  }

  /** Refresh now; resolves when done (a refresh already running is joined, not repeated). */
  refresh(): Promise<void> {
    return this._refresh().catch(() => undefined);
  }

  /** File a request (the server folds it into an open one for the same specs). */
  async createRequest(request: INewRequest): Promise<IFiledRequest> {
    const filed = await this.client.createRequest(request);
    this._requestsChanged.emit(filed.request);
    void this._refreshRequests();
    return filed;
  }

  /** Support, withdraw, approve, reject or mark done; the lists are reloaded either way. */
  async act(
    id: number,
    action: RequestAction,
    comment = ''
  ): Promise<IInstallRequest> {
    let request: IInstallRequest;
    try {
      request = await this.client.actOnRequest(id, action, comment);
    } catch (reason) {
      // A refused action mostly means the lists are out of date: someone else acted first.
      void this._refreshRequests();
      throw reason;
    }
    this._requestsChanged.emit(request);
    void this._refreshRequests();
    return request;
  }

  /** Ask the sidebar to show the request form for `env`. */
  askRequestForm(env: string): void {
    this._requestFormAsked.emit(env);
  }

  /** Whether the model is disposed. */
  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  /** Stop polling and listening. */
  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    window.removeEventListener('focus', this._onFocus);
    this._poll.dispose();
    Signal.clearData(this);
  }

  private _isStale(): boolean {
    return (
      this._refreshedAt === null ||
      Date.now() - this._refreshedAt.getTime() > REFRESH_INTERVAL_MS
    );
  }

  private readonly _onFocus = (): void => {
    const age =
      this._refreshedAt === null
        ? Infinity
        : Date.now() - this._refreshedAt.getTime();
    if (this._visible.size > 0 && age > FOCUS_REFRESH_MIN_AGE_MS) {
      void this.refresh();
    }
  };

  private _refresh(): Promise<void> {
    this._running ??= this._load().finally(() => {
      this._running = null;
    });
    return this._running;
  }

  private async _load(): Promise<void> {
    this._refreshing = true;
    this._changed.emit();
    try {
      const [whoami, envs] = await Promise.allSettled([
        this.client.whoami(),
        this.client.listEnvs()
      ]);
      this._whoami = settle(whoami, this._whoami.value);
      this._envs = settle(envs, this._envs.value);
      await this._refreshRequests(false);
      const failed = [this._whoami.error, this._envs.error].find(
        (e): e is ApiError =>
          e instanceof ApiError &&
          (e.kind === 'network' || e.kind === 'unavailable')
      );
      if (failed !== undefined) {
        // Rejecting makes the poll back off while the server is unreachable.
        throw failed;
      }
    } finally {
      this._refreshing = false;
      this._refreshedAt = new Date();
      this._changed.emit();
    }
  }

  private async _refreshRequests(emit = true): Promise<void> {
    const [mine, queue] = await Promise.allSettled([
      this.client.listRequests({ mine: true }),
      this.isAdmin ? this.client.listRequests() : Promise.resolve(null)
    ]);
    this._mine = settle(mine, this._mine.value);
    this._queue = settle(queue, this._queue.value);
    if (emit) {
      this._changed.emit();
    }
  }

  private readonly _poll: Poll;
  private readonly _visible = new Set<string>();
  private readonly _changed = new Signal<this, void>(this);
  private readonly _requestsChanged = new Signal<this, IInstallRequest>(this);
  private readonly _requestFormAsked = new Signal<this, string>(this);
  private _whoami: ILoaded<IWhoami | null> = { value: null, error: null };
  private _envs: ILoaded<readonly IEnvSummary[] | null> = {
    value: null,
    error: null
  };
  private _mine: ILoaded<readonly IInstallRequest[] | null> = {
    value: null,
    error: null
  };
  private _queue: ILoaded<readonly IInstallRequest[] | null> = {
    value: null,
    error: null
  };
  private _refreshedAt: Date | null = null;
  private _refreshing = false;
  private _running: Promise<void> | null = null;
}

/** A fulfilled value, or the previous value kept beside the new error (stale beats empty). */
function settle<T>(result: PromiseSettledResult<T>, previous: T): ILoaded<T> {
  return result.status === 'fulfilled'
    ? { value: result.value, error: null }
    : { value: previous, error: result.reason };
}

/** The token of the shared state, for plugins that show envshare data. */
export const IEnvShareModel = new Token<EnvShareModel>(
  'jupyter-envshare:model',
  'The shared environments, the caller and their requests, kept fresh for every view.'
);
