/**
 * Drift: the installed environment against its lock, grouped by kind, with a deep check that
 * also hashes every file.
 */
import * as React from 'react';

import { groupDrift } from '../format';
import type { IDriftReport } from '../models';
import type { EnvShareModel } from '../state';
import { Busy, ErrorNotice, StatusBadge, When } from './common';

/** The drift report of an environment, shallow first, deep on demand. */
export function DriftView(props: {
  model: EnvShareModel;
  env: string;
  /** Changes when the environment changes on disk (reloads the shallow report). */
  version: string;
}): React.ReactElement {
  const { model, env, version } = props;
  const [report, setReport] = React.useState<IDriftReport | null>(null);
  const [error, setError] = React.useState<unknown>(null);
  const [busy, setBusy] = React.useState<'shallow' | 'deep' | null>('shallow');
  const started = React.useRef(0);

  const load = React.useCallback(
    async (deep: boolean): Promise<void> => {
      const call = ++started.current;
      setBusy(deep ? 'deep' : 'shallow');
      setError(null);
      try {
        const result = await model.client.getDrift(env, deep);
        if (call === started.current) {
          setReport(result);
        }
      } catch (reason) {
        if (call === started.current) {
          setError(reason);
        }
      } finally {
        if (call === started.current) {
          setBusy(null);
        }
      }
    },
    [model, env]
  );

  React.useEffect(() => {
    void load(false);
  }, [load, version]);

  const groups = report ? groupDrift(report.changes) : [];
  return (
    <div className="jp-envshare-Drift" aria-busy={busy !== null}>
      <div className="jp-envshare-Drift-header">
        {report && <StatusBadge status={report.status} />}
        {report && (
          <span className="jp-envshare-Muted">
            {report.deep
              ? 'deep check (file hashes)'
              : 'quick check (package records)'}
            , <When iso={report.checkedAt} prefix="checked" />
          </span>
        )}
        <button
          type="button"
          className="jp-envshare-Button"
          disabled={busy !== null || report?.status === 'unlocked'}
          title="Hash every installed file and compare it with its package record (slow on large environments)"
          onClick={() => {
            void load(true);
          }}
        >
          Deep check
        </button>
        {busy === 'deep' && (
          <Busy label="Checking every file… this can take a minute on large environments." />
        )}
        {busy === 'shallow' && report === null && (
          <Busy label="Checking drift…" />
        )}
      </div>
      <ErrorNotice
        error={error}
        what="checking drift"
        onRetry={() => {
          void load(report?.deep ?? false);
        }}
      />
      {report && report.status === 'unlocked' && (
        <p className="jp-envshare-Empty">
          No lock file is recorded for this environment, so there is nothing to
          compare with. Admins:{' '}
          <code>jupyter envshare stamp {env} --lock FILE</code>.
        </p>
      )}
      {report &&
        report.status !== 'unlocked' &&
        report.changes.length === 0 && (
          <p className="jp-envshare-Success">
            No drift: the installed packages match the lock
            {report.lock?.format ? ` (${report.lock.format})` : ''}.
          </p>
        )}
      {groups.length > 0 && (
        <ul className="jp-envshare-DriftGroups" aria-label="Drift by kind">
          {groups.map(group => (
            <li
              key={group.kind}
              className="jp-envshare-DriftGroup"
              data-kind={group.kind}
            >
              <details open={groups.length <= 3}>
                <summary>
                  {group.label}
                  <span className="jp-envshare-Count">
                    {String(group.changes.length)}
                  </span>
                </summary>
                <table className="jp-envshare-Table">
                  <thead>
                    <tr>
                      <th scope="col">Package</th>
                      <th scope="col">Locked</th>
                      <th scope="col">Installed</th>
                    </tr>
                  </thead>
                  <tbody>
                    {group.changes.map((change, index) => (
                      <tr
                        key={`${change.package}-${change.path}-${String(index)}`}
                      >
                        <td>
                          {change.package}
                          {change.path && (
                            <code className="jp-envshare-Path jp-envshare-Block">
                              {change.path}
                            </code>
                          )}
                        </td>
                        <td>{change.locked ?? '—'}</td>
                        <td>{change.installed ?? '—'}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </details>
            </li>
          ))}
        </ul>
      )}
      {report && report.findings.length > 0 && (
        <ul className="jp-envshare-Findings" aria-label="Findings">
          {report.findings.map(f => (
            <li
              key={f.kind + f.message}
              className={
                f.severity === 'info'
                  ? 'jp-envshare-Muted'
                  : 'jp-envshare-Warning'
              }
            >
              {f.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
