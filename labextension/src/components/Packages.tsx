/**
 * The installed packages of an environment (conda and pip), searchable.
 */
import * as React from 'react';

import { filterPackages, packageSource } from '../format';
import type { EnvShareModel } from '../state';
import { Busy, ErrorNotice, useAsync } from './common';

/** A searchable table of installed packages. */
export function PackagesView(props: {
  model: EnvShareModel;
  env: string;
  version: string;
}): React.ReactElement {
  const { model, env, version } = props;
  const packages = useAsync(
    () => model.client.getPackages(env),
    `${env}:${version}`
  );
  const [text, setText] = React.useState('');
  const [kind, setKind] = React.useState('');
  const all = packages.value ?? [];
  const shown = filterPackages(all, text, kind);
  const pipCount = all.filter(p => p.kind === 'pypi').length;
  return (
    <div className="jp-envshare-Packages">
      <div className="jp-envshare-Filters" role="search">
        <input
          type="search"
          className="jp-envshare-Input"
          placeholder="Search packages"
          aria-label={`Search the packages of ${env}`}
          value={text}
          onChange={e => {
            setText(e.target.value);
          }}
        />
        <select
          className="jp-envshare-Select"
          aria-label="Show packages installed by"
          value={kind}
          onChange={e => {
            setKind(e.target.value);
          }}
        >
          <option value="">conda and pip</option>
          <option value="conda">conda only</option>
          <option value="pypi">pip only</option>
        </select>
      </div>
      <ErrorNotice
        error={packages.error}
        what="loading the packages"
        onRetry={packages.reload}
      />
      {packages.value === null && packages.error === null && (
        <Busy label="Loading packages…" />
      )}
      {packages.value !== null && (
        <p className="jp-envshare-Summary" aria-live="polite">
          {shown.length === all.length
            ? `${String(all.length)} packages${pipCount ? `, ${String(pipCount)} from pip` : ''}`
            : `${String(shown.length)} of ${String(all.length)} packages match`}
        </p>
      )}
      {shown.length > 0 && (
        <div className="jp-envshare-TableScroll">
          <table
            className="jp-envshare-Table"
            aria-label={`Packages installed in ${env}`}
          >
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Version</th>
                <th scope="col">Build</th>
                <th scope="col">Source</th>
              </tr>
            </thead>
            <tbody>
              {shown.map(p => (
                <tr key={`${p.kind}:${p.name}`} data-kind={p.kind}>
                  <td>{p.name}</td>
                  <td>{p.version}</td>
                  <td className="jp-envshare-Muted">{p.build}</td>
                  <td title={p.channel || undefined}>
                    {p.kind === 'pypi' ? (
                      <span className="jp-envshare-Tag">
                        {p.installer || 'pip'}
                      </span>
                    ) : null}{' '}
                    {packageSource(p)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
