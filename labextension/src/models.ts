/**
 * The shapes the envshare REST API returns (jupyter_envshare/openapi.yaml), parsed defensively.
 *
 * The server is ours, but environments are published by admins and records can be partial or
 * odd: a missing field becomes an empty value instead of an exception, so one strange record
 * never empties a list.
 */

/** Environment status as the server reports it. */
export type EnvStatus = 'in-sync' | 'drifted' | 'unlocked' | 'unavailable';

/** Every status, in the order the filter offers them. */
export const ENV_STATUSES: readonly EnvStatus[] = [
  'in-sync',
  'drifted',
  'unlocked',
  'unavailable'
];

/** A problem the server found with an environment or its lock. */
export interface IProblem {
  readonly kind: string;
  readonly message: string;
  readonly severity: string;
}

/** `GET envs`: one environment in the list. */
export interface IEnvSummary {
  readonly name: string;
  readonly displayName: string;
  readonly description: string;
  readonly prefix: string;
  readonly kernels: readonly string[];
  readonly status: EnvStatus;
  readonly readOnly: boolean;
  readonly packageCount: number | null;
  readonly builtAt: string | null;
  readonly problems: readonly IProblem[];
}

/** A kernel of an environment. */
export interface IKernelInfo {
  readonly name: string;
  readonly displayName: string;
  readonly language: string;
}

/** The spec (environment.yml) an environment was built from. */
export interface ISpecInfo {
  readonly path: string;
  readonly sha256: string;
  readonly name: string;
  readonly channels: readonly string[];
  readonly dependencies: readonly string[];
  readonly pip: readonly string[];
}

/** The lock file an environment was installed from. */
export interface ILockInfo {
  readonly path: string;
  readonly format: string;
  readonly sha256: string;
  readonly platform: string;
  readonly packageCount: number | null;
  readonly problems: readonly IProblem[];
}

/** The git commit the spec was taken from. */
export interface IGitInfo {
  readonly remoteUrl: string;
  readonly sha: string;
}

/** Who built an environment, where, with what. */
export interface IBuilderInfo {
  readonly user: string;
  readonly host: string;
  readonly tool: string;
  readonly toolVersion: string;
}

/** Where an environment came from. */
export interface IProvenance {
  readonly spec: ISpecInfo | null;
  readonly lock: ILockInfo | null;
  readonly git: IGitInfo | null;
  readonly builder: IBuilderInfo | null;
  readonly builtAt: string | null;
}

/** One `conda-meta/history` block. */
export interface ITransaction {
  readonly date: string | null;
  readonly command: string;
  readonly tool: string;
  readonly toolVersion: string;
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

/** A server that reported its view of an environment. */
export interface INodeView {
  readonly host: string;
  readonly fingerprint: string;
  readonly packageCount: number | null;
  readonly seenAt: string | null;
}

/** Whether the servers sharing the database see an environment alike. */
export interface INodeReport {
  readonly agree: boolean | null;
  readonly servers: readonly INodeView[] | null;
  readonly message: string;
}

/** `GET envs/{name}`: one environment in detail. */
export interface IEnvDetail extends Omit<IEnvSummary, 'kernels'> {
  readonly kernels: readonly IKernelInfo[];
  readonly owner: string;
  readonly contact: string;
  readonly provenance: IProvenance;
  readonly channels: readonly string[];
  readonly history: readonly ITransaction[];
  readonly nodes: INodeReport;
}

/** Kinds of drift, in the order the panel groups them. */
export const DRIFT_KINDS = [
  'added',
  'removed',
  'version',
  'build',
  'channel',
  'artifact',
  'pip-overlay',
  'file-modified',
  'file-missing'
] as const;

/** One difference between the installed environment and its lock. */
export interface IDriftChange {
  readonly kind: string;
  readonly package: string;
  readonly locked: string | null;
  readonly installed: string | null;
  readonly path: string;
}

/** `GET envs/{name}/drift`. */
export interface IDriftReport {
  readonly status: EnvStatus;
  readonly checkedAt: string | null;
  readonly lock: { readonly path: string; readonly format: string } | null;
  readonly changes: readonly IDriftChange[];
  readonly findings: readonly IProblem[];
  readonly deep: boolean;
}

/** An installed package (conda or pip). */
export interface IPackage {
  readonly name: string;
  readonly version: string;
  readonly build: string;
  readonly kind: string;
  readonly channel: string;
  readonly installer: string;
}

/** Request statuses. */
export type RequestStatus =
  'open' | 'approved' | 'rejected' | 'done' | 'withdrawn';

/** Every request status. */
export const REQUEST_STATUSES: readonly RequestStatus[] = [
  'open',
  'approved',
  'rejected',
  'done',
  'withdrawn'
];

/** What a user or admin can do to a request. */
export type RequestAction =
  'support' | 'withdraw' | 'approve' | 'reject' | 'done';

/** Someone who needs a requested package too. */
export interface ISupporter {
  readonly user: string;
  readonly reason: string;
  readonly createdAt: string | null;
}

/** One status change of a request. */
export interface IRequestChange {
  readonly actor: string;
  readonly fromStatus: string;
  readonly toStatus: string;
  readonly comment: string;
  readonly at: string | null;
}

/** A request for an addition to a shared environment. */
export interface IInstallRequest {
  readonly id: number;
  readonly env: string;
  readonly specs: readonly string[];
  readonly reason: string;
  readonly requester: string;
  readonly status: RequestStatus;
  readonly adminComment: string;
  readonly createdAt: string | null;
  readonly updatedAt: string | null;
  readonly supporters: readonly ISupporter[];
  readonly history: readonly IRequestChange[];
  readonly attempts: number;
}

/** `POST requests` body. */
export interface INewRequest {
  readonly env: string;
  readonly specs: readonly string[];
  readonly reason: string;
}

/** `POST requests` answer: the request, and whether it is new (else the caller now supports it). */
export interface IFiledRequest {
  readonly request: IInstallRequest;
  readonly created: boolean;
}

/** `GET requests/{id}/patch`. */
export interface IRequestPatch {
  readonly request: number;
  readonly env: string;
  readonly specPath: string;
  readonly diff: string;
}

/** Launches of one kernel. */
export interface IKernelUsage {
  readonly env: string;
  /** The kernel's directory in the environment. */
  readonly kernel: string;
  /** The kernelspec name it is listed under; null when that kernel no longer exists. */
  readonly kernelName: string | null;
  readonly launches: number;
  readonly users: number;
  readonly lastUsed: string | null;
}

/** Intercepted install attempts of one package. */
export interface IPackageAttempts {
  readonly env: string;
  readonly package: string;
  readonly attempts: number;
  readonly users: number;
  readonly lastAt: string | null;
}

/** Launches of one environment, all its kernels together. */
export interface IEnvUsage {
  readonly env: string;
  /** False when the environment is no longer installed (it was launched before). */
  readonly present: boolean;
  readonly launches: number;
  /** Distinct users over all the environment's kernels. */
  readonly users: number;
  readonly lastUsed: string | null;
}

/** `GET usage` (admins). */
export interface IUsage {
  readonly launches: readonly IKernelUsage[];
  readonly attempts: readonly IPackageAttempts[];
  /** Every environment, least recently used first (never launched first); empty from older servers. */
  readonly envs: readonly IEnvUsage[];
}

/** `GET whoami`. */
export interface IWhoami {
  readonly name: string;
  readonly isAdmin: boolean;
}

/** The install guard's advice (`application/vnd.envshare.advice+json`). */
export interface IAdvice {
  readonly env: string;
  readonly specs: readonly string[];
  readonly packages: readonly string[];
  readonly command: string;
  readonly mode: string;
  readonly contact: string;
  readonly reason: string;
}

// -- parsing ---------------------------------------------------------------------------------

type JsonRecord = Readonly<Record<string, unknown>>;

/** `value` as an object, or an empty one. */
export function record(value: unknown): JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as JsonRecord)
    : {};
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function optStr(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function list<T>(value: unknown, item: (raw: unknown) => T): T[] {
  return Array.isArray(value) ? value.map(item) : [];
}

function strings(value: unknown): string[] {
  return list(value, str).filter(s => s !== '');
}

function envStatus(value: unknown): EnvStatus {
  return (ENV_STATUSES as readonly unknown[]).includes(value)
    ? (value as EnvStatus)
    : 'unavailable';
}

function requestStatus(value: unknown): RequestStatus {
  return (REQUEST_STATUSES as readonly unknown[]).includes(value)
    ? (value as RequestStatus)
    : 'open';
}

function problem(raw: unknown): IProblem {
  const r = record(raw);
  return {
    kind: str(r.kind),
    message: str(r.message),
    severity: str(r.severity)
  };
}

/** Parse one `GET envs` entry. */
export function parseEnvSummary(raw: unknown): IEnvSummary {
  const r = record(raw);
  const name = str(r.name);
  return {
    name,
    displayName: str(r.display_name) || name,
    description: str(r.description),
    prefix: str(r.prefix),
    kernels: list(r.kernels, k =>
      typeof k === 'string' ? k : str(record(k).name)
    ),
    status: envStatus(r.status),
    readOnly: r.read_only === true,
    packageCount: num(r.package_count),
    builtAt: optStr(r.built_at),
    problems: list(r.problems, problem)
  };
}

function parseSpec(raw: unknown): ISpecInfo | null {
  if (raw === null || raw === undefined) {
    return null;
  }
  const r = record(raw);
  return {
    path: str(r.path),
    sha256: str(r.sha256),
    name: str(r.name),
    channels: strings(r.channels),
    dependencies: list(r.dependencies, d =>
      typeof d === 'string' ? d : JSON.stringify(d)
    ),
    pip: strings(r.pip)
  };
}

function parseLock(raw: unknown): ILockInfo | null {
  if (raw === null || raw === undefined) {
    return null;
  }
  const r = record(raw);
  return {
    path: str(r.path),
    format: str(r.format),
    sha256: str(r.sha256),
    platform: str(r.platform),
    packageCount: num(r.package_count),
    problems: list(r.problems, problem)
  };
}

function parseProvenance(raw: unknown): IProvenance {
  const r = record(raw);
  const git = r.git === null || r.git === undefined ? null : record(r.git);
  const builder =
    r.builder === null || r.builder === undefined ? null : record(r.builder);
  return {
    spec: parseSpec(r.spec),
    lock: parseLock(r.lock),
    git: git ? { remoteUrl: str(git.remote_url), sha: str(git.sha) } : null,
    builder: builder
      ? {
          user: str(builder.user),
          host: str(builder.host),
          tool: str(builder.tool),
          toolVersion: str(builder.tool_version)
        }
      : null,
    builtAt: optStr(r.built_at)
  };
}

function parseTransaction(raw: unknown): ITransaction {
  const r = record(raw);
  return {
    date: optStr(r.date),
    command: str(r.command),
    tool: str(r.tool),
    toolVersion: str(r.tool_version),
    added: strings(r.added),
    removed: strings(r.removed)
  };
}

function parseNodes(raw: unknown): INodeReport {
  const r = record(raw);
  return {
    agree: typeof r.agree === 'boolean' ? r.agree : null,
    servers: Array.isArray(r.servers)
      ? r.servers.map(s => {
          const v = record(s);
          return {
            host: str(v.host),
            fingerprint: str(v.fingerprint),
            packageCount: num(v.package_count),
            seenAt: optStr(v.seen_at)
          };
        })
      : null,
    message: str(r.message)
  };
}

/** Parse `GET envs/{name}`. */
export function parseEnvDetail(raw: unknown): IEnvDetail {
  const r = record(raw);
  const summary = parseEnvSummary(raw);
  return {
    ...summary,
    kernels: list(r.kernels, k => {
      const v = record(k);
      const name = typeof k === 'string' ? k : str(v.name);
      return {
        name,
        displayName: str(v.display_name) || name,
        language: str(v.language)
      };
    }),
    owner: str(r.owner),
    contact: str(r.contact),
    provenance: parseProvenance(r.provenance),
    channels: strings(r.channels),
    history: list(r.history, parseTransaction),
    nodes: parseNodes(r.nodes)
  };
}

/** Parse `GET envs/{name}/drift`. */
export function parseDrift(raw: unknown): IDriftReport {
  const r = record(raw);
  const lock = r.lock === null || r.lock === undefined ? null : record(r.lock);
  return {
    status: envStatus(r.status),
    checkedAt: optStr(r.checked_at),
    lock: lock ? { path: str(lock.path), format: str(lock.format) } : null,
    changes: list(r.changes, c => {
      const v = record(c);
      return {
        kind: str(v.kind),
        package: str(v.package),
        locked: optStr(v.locked),
        installed: optStr(v.installed),
        path: str(v.path)
      };
    }),
    findings: list(r.findings, problem),
    deep: r.deep === true
  };
}

/** Parse one installed package. */
export function parsePackage(raw: unknown): IPackage {
  const r = record(raw);
  return {
    name: str(r.name),
    version: str(r.version),
    build: str(r.build),
    kind: str(r.kind),
    channel: str(r.channel),
    installer: str(r.installer)
  };
}

/** Parse one request. */
export function parseRequest(raw: unknown): IInstallRequest {
  const r = record(raw);
  return {
    id: num(r.id) ?? 0,
    env: str(r.env),
    specs: strings(r.specs),
    reason: str(r.reason),
    requester: str(r.requester),
    status: requestStatus(r.status),
    adminComment: str(r.admin_comment),
    createdAt: optStr(r.created_at),
    updatedAt: optStr(r.updated_at),
    supporters: list(r.supporters, s => {
      const v = record(s);
      return {
        user: str(v.user),
        reason: str(v.reason),
        createdAt: optStr(v.created_at)
      };
    }),
    history: list(r.history, h => {
      const v = record(h);
      return {
        actor: str(v.actor),
        fromStatus: str(v.from_status),
        toStatus: str(v.to_status),
        comment: str(v.comment),
        at: optStr(v.at)
      };
    }),
    attempts: num(r.attempts) ?? 0
  };
}

/** Parse `GET requests/{id}/patch`. */
export function parsePatch(raw: unknown): IRequestPatch {
  const r = record(raw);
  return {
    request: num(r.request) ?? 0,
    env: str(r.env),
    specPath: str(r.spec_path),
    diff: str(r.diff)
  };
}

/** Parse `GET usage`. */
export function parseUsage(raw: unknown): IUsage {
  const r = record(raw);
  return {
    launches: list(r.launches, l => {
      const v = record(l);
      return {
        env: str(v.env),
        kernel: str(v.kernel),
        kernelName: optStr(v.kernel_name),
        launches: num(v.launches) ?? 0,
        users: num(v.users) ?? 0,
        lastUsed: optStr(v.last_used)
      };
    }),
    attempts: list(r.attempts, a => {
      const v = record(a);
      return {
        env: str(v.env),
        package: str(v.package),
        attempts: num(v.attempts) ?? 0,
        users: num(v.users) ?? 0,
        lastAt: optStr(v.last_at)
      };
    }),
    // The server's order is the point of this list: kept as sent. A row without a name cannot
    // be shown or opened, so it is dropped.
    envs: list(r.envs, e => {
      const v = record(e);
      return {
        env: str(v.env),
        present: v.present !== false,
        launches: num(v.launches) ?? 0,
        users: num(v.users) ?? 0,
        lastUsed: optStr(v.last_used)
      };
    }).filter(e => e.env !== '')
  };
}

/** Parse `GET whoami`. */
export function parseWhoami(raw: unknown): IWhoami {
  const r = record(raw);
  return { name: str(r.name), isAdmin: r.is_admin === true };
}

/** Parse the guard's advice payload (a notebook may hold it as an object or a JSON string). */
export function parseAdvice(raw: unknown): IAdvice {
  let value = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw) as unknown;
    } catch {
      value = {};
    }
  }
  const r = record(value);
  const specs = strings(r.specs);
  return {
    env: str(r.env),
    specs,
    packages: strings(r.packages).length ? strings(r.packages) : specs,
    command: str(r.command),
    mode: str(r.mode) || 'advise',
    contact: str(r.contact),
    reason: str(r.reason)
  };
}
