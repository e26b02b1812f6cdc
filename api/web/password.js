// switchboard: set a password from a one-time link (an invitation or a
// reset). The token is in the fragment, which no server or Referer sees;
// it is taken off the address bar at once.
"use strict";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
history.replaceState(null, "", location.pathname);

$("password-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("password-error").textContent = "";
  if ($("new-password").value !== $("again").value) {
    $("password-error").textContent = "The two passwords differ.";
    return;
  }
  const res = await fetch("/v1/password", {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token, password: $("new-password").value }),
  });
  if (!res.ok) {
    const body = await res.json().catch(() => null);
    $("password-error").textContent = (body && body.message) || res.statusText;
    return;
  }
  $("password-form").hidden = true;
  $("password-done").hidden = false;
});
