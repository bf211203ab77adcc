// The "server unreachable" banner, shared by every view.

/** Shows or hides the banner: `ok` when the last request reached the server. */
export function setConnected(ok) {
  document.getElementById('conn').hidden = ok;
}
