import type { Warehouse } from '../warehouse';
import {
  LIFECYCLE_STATUSES,
  RFM_SEGMENTS,
  loadReportData,
  NO_PURCHASES_NOTE,
  rfmTieNote,
  type LifecycleStatus,
  type ReportData,
} from './data';

export interface TerminalReportOptions {
  warehouse: Warehouse;
  /** Schema the models were built in (`--schema`, default `lifecycle`). */
  schema: string;
  /** ANSI colours; pass true only for a TTY that wants them (the CLI also honours NO_COLOR). */
  color?: boolean;
  /** How many status changes to list (default 8). */
  topTransitions?: number;
}

/** The terminal report: status counts, moves, growth accounting and the RFM grid, as text. */
export async function renderTerminalReport(opts: TerminalReportOptions): Promise<string> {
  const data = await loadReportData(opts);
  return formatTerminalReport(data, { color: opts.color, topTransitions: opts.topTransitions });
}

const ANSI = {
  bold: '1',
  dim: '2',
  red: '31',
  green: '32',
  yellow: '33',
  blue: '34',
  magenta: '35',
  cyan: '36',
  brightGreen: '92',
} as const;

const STATUS_COLOR: Readonly<Record<LifecycleStatus, keyof typeof ANSI>> = {
  new: 'cyan',
  active: 'green',
  power: 'brightGreen',
  resurrected: 'blue',
  at_risk: 'yellow',
  dormant: 'magenta',
  churned: 'red',
};

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (n: number | null, digits = 1) => (n === null ? 'n/a' : `${(n * 100).toFixed(digits)}%`);
const money = (n: number) =>
  n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const signed = (n: number) => (n > 0 ? `+${int(n)}` : n < 0 ? `−${int(-n)}` : '±0');

/**
 * Splits `text` at spaces into lines of at most `width` characters (a longer word keeps its own line).
 */
export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines;
}

export function formatTerminalReport(
  data: ReportData,
  opts: {
    color?: boolean;
    topTransitions?: number;
    /**
     * The terminal's width: the status meanings and the notes wrap to it (the tables themselves need about 80
     * columns). Unset, nothing wraps, so a piped report keeps one line per row for grep and diff.
     */
    width?: number;
  } = {},
): string {
  const color = opts.color === true;
  const paint = (text: string, ...styles: Array<keyof typeof ANSI>) =>
    color && styles.length > 0 ? `\u001b[${styles.map((s) => ANSI[s]).join(';')}m${text}\u001b[0m` : text;
  const statusColor = (s: string): Array<keyof typeof ANSI> =>
    s in STATUS_COLOR ? [STATUS_COLOR[s as LifecycleStatus]] : [];
  const heading = (text: string) => paint(text, 'bold');
  const out: string[] = [];
  const width = opts.width !== undefined && opts.width > 0 ? opts.width : undefined;
  // a paragraph indented by two spaces, wrapped to the terminal
  const note = (text: string, ...styles: Array<keyof typeof ANSI>) => {
    for (const l of width === undefined ? [text] : wrapText(text, Math.max(20, width - 2))) {
      out.push(paint(`  ${l}`, ...styles));
    }
  };

  out.push(heading(`Lifecycle report — as of ${data.asOfDate}`));
  out.push(
    `${int(data.totalUsers)} ${data.totalUsers === 1 ? 'user' : 'users'} in ${data.schema}.user_lifecycle`,
  );
  out.push('');

  // ------------------------------------------------------------- statuses
  out.push(heading('Where users are today'));
  // columns widen with the figures (1,000,000 users would otherwise run into the share)
  const changeOf = (s: (typeof data.statuses)[number]) =>
    s.usersWeekAgo === null ? 'n/a' : signed(s.users - s.usersWeekAgo);
  const usersW = Math.max(8, ...data.statuses.map((s) => int(s.users).length + 2));
  const changeW = Math.max(15, ...data.statuses.map((s) => changeOf(s).length + 2));
  out.push(
    paint(
      '  ' +
        'status'.padEnd(14) +
        'users'.padStart(usersW) +
        'share'.padStart(8) +
        'vs 7 days ago'.padStart(changeW),
      'dim',
    ) + paint('   meaning', 'dim'),
  );
  const total = data.statuses.reduce((n, s) => n + s.users, 0);
  const meaningAt = 2 + 14 + usersW + 8 + changeW + 3;
  for (const s of data.statuses) {
    const change = changeOf(s);
    const meaning = (data.meanings as Record<string, string>)[s.status] ?? '';
    const changeStyle: Array<keyof typeof ANSI> = [];
    if (s.usersWeekAgo !== null && s.users !== s.usersWeekAgo) {
      const good =
        s.status === 'new' || s.status === 'active' || s.status === 'power' || s.status === 'resurrected';
      changeStyle.push(s.users > s.usersWeekAgo === good ? 'green' : 'red');
    }
    const row =
      '  ' +
      paint(s.status.padEnd(14), ...statusColor(s.status)) +
      int(s.users).padStart(usersW) +
      pct(total === 0 ? 0 : s.users / total).padStart(8) +
      paint(change.padStart(changeW), ...changeStyle);
    if (width === undefined || meaningAt + meaning.length <= width) {
      out.push(row + '   ' + paint(meaning, 'dim'));
    } else if (width - meaningAt >= 20) {
      // the meaning wraps inside its own column
      const [first, ...rest] = wrapText(meaning, width - meaningAt);
      out.push(row + '   ' + paint(first, 'dim'));
      for (const l of rest) out.push(' '.repeat(meaningAt) + paint(l, 'dim'));
    } else {
      // too narrow for a column: the meaning goes under the row
      out.push(row);
      for (const l of wrapText(meaning, Math.max(20, width - 4))) out.push('    ' + paint(l, 'dim'));
    }
  }
  out.push('');

  // ------------------------------------------------------------- transitions
  const top = data.transitions.slice(0, opts.topTransitions ?? 8);
  out.push(heading('Top status changes'));
  out.push(
    paint('  ' + 'from → to'.padEnd(34) + 'last 7 days'.padStart(13) + 'last 30 days'.padStart(14), 'dim'),
  );
  if (top.length === 0) out.push('  no status changes in the last 30 days');
  for (const t of top) {
    const from = t.from === null ? '(first status)' : t.from;
    const label = `${paint(from, ...statusColor(from))} → ${paint(t.to, ...statusColor(t.to))}`;
    const visible = `${from} → ${t.to}`;
    out.push(
      '  ' +
        label +
        ' '.repeat(Math.max(1, 34 - visible.length)) +
        int(t.last7).padStart(11) +
        int(t.last30).padStart(15),
    );
  }
  if (data.transitions.length > top.length) {
    out.push(paint(`  … and ${data.transitions.length - top.length} less frequent changes`, 'dim'));
  }
  out.push('');

  // ------------------------------------------------------------- growth accounting
  const g = data.growthDaily.length > 0 ? data.growthDaily[data.growthDaily.length - 1] : undefined;
  if (!g) {
    out.push(heading('Growth accounting'));
    out.push('  no activity yet');
  } else {
    out.push(heading(`Growth accounting on ${g.date}`));
    out.push(
      `  DAU ${paint(int(g.dau), 'bold')} · WAU ${paint(int(g.wau), 'bold')} · MAU ${paint(int(g.mau), 'bold')}` +
        ` · DAU/MAU ${pct(g.mau === 0 ? null : g.dau / g.mau)}`,
    );
    out.push(
      `  CURR ${paint(pct(g.curr), 'bold')}` +
        paint(" (share of yesterday's current users who came back today)", 'dim'),
    );
    out.push(
      `  Today's active users: ${int(g.new_users)} new · ${int(g.current_users)} current · ` +
        `${int(g.reactivated_users)} reactivated · ${int(g.resurrected_users)} resurrected`,
    );
  }
  out.push('');

  // ------------------------------------------------------------- RFM
  out.push(
    heading('RFM value segments') +
      ` — ${int(data.purchasers)} ${data.purchasers === 1 ? 'customer' : 'customers'} with a purchase in the RFM window`,
  );
  if (data.purchasers === 0) {
    note(NO_PURCHASES_NOTE);
    return out.join('\n') + '\n';
  }
  const cell = new Map<string, number>();
  for (const c of data.rfm) cell.set(`${c.r}:${c.f}`, (cell.get(`${c.r}:${c.f}`) ?? 0) + c.users);
  const codeOf = (r: number, f: number) =>
    RFM_SEGMENTS.find((s) => r >= s.r[0] && r <= s.r[1] && f >= s.f[0] && f <= s.f[1])?.code ?? '??';
  const cellW = Math.max(6, ...[...cell.values()].map((n) => int(n).length + 1));
  out.push(
    paint(
      '        ' +
        [1, 2, 3, 4, 5].map((f) => `F${f}`.padStart(cellW + 3)).join('') +
        '   F: frequency, 5 = most',
      'dim',
    ),
  );
  for (const r of [5, 4, 3, 2, 1]) {
    let line = '  ' + paint(`R${r}`, 'dim') + '    ';
    for (const f of [1, 2, 3, 4, 5]) {
      const n = cell.get(`${r}:${f}`) ?? 0;
      line += (n === 0 ? '·' : int(n)).padStart(cellW) + ' ' + paint(codeOf(r, f), 'dim');
    }
    if (r === 5) line += paint('   R: recency, 5 = most recent', 'dim');
    out.push(line);
  }
  const tieNote = rfmTieNote(data);
  if (tieNote) note(tieNote, 'dim');
  out.push('');
  const segTotals = new Map<string, { users: number; monetary: number }>();
  for (const c of data.rfm) {
    const t = segTotals.get(c.segment) ?? { users: 0, monetary: 0 };
    t.users += c.users;
    t.monetary += c.monetary;
    segTotals.set(c.segment, t);
  }
  const custW = Math.max(9, ...[...segTotals.values()].map((t) => int(t.users).length + 2));
  const moneyW = Math.max(15, ...[...segTotals.values()].map((t) => money(t.monetary).length + 2));
  out.push(
    paint(
      '  ' +
        'segment'.padEnd(26) +
        'R'.padEnd(7) +
        'F'.padEnd(7) +
        'customers'.padStart(custW) +
        'share'.padStart(9) +
        'monetary'.padStart(moneyW),
      'dim',
    ),
  );
  const range = (r: readonly [number, number]) => (r[0] === r[1] ? `${r[0]}` : `${r[0]}-${r[1]}`);
  for (const s of RFM_SEGMENTS) {
    const t = segTotals.get(s.segment) ?? { users: 0, monetary: 0 };
    out.push(
      `  ${s.code} ${s.label.padEnd(23)}` +
        range(s.r).padEnd(7) +
        range(s.f).padEnd(7) +
        int(t.users).padStart(custW) +
        pct(t.users / data.purchasers).padStart(9) +
        money(t.monetary).padStart(moneyW),
    );
  }
  const unknown = [...segTotals.keys()].filter((k) => !RFM_SEGMENTS.some((s) => s.segment === k)).sort();
  for (const k of unknown) {
    const t = segTotals.get(k) as { users: number; monetary: number };
    out.push(
      `  ?? ${k.padEnd(36)}${int(t.users).padStart(custW)}${pct(t.users / data.purchasers).padStart(9)}${money(t.monetary).padStart(moneyW)}`,
    );
  }
  return out.join('\n') + '\n';
}

/** The statuses in display order (re-exported for the CLI's summaries). */
export const STATUS_ORDER: readonly string[] = LIFECYCLE_STATUSES;
