// ferry console: live updates from /v1/events, and the Upgrade form sent
// to POST /v1/upgrade. The page works without this file.
"use strict";

(function () {
  const main = document.getElementById("main");
  const jsError = document.getElementById("js-error");

  function showError(text) {
    jsError.textContent = text;
    jsError.hidden = !text;
  }

  // Redraw the main part of the page (rendered by the server) when the
  // status changes. A form being filled in is left alone until it is sent.
  let redrawing = false;
  async function redraw() {
    if (redrawing) return;
    const active = document.activeElement;
    if (active && active.form && active.form.id === "upgrade" && active.value) return;
    redrawing = true;
    try {
      const params = new URLSearchParams(location.search);
      params.set("part", "main");
      const resp = await fetch("/?" + params.toString(), { headers: { Accept: "text/html" } });
      if (resp.ok) {
        const html = await resp.text();
        // What was typed into the form survives the redraw.
        const kept = {};
        for (const id of ["token", "to"]) {
          const el = document.getElementById(id);
          if (el) kept[id] = el.value;
        }
        const focused = document.activeElement ? document.activeElement.id : "";
        main.innerHTML = html;
        for (const id in kept) {
          const el = document.getElementById(id);
          if (el) el.value = kept[id];
        }
        if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
        wire();
      }
    } finally {
      redrawing = false;
    }
  }

  if (window.EventSource) {
    const events = new EventSource("/v1/events");
    let first = true;
    events.addEventListener("status", function () {
      if (first) { first = false; return; } // the page already shows it
      redraw();
    });
  }

  function wire() {
    const form = document.getElementById("upgrade");
    if (!form || form.dataset.wired) return;
    form.dataset.wired = "1";
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      showError("");
      const button = document.getElementById("upgrade-button");
      button.disabled = true;
      button.textContent = "Upgrading…";
      const token = form.elements.token ? form.elements.token.value : "";
      const to = form.elements.to.value.trim();
      const body = to === "" ? {} : { to: Number(to) };
      try {
        const headers = { "Content-Type": "application/json", Accept: "application/json" };
        if (token) headers.Authorization = "Bearer " + token;
        const resp = await fetch("/v1/upgrade", { method: "POST", headers: headers, body: JSON.stringify(body) });
        const text = await resp.text();
        let doc = null;
        try { doc = JSON.parse(text); } catch (e) { /* a text answer */ }
        if (resp.status === 401) {
          showError("Wrong or missing token: nothing was applied.");
        } else if (!resp.ok) {
          showError("Upgrade failed: " + (doc && (doc.error || doc.detail) || text));
        } else {
          const n = doc && doc.applied ? doc.applied.length : 0;
          const version = doc && doc["final-status"] ? doc["final-status"].current_version : "";
          const msg = document.createElement("p");
          msg.className = "note ok";
          msg.id = "message";
          msg.setAttribute("role", "status");
          msg.textContent = "upgrade success: " + n + " applied, now at version " + version;
          const old = document.getElementById("message");
          if (old) old.remove();
          main.before(msg);
          form.elements.to.value = "";
        }
      } catch (e) {
        showError("The service did not answer: " + e);
      }
      await redraw();
    });
  }
  wire();
})();
