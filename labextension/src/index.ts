import type {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Dialog, ICommandPalette, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { sharedKernelRows } from './sharedKernels';
import { renderSharedKernels } from './sharedKernelsView';

/** Ids of the commands this extension registers. */
export const CommandIDs = {
  showSharedKernels: 'envshare:show-shared-kernels'
} as const;

/**
 * Show the kernels of shared environments that the server currently advertises.
 */
async function showSharedKernels(app: JupyterFrontEnd): Promise<void> {
  const kernelspecs = app.serviceManager.kernelspecs;
  await kernelspecs.ready;
  try {
    // Shared environments come and go on disk; ask the server rather than trust the cache.
    await kernelspecs.refreshSpecs();
  } catch (reason) {
    console.warn(
      'jupyter-envshare: could not refresh kernelspecs, showing the last known list',
      reason
    );
  }
  const rows = sharedKernelRows(kernelspecs.specs);
  await showDialog({
    title: 'Shared kernels',
    body: new Widget({ node: renderSharedKernels(rows) }),
    buttons: [Dialog.okButton()]
  });
}

/**
 * Lists the kernels of read-only shared conda environments.
 */
const sharedKernelsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-envshare:shared-kernels',
  description: 'Lists the kernels of read-only shared conda environments.',
  autoStart: true,
  optional: [ICommandPalette],
  activate: (app: JupyterFrontEnd, palette: ICommandPalette | null): void => {
    app.commands.addCommand(CommandIDs.showSharedKernels, {
      label: 'Shared environments: list shared kernels',
      caption: 'List the kernels of shared conda environments on this server',
      execute: () => showSharedKernels(app)
    });
    palette?.addItem({
      command: CommandIDs.showSharedKernels,
      category: 'Kernel'
    });
  }
};

export default sharedKernelsPlugin;
