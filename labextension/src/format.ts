/**
 * Pure helpers that turn API records into what the panel shows: labels, filters, groupings,
 * links and dates. No DOM, no requests.
 */
import type {
  EnvStatus,
  IDriftChange,
  IEnvSummary,
  IEnvUsage,
  IGitInfo,
  IInstallRequest,
  IKernelUsage,
  IPackage,
  IPackageAttempts,
  ISupporter,
  IUsage,
  RequestStatus
} from './models';
import { DRIFT_KINDS } from './models';

/** How each status reads in a badge. */
export const STATUS_LABELS: Readonly<Record<EnvStatus, string>> = {
  'in-sync': 'In sync',
  drifted: 'Drifted',
  unlocked: 'Unlocked',
  unavailable: 'Unavailable'
};

/** What each status means, for tooltips and screen readers. */
export const STATUS_HELP: Readonly<Record<EnvStatus, string>> = {
  'in-sync':
    'The installed packages match the lock file the environment was built from.',
  drifted:
    'The installed packages differ from the lock file: see Drift in the details.',
  unlocked:
    'No lock file is recorded for this environment, so drift cannot be checked.',
  unavailable: 'This environment cannot be used right now: see its problems.'
};

/** How each request status reads. */
export const REQUEST_STATUS_LABELS: Readonly<Record<RequestStatus, string>> = {
  open: 'Open',
  approved: 'Approved',
  rejected: 'Rejected',
  done: 'Done',
  withdrawn: 'Withdrawn'
};

const DRIFT_LABELS: Readonly<Record<string, string>> = {
  added: 'Added (not in the lock)',
  removed: 'Removed (in the lock, not installed)',
  version: 'Other version than locked',
  build: 'Other build than locked',
  channel: 'Other channel than locked',
  artifact: 'Other package file than locked',
  'pip-overlay': 'Installed by pip over the environment',
  'file-modified': 'Files modified after install',
  'file-missing': 'Files missing'
};

/** The heading of a drift kind. */
export function driftKindLabel(kind: string): string {
  return DRIFT_LABELS[kind] ?? kind;
}

/** Drift changes grouped by kind, known kinds first in a fixed order, each group non-empty. */
export function groupDrift(
  changes: readonly IDriftChange[]
): { kind: string; label: string; changes: IDriftChange[] }[] {
  const groups = new Map<string, IDriftChange[]>();
  for (const change of changes) {
    const group = groups.get(change.kind);
    if (group) {
      group.push(change);
    } else {
      groups.set(change.kind, [change]);
    }
  }
  const known: readonly string[] = DRIFT_KINDS;
  const order = [
    ...known,
    ...[...groups.keys()].filter(k => !known.includes(k)).sort()
  ];
  return order
    .filter(kind => groups.has(kind))
    .map(kind => ({
      kind,
      label: driftKindLabel(kind),
      changes: groups.get(kind) ?? []
    }));
}

/** Environments whose name, display name, description or prefix contain `text` (any case). */
export function filterEnvs(
  envs: readonly IEnvSummary[],
  text: string,
  status: EnvStatus | ''
): IEnvSummary[] {
  const needle = text.trim().toLowerCase();
  return envs.filter(
    env =>
      (status === '' || env.status === status) &&
      (needle === '' ||
        [env.name, env.displayName, env.description, env.prefix].some(field =>
          field.toLowerCase().includes(needle)
        ))
  );
}

/** Packages whose name, version or channel contain `text`, optionally of one kind. */
export function filterPackages(
  packages: readonly IPackage[],
  text: string,
  kind: string
): IPackage[] {
  const needle = text.trim().toLowerCase();
  return packages.filter(
    p =>
      (kind === '' || p.kind === kind) &&
      (needle === '' ||
        [p.name, p.version, p.channel].some(field =>
          field.toLowerCase().includes(needle)
        ))
  );
}

/** A short name for a channel URL: `conda-forge` for `https://conda.anaconda.org/conda-forge`. */
export function channelLabel(channel: string): string {
  const trimmed = channel.replace(/\/+$/, '');
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    return trimmed;
  }
  const last = trimmed.split('/').pop() ?? trimmed;
  return last || trimmed;
}

/** Where a package came from, in words. */
export function packageSource(p: IPackage): string {
  if (p.kind === 'pypi') {
    return 'PyPI';
  }
  return channelLabel(p.channel) || 'conda';
}

/**
 * A web link to the commit, when the remote is an https URL (GitHub, GitLab, Gitea and
 * Bitbucket all answer `<repo>/commit/<sha>`); null otherwise, e.g. for ssh remotes.
 */
export function commitUrl(git: IGitInfo | null): string | null {
  if (!git || !/^[0-9a-f]{7,64}$/i.test(git.sha)) {
    return null;
  }
  let url: URL;
  try {
    url = new URL(git.remoteUrl);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' || url.username || url.password) {
    return null;
  }
  const path = url.pathname.replace(/\/+$/, '').replace(/\.git$/, '');
  return `${url.origin}${path}/commit/${git.sha}`;
}

/** Everyone who needs a request: its requester and its supporters, once each. */
export function people(request: IInstallRequest): string[] {
  return [
    ...new Set([request.requester, ...request.supporters.map(s => s.user)])
  ].filter(user => user !== '');
}

/** Those who support a request besides its requester. */
export function otherSupporters(request: IInstallRequest): ISupporter[] {
  return request.supporters.filter(s => s.user !== request.requester);
}

/** "1 person needs this" / "3 people need this". */
export function demandText(request: IInstallRequest): string {
  const count = people(request).length;
  return count === 1
    ? '1 person needs this'
    : `${String(count)} people need this`;
}

/** "Requested #12 — open, 3 people need this". */
export function requestSummary(request: IInstallRequest): string {
  return `#${String(request.id)} — ${request.status}, ${demandText(request)}`;
}

/** Requests, most demanded first: people, then intercepted attempts, then oldest first. */
export function sortByDemand(
  requests: readonly IInstallRequest[]
): IInstallRequest[] {
  return [...requests].sort(
    (a, b) =>
      people(b).length - people(a).length ||
      b.attempts - a.attempts ||
      (a.createdAt ?? '').localeCompare(b.createdAt ?? '') ||
      a.id - b.id
  );
}

/** The last comment an admin left on a request (the request's own field wins). */
export function adminComment(
  request: IInstallRequest
): { text: string; actor: string } | null {
  const change = [...request.history]
    .reverse()
    .find(h => h.comment !== '' && h.actor !== '');
  if (request.adminComment) {
    return { text: request.adminComment, actor: change?.actor ?? '' };
  }
  return change && change.actor !== request.requester
    ? { text: change.comment, actor: change.actor }
    : null;
}

/** Launches of an environment's kernels, most launched first. */
export function launchesOf(usage: IUsage, env: string): IKernelUsage[] {
  return usage.launches
    .filter(l => l.env === env)
    .sort((a, b) => b.launches - a.launches);
}

/** An environment's row of `GET usage`, or null from a server that does not send them. */
export function envUsageOf(usage: IUsage, env: string): IEnvUsage | null {
  return usage.envs.find(e => e.env === env) ?? null;
}

/** How a kernel is named in usage: its kernelspec name while it exists, else its directory. */
export function kernelLabel(launch: IKernelUsage): string {
  return launch.kernelName ?? launch.kernel;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The environments not launched for `days` days (never launched included), in their order;
 * all of them when `days` is null. A last use that does not parse is kept: it cannot be
 * shown to be recent.
 */
export function unusedFor(
  envs: readonly IEnvUsage[],
  days: number | null,
  now: number = Date.now()
): IEnvUsage[] {
  if (days === null) {
    return [...envs];
  }
  const cutoff = now - days * DAY_MS;
  return envs.filter(e => {
    const last = e.lastUsed === null ? NaN : Date.parse(e.lastUsed);
    return Number.isNaN(last) || last <= cutoff;
  });
}

/** Intercepted install attempts in an environment, most attempted package first. */
export function attemptsOf(
  usage: IUsage,
  env: string,
  limit = 10
): IPackageAttempts[] {
  return usage.attempts
    .filter(a => a.env === env)
    .sort(
      (a, b) => b.attempts - a.attempts || a.package.localeCompare(b.package)
    )
    .slice(0, limit);
}

/** The latest of some ISO timestamps, or null. */
export function latest(times: readonly (string | null)[]): string | null {
  let best: string | null = null;
  let bestTime = -Infinity;
  for (const time of times) {
    const value = time === null ? NaN : Date.parse(time);
    if (!Number.isNaN(value) && value > bestTime) {
      best = time;
      bestTime = value;
    }
  }
  return best;
}

/** An ISO timestamp as a local date and time (the raw text when it does not parse). */
export function formatDateTime(iso: string | null): string {
  if (!iso) {
    return '—';
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? iso
    : date.toLocaleString(undefined, {
        year: 'numeric',
        month: 'short',
        day: 'numeric',
        hour: '2-digit',
        minute: '2-digit'
      });
}

/** "just now", "5 minutes ago", "3 days ago", or the date for anything older than a month. */
export function relativeTime(
  iso: string | null,
  now: number = Date.now()
): string {
  if (!iso) {
    return 'never';
  }
  const then = Date.parse(iso);
  if (Number.isNaN(then)) {
    return iso;
  }
  const seconds = Math.round((now - then) / 1000);
  if (seconds < 0) {
    return formatDateTime(iso);
  }
  const steps: [number, string][] = [
    [60, 'second'],
    [60, 'minute'],
    [24, 'hour'],
    [31, 'day']
  ];
  let value = seconds;
  for (const [size, unit] of steps) {
    if (value < size) {
      if (unit === 'second') {
        return 'just now';
      }
      return `${String(value)} ${unit}${value === 1 ? '' : 's'} ago`;
    }
    value = Math.floor(value / size);
  }
  return formatDateTime(iso);
}

/** "1 package" / "12 packages" / "packages unknown". */
export function packageCountText(count: number | null): string {
  if (count === null) {
    return 'packages unknown';
  }
  return count === 1 ? '1 package' : `${String(count)} packages`;
}

/** A SHA-256 shortened for display. */
export function shortHash(hash: string): string {
  return hash.length > 12 ? hash.slice(0, 12) : hash;
}

/** A word for a POSIX shell: left alone when plain, single-quoted otherwise. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_.,:=@%+/[\]-]+$/.test(word)
    ? word
    : `'${word.replace(/'/g, `'\\''`)}'`;
}
