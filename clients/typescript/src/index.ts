// The hand-written layer over the generated types (schema.ts, from the API's OpenAPI document)
// and openapi-fetch: what generation cannot express. The token comes from the environment,
// every enqueue carries an idempotency key, 429 and 503 are waited out as Retry-After asks,
// errors are thrown with the field the server named, and wait() polls a job with back-off.
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type { components, paths } from "./schema.js";
export type Schemas = components["schemas"];
/** The kinds a client token may enqueue, as the API lists them. */
export type JobKind = Schemas["EnqueueRequest"]["kind"];
export type JobStatus = Schemas["JobStatus"];
export type EmailTemplate = Schemas["EmailRequest"]["template"];
/** A job kind's payload, where the API documents its type. */
export interface Payloads {
  "cashflow.project": Schemas["CashflowProjectPayload"];
}
type PayloadOf<K extends string> = K extends keyof Payloads ? Payloads[K] : Record<string, unknown>;
/** Options of POST /v1/jobs beside kind and payload, as the API names them. */
export type EnqueueOptions = Omit<Schemas["EnqueueRequest"], "kind" | "payload"> & {
  /** Sent as Idempotency-Key; a fresh UUID when absent, none when null. */
  idempotencyKey?: string | null;
};

/** A job ends in one of these; it never leaves them. */
export const FINAL_STATES: readonly string[] = ["succeeded", "dead", "cancelled"];

/** An answer the API refused: its status, and the error body's code, message and field. */
export class NightshiftError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The request field, header or path parameter at fault (400, 413, 422). */
    readonly field?: string,
  ) {
    super(`${status} ${code}: ${message}${field ? ` (field ${field})` : ""}`);
    this.name = "NightshiftError";
  }
}

export interface Options {
  /** Defaults to NIGHTSHIFT_URL, then http://127.0.0.1:8080. */
  baseUrl?: string;
  /** Defaults to NIGHTSHIFT_TOKEN. */
  token?: string;
  /** How many times a 429 or 503 is waited out before it is returned (default 5). */
  maxRetries?: number;
  /** Called before each such wait. */
  onRetry?: (status: number, waitMs: number, attempt: number) => void;
  fetch?: typeof globalThis.fetch;
}

const MAX_BACKOFF_MS = 30_000;

function env(name: string): string | undefined {
  // Node's process.env when there is one; a browser passes its options instead.
  const g = globalThis as { process?: { env?: Record<string, string | undefined> } };
  return g.process?.env?.[name];
}

/** The wait a 429/503 asks for: Retry-After in seconds or as an HTTP date; else 0.5 s doubling. */
export function retryAfterMs(response: Response, attempt: number): number {
  const value = response.headers.get("retry-after")?.trim() ?? "";
  if (/^\d+$/.test(value)) return Math.min(Number(value) * 1000, MAX_BACKOFF_MS);
  const date = Date.parse(value);
  if (!Number.isNaN(date)) return Math.max(0, Math.min(date - Date.now(), MAX_BACKOFF_MS));
  return Math.min(500 * 2 ** (attempt - 1), MAX_BACKOFF_MS);
}

/** A fetch that waits out 429 and 503 and sends the request again: both mean it was not acted on. */
export function retryingFetch(
  inner: typeof globalThis.fetch,
  maxRetries: number,
  onRetry?: Options["onRetry"],
): typeof globalThis.fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    for (let attempt = 1; ; attempt++) {
      // A Request's body can be read once: each try sends a copy.
      const response = await inner(request.clone());
      if ((response.status !== 429 && response.status !== 503) || attempt > maxRetries) return response;
      const wait = retryAfterMs(response, attempt);
      await response.body?.cancel();
      onRetry?.(response.status, wait, attempt);
      await sleep(wait);
    }
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function poll<T extends { state: string }>(
  fetch: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
    const value = await fetch();
    if (done(value)) return value;
    if (Date.now() + delay > deadline) throw new Error(`${what} is still ${value.state} after ${timeoutMs} ms`);
    await sleep(delay);
  }
}

export class Nightshift {
  /** The generated, fully typed client for every route (`api.GET("/v1/jobs/{id}", ...)`). */
  readonly api: Client<paths>;

  constructor(options: Options = {}) {
    const token = options.token ?? env("NIGHTSHIFT_TOKEN");
    if (!token) throw new Error("no token: pass { token } or set NIGHTSHIFT_TOKEN");
    const baseUrl = (options.baseUrl ?? env("NIGHTSHIFT_URL") ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
    this.api = createClient<paths>({
      baseUrl,
      headers: { Authorization: `Bearer ${token}` },
      fetch: retryingFetch(options.fetch ?? globalThis.fetch, options.maxRetries ?? 5, options.onRetry),
    });
  }

  /** Enqueues a job; returns its id. A replay with the same idempotency key returns the first id. */
  async enqueue<K extends JobKind | (string & {})>(
    kind: K,
    payload?: PayloadOf<K>,
    options: EnqueueOptions = {},
  ): Promise<string> {
    const { idempotencyKey = crypto.randomUUID(), ...fields } = options;
    const { data, error, response } = await this.api.POST("/v1/jobs", {
      // Kinds outside the listed ones (operator kinds with an admin token) are the server's to refuse.
      body: { ...fields, kind: kind as JobKind, payload: payload ?? {} },
      params: { header: idempotencyKey === null ? {} : { "Idempotency-Key": idempotencyKey } },
    });
    return unwrap(data, error, response).id;
  }

  async job(id: string): Promise<JobStatus> {
    const { data, error, response } = await this.api.GET("/v1/jobs/{id}", { params: { path: { id } } });
    return unwrap(data, error, response);
  }

  /** Polls the job until it is final (succeeded, dead or cancelled), backing off from 50 ms to 1 s. */
  wait(id: string, { timeoutMs = 60_000 }: { timeoutMs?: number } = {}): Promise<JobStatus> {
    return poll(() => this.job(id), (s) => FINAL_STATES.includes(s.state), timeoutMs, `job ${id}`);
  }

  /** Queues a templated e-mail. Sent once per idempotency key, however often this is called. */
  async sendEmail(
    template: EmailTemplate,
    to: string,
    vars: Record<string, unknown> = {},
    { idempotencyKey = crypto.randomUUID() }: { idempotencyKey?: string } = {},
  ): Promise<Schemas["Queued"]> {
    const { data, error, response } = await this.api.POST("/v1/emails", {
      body: { template, to, vars, idempotency_key: idempotencyKey },
    });
    return unwrap(data, error, response);
  }

  /** The e-mail sent under this key: pending, sent or failed, with the SMTP reply. */
  async email(idempotencyKey: string): Promise<Schemas["EmailStatus"]> {
    const { data, error, response } = await this.api.GET("/v1/emails/{key}", {
      params: { path: { key: idempotencyKey } },
    });
    return unwrap(data, error, response);
  }

  /** Polls until the e-mail is sent or failed. (An e-mail's job belongs to the platform, not
   * the caller: its key is the handle.) */
  waitEmail(idempotencyKey: string, { timeoutMs = 60_000 }: { timeoutMs?: number } = {}): Promise<Schemas["EmailStatus"]> {
    return poll(() => this.email(idempotencyKey), (e) => e.state !== "pending", timeoutMs, `e-mail ${idempotencyKey}`);
  }

  /** The user's current projection. */
  async cashflow(userId: number): Promise<Schemas["Projection"]> {
    const { data, error, response } = await this.api.GET("/v1/users/{id}/cashflow", {
      params: { path: { id: userId } },
    });
    return unwrap(data, error, response);
  }

  /** Creates a batch; its callbacks run once every job has finished. */
  async createBatch(request: Schemas["CreateBatch"]): Promise<Schemas["Created"]> {
    const { data, error, response } = await this.api.POST("/v1/batches", { body: request });
    return unwrap(data, error, response);
  }

  async batch(id: string): Promise<Schemas["BatchStatus"]> {
    const { data, error, response } = await this.api.GET("/v1/batches/{id}", { params: { path: { id } } });
    return unwrap(data, error, response);
  }
}

function unwrap<T>(data: T | undefined, error: unknown, response: Response): T {
  if (data !== undefined) return data;
  const detail = (error as { error?: { code?: string; message?: string; field?: string } } | undefined)?.error;
  throw new NightshiftError(
    response.status,
    detail?.code ?? "unknown",
    detail?.message ?? response.statusText,
    detail?.field ?? undefined,
  );
}
