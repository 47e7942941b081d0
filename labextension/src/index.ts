import type {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ILayoutRestorer } from '@jupyterlab/application';
import { ICommandPalette, WidgetTracker } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';

import { EnvShareClient } from './api';
import type { IKernelLauncher } from './components/Kernels';
import { envshareIcon } from './icons';
import { EnvShareModel, IEnvShareModel } from './state';
import { adviceRendererFactory } from './widgets/adviceRenderer';
import { EnvDetailWidget } from './widgets/envDetail';
import { EnvShareSidebar } from './widgets/sidebar';

export { IEnvShareModel } from './state';
export type { EnvShareModel } from './state';

/** Ids of the commands this extension registers. */
export const CommandIDs = {
  openPanel: 'envshare:open-panel',
  openEnv: 'envshare:open-env',
  requestPackage: 'envshare:request-package'
} as const;

const SIDEBAR_ID = 'jp-envshare-sidebar';

/** Shared state: the API client and the poll every view reads from. */
const modelPlugin: JupyterFrontEndPlugin<EnvShareModel> = {
  id: 'jupyter-envshare:model',
  description:
    'The shared environments, the caller and their requests, kept fresh.',
  autoStart: true,
  provides: IEnvShareModel,
  activate: (app: JupyterFrontEnd): EnvShareModel =>
    new EnvShareModel(new EnvShareClient(app.serviceManager.serverSettings))
};

function kernelLauncher(app: JupyterFrontEnd): IKernelLauncher {
  return {
    get canCreateNotebook() {
      return app.commands.hasCommand('notebook:create-new');
    },
    get canCreateConsole() {
      return app.commands.hasCommand('console:create');
    },
    newNotebook: kernelName =>
      app.commands.execute('notebook:create-new', { kernelName }),
    newConsole: kernelName =>
      app.commands.execute('console:create', {
        kernelPreference: { name: kernelName }
      })
  };
}

/** The "Shared environments" sidebar, environment details, and their commands. */
const panelPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-envshare:panel',
  description:
    'A sidebar listing shared conda environments: status, provenance, drift, packages, kernels and requests.',
  autoStart: true,
  requires: [IEnvShareModel],
  optional: [ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    model: EnvShareModel,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ): void => {
    const launcher = kernelLauncher(app);
    const tracker = new WidgetTracker<EnvDetailWidget>({
      namespace: 'jupyter-envshare-env'
    });

    const openEnv = (env: string): EnvDetailWidget => {
      const existing = tracker.find(w => w.env === env);
      if (existing) {
        app.shell.activateById(existing.id);
        return existing;
      }
      const widget = new EnvDetailWidget(model, env, launcher);
      void tracker.add(widget);
      app.shell.add(widget, 'main');
      app.shell.activateById(widget.id);
      return widget;
    };

    const sidebar = new EnvShareSidebar(model, env => {
      void app.commands.execute(CommandIDs.openEnv, { name: env });
    });
    app.shell.add(sidebar, 'left', { rank: 650 });
    restorer?.add(sidebar, SIDEBAR_ID);

    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'Shared Environments',
      caption: 'Show the shared conda environments of this server',
      icon: envshareIcon,
      execute: () => {
        app.shell.activateById(SIDEBAR_ID);
      }
    });
    app.commands.addCommand(CommandIDs.openEnv, {
      label: args =>
        typeof args.name === 'string'
          ? `Shared Environment ${args.name}`
          : 'Shared Environment',
      caption:
        'Show the provenance, drift, packages and kernels of a shared environment',
      icon: envshareIcon,
      execute: args => {
        if (typeof args.name === 'string' && args.name) {
          openEnv(args.name);
        }
      }
    });
    app.commands.addCommand(CommandIDs.requestPackage, {
      label: 'Request a Package in a Shared Environment',
      caption: 'Ask the admins to add a package to a shared environment',
      icon: envshareIcon,
      execute: args => {
        app.shell.activateById(SIDEBAR_ID);
        model.askRequestForm(typeof args.env === 'string' ? args.env : '');
      }
    });
    palette?.addItem({
      command: CommandIDs.openPanel,
      category: 'Shared Environments'
    });
    palette?.addItem({
      command: CommandIDs.requestPackage,
      category: 'Shared Environments'
    });
    if (restorer) {
      void restorer.restore(tracker, {
        command: CommandIDs.openEnv,
        args: widget => ({ name: widget.env }),
        name: widget => widget.env
      });
    }
  }
};

/** Renders the install guard's advice in outputs, with a "Request this" button. */
const advicePlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-envshare:advice',
  description:
    'Renders the install guard advice (application/vnd.envshare.advice+json) with a "Request this" button.',
  autoStart: true,
  requires: [IEnvShareModel, IRenderMimeRegistry],
  activate: (
    app: JupyterFrontEnd,
    model: EnvShareModel,
    rendermime: IRenderMimeRegistry
  ): void => {
    rendermime.addFactory(
      adviceRendererFactory(model, env => {
        void app.commands.execute(CommandIDs.requestPackage, { env });
      })
    );
  }
};

export default [modelPlugin, panelPlugin, advicePlugin];
