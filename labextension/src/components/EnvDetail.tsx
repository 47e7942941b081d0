/**
 * One environment in detail: kernels, provenance, drift, packages, history, requests and (for
 * admins) usage.
 */
import * as React from 'react';

import { packageCountText } from '../format';
import type { EnvShareModel } from '../state';
import {
  Busy,
  ErrorNotice,
  Section,
  StatusBadge,
  useAsync,
  useSignal
} from './common';
import { DriftView } from './Drift';
import { HistoryView } from './History';
import type { IKernelLauncher } from './Kernels';
import { KernelsView } from './Kernels';
import { PackagesView } from './Packages';
import { ProvenanceView } from './Provenance';
import { OpenRequests } from './RequestLists';
import { UsageView } from './Usage';

/** The detail view of environment `name`. */
export function EnvDetail(props: {
  model: EnvShareModel;
  name: string;
  launcher: IKernelLauncher;
}): React.ReactElement {
  const { model, name, launcher } = props;
  useSignal(model.changed);
  const [reloads, setReloads] = React.useState(0);
  const summary = model.env(name);
  // Reload when the server's view of the environment changes, or on demand.
  const version = JSON.stringify([
    summary?.status,
    summary?.packageCount,
    summary?.builtAt,
    reloads
  ]);
  const detail = useAsync(
    () => model.client.getEnv(name),
    `${name}:${version}`
  );
  const d = detail.value;
  const idPrefix = `jp-envshare-detail-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const gone =
    model.envs.value !== null && model.envs.error === null && !summary;

  return (
    <div className="jp-envshare-Detail" aria-busy={detail.loading}>
      <header className="jp-envshare-Detail-header">
        <div className="jp-envshare-Detail-title">
          <h2>{d?.displayName ?? summary?.displayName ?? name}</h2>
          {(d ?? summary) && (
            <StatusBadge status={(d ?? summary)?.status ?? 'unavailable'} />
          )}
          <button
            type="button"
            className="jp-envshare-Button"
            disabled={detail.loading}
            onClick={() => {
              setReloads(r => r + 1);
            }}
          >
            Refresh
          </button>
          {detail.loading && d !== null && <Busy label="Refreshing…" />}
        </div>
        {d?.description && <p>{d.description}</p>}
        {d && (
          <p className="jp-envshare-Muted">
            {packageCountText(d.packageCount)} ·{' '}
            {d.readOnly
              ? 'read-only'
              : 'writable by this server’s user (shared envs are usually read-only)'}
          </p>
        )}
      </header>
      {gone && (
        <p className="jp-envshare-Warning" role="alert">
          {name} is no longer listed by the server: it may have been removed or
          renamed.
        </p>
      )}
      <ErrorNotice
        error={detail.error}
        what={`loading ${name}`}
        onRetry={() => {
          setReloads(r => r + 1);
        }}
      />
      {d === null && detail.error === null && (
        <Busy label={`Loading ${name}…`} />
      )}
      {d && d.problems.filter(p => p.severity !== 'info').length > 0 && (
        <ul className="jp-envshare-Problems" aria-label="Problems">
          {d.problems
            .filter(p => p.severity !== 'info')
            .map(p => (
              <li key={p.kind + p.message} className="jp-envshare-Warning">
                {p.message}
              </li>
            ))}
        </ul>
      )}
      {d && (
        <>
          <Section
            id={`${idPrefix}-kernels`}
            title="Kernels"
            count={d.kernels.length}
          >
            <KernelsView
              kernels={d.kernels}
              launcher={launcher}
              usable={d.status !== 'unavailable'}
            />
          </Section>
          <Section id={`${idPrefix}-provenance`} title="Provenance">
            <ProvenanceView detail={d} />
          </Section>
          <Section id={`${idPrefix}-drift`} title="Drift">
            <DriftView model={model} env={name} version={version} />
          </Section>
          <Section
            id={`${idPrefix}-packages`}
            title="Packages"
            count={d.packageCount}
          >
            <PackagesView model={model} env={name} version={version} />
          </Section>
          <Section
            id={`${idPrefix}-history`}
            title="History"
            count={d.history.length}
          >
            <HistoryView history={d.history} />
          </Section>
          <Section
            id={`${idPrefix}-requests`}
            title="Requests"
            actions={
              <button
                type="button"
                className="jp-envshare-Button"
                onClick={() => {
                  model.askRequestForm(name);
                }}
              >
                Request a package…
              </button>
            }
          >
            <OpenRequests model={model} env={name} />
          </Section>
          {model.isAdmin && (
            <Section id={`${idPrefix}-usage`} title="Usage (admins)">
              <UsageView model={model} env={name} version={version} />
            </Section>
          )}
        </>
      )}
    </div>
  );
}
