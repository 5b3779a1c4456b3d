/**
 * The setup doctor behind `deno task doctor`: a configuration checked
 * against the real services (the variables; Twilio's account, number and
 * sender; AskYourDatabase's key and chatbot; KV; the public URL leading to
 * this bridge), printed as a checklist with a fix under each failure.
 *
 * @module
 */
export * from "./doctor.ts";
export * from "./report.ts";
