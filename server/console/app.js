// ferry console: live updates from /v1/events, and the Upgrade form sent
// to POST /v1/upgrade. The page works without this file.
"use strict";

(function () {
  const main = document.getElementById("main");
  const jsError = document.getElementById("js-error");
  const stale = document.getElementById("stale");

  function show(el, text) {
    el.textContent = text;
    el.hidden = !text;
  }

  // The ETag of the status the page shows.
  function shownTag() {
    const t = document.getElementById("status-tag");
    return t ? t.dataset.tag : "";
  }

  // Redraw the main part of the page (rendered by the server). A form being
  // filled in is left alone until it is sent (force: the form's own
  // submit). A redraw asked for while one runs runs after it.
  let redrawing = false;
  let again = false;
  async function redraw(force) {
    if (redrawing) {
      again = true;
      return;
    }
    const active = document.activeElement;
    if (!force && active && active.form && active.form.id === "upgrade" && active.value) {
      active.addEventListener("blur", function () { redraw(false); }, { once: true });
      return;
    }
    redrawing = true;
    main.setAttribute("aria-busy", "true");
    try {
      const params = new URLSearchParams(location.search);
      params.set("part", "main");
      const resp = await fetch("/?" + params.toString(), { headers: { Accept: "text/html" } });
      if (!resp.ok) {
        show(stale, "The status could not be read (" + resp.status + "): this page may be out of date.");
        return;
      }
      const fresh = document.createElement("template");
      fresh.innerHTML = await resp.text();
      // The form on the page stays the same element, with what was typed
      // into it and its focus: only what is around it is replaced.
      const form = document.getElementById("upgrade");
      const place = fresh.content.getElementById("upgrade");
      const focused = document.activeElement;
      if (form && place) place.replaceWith(form);
      main.replaceChildren(fresh.content);
      if (focused && focused !== document.activeElement && main.contains(focused)) focused.focus();
      wire();
    } catch (e) {
      show(stale, "The service did not answer: this page may be out of date.");
    } finally {
      redrawing = false;
      if (again) {
        again = false;
        redraw(false);
      } else {
        main.removeAttribute("aria-busy");
      }
    }
  }

  // One event stream while the tab is visible: a browser has few
  // connections to one host, and hidden tabs must not take them all.
  let events = null;
  function connect() {
    if (!window.EventSource || events) return;
    events = new EventSource("/v1/events");
    events.addEventListener("status", function (ev) {
      show(stale, "");
      if (ev.lastEventId && ev.lastEventId === shownTag()) return; // shown already
      redraw(false);
    });
    events.addEventListener("status-error", function (ev) {
      show(stale, "The service cannot read the status: " + ev.data + ". This page shows the last status it read.");
    });
    events.onerror = function () {
      show(stale, "Lost the connection to the service; retrying. This page may be out of date.");
    };
  }
  function disconnect() {
    if (events) {
      events.close();
      events = null;
    }
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      disconnect();
    } else {
      connect();
    }
  });
  if (!document.hidden) connect();

  function wire() {
    const form = document.getElementById("upgrade");
    if (!form || form.dataset.wired) return;
    form.dataset.wired = "1";
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      show(jsError, "");
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
          show(jsError, "Wrong or missing token: nothing was applied.");
        } else if (!resp.ok) {
          show(jsError, "Upgrade failed: " + (doc && (doc.error || doc.detail) || text));
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
          if (form.elements.token) form.elements.token.value = "";
        }
      } catch (e) {
        show(jsError, "The service did not answer: " + e);
      } finally {
        button.disabled = false;
        button.textContent = "Upgrade";
      }
      await redraw(true);
    });
  }
  wire();
})();
