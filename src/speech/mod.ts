/**
 * Speech to text: a voice note's audio sent to a transcription service that
 * speaks OpenAI's audio transcription API (`POST /v1/audio/transcriptions`,
 * multipart `file` + `model`), as OpenAI, Groq, whisper.cpp's server,
 * faster-whisper-server and LocalAI do.
 *
 * @module
 */
export * from "./transcribe.ts";
