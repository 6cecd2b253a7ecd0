import type { Goal, Row, RowInput, RowStatus } from './types.js';

export function goalText(goal: Goal): string {
  const subject = goal.on === 'ratio' ? '×ref' : '';
  return `${goal.op} ${String(goal.target)}${subject}`;
}

function meets(value: number, goal: Goal): boolean {
  return goal.op === '>=' ? value >= goal.target : value <= goal.target;
}

/**
 * Turns measured outcomes into a row. A failed measurement makes the row an
 * error naming which side failed; the other side's figure is still kept.
 */
export function buildRow(suite: string, input: RowInput): Row {
  const ours = input.ours.ok ? input.ours.value : null;
  const refOutcome = input.reference?.value;
  const reference = refOutcome?.ok === true ? refOutcome.value : null;
  const ratio = ours !== null && reference !== null && reference !== 0 ? ours / reference : null;

  const errors: string[] = [];
  if (!input.ours.ok) errors.push(`ours: ${input.ours.error}`);
  if (refOutcome !== undefined && !refOutcome.ok) errors.push(`reference: ${refOutcome.error}`);

  let status: RowStatus = 'info';
  if (errors.length > 0) status = 'error';
  else if (input.goal !== undefined) {
    const judged = input.goal.on === 'ratio' ? ratio : ours;
    status = judged === null ? 'error' : meets(judged, input.goal) ? 'pass' : 'fail';
  }

  const row: Row = {
    suite,
    id: input.id,
    label: input.label,
    unit: input.unit,
    ours,
    reference,
    referenceName: input.reference?.name ?? null,
    ratio,
    goal: input.goal === undefined ? null : goalText(input.goal),
    status,
  };
  if (errors.length > 0) row.error = errors.join('; ');
  if (input.samples !== undefined) row.samples = input.samples;
  if (input.referenceSamples !== undefined) row.referenceSamples = input.referenceSamples;
  if (input.note !== undefined) row.note = input.note;
  return row;
}
