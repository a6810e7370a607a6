// mlgate dashboard: the little that needs a script. Pages work without it, except the live
// job view, which then shows the state as of loading (reload to refresh).
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});

document.addEventListener("click", (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const source = document.querySelector(copy.getAttribute("data-copy"));
    const text = source.value !== undefined ? source.value : source.textContent;
    navigator.clipboard.writeText(text).then(() => { copy.textContent = "Copied"; }, () => {
      if (source.select) source.select();
    });
  }
  const back = event.target.closest("[data-back]");
  if (back && window.history.length > 1) { event.preventDefault(); window.history.back(); }
});

function watchJob(section) {
  const url = section.getAttribute("data-job-state");
  const find = (name) => section.querySelector(name);
  const finished = ["succeeded", "failed", "cancelled"];
  async function poll() {
    let job;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      job = await response.json();
    } catch (error) {
      window.setTimeout(poll, 3000);
      return;
    }
    const state = find(".job-state");
    state.textContent = job.state;
    state.setAttribute("data-state", job.state);
    find(".job-stage").textContent = job.stage || "–";
    find(".job-progress").value = job.progress;
    find(".job-log").textContent = job.log.join("\n");
    if (job.error) { find(".job-error").hidden = false; find(".job-error").textContent = job.error; }
    if (job.state === "succeeded") {
      const link = find(".job-link");
      link.textContent = `${section.getAttribute("data-model")} v${job.result.version}`;
      find(".job-result").hidden = false;
    }
    if (finished.includes(job.state)) {
      const cancel = document.querySelector(".job-cancel");
      if (cancel) cancel.remove();
      return;
    }
    window.setTimeout(poll, 1000);
  }
  poll();
}

document.addEventListener("DOMContentLoaded", () => {
  const job = document.querySelector("[data-job-state]");
  if (job) watchJob(job);
});
