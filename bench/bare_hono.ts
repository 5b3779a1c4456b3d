/**
 * The ceiling: a bare Hono route on Deno.serve answering the same empty TwiML
 * with no signature check and no KV. Prints its URL, like main.ts does.
 */
import { Hono } from "hono";

const app = new Hono();
app.post("/whatsapp", async (c) => {
  await c.req.text();
  return c.body('<?xml version="1.0" encoding="UTF-8"?><Response/>', 200, {
    "content-type": "text/xml; charset=utf-8",
  });
});
const port = Number(Deno.env.get("PORT") ?? 0);
Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: ({ port }) =>
    console.log(JSON.stringify({ event: "service.started", url: `http://127.0.0.1:${port}` })),
}, app.fetch);
