/**
 * The kernels of an environment, each with "New notebook" and "New console".
 */
import * as React from 'react';

import type { IKernelInfo } from '../models';
import { ErrorNotice } from './common';

/** What the panel can open on a kernel (JupyterLab's commands, when those plugins exist). */
export interface IKernelLauncher {
  readonly canCreateNotebook: boolean;
  readonly canCreateConsole: boolean;
  newNotebook(kernelName: string): Promise<unknown>;
  newConsole(kernelName: string): Promise<unknown>;
}

/** The kernels of an environment with buttons to start them. */
export function KernelsView(props: {
  kernels: readonly IKernelInfo[];
  launcher: IKernelLauncher;
  usable: boolean;
}): React.ReactElement {
  const { kernels, launcher, usable } = props;
  const [error, setError] = React.useState<unknown>(null);
  if (kernels.length === 0) {
    return (
      <p className="jp-envshare-Empty">
        This environment has no Jupyter kernel (no{' '}
        <code>share/jupyter/kernels</code>): it can be used from a terminal, not
        from a notebook.
      </p>
    );
  }
  const run = (open: () => Promise<unknown>): void => {
    setError(null);
    open().catch((reason: unknown) => {
      setError(reason);
    });
  };
  return (
    <>
      {!usable && (
        <p className="jp-envshare-Warning">
          This environment is unavailable right now, so its kernels may fail to
          start.
        </p>
      )}
      <ul className="jp-envshare-Kernels" aria-label="Kernels">
        {kernels.map(kernel => (
          <li
            key={kernel.name}
            className="jp-envshare-Kernel"
            data-kernel={kernel.name}
          >
            <span className="jp-envshare-Kernel-name">
              {kernel.displayName}
              <span className="jp-envshare-Muted jp-envshare-Block">
                <code>{kernel.name}</code>
                {kernel.language ? ` · ${kernel.language}` : ''}
              </span>
            </span>
            <span className="jp-envshare-Actions">
              <button
                type="button"
                className="jp-envshare-Button jp-mod-accept"
                disabled={!launcher.canCreateNotebook}
                aria-label={`New notebook with ${kernel.displayName}`}
                onClick={() => {
                  run(() => launcher.newNotebook(kernel.name));
                }}
              >
                New notebook
              </button>
              <button
                type="button"
                className="jp-envshare-Button"
                disabled={!launcher.canCreateConsole}
                aria-label={`New console with ${kernel.displayName}`}
                onClick={() => {
                  run(() => launcher.newConsole(kernel.name));
                }}
              >
                New console
              </button>
            </span>
          </li>
        ))}
      </ul>
      <ErrorNotice error={error} what="opening the kernel" />
    </>
  );
}
