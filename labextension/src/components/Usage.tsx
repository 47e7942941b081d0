/**
 * Usage of an environment (admins): launches per kernel as a small bar chart, distinct users,
 * last use, and the packages users most often tried to install.
 */
import * as React from 'react';

import {
  attemptsOf,
  envUsageOf,
  kernelLabel,
  latest,
  launchesOf
} from '../format';
import type { IKernelUsage } from '../models';
import type { EnvShareModel } from '../state';
import { Busy, ErrorNotice, useAsync, When } from './common';

/** The usage section of an environment's detail. */
export function UsageView(props: {
  model: EnvShareModel;
  env: string;
  version: string;
}): React.ReactElement {
  const { model, env, version } = props;
  const usage = useAsync(() => model.client.getUsage(), `${env}:${version}`);
  if (usage.value === null) {
    return (
      <>
        {usage.error === null && <Busy label="Loading usage…" />}
        <ErrorNotice
          error={usage.error}
          what="loading usage"
          onRetry={usage.reload}
        />
      </>
    );
  }
  const launches = launchesOf(usage.value, env);
  const attempts = attemptsOf(usage.value, env);
  const total = launches.reduce((sum, l) => sum + l.launches, 0);
  const row = envUsageOf(usage.value, env);
  // The server counts distinct users over all kernels; one that does not (no `envs`) counts
  // them per kernel only, where the busiest kernel is a lower bound for the environment.
  const users =
    row?.users ?? launches.reduce((most, l) => Math.max(most, l.users), 0);
  const usersExact = row !== null || launches.length <= 1;
  const lastUsed = latest(launches.map(l => l.lastUsed));
  return (
    <div className="jp-envshare-Usage">
      <dl className="jp-envshare-Stats">
        <div>
          <dt>Launches</dt>
          <dd>{String(total)}</dd>
        </div>
        <div>
          <dt>Distinct users</dt>
          {usersExact ? (
            <dd title="Over all kernels of this environment">
              {String(users)}
            </dd>
          ) : (
            <dd title="Counted per kernel by this server: the busiest kernel is shown">
              {`≥ ${String(users)}`}
            </dd>
          )}
        </div>
        <div>
          <dt>Last used</dt>
          <dd>
            <When iso={lastUsed} />
          </dd>
        </div>
      </dl>
      {launches.length > 0 ? (
        <LaunchChart launches={launches} />
      ) : (
        <p className="jp-envshare-Empty">
          No kernel of this environment was launched yet.
        </p>
      )}
      <h4 className="jp-envshare-Subheading">Top intercepted installs</h4>
      {attempts.length === 0 ? (
        <p className="jp-envshare-Empty">
          Nobody tried to install anything into this environment.
        </p>
      ) : (
        <table
          className="jp-envshare-Table"
          aria-label="Packages users tried to install"
        >
          <thead>
            <tr>
              <th scope="col">Package</th>
              <th scope="col">Attempts</th>
              <th scope="col">Users</th>
              <th scope="col">Last</th>
            </tr>
          </thead>
          <tbody>
            {attempts.map(a => (
              <tr key={a.package}>
                <td>{a.package}</td>
                <td>{String(a.attempts)}</td>
                <td>{String(a.users)}</td>
                <td>
                  <When iso={a.lastAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

const BAR_HEIGHT = 18;
const GAP = 6;
const LABEL_WIDTH = 190;
const CHART_WIDTH = 460;

/**
 * Launches per kernel as horizontal bars. The server keeps totals, not a time series, so the
 * chart compares kernels; the table-like text beside each bar carries the numbers.
 */
function LaunchChart(props: {
  launches: readonly IKernelUsage[];
}): React.ReactElement {
  const { launches } = props;
  const max = Math.max(1, ...launches.map(l => l.launches));
  const barSpace = CHART_WIDTH - LABEL_WIDTH - 60;
  const height = launches.length * (BAR_HEIGHT + GAP);
  const summary = launches
    .map(
      l =>
        `${kernelLabel(l)}: ${String(l.launches)} launches by ${String(l.users)} users`
    )
    .join('; ');
  return (
    <figure className="jp-envshare-Chart">
      <svg
        role="img"
        aria-label={`Launches per kernel. ${summary}`}
        viewBox={`0 0 ${String(CHART_WIDTH)} ${String(height)}`}
        width="100%"
        style={{ maxWidth: `${String(CHART_WIDTH)}px` }}
        preserveAspectRatio="xMinYMin meet"
      >
        {launches.map((l, index) => {
          const y = index * (BAR_HEIGHT + GAP);
          const width = Math.max(2, (l.launches / max) * barSpace);
          const label = kernelLabel(l);
          return (
            <g key={l.kernel}>
              <title>
                {l.kernelName === null
                  ? `${l.kernel}: this kernel is no longer listed`
                  : `${label} (kernel directory ${l.kernel})`}
              </title>
              <text
                className="jp-envshare-Chart-label"
                x={LABEL_WIDTH - 6}
                y={y + BAR_HEIGHT / 2}
                textAnchor="end"
                dominantBaseline="central"
              >
                {label.length > 30 ? `${label.slice(0, 29)}…` : label}
              </text>
              <rect
                className="jp-envshare-Chart-bar"
                x={LABEL_WIDTH}
                y={y}
                width={width}
                height={BAR_HEIGHT}
                rx={2}
              />
              <text
                className="jp-envshare-Chart-value"
                x={LABEL_WIDTH + width + 6}
                y={y + BAR_HEIGHT / 2}
                dominantBaseline="central"
              >
                {String(l.launches)}
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption className="jp-envshare-Muted">
        Launches per kernel since usage was recorded
      </figcaption>
    </figure>
  );
}
