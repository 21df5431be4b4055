// The Cutout API as the README documents it: every call a frontend needs, and nothing else.

export class CutoutError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// A throttled (429) or failing (5xx) answer is tried again, up to MAX_ATTEMPTS sends in all.
export const MAX_ATTEMPTS = 6;
const FIRST_RETRY_DELAY_MS = 500;
const MAX_RETRY_DELAY_MS = 8000;
// How long one call may keep retrying when the caller has no deadline of its own.
const CALL_RETRY_BUDGET_MS = 60 * 1000;

const sleep = (ms) => new Promise((wake) => setTimeout(wake, ms));
const isTransient = (status) => status === 429 || status >= 500;

// The API key sent as x-api-key on every API call (never to S3's presigned URLs); null: none.
// Only a key made for this page belongs here: whatever a page holds, its visitors can read.
let apiKey = null;
export function useApiKey(key) {
  apiKey = key || null;
}

// With an Idempotency-Key a submit is made once however often it is sent, so a retry after a failed
// request is safe, and a 409 idempotency_conflict (the first send still running) means "not yet".
async function isIdempotencyConflict(answer) {
  if (answer.status !== 409) return false;
  const body = await answer.clone().json().catch(() => null);
  return body?.error?.code === "idempotency_conflict";
}

// Retry-After is seconds or an HTTP date. A page only sees it on a cross-origin answer that lists
// it in Access-Control-Expose-Headers; without it the backoff applies.
function retryAfterMs(value) {
  if (!value) return null;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

// Exponential in the attempts made so far, with jitter so that throttled clients do not come back in step.
function backoffMs(attempts) {
  return Math.min(FIRST_RETRY_DELAY_MS * 2 ** (attempts - 1), MAX_RETRY_DELAY_MS) * (0.5 + Math.random() / 2);
}

// send() again while its answer is transient (429, 5xx; a failed request when networkErrorsAreTransient;
// an idempotency conflict when conflictsAreTransient) and attempts and time are left; then the last
// answer, or error, stands. send() resolves to a fetch Response or the like; onRetry(reason, waitMs)
// hears of each retry before its wait.
async function sendWithRetries(send, {
  deadline = Date.now() + CALL_RETRY_BUDGET_MS, onRetry = () => {}, networkErrorsAreTransient = false, conflictsAreTransient = false,
} = {}) {
  for (let attempts = 1; ; attempts++) {
    let answer = null;
    let failure = null;
    try {
      answer = await send();
      const transient = isTransient(answer.status) || (conflictsAreTransient && await isIdempotencyConflict(answer));
      if (!transient) return answer;
    } catch (error) {
      if (!networkErrorsAreTransient) throw error;
      failure = error;
    }
    const waitMs = retryAfterMs(answer?.headers.get("Retry-After")) ?? backoffMs(attempts);
    if (attempts >= MAX_ATTEMPTS || Date.now() + waitMs > deadline) {
      if (failure) throw failure;
      return answer;
    }
    onRetry(failure ? new CutoutError("network_error", "the connection failed") : await refusal(answer), waitMs);
    await sleep(waitMs);
  }
}

// What an answer that is not a success says: the API's {"error": {"code", "message", "details"?}} (a
// 400's details.problems, each bad field and what is wrong with it, are part of the message), or
// S3's XML <Error><Code>…</Code><Message>…</Message></Error>.
async function refusal(answer, fallbackMessage = answer.statusText) {
  const text = await answer.text().catch(() => "");
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  if (json?.error?.code) {
    const problems = json.error.details?.problems;
    const said = Array.isArray(problems) ? problems.map(({ field, problem }) => `${field} ${problem}`).join("; ") : "";
    return new CutoutError(json.error.code, said ? `${json.error.message}: ${said}` : json.error.message);
  }
  const xml = new DOMParser().parseFromString(text, "application/xml");
  const field = (name) => xml.querySelector(`Error > ${name}`)?.textContent;
  return new CutoutError(field("Code") ?? `http_${answer.status}`, field("Message") ?? fallbackMessage);
}

// idempotent: send an Idempotency-Key, the same on every retry of this call (a page served over
// plain HTTP from another host than localhost has no crypto.randomUUID, and sends none).
async function callApi(apiUrl, method, path, body, retry, { idempotent = false } = {}) {
  const idempotencyKey = idempotent ? globalThis.crypto?.randomUUID?.() : undefined;
  const headers = {
    ...(body ? { "Content-Type": "application/json" } : {}),
    ...(apiKey ? { "x-api-key": apiKey } : {}),
    ...(idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {}),
  };
  const send = () => fetch(apiUrl + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const safeToRepeat = idempotencyKey ? { networkErrorsAreTransient: true, conflictsAreTransient: true } : {};
  const response = await sendWithRetries(send, { ...retry, ...safeToRepeat }).catch(() => {
    throw new CutoutError("network_error", `cannot reach the API at ${apiUrl}`);
  });
  if (!response.ok) throw await refusal(response);
  return response.json();
}

// A GET whose answer holds for the deployment (its limits, its models), asked once per API URL; a
// failed ask is not kept, so the next call asks again.
const deploymentAnswers = new Map();
function fetchOncePerApi(apiUrl, path, retry) {
  const key = apiUrl + path;
  if (!deploymentAnswers.has(key)) {
    const answer = callApi(apiUrl, "GET", path, undefined, retry);
    deploymentAnswers.set(key, answer);
    answer.catch(() => {
      if (deploymentAnswers.get(key) === answer) deploymentAnswers.delete(key);
    });
  }
  return deploymentAnswers.get(key);
}

// GET /v1/limits: what the service accepts (upload_types with their signatures, max_upload_bytes,
// ...) and which statuses end a job. retry: { deadline, onRetry } for this and every call below.
export function fetchLimits(apiUrl, retry) {
  return fetchOncePerApi(apiUrl, "/v1/limits", retry);
}

// GET /v1/models: { models: [{ name, description, default, networks }] }, the deployment's default
// marked default: true.
export function fetchModels(apiUrl, retry) {
  return fetchOncePerApi(apiUrl, "/v1/models", retry);
}

// POST /v1/jobs: declare the exact type and size of the image; the answer says where to PUT it.
// Sent with an Idempotency-Key, so a retried create never makes a second job.
// output: { format, bg_color, crop, crop_margin, max_side }, each optional, sent as given (the API
// checks them and answers a 400 naming each bad field). model: a name from GET /v1/models, checked
// by the API too; undefined leaves it out, and the job gets the deployment's default.
export function createJob(apiUrl, file, contentType, output, model, retry) {
  return callApi(apiUrl, "POST", "/v1/jobs", {
    content_type: contentType,
    content_length: file.size,
    filename: file.name,
    output,
    model,
  }, retry, { idempotent: true });
}

export function getJob(apiUrl, jobId, retry) {
  return callApi(apiUrl, "GET", `/v1/jobs/${encodeURIComponent(jobId)}`, undefined, retry);
}

export function cancelJob(apiUrl, jobId, retry) {
  return callApi(apiUrl, "DELETE", `/v1/jobs/${encodeURIComponent(jobId)}`, undefined, retry);
}

// PUT the file straight to S3 with exactly upload.headers; S3's 503 SlowDown or a 500 sends it
// again, its 403 (a signature mismatch) is final.
export async function uploadImage(upload, file, onProgress, retry) {
  const answer = await sendWithRetries(() => putOnce(upload, file, onProgress), retry);
  if (!answer.ok) throw await refusal(answer, "the storage refused the upload");
}

// XMLHttpRequest, because fetch() cannot report upload progress; it resolves to what fetch would.
function putOnce(upload, file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(upload.method, upload.url);
    for (const [name, value] of Object.entries(upload.headers)) {
      // The browser sends Content-Length from the body itself and refuses to let a script set it.
      if (name.toLowerCase() !== "content-length") request.setRequestHeader(name, value);
    }
    request.upload.onprogress = (event) => onProgress(event.loaded / event.total);
    request.onload = () => resolve({
      status: request.status,
      ok: request.status < 300,
      statusText: request.statusText,
      headers: { get: (name) => request.getResponseHeader(name) },
      text: async () => request.responseText,
    });
    request.onerror = () => reject(new CutoutError("network_error", "the upload did not reach the storage"));
    request.send(file);
  });
}

// GET /v1/jobs/{id} with backoff until the job is terminal; onJob sees every status on the way.
// The job exists, so a failed request on the way is as transient as a 503.
export async function waitForJob(apiUrl, jobId, onJob, { timeoutMs = 10 * 60 * 1000, onRetry } = {}) {
  const deadline = Date.now() + timeoutMs;
  const terminalStatuses = new Set((await fetchLimits(apiUrl, { deadline, onRetry })).terminal_statuses);
  let delayMs = 500;
  for (;;) {
    const job = await getJob(apiUrl, jobId, { deadline, onRetry, networkErrorsAreTransient: true });
    onJob(job);
    if (terminalStatuses.has(job.status)) return job;
    if (Date.now() > deadline) throw new CutoutError("timeout", `gave up waiting: the job is still ${job.status}`);
    await new Promise((wake) => setTimeout(wake, delayMs));
    delayMs = Math.min(delayMs * 1.5, 4000);
  }
}

// The type comes from the file's first bytes (the browser's file.type only reflects its name): the
// first of limits.upload_types all of whose signatures (hex bytes at an offset) match, else null.
export async function sniffContentType(file, limits) {
  const signatureBytes = (signature) => (signature.hex.match(/../g) ?? []).map((pair) => parseInt(pair, 16));
  const headLength = Math.max(0, ...limits.upload_types.flatMap((type) => type.signatures.map(
    (signature) => signature.offset + signature.hex.length / 2)));
  const head = new Uint8Array(await file.slice(0, headLength).arrayBuffer());
  const matches = (signature) => signatureBytes(signature).every((byte, i) => head[signature.offset + i] === byte);
  return limits.upload_types.find((type) => type.signatures.every(matches))?.content_type ?? null;
}
