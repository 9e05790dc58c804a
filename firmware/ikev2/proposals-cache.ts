/** Parsed proposal lists, cached by their text (config strings are validated at load time). */
import { parseProposals, type ProposalSpec } from './sa/proposal.js';

const cache = new Map<string, ProposalSpec[]>();

export function parseProposalsCached(list: string[], protocol: 'ike' | 'esp'): ProposalSpec[] {
  const key = `${protocol}|${list.join(',')}`;
  let v = cache.get(key);
  if (!v) {
    v = parseProposals(list, protocol); // expands `default`
    if (cache.size > 1024) cache.clear();
    cache.set(key, v);
  }
  return v;
}
