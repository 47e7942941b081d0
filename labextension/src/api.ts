/**
 * The client of the envshare REST API (`{base_url}envshare/api/`).
 *
 * Every URL is built from the server settings' base URL, and every call goes through
 * `ServerConnection.makeRequest`, which adds the token and the XSRF header.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type {
  IDriftReport,
  IEnvDetail,
  IEnvSummary,
  IFiledRequest,
  IInstallRequest,
  INewRequest,
  IPackage,
  IRequestPatch,
  IUsage,
  IWhoami,
  RequestAction,
  RequestStatus
} from './models';
import {
  parseDrift,
  parseEnvDetail,
  parseEnvSummary,
  parsePackage,
  parsePatch,
  parseRequest,
  parseUsage,
  parseWhoami,
  record
} from './models';

/** Why a call failed, as far as the panel needs to tell them apart. */
export type ApiErrorKind =
  | 'network'
  | 'unavailable'
  | 'validation'
  | 'forbidden'
  | 'not-found'
  | 'conflict'
  | 'too-large'
  | 'server'
  | 'bad-response';

/** A failed API call, with the server's message and, for 400s, a message per field. */
export class ApiError extends Error {
  constructor(
    readonly kind: ApiErrorKind,
    readonly status: number,
    message: string,
    readonly fieldErrors: Readonly<Record<string, string>> = {},
    /** Whether the call went to the request service (requests, usage), which has a database. */
    readonly requestService = false
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

function kindOf(status: number): ApiErrorKind {
  switch (status) {
    case 400:
      return 'validation';
    case 401:
    case 403:
      return 'forbidden';
    case 404:
      return 'not-found';
    case 409:
      return 'conflict';
    case 413:
      return 'too-large';
    case 502:
    case 503:
    case 504:
      return 'unavailable';
    default:
      return 'server';
  }
}

/** An error explained: what happened and what to do, and the server's own words when they add to it. */
export interface IErrorDescription {
  readonly message: string;
  readonly detail: string;
}

/**
 * Explain an error raised while doing `what` (e.g. "loading the environments") in sentences a
 * person can act on. Request-service outages say that kernels are unaffected.
 */
export function describeError(error: unknown, what: string): IErrorDescription {
  if (!(error instanceof ApiError)) {
    const detail = error instanceof Error ? error.message : String(error);
    return { message: `Something went wrong while ${what}.`, detail };
  }
  const server = error.message;
  switch (error.kind) {
    case 'network':
      return {
        message: `Cannot reach the Jupyter server while ${what}. Check that the server is still running and your network connection; the panel tries again by itself.`,
        detail: ''
      };
    case 'unavailable':
      return error.requestService
        ? {
            message:
              'Requests are unavailable right now; kernels keep working. Try again in a few minutes.',
            detail: server
          }
        : {
            message: `The Jupyter server is temporarily unavailable while ${what}. The panel tries again by itself.`,
            detail: server
          };
    case 'validation':
      return {
        message: server || `The server did not accept this while ${what}.`,
        detail: ''
      };
    case 'forbidden':
      return {
        message: `${server ? `${server.replace(/\.?$/, '.')} ` : ''}If your session expired, reload the page to log in again.`,
        detail: ''
      };
    case 'not-found':
      return {
        message:
          server ||
          `Not found while ${what}: it may have been removed; refresh the list.`,
        detail: ''
      };
    case 'conflict':
      return {
        message:
          server || 'This changed in the meantime; refresh and try again.',
        detail: ''
      };
    case 'too-large':
      return {
        message:
          'That is too much text: shorten the reason or the list of packages.',
        detail: server
      };
    case 'bad-response':
      return {
        message: `The server sent an answer the panel cannot read while ${what}. Reload the page; if it persists, the server and the panel may be of different versions.`,
        detail: server
      };
    case 'server':
      return {
        message: `The server failed while ${what}. Try again; the server log has the details.`,
        detail: server
      };
  }
}

/** {@link describeError} as one line. */
export function errorMessage(error: unknown, what: string): string {
  const { message, detail } = describeError(error, what);
  return detail ? `${message} (${detail})` : message;
}

/** Filters of `GET requests`. */
export interface IRequestFilter {
  readonly mine?: boolean;
  readonly env?: string;
  readonly status?: RequestStatus;
}

/** The envshare REST API. */
export class EnvShareClient {
  constructor(settings?: ServerConnection.ISettings) {
    this.serverSettings = settings ?? ServerConnection.makeSettings();
  }

  /** The server connection settings every URL is built from. */
  readonly serverSettings: ServerConnection.ISettings;

  /** `GET envs`. */
  async listEnvs(): Promise<IEnvSummary[]> {
    const body = record(await this.call(['envs']));
    return Array.isArray(body.envs) ? body.envs.map(parseEnvSummary) : [];
  }

  /** `GET envs/{name}`. */
  async getEnv(name: string): Promise<IEnvDetail> {
    return parseEnvDetail(await this.call(['envs', name]));
  }

  /** `GET envs/{name}/drift[?deep=1]`. */
  async getDrift(name: string, deep = false): Promise<IDriftReport> {
    return parseDrift(
      await this.call(['envs', name, 'drift'], deep ? { deep: '1' } : {})
    );
  }

  /** `GET envs/{name}/packages`. */
  async getPackages(name: string): Promise<IPackage[]> {
    const body = record(await this.call(['envs', name, 'packages']));
    return Array.isArray(body.packages) ? body.packages.map(parsePackage) : [];
  }

  /** `GET whoami`. */
  async whoami(): Promise<IWhoami> {
    return parseWhoami(await this.call(['whoami']));
  }

  /** `GET requests?mine=&env=&status=`. */
  async listRequests(filter: IRequestFilter = {}): Promise<IInstallRequest[]> {
    const query: Record<string, string> = {};
    if (filter.mine) {
      query.mine = '1';
    }
    if (filter.env) {
      query.env = filter.env;
    }
    if (filter.status) {
      query.status = filter.status;
    }
    const body = record(await this.call(['requests'], query));
    return Array.isArray(body.requests) ? body.requests.map(parseRequest) : [];
  }

  /** `POST requests`: a new request, or support added to the open one for the same specs. */
  async createRequest(request: INewRequest): Promise<IFiledRequest> {
    const body = record(
      await this.call(
        ['requests'],
        {},
        { method: 'POST', body: JSON.stringify(request) }
      )
    );
    return {
      request: parseRequest(body.request),
      created: body.created === true
    };
  }

  /** `GET requests/{id}`. */
  async getRequest(id: number): Promise<IInstallRequest> {
    return parseRequest(
      record(await this.call(['requests', String(id)])).request
    );
  }

  /** `PATCH requests/{id}`: support, withdraw, approve, reject or done, with a comment. */
  async actOnRequest(
    id: number,
    action: RequestAction,
    comment = ''
  ): Promise<IInstallRequest> {
    const body = record(
      await this.call(
        ['requests', String(id)],
        {},
        { method: 'PATCH', body: JSON.stringify({ action, comment }) }
      )
    );
    return parseRequest(body.request);
  }

  /** `GET requests/{id}/patch`: the spec change as a unified diff. */
  async getPatch(id: number): Promise<IRequestPatch> {
    return parsePatch(await this.call(['requests', String(id), 'patch']));
  }

  /** `GET usage` (admins). */
  async getUsage(): Promise<IUsage> {
    return parseUsage(await this.call(['usage']));
  }

  /** The URL of an API path (each segment encoded) with a query string. */
  url(
    path: readonly string[],
    query: Readonly<Record<string, string>> = {}
  ): string {
    const base = URLExt.join(
      this.serverSettings.baseUrl,
      'envshare',
      'api',
      ...path.map(segment => encodeURIComponent(segment))
    );
    const search = URLExt.objectToQueryString(query);
    return search === '?' ? base : base + search;
  }

  private async call(
    path: readonly string[],
    query: Readonly<Record<string, string>> = {},
    init: RequestInit = {}
  ): Promise<unknown> {
    const headers = init.body
      ? { 'Content-Type': 'application/json' }
      : undefined;
    const requestService = path[0] === 'requests' || path[0] === 'usage';
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(
        this.url(path, query),
        { ...init, headers },
        this.serverSettings
      );
    } catch (error) {
      // makeRequest rejects with NetworkError when fetch itself fails (server down, offline).
      const detail = error instanceof Error ? error.message : String(error);
      throw new ApiError('network', 0, detail, {}, requestService);
    }
    const text = await response.text().catch(() => '');
    let body: unknown;
    try {
      body = text ? (JSON.parse(text) as unknown) : null;
    } catch {
      body = null;
    }
    if (!response.ok) {
      const r = record(body);
      const message =
        typeof r.message === 'string' && r.message
          ? r.message
          : `${String(response.status)} ${response.statusText}`.trim();
      const errors: Record<string, string> = {};
      for (const [field, value] of Object.entries(record(r.errors))) {
        if (typeof value === 'string') {
          errors[field] = value;
        }
      }
      throw new ApiError(
        kindOf(response.status),
        response.status,
        message,
        errors,
        requestService
      );
    }
    if (body === null) {
      throw new ApiError(
        'bad-response',
        response.status,
        'the body is not JSON'
      );
    }
    return body;
  }
}
