/**
 * The list of shared environments, with a text filter and a status filter.
 */
import * as React from 'react';

import {
  filterEnvs,
  packageCountText,
  relativeTime,
  STATUS_LABELS
} from '../format';
import type { EnvStatus, IEnvSummary } from '../models';
import { ENV_STATUSES } from '../models';
import type { EnvShareModel } from '../state';
import { Busy, ErrorNotice, StatusBadge, useSignal, When } from './common';

/** The environment list of the sidebar. */
export function EnvList(props: {
  model: EnvShareModel;
  onOpen: (env: string) => void;
}): React.ReactElement {
  const { model } = props;
  useSignal(model.changed);
  const [text, setText] = React.useState('');
  const [status, setStatus] = React.useState<EnvStatus | ''>('');
  const envs = model.envs.value;
  const shown = envs ? filterEnvs(envs, text, status) : [];
  const filtered = text.trim() !== '' || status !== '';

  return (
    <div className="jp-envshare-EnvList">
      <div className="jp-envshare-Filters" role="search">
        <input
          type="search"
          className="jp-envshare-Input jp-envshare-Filters-text"
          placeholder="Filter by name or path"
          aria-label="Filter environments by name or path"
          value={text}
          onChange={e => {
            setText(e.target.value);
          }}
        />
        <select
          className="jp-envshare-Select"
          aria-label="Filter environments by status"
          value={status}
          onChange={e => {
            setStatus(e.target.value as EnvStatus | '');
          }}
        >
          <option value="">Any status</option>
          {ENV_STATUSES.map(s => (
            <option key={s} value={s}>
              {STATUS_LABELS[s]}
            </option>
          ))}
        </select>
      </div>
      <ErrorNotice
        error={model.envs.error}
        what="loading the environments"
        onRetry={() => {
          void model.refresh();
        }}
      />
      {envs === null && model.envs.error === null && (
        <Busy label="Loading environments…" />
      )}
      {envs !== null && (
        <p className="jp-envshare-Summary" aria-live="polite">
          {filtered
            ? `${String(shown.length)} of ${String(envs.length)} environments match`
            : envs.length === 1
              ? '1 shared environment'
              : `${String(envs.length)} shared environments`}
        </p>
      )}
      {envs !== null && envs.length === 0 && (
        <p className="jp-envshare-Empty">
          No shared environments are visible to you on this server. Ask your
          admins to publish one (or check <code>c.EnvShare.env_roots</code> if
          you are the admin).
        </p>
      )}
      {envs !== null && envs.length > 0 && shown.length === 0 && (
        <p className="jp-envshare-Empty">
          No environment matches the filter.{' '}
          <button
            type="button"
            className="jp-envshare-LinkButton"
            onClick={() => {
              setText('');
              setStatus('');
            }}
          >
            Clear the filter
          </button>
        </p>
      )}
      <ul
        className="jp-envshare-EnvList-items"
        aria-label="Shared environments"
      >
        {shown.map(env => (
          <EnvItem key={env.name} env={env} onOpen={props.onOpen} />
        ))}
      </ul>
    </div>
  );
}

function EnvItem(props: {
  env: IEnvSummary;
  onOpen: (env: string) => void;
}): React.ReactElement {
  const { env } = props;
  const problems = env.problems.filter(p => p.severity !== 'info').length;
  // One sentence for screen readers; the visual layout separates the parts with dots.
  const label = [
    env.displayName,
    STATUS_LABELS[env.status],
    env.description,
    packageCountText(env.packageCount),
    env.builtAt
      ? `built ${relativeTime(env.builtAt)}`
      : 'build date not recorded',
    problems === 1
      ? '1 problem'
      : problems > 1
        ? `${String(problems)} problems`
        : ''
  ]
    .filter(Boolean)
    .join(', ');
  return (
    <li className="jp-envshare-EnvItem" data-env={env.name}>
      <button
        type="button"
        className="jp-envshare-EnvItem-button"
        aria-label={label}
        title={`Open ${env.displayName}: provenance, drift, packages and kernels`}
        onClick={() => {
          props.onOpen(env.name);
        }}
      >
        <span className="jp-envshare-EnvItem-top">
          <span className="jp-envshare-EnvItem-name">{env.displayName}</span>
          <StatusBadge status={env.status} />
        </span>
        {env.displayName !== env.name && (
          <span className="jp-envshare-EnvItem-id">{env.name}</span>
        )}
        {env.description && (
          <span className="jp-envshare-EnvItem-description">
            {env.description}
          </span>
        )}
        <span className="jp-envshare-EnvItem-meta">
          <span>{packageCountText(env.packageCount)}</span>
          <span aria-hidden="true"> · </span>
          {env.builtAt ? (
            <When iso={env.builtAt} prefix="built" />
          ) : (
            <span>build date not recorded</span>
          )}
          {problems > 0 && (
            <>
              <span aria-hidden="true"> · </span>
              <span className="jp-envshare-Warning">
                {problems === 1 ? '1 problem' : `${String(problems)} problems`}
              </span>
            </>
          )}
        </span>
      </button>
    </li>
  );
}
