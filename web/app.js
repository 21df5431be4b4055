// The demo page: one card per dropped image, moved through the API calls of cutout-api.js.

import {
  CutoutError, cancelJob, createJob, fetchLimits, fetchModels, sniffContentType, uploadImage, useApiKey, waitForJob,
} from "./cutout-api.js";

const STAGE_WORDS = {
  checking: "checking the file",
  creating: "asking for an upload URL",
  uploading: "uploading",
  awaiting_upload: "uploaded, waiting to be picked up",
  normalizing: "normalizing the photo",
  queued: "queued for background removal",
  processing: "removing the background",
  succeeded: "done",
  failed: "failed",
  cancelled: "cancelled",
  expired: "expired",
};

// How the page names the API's output formats; a format it does not know shows as its name.
const FORMAT_WORDS = { png: "PNG", webp: "WebP", jpeg: "JPEG", mask: "Mask only" };

const withoutSlash = (url) => (url ?? "").replace(/\/+$/, "");
const apiUrl = withoutSlash(new URLSearchParams(location.search).get("api") ?? window.CUTOUT_API_URL);
// config.js's key belongs to config.js's API: another one named by ?api= does not get it.
const apiKey = apiUrl === withoutSlash(window.CUTOUT_API_URL) ? window.CUTOUT_API_KEY : undefined;
useApiKey(apiKey);
const dropZone = document.getElementById("drop-zone");
const fileInput = document.getElementById("files");
const picker = document.getElementById("picker");
const modelHint = document.getElementById("model-hint");

// What a person reads for a failure; a refused key (403 forbidden) says what to do about it.
function problemWords(error) {
  if (error.code !== "forbidden") return error.message;
  return apiKey
    ? "The API refused this page's API key (403 forbidden): it may be revoked or mistyped. Set a valid one as window.CUTOUT_API_KEY in config.js (`make up` writes it)."
    : "The API needs an API key and this page has none (403 forbidden). Set window.CUTOUT_API_KEY in config.js (`make up` writes it).";
}

function showConfigProblem(words) {
  const problem = document.getElementById("config-problem");
  problem.textContent = words;
  problem.hidden = false;
}

function megabytes(bytes) {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// contentType is null when the file's bytes are none of the API's upload types.
function checkFile(file, contentType, limits) {
  if (file.size === 0) throw new CutoutError("empty_file", `${file.name} is empty`);
  if (file.size > limits.max_upload_bytes) {
    throw new CutoutError("payload_too_large", `${file.name} is ${megabytes(file.size)}; the limit is ${megabytes(limits.max_upload_bytes)}`);
  }
  if (contentType === null) {
    throw new CutoutError("unsupported_media_type", `${file.name} is not a JPEG, PNG or WebP image`);
  }
}

// The output options as the API takes them; only the choices made are sent, and the API checks them.
function outputOptions() {
  const form = new FormData(picker); // disabled controls are left out
  const output = {};
  if (form.has("format")) output.format = form.get("format");
  const background = form.get("background");
  if (background === "white") output.bg_color = "#FFFFFF";
  if (background === "custom") {
    const alpha = Number(form.get("bg_alpha") ?? 255);
    output.bg_color = form.get("bg_color").toUpperCase() + (alpha < 255 ? alpha.toString(16).padStart(2, "0").toUpperCase() : "");
  }
  if (form.has("crop")) {
    output.crop = true;
    const margin = form.get("crop_margin").trim();
    if (margin) output.crop_margin = margin + form.get("crop_margin_unit");
  }
  const maxSide = form.get("max_side").trim();
  if (maxSide) output.max_side = Number(maxSide);
  return output;
}

// The model picked, or undefined while the picker holds no models (disabled controls are left out of
// the form): the job then gets the deployment's default.
function chosenModel() {
  return new FormData(picker).get("model") ?? undefined;
}

// What the API refuses anyway is not offered: a background for a mask, transparency in a JPEG.
function syncOptions() {
  const format = new FormData(picker).get("format");
  const transparent = picker.querySelector('[name=background][value=transparent]');
  document.getElementById("background-options").disabled = format === "mask";
  transparent.disabled = format === "jpeg";
  if (format === "jpeg" && transparent.checked) picker.querySelector('[name=background][value=white]').checked = true;
  picker.elements.bg_alpha.disabled = format === "jpeg" || picker.elements.background.value !== "custom";
  picker.elements.crop_margin.disabled = picker.elements.crop_margin_unit.disabled = !picker.elements.crop.checked;
}

function showFormats(outputFormats) {
  const formats = document.getElementById("format-options");
  for (const [i, format] of outputFormats.entries()) {
    const label = document.createElement("label");
    const radio = Object.assign(document.createElement("input"), { type: "radio", name: "format", value: format, checked: i === 0 });
    label.append(radio, ` ${FORMAT_WORDS[format] ?? format}`);
    formats.append(label);
  }
  syncOptions();
}

// The API's models, its default chosen and marked; the chosen one's description shows under the picker.
function showModels(models) {
  const select = picker.elements.model;
  select.replaceChildren(...models.map((model) => {
    const option = new Option(model.default ? `${model.name} (default)` : model.name, model.name, model.default, model.default);
    option.dataset.description = model.description;
    return option;
  }));
  select.disabled = false;
  describeChosenModel();
}

function describeChosenModel() {
  modelHint.textContent = picker.elements.model.selectedOptions[0]?.dataset.description ?? "";
}

// Without GET /v1/models (a failed ask, a deployment from before models) the picker stays disabled
// on the deployment's default, and jobs still run.
function modelsUnavailable(error) {
  document.getElementById("model-options").classList.add("unavailable");
  modelHint.textContent = error?.code === "forbidden"
    ? "Models cannot be listed without a valid API key."
    : "Models are unavailable: each job gets the deployment's default model.";
}

// The result has transparency unless it is a JPEG, a mask, or over an opaque background (the API
// echoes an opaque colour as #RRGGBB); only then does the checkerboard show through.
function hasTransparency(result) {
  if (result.format === "jpeg" || result.format === "mask") return false;
  const background = result.output?.bg_color;
  return !background || background.length === 9;
}

function modelWords(result) {
  return result.model ? `model ${result.model}; ` : "";
}

function subjectWords(result) {
  if (!("subject" in result)) return "";
  const box = result.subject;
  return box ? `; subject ${box.width}×${box.height} at ${box.x}, ${box.y}` : "; no subject found";
}

class JobCard {
  constructor(file) {
    this.root = document.getElementById("job-card").content.firstElementChild.cloneNode(true);
    this.part = (selector) => this.root.querySelector(selector);
    this.part(".name").textContent = file.name;
    document.getElementById("jobs").append(this.root);
  }

  stage(stage) {
    this.clearRetrying();
    this.root.dataset.stage = stage;
    this.part(".stage").textContent = STAGE_WORDS[stage];
    this.part("progress").hidden = stage !== "uploading";
    const cancel = this.part(".cancel");
    cancel.hidden = !this.cancellableStatuses?.has(stage);
  }

  progress(fraction) {
    this.clearRetrying();
    this.part("progress").value = fraction;
  }

  // A transient answer (throttled, unavailable): the job is not failed, the call is tried again.
  retrying(reason, waitMs) {
    const notice = this.part(".retry");
    notice.textContent = `${reason.message}: trying again in ${Math.ceil(waitMs / 1000)} s`;
    notice.title = reason.code;
    notice.hidden = false;
  }

  clearRetrying() {
    this.part(".retry").hidden = true;
  }

  // cancellableStatuses: the limits' statuses in which the API cancels a job.
  allowCancel(onCancel, cancellableStatuses) {
    this.cancellableStatuses = new Set(cancellableStatuses);
    const button = this.part(".cancel");
    button.onclick = () => { button.disabled = true; onCancel(); };
  }

  fail(error) {
    this.stage("failed");
    const problem = this.part(".problem");
    problem.textContent = problemWords(error);
    problem.title = error.code ?? "";
    problem.hidden = false;
  }

  showResult(file, result) {
    this.part(".before").src = URL.createObjectURL(file);
    const after = this.part(".after");
    after.onerror = () => this.fail(new CutoutError("result_unavailable", "the result could not be loaded; its link may have expired"));
    after.src = result.url;
    after.classList.toggle("checkerboard", hasTransparency(result));
    this.part(".compare").hidden = false;
    this.part(".download-link").href = result.url;
    const validUntil = new Date(result.expires_at).toLocaleTimeString();
    this.part(".details").textContent = `${modelWords(result)}${result.format}, ${result.width}×${result.height}, ${megabytes(result.bytes)}${subjectWords(result)}; link valid until ${validUntil}`;
    this.part(".download").hidden = false;
  }
}

async function removeBackground(file, output, model) {
  const card = new JobCard(file);
  try {
    card.stage("checking");
    const retry = { onRetry: (reason, waitMs) => card.retrying(reason, waitMs) };
    const limits = await fetchLimits(apiUrl, retry);
    const contentType = await sniffContentType(file, limits);
    checkFile(file, contentType, limits);
    card.stage("creating");
    const job = await createJob(apiUrl, file, contentType, output, model, retry);
    card.allowCancel(
      () => cancelJob(apiUrl, job.job_id, retry).catch((error) => card.fail(error)),
      limits.cancellable_statuses,
    );
    card.stage("uploading");
    await uploadImage(job.upload, file, (fraction) => card.progress(fraction), retry);
    const done = await waitForJob(apiUrl, job.job_id, (polled) => card.stage(polled.status), retry);
    if (done.status === "succeeded") {
      card.showResult(file, done.result);
    } else if (done.status !== "cancelled") {
      throw new CutoutError(done.error?.code ?? done.status, done.error?.message ?? `the job ended ${done.status}`);
    }
  } catch (error) {
    card.fail(error);
  }
}

function removeBackgrounds(files) {
  const output = outputOptions();
  const model = chosenModel();
  for (const file of files) removeBackground(file, output, model);
}

if (!apiUrl) {
  showConfigProblem("No API configured: run `make up`, or open this page with ?api=<API base URL>.");
  fileInput.disabled = true;
} else {
  // The picker offers the types the API accepts. Should this first ask fail, it offers any file
  // and each card asks again (a failed ask is not kept).
  fetchLimits(apiUrl).then((limits) => {
    fileInput.accept = limits.upload_types.map((type) => type.content_type).join(",");
    document.getElementById("size-limit").textContent = `, up to ${megabytes(limits.max_upload_bytes)} each`;
    showFormats(limits.output_formats);
  }, (error) => {
    if (error.code === "forbidden") showConfigProblem(problemWords(error));
  });
  fetchModels(apiUrl).then(({ models }) => showModels(models)).catch(modelsUnavailable);
  picker.addEventListener("change", syncOptions);
  picker.elements.model.addEventListener("change", describeChosenModel);
  picker.elements.bg_color.addEventListener("input", () => {
    picker.querySelector('[name=background][value=custom]').checked = true;
    syncOptions();
  });
  syncOptions();
  fileInput.addEventListener("change", () => {
    removeBackgrounds([...fileInput.files]);
    fileInput.value = "";
  });
  dropZone.addEventListener("dragover", (event) => { event.preventDefault(); dropZone.classList.add("dragging"); });
  dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropZone.classList.remove("dragging");
    removeBackgrounds([...event.dataTransfer.files]);
  });
}
