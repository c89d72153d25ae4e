/** Reading `nft -a list ruleset`: the rules that carry a comment, with where they sit and their handle. */

export interface NftCommentedRule {
  family: string;
  table: string;
  chain: string;
  handle: number;
  comment: string;
  /** The rule as nft printed it (trimmed). */
  line: string;
}

/** Rules whose comment is one of `comments` (and that have a handle: `nft -a`), in ruleset order. */
export function nftRulesWithComments(text: string, comments: readonly string[]): NftCommentedRule[] {
  const out: NftCommentedRule[] = [];
  let table: { family: string; name: string } | null = null;
  let chain: string | null = null;
  for (const line of text.split('\n')) {
    const t = /^table (\S+) (\S+) \{/.exec(line);
    if (t) {
      table = { family: t[1]!, name: t[2]! };
      chain = null;
      continue;
    }
    const c = /^\s+chain (\S+) \{/.exec(line);
    if (c) {
      chain = c[1]!;
      continue;
    }
    const m = /comment "([^"]+)".*# handle (\d+)\s*$/.exec(line);
    if (table && chain && m && comments.includes(m[1]!)) {
      out.push({ family: table.family, table: table.name, chain, handle: Number(m[2]), comment: m[1]!, line: line.trim() });
    }
  }
  return out;
}
