/**
 * The HTTP edge: Twilio's signed webhooks (inbound messages and delivery
 * statuses), who may ask and how often, and the health check. A message that
 * passes is handed to the job pipeline in one commit; nothing here waits on
 * AYD or Twilio.
 *
 * @module
 */
export * from "./app.ts";
export * from "./twilio_request.ts";
export * from "./policy.ts";
export * from "./delivery.ts";
export * from "./url_hints.ts";
