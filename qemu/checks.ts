/**
 * Declarative checks in strongSwan's testing/ format (evaltest.dat):
 *
 *   host::command::regex::YES     the command's output matches regex
 *   host::command::regex::NO      ... does not match
 *   host::command                 (pretest.dat / posttest.dat) run, must exit 0
 *
 * `#` starts a comment line; blank lines are ignored. A host is a VM of the
 * scenario or a host-side peer; the command runs in its shell. Checks may be
 * retried until a deadline (`::YES` checks on state that settles, e.g. an SA
 * coming up): see runChecks' `retryMs`.
 */

export interface CheckHost {
  exec(cmd: string, timeoutMs?: number): Promise<{ code: number; output: string }>;
}

export interface Check {
  host: string;
  command: string;
  regex: RegExp;
  expect: boolean;
  /** Source line, for reports. */
  line: number;
  text: string;
}

export interface Step {
  host: string;
  command: string;
  line: number;
}

export class CheckSyntaxError extends Error {}

/** Parse evaltest.dat text. */
export function parseChecks(text: string): Check[] {
  const out: Check[] = [];
  text.split('\n').forEach((raw, i) => {
    const t = raw.trim();
    if (!t || t.startsWith('#')) return;
    const parts = t.split('::');
    if (parts.length !== 4) throw new CheckSyntaxError(`line ${i + 1}: expected host::command::regex::YES|NO, got '${t}'`);
    const [host, command, regex, yn] = parts as [string, string, string, string];
    if (yn !== 'YES' && yn !== 'NO') throw new CheckSyntaxError(`line ${i + 1}: last field must be YES or NO, got '${yn}'`);
    if (!host || !command) throw new CheckSyntaxError(`line ${i + 1}: empty host or command`);
    let re: RegExp;
    try {
      re = new RegExp(regex, 'm');
    } catch (e) {
      throw new CheckSyntaxError(`line ${i + 1}: bad regex '${regex}': ${(e as Error).message}`);
    }
    out.push({ host, command, regex: re, expect: yn === 'YES', line: i + 1, text: t });
  });
  return out;
}

/** Parse pretest.dat / posttest.dat text (host::command). */
export function parseSteps(text: string): Step[] {
  const out: Step[] = [];
  text.split('\n').forEach((raw, i) => {
    const t = raw.trim();
    if (!t || t.startsWith('#')) return;
    const at = t.indexOf('::');
    if (at <= 0) throw new CheckSyntaxError(`line ${i + 1}: expected host::command, got '${t}'`);
    out.push({ host: t.slice(0, at), command: t.slice(at + 2), line: i + 1 });
  });
  return out;
}

export interface CheckResult {
  check: Check;
  pass: boolean;
  output: string;
  ms: number;
}

function host(hosts: Record<string, CheckHost>, name: string, line: number): CheckHost {
  const h = hosts[name];
  if (!h) throw new CheckSyntaxError(`line ${line}: unknown host '${name}' (hosts: ${Object.keys(hosts).join(', ')})`);
  return h;
}

/** Run steps in order; the first failure throws with the command's output. */
export async function runSteps(steps: Step[], hosts: Record<string, CheckHost>, timeoutMs = 60_000): Promise<void> {
  for (const s of steps) {
    const r = await host(hosts, s.host, s.line).exec(s.command, timeoutMs);
    if (r.code !== 0) throw new Error(`${s.host}::${s.command} exited ${r.code}:\n${r.output.slice(-3000)}`);
  }
}

/**
 * Run every check (all of them, so one run reports every failure). A `YES`
 * check that fails is retried until `retryMs` has passed since this call
 * started: state such as an established SA may still be settling.
 */
export async function runChecks(checks: Check[], hosts: Record<string, CheckHost>, opts: { retryMs?: number; timeoutMs?: number } = {}): Promise<CheckResult[]> {
  const start = Date.now();
  const results: CheckResult[] = [];
  for (const c of checks) {
    const h = host(hosts, c.host, c.line);
    const t0 = Date.now();
    let r: CheckResult;
    for (;;) {
      const { output } = await h.exec(c.command, opts.timeoutMs ?? 60_000);
      const pass = c.regex.test(output) === c.expect;
      r = { check: c, pass, output, ms: Date.now() - t0 };
      if (pass || !c.expect || Date.now() - start > (opts.retryMs ?? 0)) break;
      await new Promise((res) => setTimeout(res, 1000));
    }
    results.push(r);
  }
  return results;
}

/** One line per check, strongSwan-style. */
export function formatResults(results: CheckResult[]): string {
  return results
    .map((r) => `${r.pass ? ' ok ' : 'FAIL'} ${r.check.text}${r.pass ? '' : `\n       output: ${r.output.trim().split('\n').slice(-8).join('\n               ')}`}`)
    .join('\n');
}

/** Serial-log lines that mean something went wrong during boot or run. */
export const SERIAL_ERROR = /\bERROR\b|Kernel panic|\bOops\b|\bBUG:|Call Trace|segfault|Uncaught|^\d{4}-\d\d-\d\dT\S+ error\b|^\w*Error: |^\s+at .+:\d+:\d+\)?$/;

/** Lines of a serial log that match SERIAL_ERROR, minus known-benign ones. */
export function serialErrors(text: string, allow: RegExp[] = []): string[] {
  return text.split('\n').filter((l) => SERIAL_ERROR.test(l) && !allow.some((a) => a.test(l)));
}
