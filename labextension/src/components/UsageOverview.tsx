/**
 * Every environment by last use (admins), least recently used first: the ones nobody launches
 * any more are the candidates to retire at the next migration.
 */
import * as React from 'react';

import { unusedFor } from '../format';
import type { IEnvUsage } from '../models';
import type { EnvShareModel } from '../state';
import {
  Busy,
  ErrorNotice,
  LabeledSelect,
  useAsync,
  useSignal,
  When
} from './common';

type Period = 'any' | '30' | '90' | '180';

const PERIODS: readonly { value: Period; label: string }[] = [
  { value: 'any', label: 'Any' },
  { value: '30', label: '30 days' },
  { value: '90', label: '90 days' },
  { value: '180', label: '180 days' }
];

function days(period: Period): number | null {
  return period === 'any' ? null : Number(period);
}

/** The sidebar's usage view: environments least recently used first, with a filter by idle time. */
export function UsageOverview(props: {
  model: EnvShareModel;
  onOpen: (env: string) => void;
}): React.ReactElement {
  const { model } = props;
  useSignal(model.changed);
  const [period, setPeriod] = React.useState<Period>('any');
  // Loaded again after every refresh of the panel (its button, its poll), like the other views.
  const usage = useAsync(
    () => model.client.getUsage(),
    String(model.refreshedAt?.getTime() ?? 0)
  );
  const envs = usage.value?.envs ?? null;
  const shown = envs ? unusedFor(envs, days(period)) : [];
  const periodLabel = PERIODS.find(p => p.value === period)?.label ?? period;

  return (
    <div className="jp-envshare-UsageOverview">
      <p
        id="jp-envshare-usage-caption"
        className="jp-envshare-UsageOverview-caption"
      >
        Which environments are still used: those launched long ago or never are
        candidates to retire at the next migration.
      </p>
      <LabeledSelect
        id="jp-envshare-usage-filter"
        label="Not used for"
        value={period}
        options={PERIODS}
        onChange={setPeriod}
      />
      <ErrorNotice
        error={usage.error}
        what="loading usage"
        onRetry={usage.reload}
      />
      {envs === null && usage.error === null && <Busy label="Loading usage…" />}
      {envs !== null && (
        <p className="jp-envshare-Summary" aria-live="polite">
          {period === 'any'
            ? `${envs.length === 1 ? '1 environment' : `${String(envs.length)} environments`}, least recently used first`
            : `${String(shown.length)} of ${String(envs.length)} environments not used for ${periodLabel}`}
        </p>
      )}
      {envs !== null && envs.length === 0 && (
        <p className="jp-envshare-Empty">
          No environment to show. (A server older than this panel does not list
          environments by use.)
        </p>
      )}
      {envs !== null && envs.length > 0 && shown.length === 0 && (
        <p className="jp-envshare-Empty">
          Every environment was launched in the last {periodLabel}.{' '}
          <button
            type="button"
            className="jp-envshare-LinkButton"
            onClick={() => {
              setPeriod('any');
            }}
          >
            Show all
          </button>
        </p>
      )}
      {shown.length > 0 && (
        <table
          className="jp-envshare-Table jp-envshare-UsageTable"
          aria-label="Environments by last use"
          aria-describedby="jp-envshare-usage-caption"
        >
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th
                scope="col"
                className="jp-mod-number jp-envshare-UsageTable-launches"
              >
                Launches
              </th>
              <th
                scope="col"
                className="jp-mod-number jp-envshare-UsageTable-users"
              >
                Users
              </th>
              <th scope="col" className="jp-envshare-UsageTable-last">
                Last used
              </th>
            </tr>
          </thead>
          <tbody>
            {shown.map(e => (
              <EnvUsageRow key={e.env} usage={e} onOpen={props.onOpen} />
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function EnvUsageRow(props: {
  usage: IEnvUsage;
  onOpen: (env: string) => void;
}): React.ReactElement {
  const { usage } = props;
  return (
    <tr
      className={usage.present ? undefined : 'jp-mod-removed'}
      data-env={usage.env}
    >
      <th scope="row">
        {usage.present ? (
          <button
            type="button"
            className="jp-envshare-LinkButton jp-envshare-UsageTable-name"
            aria-label={`Open ${usage.env}`}
            title={`Open ${usage.env}: provenance, drift, packages and kernels`}
            onClick={() => {
              props.onOpen(usage.env);
            }}
          >
            {usage.env}
          </button>
        ) : (
          <>
            <span className="jp-envshare-UsageTable-name">{usage.env}</span>
            <span
              className="jp-envshare-UsageTable-removed"
              title="No longer installed: it was launched before, and has gone since"
            >
              <span aria-hidden="true">✕ </span>
              Not installed
            </span>
          </>
        )}
      </th>
      <td className="jp-mod-number">{String(usage.launches)}</td>
      <td className="jp-mod-number">{String(usage.users)}</td>
      <td>
        {usage.lastUsed === null ? (
          <span className="jp-envshare-Muted">never</span>
        ) : (
          <When iso={usage.lastUsed} />
        )}
      </td>
    </tr>
  );
}
