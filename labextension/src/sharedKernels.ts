import type { KernelSpec } from '@jupyterlab/services';

/**
 * A kernel of a shared environment, as the frontend lists it.
 */
export interface ISharedKernelRow {
  /** Kernelspec name (unique on the server). */
  readonly name: string;
  /** Name shown in the launcher and kernel pickers. */
  readonly displayName: string;
  /** Shared environment name (`metadata.envshare.env`). */
  readonly env: string;
  /** Environment status reported by the server (`metadata.envshare.status`). */
  readonly status: string;
  /** Environment prefix on disk (`metadata.envshare.prefix`). */
  readonly prefix: string;
}

/**
 * Extract the kernels published by jupyter_envshare (those carrying `metadata.envshare`)
 * from a kernelspecs model, sorted by display name.
 *
 * The model comes from the server and may be partial: missing or non-string fields become
 * empty strings rather than dropping the kernel, so one odd entry never hides the others.
 */
export function sharedKernelRows(
  specs: KernelSpec.ISpecModels | null
): ISharedKernelRow[] {
  if (!specs) {
    return [];
  }
  const rows: ISharedKernelRow[] = [];
  for (const [name, spec] of Object.entries(specs.kernelspecs)) {
    // `metadata` is typed optional but the services validator sets it to null when absent.
    const metadata = asRecord(spec?.metadata);
    const envshareValue = metadata?.envshare;
    if (!spec || envshareValue === undefined || envshareValue === null) {
      continue;
    }
    const envshare = asRecord(envshareValue) ?? {};
    rows.push({
      name,
      displayName: text(spec.display_name) || name,
      env: text(envshare.env),
      status: text(envshare.status),
      prefix: text(envshare.prefix)
    });
  }
  return rows.sort(
    (a, b) =>
      a.displayName.localeCompare(b.displayName) || a.name.localeCompare(b.name)
  );
}

function asRecord(value: unknown): Readonly<Record<string, unknown>> | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}
