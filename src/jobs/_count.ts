/** Counts keys under `prefix`, stopping at 10,000 to keep the count cheap. */
export async function countUpTo(kv: Deno.Kv, prefix: Deno.KvKey): Promise<number> {
  let count = 0;
  for await (const _ of kv.list({ prefix }, { limit: 10_000 })) count++;
  return count;
}
