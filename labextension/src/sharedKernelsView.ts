import type { ISharedKernelRow } from './sharedKernels';

/** Placeholder for a field the server did not report. */
const MISSING = '—';

/**
 * Render the shared kernels as a summary line and a table.
 *
 * Every value comes from the server (environment names are chosen by whoever publishes an
 * environment), so text is only ever set through `textContent`, never parsed as HTML.
 */
export function renderSharedKernels(
  rows: readonly ISharedKernelRow[]
): HTMLElement {
  const root = document.createElement('div');
  root.className = 'jp-envshare-SharedKernels';

  const summary = document.createElement('p');
  summary.className = 'jp-envshare-SharedKernels-summary';
  summary.textContent = summaryText(rows.length);
  root.appendChild(summary);

  if (rows.length > 0) {
    root.appendChild(renderTable(rows));
  }
  return root;
}

/** The sentence above the table, e.g. "3 shared kernels are available." */
export function summaryText(count: number): string {
  if (count === 0) {
    return 'No shared kernels are available.';
  }
  return count === 1
    ? '1 shared kernel is available.'
    : `${String(count)} shared kernels are available.`;
}

function renderTable(rows: readonly ISharedKernelRow[]): HTMLTableElement {
  const table = document.createElement('table');
  table.className = 'jp-envshare-SharedKernels-table';

  const headerRow = table.createTHead().insertRow();
  for (const heading of ['Kernel', 'Environment', 'Status', 'Prefix']) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = heading;
    headerRow.appendChild(th);
  }

  const body = table.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    tr.dataset.kernelName = row.name;
    addCell(tr, row.displayName);
    addCell(tr, row.env);
    addCell(tr, row.status).dataset.envshareStatus = row.status;
    const prefix = addCell(tr, row.prefix);
    prefix.classList.add('jp-envshare-SharedKernels-prefix');
    prefix.title = row.prefix;
  }
  return table;
}

function addCell(tr: HTMLTableRowElement, value: string): HTMLTableCellElement {
  const cell = tr.insertCell();
  cell.textContent = value || MISSING;
  return cell;
}
