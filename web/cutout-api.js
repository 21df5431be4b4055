// The Cutout API as the README documents it: every call a frontend needs, and nothing else.

export const ACCEPTED_TYPES = ["image/jpeg", "image/png", "image/webp"];
export const MAX_UPLOAD_BYTES = 25 * 1024 * 1024; // the documented default of MAX_UPLOAD_BYTES
const TERMINAL_STATUSES = new Set(["succeeded", "failed", "cancelled", "expired"]);

export class CutoutError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

async function callApi(apiUrl, method, path, body) {
  const response = await fetch(apiUrl + path, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  }).catch(() => {
    throw new CutoutError("network_error", `cannot reach the API at ${apiUrl}`);
  });
  const json = await response.json().catch(() => null);
  if (!response.ok) {
    throw new CutoutError(json?.error?.code ?? `http_${response.status}`, json?.error?.message ?? response.statusText);
  }
  return json;
}

// POST /v1/jobs: declare the exact type and size of the image; the answer says where to PUT it.
export function createJob(apiUrl, file, contentType, format) {
  return callApi(apiUrl, "POST", "/v1/jobs", {
    content_type: contentType,
    content_length: file.size,
    filename: file.name,
    output: { format },
  });
}

export function getJob(apiUrl, jobId) {
  return callApi(apiUrl, "GET", `/v1/jobs/${encodeURIComponent(jobId)}`);
}

export function cancelJob(apiUrl, jobId) {
  return callApi(apiUrl, "DELETE", `/v1/jobs/${encodeURIComponent(jobId)}`);
}

// PUT the file straight to S3 with exactly upload.headers. XMLHttpRequest, because fetch()
// cannot report upload progress.
export function uploadImage(upload, file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(upload.method, upload.url);
    for (const [name, value] of Object.entries(upload.headers)) {
      // The browser sends Content-Length from the body itself and refuses to let a script set it.
      if (name.toLowerCase() !== "content-length") request.setRequestHeader(name, value);
    }
    request.upload.onprogress = (event) => onProgress(event.loaded / event.total);
    request.onload = () => {
      if (request.status < 300) return resolve();
      // S3 answers in XML: <Error><Code>…</Code><Message>…</Message></Error>
      const error = new DOMParser().parseFromString(request.responseText, "application/xml");
      const field = (name) => error.querySelector(name)?.textContent;
      reject(new CutoutError(field("Code") ?? `http_${request.status}`, field("Message") ?? "the storage refused the upload"));
    };
    request.onerror = () => reject(new CutoutError("network_error", "the upload did not reach the storage"));
    request.send(file);
  });
}

// GET /v1/jobs/{id} with backoff until the job is terminal; onJob sees every status on the way.
export async function waitForJob(apiUrl, jobId, onJob, timeoutMs = 10 * 60 * 1000) {
  const deadline = Date.now() + timeoutMs;
  let delayMs = 500;
  for (;;) {
    const job = await getJob(apiUrl, jobId);
    onJob(job);
    if (TERMINAL_STATUSES.has(job.status)) return job;
    if (Date.now() > deadline) throw new CutoutError("timeout", `gave up waiting: the job is still ${job.status}`);
    await new Promise((wake) => setTimeout(wake, delayMs));
    delayMs = Math.min(delayMs * 1.5, 4000);
  }
}

// The type comes from the file's first bytes: the browser's file.type only reflects its name.
export async function sniffContentType(file) {
  const head = new Uint8Array(await file.slice(0, 12).arrayBuffer());
  const startsWith = (bytes, offset = 0) => bytes.every((byte, i) => head[offset + i] === byte);
  if (startsWith([0xff, 0xd8, 0xff])) return "image/jpeg";
  if (startsWith([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "image/png";
  if (startsWith([0x52, 0x49, 0x46, 0x46]) && startsWith([0x57, 0x45, 0x42, 0x50], 8)) return "image/webp";
  return null;
}
