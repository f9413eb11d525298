// Package novnc is Nimbus's console proxy, the equivalent of Nova's
// nova-novncproxy. It serves the browser console page, which runs noVNC's
// RFB client (vendored into /static/vendor/novnc/ by `make assets`), and at
// /console/websockify it turns a single-use console token into a websocket
// that carries the instance's VNC stream from its hypervisor.
//
// Every check happens before the websocket upgrade, so a refused request
// never becomes a socket: the Origin header must be an allowed origin (a
// handshake is a plain GET that any site can trigger), only the "binary"
// subprotocol is spoken, and the token must be consumed successfully, which
// also binds the session to one instance on one host. The proxy then dials
// the instance's VNC server through the agent and copies bytes unchanged in
// both directions until either side closes, the session is idle too long,
// or CloseInstance ends it because the instance stopped or was deleted.
//
// Console tokens are credentials: they never reach the log, which shows
// only a short prefix of their SHA-256 digest.
package novnc
